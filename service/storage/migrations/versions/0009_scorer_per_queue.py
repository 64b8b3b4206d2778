"""learned scorers per review queue

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scorer_models") as batch_op:
        batch_op.add_column(
            sa.Column("queue", sa.String(length=64), nullable=False, server_default="default")
        )
        batch_op.create_index("ix_scorer_models_queue_active", ["queue", "active"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scorer_models") as batch_op:
        batch_op.drop_index("ix_scorer_models_queue_active")
        batch_op.drop_column("queue")
