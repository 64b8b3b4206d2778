"""the audit draws each output once, at its first window (its rate then), and routing chooses audit
members blind to the audit: when it chose one, and when its score order passed it; and the audit
share each selection run drew with

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("picks") as batch_op:
        batch_op.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("selections") as batch_op:
        batch_op.add_column(sa.Column("audit_share", sa.Float(), nullable=True))
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.add_column(sa.Column("audit_rate", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.drop_column("audit_rate")
    with op.batch_alter_table("selections") as batch_op:
        batch_op.drop_column("audit_share")
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_column("passed_at")
        batch_op.drop_column("routed_at")
