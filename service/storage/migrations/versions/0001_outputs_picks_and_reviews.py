"""outputs, picks and reviews

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outputs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("app", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("messages", JSONType, nullable=True),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(length=40), nullable=True),
        sa.Column("token_logprobs", JSONType, nullable=True),
        sa.Column("samples", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("signals", JSONType, nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("scorer_version", sa.String(length=64), nullable=True),
        sa.Column("drivers", JSONType, nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("scored_at", UTC, nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app", "external_id", name="uq_outputs_app_external_id"),
    )
    with op.batch_alter_table("outputs", schema=None) as batch_op:
        batch_op.create_index("ix_outputs_scored_at", ["scored_at"], unique=False)
        batch_op.create_index("ix_outputs_status_received_at", ["status", "received_at"], unique=False)

    op.create_table(
        "picks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("stratum", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("picked_at", UTC, nullable=False),
        sa.Column("reviewed_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["output_id"], ["outputs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("output_id"),
    )
    with op.batch_alter_table("picks", schema=None) as batch_op:
        batch_op.create_index("ix_picks_queue_reviewed_at", ["queue", "reviewed_at"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["output_id"], ["outputs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index("ix_reviews_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_reviews_output_id", ["output_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_output_id")
        batch_op.drop_index("ix_reviews_created_at")

    op.drop_table("reviews")
    with op.batch_alter_table("picks", schema=None) as batch_op:
        batch_op.drop_index("ix_picks_queue_reviewed_at")

    op.drop_table("picks")
    with op.batch_alter_table("outputs", schema=None) as batch_op:
        batch_op.drop_index("ix_outputs_status_received_at")
        batch_op.drop_index("ix_outputs_scored_at")

    op.drop_table("outputs")
