"""survey integrity: the counting decision on each survey

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
    with op.batch_alter_table("survey_responses") as batch:
        batch.add_column(
            sa.Column("start_method", sa.String(length=16), server_default="static", nullable=False)
        )
    with op.batch_alter_table("units") as batch:
        batch.add_column(
            sa.Column("require_verified", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("api_key_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_units_api_key_hash", ["api_key_hash"])
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("counter_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counters.id"], name=op.f("fk_devices_counter_id_counters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_devices_secret_hash")),
    )
    op.create_index(op.f("ix_devices_counter_id"), "devices", ["counter_id"])
    op.create_table(
        "visit_codes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("counter_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counters.id"], name=op.f("fk_visit_codes_counter_id_counters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_visit_codes_code_hash")),
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
    op.drop_table("visit_codes")
    op.drop_index(op.f("ix_devices_counter_id"), table_name="devices")
    op.drop_table("devices")
    with op.batch_alter_table("units") as batch:
        batch.drop_constraint("uq_units_api_key_hash", type_="unique")
        batch.drop_column("api_key_hash")
        batch.drop_column("require_verified")
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_column("start_method")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("throttled")
        batch.drop_column("allowance_at")
        batch.drop_column("allowance_tokens")
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_index("ix_survey_responses_respondent_counter")
        batch.drop_column("qualified_at")
        batch.drop_column("counted")
