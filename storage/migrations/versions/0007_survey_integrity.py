"""survey integrity: the counting decision on each survey

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("survey_responses") as batch:
        batch.add_column(
            sa.Column("counted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(
            "ix_survey_responses_respondent_counter", ["respondent_hash", "counter_id"]
        )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("allowance_tokens", sa.Float(), nullable=True))
        batch.add_column(sa.Column("allowance_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("throttled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Surveys stored before this rule: those the index counted then (completed or partial with
    # at least one rating) keep counting, as the repeat flag said; see docs/reports.md.
    op.execute(
        """
        UPDATE survey_responses
        SET qualified_at = COALESCE(completed_at, updated_at),
            counted = NOT is_repeat
        WHERE status IN ('completed', 'partial')
          AND EXISTS (
            SELECT 1 FROM answers
            WHERE answers.response_id = survey_responses.id
              AND answers.factor IS NOT NULL AND answers.value BETWEEN 1 AND 5
          )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("throttled")
        batch.drop_column("allowance_at")
        batch.drop_column("allowance_tokens")
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_index("ix_survey_responses_respondent_counter")
        batch.drop_column("qualified_at")
        batch.drop_column("counted")
