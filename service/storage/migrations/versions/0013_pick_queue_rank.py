"""a pick's place in its queue's review order, apart from its score (audit picks go at random places)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.add_column(sa.Column("queue_rank", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_column("queue_rank")
