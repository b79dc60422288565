"""unit month roll-up: the month rows of rollup_surveys and rollup_tallies summed per unit
(no counter, channel or start method behind them), for the province view; back-filled here
from the month rows

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# (table, source, its key columns after unit_id and month, its sums)
_TABLES = (
    (
        "rollup_unit_surveys",
        "rollup_surveys",
        (("is_repeat", sa.Boolean()), ("status", sa.String(16)), ("quarantine", sa.String(16))),
        ("surveys",),
    ),
    (
        "rollup_unit_tallies",
        "rollup_tallies",
        (
            ("is_repeat", sa.Boolean()),
            ("factor", sa.Integer()),
            ("criterion", sa.Integer()),
            ("item_key", sa.String(64)),
        ),
        ("valid", "satisfied", "total"),
    ),
)


def upgrade() -> None:
    for name, source, keys, sums in _TABLES:
        columns = [("unit_id", sa.Integer()), ("month", sa.Date()), *keys]
        op.create_table(
            name,
            *(
                sa.Column(column, kind, nullable=False, autoincrement=False)
                for column, kind in columns
            ),
            *(sa.Column(column, sa.BigInteger(), nullable=False) for column in sums),
            sa.ForeignKeyConstraint(
                ["unit_id"], ["units.id"], name=op.f(f"fk_{name}_unit_id_units")
            ),
            sa.PrimaryKeyConstraint(*(column for column, _ in columns), name=op.f(f"pk_{name}")),
        )
        # The month rows as the writers left them (rows back at zero are left out): what
        # `sipas-bot rollup rebuild` would make from them, in one statement per table.
        grouped = ", ".join(column for column, _ in keys)
        op.execute(
            f"INSERT INTO {name} (unit_id, month, {grouped}, {', '.join(sums)}) "
            f"SELECT unit_id, day, {grouped}, "
            + ", ".join(f"SUM({column})" for column in sums)
            + f" FROM {source} WHERE grain = 'month' GROUP BY unit_id, day, {grouped} HAVING "
            + " OR ".join(f"SUM({column}) <> 0" for column in sums)
        )


def downgrade() -> None:
    for name, *_ in reversed(_TABLES):
        op.drop_table(name)
