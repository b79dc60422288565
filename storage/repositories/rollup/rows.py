"""The roll-up's tables and rows: which tables there are, their key and count columns, a
`Contribution` (what some surveys add to them), and which surveys count (`_rolled_up`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
)

from storage import stats
from storage.models import (
    QuarantineState,
    RollupGrain,
    RollupSurveys,
    RollupTally,
    RollupUnitSurveys,
    RollupUnitTally,
    SurveyResponse,
)

# The review states whose surveys `rollup_surveys` counts (rejected ones are in no figure).
_COUNTED_STATES = (*stats.IN_INDEX, QuarantineState.HELD.value)

RollupTable = (
    type[RollupSurveys] | type[RollupTally] | type[RollupUnitSurveys] | type[RollupUnitTally]
)
# Every roll-up table, in the order a writer adds to them (each table's rows by sorted key).
ROLLUP_TABLES: tuple[RollupTable, ...] = (
    RollupSurveys,
    RollupTally,
    RollupUnitSurveys,
    RollupUnitTally,
)
# Each unit-month table and the table whose month rows it sums.
_UNIT_MONTHS: dict[RollupTable, RollupTable] = {
    RollupUnitSurveys: RollupSurveys,
    RollupUnitTally: RollupTally,
}
# A row's key columns' values, in the order `_keys` gives.
RowKey = tuple[Any, ...]


@cache
def _keys(model: RollupTable) -> tuple[str, ...]:
    """A roll-up table's key columns in its primary key's order: the order of the row keys
    of a `Contribution`, read from the model rather than written out once per table."""
    return tuple(column.name for column in model.__mapper__.primary_key)


@cache
def _sums(model: RollupTable) -> tuple[str, ...]:
    """A roll-up table's count columns (all but the keys), in their order."""
    return tuple(column.name for column in model.__mapper__.columns if not column.primary_key)


def _when(model: RollupTable) -> Any:
    """A roll-up table's date column: `day` (a local day, or a month's 1st) or `month`."""
    columns = model.__table__.c
    return columns.month if "month" in columns else columns.day


@dataclass
class Contribution:
    """What some surveys add to the roll-up: per table, the sums (in `_sums` order) by row
    key (in `_keys` order)."""

    rows: dict[RollupTable, dict[RowKey, list[int]]]

    @classmethod
    def empty(cls) -> Contribution:
        return cls({model: {} for model in ROLLUP_TABLES})

    def __bool__(self) -> bool:
        return any(self.rows.values())

    def add(self, model: RollupTable, values: Mapping[str, Any], sums: Sequence[int]) -> None:
        """Add `sums` to the row of `model` whose keys `values` names (other names ignored)."""
        key = tuple(values[name] for name in _keys(model))
        found = self.rows[model].setdefault(key, [0] * len(sums))
        for n, value in enumerate(sums):
            found[n] += value

    def add_unit_months(self) -> None:
        """Add the unit-month rows of the month rows held: their sums over counter, channel
        and start method."""
        for unit_model, model in _UNIT_MONTHS.items():
            names = _keys(model)
            for key, sums in self.rows[model].items():
                row = dict(zip(names, key, strict=True))
                if row["grain"] == RollupGrain.MONTH.value:
                    self.add(unit_model, {**row, "month": row["day"]}, sums)


def _month(day: date) -> date:
    return day.replace(day=1)


def _grains(day: date) -> tuple[dict[str, Any], ...]:
    """The rows a survey of this local day is counted in: its day's and its month's."""
    return (
        {"grain": RollupGrain.DAY.value, "day": day},
        {"grain": RollupGrain.MONTH.value, "day": _month(day)},
    )


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _rolled_up(condition: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    """The surveys `rollup_surveys` counts, among those meeting `condition`."""
    return [
        condition,
        SurveyResponse.status.in_(stats.COUNTED_STATUSES),
        SurveyResponse.qualified_at.is_not(None),
        SurveyResponse.quarantine.in_(_COUNTED_STATES),
    ]


def _adding(model: RollupTable, insert: Any) -> dict[str, Any]:
    """ON CONFLICT DO UPDATE's SET of an INSERT into `model`: each count plus the new one."""
    return {name: getattr(model, name) + getattr(insert.excluded, name) for name in _sums(model)}
