"""quarantine: a survey's review state and the rule that held it; units' opening hours

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opening_hours", sa.String(length=200), nullable=True))
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quarantine", sa.String(length=16), server_default="none", nullable=False)
        )
        batch_op.add_column(sa.Column("quarantine_rule", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_survey_responses_quarantine", ["quarantine"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_responses_quarantine")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("quarantine_rule")
        batch_op.drop_column("quarantine")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("opening_hours")
