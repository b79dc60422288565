"""outbox claim order: the pending messages in id order, overall and per OA, so that a claim
reads the first heads it needs and stops, whatever the backlog (docs/benchmarks.md, 2)

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_messages_status_id", "outbox_messages", ["status", "id"])
    op.create_index("ix_outbox_messages_status_oa_id", "outbox_messages", ["status", "oa_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_status_oa_id", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_status_id", table_name="outbox_messages")
