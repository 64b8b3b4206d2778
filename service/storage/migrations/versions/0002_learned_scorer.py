"""learned scorer versions, pick inclusion probabilities, sampling status

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scorer_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("n_failures", sa.Integer(), nullable=False),
        sa.Column("calibration", sa.String(length=16), nullable=False),
        sa.Column("metrics", JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    with op.batch_alter_table("picks") as batch_op:
        batch_op.add_column(sa.Column("inclusion_probability", sa.Float(), nullable=True))
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.add_column(sa.Column("sampling", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.drop_column("sampling")
    with op.batch_alter_table("picks") as batch_op:
        batch_op.drop_column("inclusion_probability")
    op.drop_table("scorer_models")
