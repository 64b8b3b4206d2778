"""the other outputs of a pick's cluster in its selection, which its reason counts

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.add_column(sa.Column("members", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_column("members")
