"""indexes for the review pages: picks by queue and pick time, picks by selection run and cluster

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.create_index("ix_picks_queue_picked_at", ["queue", "picked_at"], unique=False)
        batch_op.create_index("ix_picks_selection_id_cluster", ["selection_id", "cluster"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_index("ix_picks_selection_id_cluster")
        batch_op.drop_index("ix_picks_queue_picked_at")
