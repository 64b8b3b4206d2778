"""selection runs, pick clusters and duplicates, the junk bucket

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "selections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_size", sa.Integer(), nullable=False),
        sa.Column("junk", sa.Integer(), nullable=False),
        sa.Column("clusters", sa.Integer(), nullable=False),
        sa.Column("noise", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("selections") as batch_op:
        batch_op.create_index("ix_selections_queue_created_at", ["queue", "created_at"], unique=False)
    with op.batch_alter_table("picks") as batch_op:
        batch_op.add_column(sa.Column("selection_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("cluster", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("duplicates", JSONType, nullable=True))
        batch_op.create_foreign_key(
            "fk_picks_selection_id", "selections", ["selection_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.add_column(sa.Column("junk_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("queue", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_outputs_queue_status", ["queue", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.drop_index("ix_outputs_queue_status")
        batch_op.drop_column("queue")
        batch_op.drop_column("junk_reason")
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_constraint("fk_picks_selection_id", type_="foreignkey")
        batch_op.drop_column("duplicates")
        batch_op.drop_column("cluster")
        batch_op.drop_column("selection_id")
    op.drop_table("selections")
