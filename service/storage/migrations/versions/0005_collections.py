"""collections (eval suites, fine-tuning sets), their immutable versions, and promotion rules

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_collections_name"),
    )
    op.create_table(
        "collection_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.String(length=32), nullable=False),
        sa.Column("input", JSONType, nullable=False),
        sa.Column("bad_output", sa.Text(), nullable=True),
        sa.Column("ideal", sa.Text(), nullable=True),
        sa.Column("categories", JSONType, nullable=False),
        sa.Column("provenance", JSONType, nullable=False),
        sa.Column("input_hash", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("cluster", sa.String(length=80), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", "review_id", name="uq_collection_entries_collection_review"),
    )
    op.create_index("ix_collection_entries_review_id", "collection_entries", ["review_id"], unique=False)
    op.create_index("ix_collection_entries_output_id", "collection_entries", ["output_id"], unique=False)
    op.create_table(
        "collection_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("held_back", JSONType, nullable=False),
        sa.Column("checked_against", JSONType, nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", "number", name="uq_collection_versions_collection_number"),
    )
    op.create_table(
        "collection_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("merged", JSONType, nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["entry_id"], ["collection_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_collection_items_entry_id", "collection_items", ["entry_id"], unique=False)
    op.create_index(
        "ix_collection_items_collection_span",
        "collection_items",
        ["collection_id", "from_version", "to_version"],
        unique=False,
    )
    op.create_table(
        "promotion_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("condition", JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_promotion_rules_name"),
    )
    op.create_index("ix_promotion_rules_collection_id", "promotion_rules", ["collection_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_promotion_rules_collection_id", table_name="promotion_rules")
    op.drop_table("promotion_rules")
    op.drop_index("ix_collection_items_collection_span", table_name="collection_items")
    op.drop_index("ix_collection_items_entry_id", table_name="collection_items")
    op.drop_table("collection_items")
    op.drop_table("collection_versions")
    op.drop_index("ix_collection_entries_output_id", table_name="collection_entries")
    op.drop_index("ix_collection_entries_review_id", table_name="collection_entries")
    op.drop_table("collection_entries")
    op.drop_table("collections")
