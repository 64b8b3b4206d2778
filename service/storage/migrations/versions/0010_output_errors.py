"""outputs that could not be scored: status "error" with the reason

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.add_column(sa.Column("error", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.drop_column("error")
