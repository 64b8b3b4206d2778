"""an index for the audit's top-up and exposure, which scan a queue's scored outputs by their
audit rate (below a raised share, or none yet) on every selection while a target width is unmet

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outputs_queue_status_audit_rate", "outputs", ["queue", "status", "audit_rate"])


def downgrade() -> None:
    op.drop_index("ix_outputs_queue_status_audit_rate", table_name="outputs")
