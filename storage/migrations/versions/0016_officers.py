"""officers and shifts: a unit's officers (from the units file), their shifts at counters,
and the officer on shift recorded on each survey

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "officers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_officers_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_officers")),
        sa.UniqueConstraint("unit_id", "code", name="uq_officers_unit_code"),
    )
    op.create_table(
        "shifts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_via", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counters.id"], name=op.f("fk_shifts_counter_id_counters")
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name=op.f("fk_shifts_officer_id_officers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shifts")),
    )
    op.create_index("ix_shifts_counter_ended", "shifts", ["counter_id", "ended_at"])
    op.create_index(op.f("ix_shifts_officer_id"), "shifts", ["officer_id"])
    with op.batch_alter_table("survey_responses") as batch:
        batch.add_column(sa.Column("officer_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_survey_responses_officer_id_officers", "officers", ["officer_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_constraint("fk_survey_responses_officer_id_officers", type_="foreignkey")
        batch.drop_column("officer_id")
    op.drop_index(op.f("ix_shifts_officer_id"), table_name="shifts")
    op.drop_index("ix_shifts_counter_ended", table_name="shifts")
    op.drop_table("shifts")
    op.drop_table("officers")
