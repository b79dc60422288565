"""outbox: why a message was given up, as a reason code

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("dead_reason", sa.String(length=16), nullable=True))
    # Messages given up before this revision said why only in their error text.
    op.execute(
        "UPDATE outbox_messages SET dead_reason = 'window_closed' WHERE status = 'dead' "
        "AND (last_error LIKE 'window closed%' OR last_error LIKE 'ZaloWindowClosed%')"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("dead_reason")
