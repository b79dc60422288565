"""citizen notes: messages typed during a survey that answered no question

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen_notes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.Integer(), nullable=False),
        sa.Column("respondent_hash", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counters.id"], name=op.f("fk_citizen_notes_counter_id_counters")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_citizen_notes_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_notes")),
    )
    with op.batch_alter_table("citizen_notes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_citizen_notes_unit_received", ["unit_id", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("citizen_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_citizen_notes_unit_received")

    op.drop_table("citizen_notes")
