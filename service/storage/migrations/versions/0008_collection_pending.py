"""rule promotions and withdrawals staged for a collection's next version

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["entry_id"], ["collection_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("collection_pending") as batch_op:
        batch_op.create_index(
            "ix_collection_pending_collection_id", ["collection_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("collection_pending") as batch_op:
        batch_op.drop_index("ix_collection_pending_collection_id")
    op.drop_table("collection_pending")
