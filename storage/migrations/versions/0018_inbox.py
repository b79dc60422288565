"""inbox: webhook events stored by a fast acknowledgement (WEBHOOK_INTAKE=queued), run by
the workers

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=80), nullable=False),
        sa.Column("oa_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_inbox_events_dedupe_key")),
    )
    op.create_index(
        "ix_inbox_events_status_oa_user",
        "inbox_events",
        ["status", "oa_id", "user_id", "id"],
        unique=False,
    )
    op.create_index("ix_inbox_events_status_id", "inbox_events", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbox_events_status_id", table_name="inbox_events")
    op.drop_index("ix_inbox_events_status_oa_user", table_name="inbox_events")
    op.drop_table("inbox_events")
