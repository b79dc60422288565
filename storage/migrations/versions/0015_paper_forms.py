"""paper forms: the form numbers printed per unit, and each paper form entered once, with
who entered it, when, and the survey it made

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "paper_form_sequences",
        sa.Column("unit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_paper_form_sequences_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_paper_form_sequences")),
    )
    op.create_table(
        "paper_forms",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("response_id", BigId, nullable=False),
        sa.Column("entered_by", sa.String(length=200), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["survey_responses.id"],
            name=op.f("fk_paper_forms_response_id_survey_responses"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_paper_forms_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_forms")),
        sa.UniqueConstraint("response_id", name=op.f("uq_paper_forms_response_id")),
        sa.UniqueConstraint("unit_id", "number", name=op.f("uq_paper_forms_unit_id")),
    )
    with op.batch_alter_table("paper_forms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_paper_forms_entered_by_at", ["entered_by", "entered_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("paper_forms")
    op.drop_table("paper_form_sequences")
