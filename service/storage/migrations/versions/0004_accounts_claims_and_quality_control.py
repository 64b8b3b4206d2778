"""accounts, API keys, sessions; review claims, skips, categories and double review

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("web_sessions") as batch_op:
        batch_op.create_index("ix_web_sessions_user_id", ["user_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "skips",
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["output_id"], ["outputs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("output_id", "user_id"),
    )
    with op.batch_alter_table("picks") as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("qc_state", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_picks_qc_state", ["qc_state"], unique=False)
        batch_op.create_foreign_key(
            "fk_picks_claimed_by", "users", ["claimed_by"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("reviews") as batch_op:
        batch_op.alter_column("tags", new_column_name="categories")
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="primary"))
        batch_op.add_column(sa.Column("reviewer_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            "fk_reviews_reviewer_id", "users", ["reviewer_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(
            "ix_reviews_reviewer_id_created_at", ["reviewer_id", "created_at"], unique=False
        )
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.add_column(sa.Column("similar", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.drop_column("similar")
    with op.batch_alter_table("reviews") as batch_op:
        batch_op.drop_index("ix_reviews_reviewer_id_created_at")
        batch_op.drop_constraint("fk_reviews_reviewer_id", type_="foreignkey")
        batch_op.drop_column("reviewer_id")
        batch_op.drop_column("kind")
        batch_op.alter_column("categories", new_column_name="tags")
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_constraint("fk_picks_claimed_by", type_="foreignkey")
        batch_op.drop_index("ix_picks_qc_state")
        batch_op.drop_column("qc_state")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
    op.drop_table("skips")
    op.drop_table("api_keys")
    with op.batch_alter_table("web_sessions") as batch_op:
        batch_op.drop_index("ix_web_sessions_user_id")
    op.drop_table("web_sessions")
    op.drop_table("users")
