"""rollup: the index's counts per counter and local day (and month), written with every
counted survey, back-filled here from the stored surveys

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The zone of the local days of units without a time zone of their own: TIMEZONE when the
# environment says it, else the service's default. A deployment whose TIMEZONE lives only
# in its .env file gets the default here; `sipas-bot rollup check` tells, and
# `sipas-bot rollup rebuild` puts it right (reports read the raw rows meanwhile).
DEFAULT_ZONE = "Asia/Ho_Chi_Minh"

_PLACE = (
    ("grain", sa.String(length=8)),
    ("unit_id", sa.Integer()),
    ("day", sa.Date()),
    ("counter_id", sa.Integer()),
    ("channel", sa.String(length=16)),
    ("start_method", sa.String(length=16)),
    ("is_repeat", sa.Boolean()),
)


def _table(name: str, keys: list[tuple[str, sa.types.TypeEngine]], sums: list[str]) -> None:
    columns = [
        sa.Column(column, kind, nullable=False, autoincrement=False) for column, kind in keys
    ]
    op.create_table(
        name,
        *columns,
        *(sa.Column(column, sa.BigInteger(), nullable=False) for column in sums),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counters.id"], name=op.f(f"fk_{name}_counter_id_counters")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f(f"fk_{name}_unit_id_units")),
        sa.PrimaryKeyConstraint(*(column for column, _ in keys), name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.create_table(
        "rollup_units",
        sa.Column("unit_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_rollup_units_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_rollup_units")),
    )
    _table(
        "rollup_surveys",
        [*_PLACE, ("status", sa.String(length=16)), ("quarantine", sa.String(length=16))],
        ["surveys"],
    )
    _table(
        "rollup_tallies",
        [
            *_PLACE,
            ("factor", sa.Integer()),
            ("criterion", sa.Integer()),
            ("item_key", sa.String(length=64)),
        ],
        ["valid", "satisfied", "total"],
    )
    _back_fill()


def _back_fill() -> None:
    """Every unit's roll-up from its stored surveys, as `sipas-bot rollup rebuild` makes it
    (on PostgreSQL grouped in SQL, a few statements per unit; on SQLite per survey), in the
    two tables made here (0020 adds the unit-month ones, back-filled from these)."""
    from sqlalchemy.orm import Session

    from storage.models import RollupSurveys, RollupTally
    from storage.repositories.rollup import rebuild_unit

    default = os.environ.get("TIMEZONE") or DEFAULT_ZONE
    session = Session(bind=op.get_bind())
    units = session.execute(sa.text("SELECT id, timezone FROM units ORDER BY id")).all()
    now = datetime.now(UTC)
    for unit_id, own in units:
        rebuild_unit(
            session,
            unit_id,
            zone=own or default,
            span=None,
            now=now,
            tables=(RollupSurveys, RollupTally),
        )
    session.flush()


def downgrade() -> None:
    op.drop_table("rollup_tallies")
    op.drop_table("rollup_surveys")
    op.drop_table("rollup_units")
