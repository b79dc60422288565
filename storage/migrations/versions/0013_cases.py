"""cases: every comment, low rating and message to the OA becomes a case with a reference,
a deadline, replies and an audit trail; citizens' notes (citizen_notes) become cases

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_due_days", sa.Integer(), nullable=True))
    op.create_table(
        "case_sequences",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_case_sequences")),
    )
    op.create_table(
        "cases",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("counter_id", sa.Integer(), nullable=True),
        sa.Column("response_id", BigId, nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("respondent_hash", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("undeliverable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("overdue_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counters.id"], name=op.f("fk_cases_counter_id_counters")
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["survey_responses.id"],
            name=op.f("fk_cases_response_id_survey_responses"),
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_cases_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("reference", name=op.f("uq_cases_reference")),
        sa.UniqueConstraint("response_id", name=op.f("uq_cases_response_id")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cases_respondent_hash"), ["respondent_hash"], unique=False
        )
        batch_op.create_index("ix_cases_status_due", ["status", "due_on"], unique=False)
        batch_op.create_index("ix_cases_unit_received", ["unit_id", "received_at"], unique=False)
    op.create_table(
        "case_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", BigId, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)
    op.create_table(
        "case_replies",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", BigId, nullable=False),
        sa.Column("reply_key", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("outbox_message_id", BigId, nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_replies_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_case_replies_outbox_message_id_outbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_replies")),
        sa.UniqueConstraint("reply_key", name=op.f("uq_case_replies_reply_key")),
    )
    with op.batch_alter_table("case_replies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_replies_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_case_replies_outbox_message_id"), ["outbox_message_id"], unique=False
        )
    op.create_table(
        "case_contacts",
        sa.Column("case_id", BigId, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_contacts_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_contacts")),
    )
    with op.batch_alter_table("case_contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_contacts_user_id"), ["user_id"], unique=False)
    _notes_to_cases()
    with op.batch_alter_table("citizen_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_citizen_notes_unit_received")
    op.drop_table("citizen_notes")


def _notes_to_cases() -> None:
    """Each stored note becomes a new case (kind góp ý, due 10 calendar days after it came:
    holidays are not known here; an official can re-read them with `sipas-bot cases list`)."""
    bind = op.get_bind()
    notes = bind.execute(
        sa.text(
            "SELECT unit_id, counter_id, respondent_hash, text, received_at "
            "FROM citizen_notes ORDER BY id"
        )
    ).all()
    last: dict[int, int] = {}
    now = datetime.now(UTC)
    for unit_id, counter_id, respondent_hash, text, received_at in notes:
        received = received_at if isinstance(received_at, datetime) else now
        year = received.year
        last[year] = last.get(year, 0) + 1
        bind.execute(
            sa.text(
                "INSERT INTO cases (reference, unit_id, counter_id, source, kind, text, "
                "respondent_hash, language, status, received_at, due_on, undeliverable, "
                "updated_at) VALUES (:reference, :unit_id, :counter_id, 'note', 'gop_y', :text, "
                ":respondent_hash, 'vi', 'moi', :received_at, :due_on, :false, :now)"
            ),
            {
                "reference": f"PA-{year}-{last[year]:06d}",
                "unit_id": unit_id,
                "counter_id": counter_id,
                "text": text,
                "respondent_hash": respondent_hash,
                "received_at": received_at,
                "due_on": date(received.year, received.month, received.day) + timedelta(days=14),
                "false": False,
                "now": now,
            },
        )
    for year, number in last.items():
        bind.execute(
            sa.text("INSERT INTO case_sequences (year, last_number) VALUES (:year, :number)"),
            {"year": year, "number": number},
        )


def downgrade() -> None:
    op.create_table(
        "citizen_notes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
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
    op.drop_table("case_contacts")
    op.drop_table("case_replies")
    op.drop_table("case_events")
    op.drop_table("cases")
    op.drop_table("case_sequences")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("case_due_days")
