"""The roll-up of the index's counts per counter and local day (and local month): the same
tallies storage/stats.py counts from the answers, kept up to date in the transaction of every
change that moves a survey into or out of the index, so that a report over a period reads a
few hundred rows instead of every answer of the period (docs/reports.md, "The roll-up").

What is rolled up (the rule of storage/stats.py, one survey at a time): a survey completed
or partial that qualified (counted, or flagged as a repeat), counted on the local day of its
`started_at` in the zone of its unit's `rollup_units` row. `rollup_surveys` counts such
surveys in the index or held for review (not rejected ones); `rollup_tallies` sums the rated
answers (1–5, on an item with a factor) of those in the index. Each row exists twice: for its
local day (grain "day") and for its local month (grain "month", `day` the 1st), so that a
month, a quarter or a year reads month rows and a week or a range of days reads day rows.
`rollup_unit_surveys` and `rollup_unit_tallies` hold the month rows summed per unit (no
counter, channel or start method): the province view of whole months reads one row per unit,
month and criterion (`unit_tallies`, `unit_counts`). `_keys` names every table's key columns
in the order of its row keys, read from the model.

Writers never recompute a total: they take a survey's contribution out (`take_out`), change
the survey, and put its contribution back (`put_in`), each an INSERT … ON CONFLICT DO UPDATE
SET n = n + excluded.n on sorted keys, which two transactions may run at once on PostgreSQL
(each adds only its own surveys; rows are locked in the same order); the unit-month rows are
derived from the contribution's month rows and written with them. `rebuild_unit`
recomputes a unit from the raw rows; `compare_unit` tells what differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    Subquery,
    and_,
    delete,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from storage import stats
from storage.models import (
    Answer,
    QuarantineState,
    RollupGrain,
    RollupSurveys,
    RollupTally,
    RollupUnit,
    RollupUnitSurveys,
    RollupUnitTally,
    SurveyResponse,
    Unit,
)
from storage.repositories._dialect import dialect_insert

# The review states whose surveys `rollup_surveys` counts (rejected ones are in no figure).
_COUNTED_STATES = (*stats.IN_INDEX, QuarantineState.HELD.value)
_CHUNK = 2000  # rows per INSERT

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


def _contribution(
    session: Session, condition: ColumnElement[bool], zones: Mapping[int, ZoneInfo]
) -> Contribution:
    """The roll-up rows of the surveys meeting `condition`, as their stored rows make them
    now, in every table; a unit's days are read in `zones[unit_id]`."""
    # A survey in the index: its place (unit, counter, channel, start method, repeat?), day.
    places: dict[int, tuple[dict[str, Any], date]] = {}
    found = Contribution.empty()
    for row in session.execute(
        select(
            SurveyResponse.id,
            SurveyResponse.unit_id,
            SurveyResponse.counter_id,
            SurveyResponse.channel,
            SurveyResponse.start_method,
            SurveyResponse.is_repeat,
            SurveyResponse.status,
            SurveyResponse.quarantine,
            SurveyResponse.started_at,
        ).where(*_rolled_up(condition))
    ):
        place: dict[str, Any] = {
            "unit_id": int(row.unit_id),
            "counter_id": int(row.counter_id),
            "channel": str(row.channel),
            "start_method": str(row.start_method),
            "is_repeat": bool(row.is_repeat),
        }
        day = _local_day(row.started_at, zones[place["unit_id"]])
        if row.quarantine in stats.IN_INDEX:
            places[int(row.id)] = (place, day)
        survey = {**place, "status": str(row.status), "quarantine": str(row.quarantine)}
        for grain in _grains(day):
            found.add(RollupSurveys, {**survey, **grain}, (1,))
    answers = (
        select(
            Answer.response_id,
            Answer.factor,
            Answer.criterion,
            stats.ITEM_KEY,
            func.count(),
            func.sum(stats.SATISFIED),
            func.sum(Answer.value),
        )
        .join(SurveyResponse, SurveyResponse.id == Answer.response_id)
        .where(
            *_rolled_up(condition),
            SurveyResponse.quarantine.in_(stats.IN_INDEX),
            *stats.RATED_ANSWER,
        )
        .group_by(Answer.response_id, Answer.factor, Answer.criterion, stats.ITEM_KEY)
    )
    for response_id, factor, criterion, item_key, valid, satisfied, total in (
        session.execute(answers) if places else ()
    ):
        place, day = places[int(response_id)]
        answer = {
            **place,
            "factor": int(factor),
            "criterion": int(criterion or 0),
            "item_key": item_key or "",
        }
        sums = (int(valid), int(satisfied or 0), int(total or 0))
        for grain in _grains(day):
            found.add(RollupTally, {**answer, **grain}, sums)
    found.add_unit_months()
    return found


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def _adding(model: RollupTable, insert: Any) -> dict[str, Any]:
    """ON CONFLICT DO UPDATE's SET of an INSERT into `model`: each count plus the new one."""
    return {name: getattr(model, name) + getattr(insert.excluded, name) for name in _sums(model)}


def _apply(
    session: Session,
    found: Contribution,
    sign: int,
    tables: Sequence[RollupTable] = ROLLUP_TABLES,
) -> None:
    """Add `sign` times `found` to the roll-up `tables`, in one order of tables and each
    table's rows by sorted key: concurrent writers lock rows in one order and cannot
    deadlock on them."""
    for model in tables:
        keys, sums = _keys(model), _sums(model)
        rows = [
            {
                **dict(zip(keys, key, strict=True)),
                **{name: sign * n for name, n in zip(sums, counts, strict=True)},
            }
            for key, counts in sorted(found.rows[model].items())
            if any(counts)
        ]
        for chunk in _chunks(rows):
            insert = dialect_insert(session, model).values(chunk)
            session.execute(
                insert.on_conflict_do_update(index_elements=list(keys), set_=_adding(model, insert))
            )


def _zones_of_surveys(
    session: Session, response_ids: Sequence[int], *, sign: int, default_zone: str | None
) -> dict[int, ZoneInfo]:
    """The roll-up zone of the units of these surveys (those in the roll-up as stored now)
    that have a roll-up.

    Putting in with `default_zone`, a unit with no `rollup_units` row yet gets one, in its
    own time zone or `default_zone`, when none of its other surveys would be in the
    roll-up (a unit made after the roll-up was built); a unit that has such surveys stays
    without one (its reports read the raw rows until `sipas-bot rollup rebuild`)."""
    rows = session.execute(
        select(Unit.id, Unit.timezone, RollupUnit.zone)
        .join(RollupUnit, RollupUnit.unit_id == Unit.id, isouter=True)
        .where(
            Unit.id.in_(
                select(SurveyResponse.unit_id).where(
                    *_rolled_up(SurveyResponse.id.in_(response_ids))
                )
            )
        )
    ).all()
    zones: dict[int, ZoneInfo] = {}
    for unit_id, own, kept in rows:
        if kept is None:
            if (
                sign < 0
                or default_zone is None
                or session.scalar(
                    select(func.count()).where(
                        *_rolled_up(SurveyResponse.unit_id == unit_id),
                        SurveyResponse.id.not_in(response_ids),
                    )
                )
            ):
                continue
            session.execute(
                dialect_insert(session, RollupUnit)
                .values(unit_id=unit_id, zone=own or default_zone, built_at=datetime.now(UTC))
                .on_conflict_do_nothing(index_elements=["unit_id"])
            )
            kept = session.scalar(select(RollupUnit.zone).where(RollupUnit.unit_id == unit_id))
        zones[int(unit_id)] = ZoneInfo(str(kept))
    return zones


def take_out(session: Session, response_ids: Sequence[int]) -> None:
    """Take these surveys' contribution out of the roll-up, before a change to them (a
    survey not in the roll-up contributes nothing)."""
    _move(session, response_ids, -1, default_zone=None)


def put_in(session: Session, response_ids: Sequence[int], *, default_zone: str | None) -> None:
    """Put these surveys' contribution into the roll-up, after a change to them
    (`default_zone`: TIMEZONE, to start the roll-up of a unit that has none yet; None: such
    a unit is left as it is, its reports reading the raw rows)."""
    _move(session, response_ids, 1, default_zone=default_zone)


def _move(
    session: Session, response_ids: Sequence[int], sign: int, *, default_zone: str | None
) -> None:
    ids = list(response_ids)
    if not ids:
        return
    zones = _zones_of_surveys(session, ids, sign=sign, default_zone=default_zone)
    if zones:
        condition = and_(SurveyResponse.id.in_(ids), SurveyResponse.unit_id.in_(list(zones)))
        _apply(session, _contribution(session, condition, zones), sign)


# --- rebuild and check ----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """Whole local months [first, end) of one unit, and the instants they cover."""

    first: date
    end: date
    start_at: datetime
    end_at: datetime


def months_span(first: date, last: date, zone: ZoneInfo) -> Span:
    """The local months holding `first` to `last` (a rebuild or a check works on whole
    months, since each month has its own row)."""
    start = _month(first)
    end = (_month(last) + timedelta(days=32)).replace(day=1)
    return Span(
        start,
        end,
        datetime(start.year, start.month, start.day, tzinfo=zone),
        datetime(end.year, end.month, end.day, tzinfo=zone),
    )


def _unit_condition(unit_id: int, span: Span | None) -> ColumnElement[bool]:
    if span is None:
        return SurveyResponse.unit_id == unit_id
    return and_(
        SurveyResponse.unit_id == unit_id,
        SurveyResponse.started_at >= span.start_at,
        SurveyResponse.started_at < span.end_at,
    )


def _unit_rows(model: RollupTable, unit_id: int, span: Span | None) -> list[ColumnElement[bool]]:
    """The unit's rows of a roll-up table (in `span`, or all), every grain named: the
    primary key of a table with grains starts with the grain, so the rows are found by the
    key, not by reading the table."""
    columns = model.__table__.c
    found = [columns.unit_id == unit_id]
    if "grain" in columns:
        found.insert(0, columns.grain.in_([grain.value for grain in RollupGrain]))
    if span is not None:
        found += [_when(model) >= span.first, _when(model) < span.end]
    return found


def _stored(session: Session, unit_id: int, span: Span | None) -> Contribution:
    """The unit's roll-up rows as stored (in `span`, or all), zero rows left out."""
    found = Contribution.empty()
    for model in ROLLUP_TABLES:
        keys, columns = _keys(model), model.__table__.c
        for row in session.execute(
            select(*(columns[name] for name in (*keys, *_sums(model)))).where(
                *_unit_rows(model, unit_id, span)
            )
        ):
            counts = [int(n) for n in row[len(keys) :]]
            if any(counts):
                found.rows[model][tuple(row[: len(keys)])] = counts
    return found


def rollup_zone(session: Session, unit_id: int) -> str | None:
    """The zone the unit's roll-up is kept in (None: the unit has none yet)."""
    return session.scalar(select(RollupUnit.zone).where(RollupUnit.unit_id == unit_id))


def rebuild_unit(
    session: Session,
    unit_id: int,
    *,
    zone: str,
    span: Span | None,
    now: datetime,
    tables: Sequence[RollupTable] = ROLLUP_TABLES,
) -> int:
    """Recompute the unit's roll-up (its months in `span`, or all of it) from the stored
    surveys, in `zone`; returns how many surveys it counts. The caller commits (one
    transaction per unit: readers see the old rows or the new ones, never a half).
    `tables`: the roll-up tables to recompute (migration 0014 back-fills the two it makes,
    the unit-month ones coming later).

    On PostgreSQL the rows are grouped in SQL (`_rebuild_in_sql`: a few statements however
    many surveys the unit has); on SQLite, which knows no time zones, each survey's local
    day is found in Python (`_contribution`), as the writers do."""
    rows = {model: _unit_rows(model, unit_id, span) for model in tables}
    for model, condition in rows.items():
        session.execute(delete(model).where(*condition))
    if session.get_bind().dialect.name == "postgresql":
        _rebuild_in_sql(session, _unit_condition(unit_id, span), ZoneInfo(zone), rows)
    else:
        found = _contribution(session, _unit_condition(unit_id, span), {unit_id: ZoneInfo(zone)})
        _apply(session, found, 1, tables)
    kept = dialect_insert(session, RollupUnit).values(unit_id=unit_id, zone=zone, built_at=now)
    session.execute(
        kept.on_conflict_do_update(index_elements=["unit_id"], set_={"zone": zone, "built_at": now})
    )
    counted = select(func.coalesce(func.sum(RollupSurveys.surveys), 0)).where(
        *_unit_rows(RollupSurveys, unit_id, span), RollupSurveys.grain == RollupGrain.DAY.value
    )
    return int(session.scalar(counted) or 0)


def _rebuild_in_sql(
    session: Session,
    condition: ColumnElement[bool],
    zone: ZoneInfo,
    emptied: Mapping[RollupTable, list[ColumnElement[bool]]],
) -> None:
    """PostgreSQL: put back the roll-up rows `emptied` selects (just deleted), from the
    surveys meeting `condition` (of one unit, kept in `zone`), in INSERT … SELECT … GROUP BY
    statements: the day rows from the surveys and their answers, the local day being
    `started_at AT TIME ZONE zone` (the day `_local_day` finds in Python), then the month
    rows from those day rows, then the unit-month rows from the month rows."""
    day = sql_cast(func.timezone(zone.key, SurveyResponse.started_at), Date).label("day")
    place = [
        SurveyResponse.unit_id,
        day,
        SurveyResponse.counter_id,
        SurveyResponse.channel,
        SurveyResponse.start_method,
        SurveyResponse.is_repeat,
    ]
    surveys = select(
        *place,
        SurveyResponse.status,
        SurveyResponse.quarantine,
        literal(1).label("surveys"),
    ).where(*_rolled_up(condition))
    tallies = (
        select(
            *place,
            Answer.factor,
            func.coalesce(Answer.criterion, 0).label("criterion"),
            func.coalesce(stats.ITEM_KEY, "").label("item_key"),
            literal(1).label("valid"),
            stats.SATISFIED.label("satisfied"),
            Answer.value.label("total"),
        )
        .join(Answer, Answer.response_id == SurveyResponse.id)
        .where(
            *_rolled_up(condition),
            SurveyResponse.quarantine.in_(stats.IN_INDEX),
            *stats.RATED_ANSWER,
        )
    )
    for model, rows in ((RollupSurveys, surveys), (RollupTally, tallies)):
        _add_sums(session, model, rows.subquery(), RollupGrain.DAY)
        month = sql_cast(func.date_trunc("month", model.day), Date)
        day_rows = _rows_as(model, _keys(model)[1:], {"day": month}).where(
            *emptied[model], model.grain == RollupGrain.DAY.value
        )
        _add_sums(session, model, day_rows.subquery(), RollupGrain.MONTH)
    for unit_model, source in _UNIT_MONTHS.items():
        if unit_model in emptied:
            month_rows = _rows_as(source, _keys(unit_model), {"month": _when(source)}).where(
                *emptied[source], source.__table__.c.grain == RollupGrain.MONTH.value
            )
            _add_sums(session, unit_model, month_rows.subquery(), None)


def _rows_as(model: RollupTable, keys: Sequence[str], instead: Mapping[str, Any]) -> Select[Any]:
    """SELECT keys…, sums… FROM model, a key named in `instead` being that expression under
    the key's name: the rows of one roll-up table read as another's."""
    columns = model.__table__.c
    return select(
        *(instead[name].label(name) if name in instead else columns[name] for name in keys),
        *(columns[name] for name in _sums(model)),
    )


def _add_sums(
    session: Session, model: RollupTable, found: Subquery, grain: RollupGrain | None
) -> None:
    """INSERT INTO model SELECT [grain,] keys…, sum(sums)… FROM (found) GROUP BY keys…,
    adding to rows already there. `found` names its columns as the model's; grouping the
    columns of a subquery, not expressions holding parameters (which PostgreSQL would not
    match)."""
    keys = [found.c[name] for name in _keys(model) if name != "grain"]
    grains = [] if grain is None else [literal(grain.value)]
    insert = dialect_insert(session, model).from_select(
        [*_keys(model), *_sums(model)],
        select(*grains, *keys, *(func.sum(found.c[name]) for name in _sums(model))).group_by(*keys),
    )
    session.execute(
        insert.on_conflict_do_update(index_elements=list(_keys(model)), set_=_adding(model, insert))
    )


@dataclass(frozen=True)
class Difference:
    """One roll-up row that differs from the raw rows: (table, key, stored, computed)."""

    table: str
    key: tuple[Any, ...]
    stored: tuple[int, ...]
    computed: tuple[int, ...]


def compare_unit(session: Session, unit_id: int, *, span: Span | None) -> list[Difference]:
    """The roll-up rows of the unit (in `span`, or all), of every table, that differ from
    what the stored surveys give, in the zone the roll-up is kept in (a unit with no
    roll-up: every row)."""
    zone = rollup_zone(session, unit_id)
    stored = _stored(session, unit_id, span)
    computed = (
        _contribution(session, _unit_condition(unit_id, span), {unit_id: ZoneInfo(zone)})
        if zone is not None
        else Contribution.empty()
    )
    if zone is None and session.scalar(
        select(func.count()).where(*_rolled_up(_unit_condition(unit_id, span)))
    ):
        return [Difference("rollup_units", (unit_id,), (0,), (1,))]
    differences = []
    for model in ROLLUP_TABLES:
        kept, made, zero = stored.rows[model], computed.rows[model], [0] * len(_sums(model))
        differences += [
            Difference(
                model.__tablename__, key, tuple(kept.get(key, zero)), tuple(made.get(key, zero))
            )
            for key in sorted(set(kept) | set(made))
            if kept.get(key, zero) != made.get(key, zero)
        ]
    return differences


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolledTally:
    """Summed `rollup_tallies` rows of a scope, by counter, channel, start method, repeat
    and criterion; `month` is set when asked per month."""

    counter_id: int
    channel: str
    start_method: str
    is_repeat: bool
    tally: stats.CriterionTally
    month: date | None = None


@dataclass(frozen=True)
class RolledSurveys:
    """Summed `rollup_surveys` rows of a scope (see RolledTally)."""

    counter_id: int
    channel: str
    start_method: str
    is_repeat: bool
    status: str
    quarantine: str
    surveys: int
    month: date | None = None


def rollup_covers(session: Session, scope: stats.Scope) -> bool:
    """Whether the roll-up can answer `scope`: every unit of its windows keeps its roll-up
    in the zone the window is in, and the window runs from a local midnight to another."""
    wanted: dict[int, str] = {}
    for window in scope.windows:
        if window.zone is None:
            return False
        zone = ZoneInfo(window.zone)
        for moment in (window.start, window.end):
            local = moment.astimezone(zone)
            if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
                return False
        for unit_id in window.unit_ids:
            wanted[unit_id] = window.zone
    if not wanted:
        return False
    kept = dict(
        session.execute(
            select(RollupUnit.unit_id, RollupUnit.zone).where(
                stats.ids_in(RollupUnit.unit_id, wanted)
            )
        ).all()
    )
    return all(kept.get(unit_id) == zone for unit_id, zone in wanted.items())


def _segments(first: date, end: date) -> list[tuple[RollupGrain, date, date]]:
    """[first, end) as whole local months (month rows) and the days around them (day
    rows): (grain, from, to) with `to` exclusive."""
    month_start = first if first.day == 1 else (_month(first) + timedelta(days=32)).replace(day=1)
    month_end = _month(end)
    if month_start >= month_end:
        return [(RollupGrain.DAY, first, end)]
    segments = [(RollupGrain.MONTH, month_start, month_end)]
    if first < month_start:
        segments.append((RollupGrain.DAY, first, month_start))
    if month_end < end:
        segments.append((RollupGrain.DAY, month_end, end))
    return segments


def _summed(column: Any) -> Any:
    """SUM of a count column as a bigint: PostgreSQL's SUM of a bigint is a numeric, which the
    driver turns into a Decimal per value (three per row of a province's month: the cast
    saved about a quarter of the read, docs/benchmarks.md, 7)."""
    return sql_cast(func.sum(column), BigInteger)


def _local_days(window: stats.Window) -> tuple[date, date]:
    """A window's local days [first, end) in its zone."""
    zone = ZoneInfo(window.zone or "UTC")
    return _local_day(window.start, zone), _local_day(window.end, zone)


def _in_scope(model: RollupTable, scope: stats.Scope) -> list[Any]:
    """The rows of `model` in `scope` (a unit-month table: only for a scope
    `_unit_months_answer` allows, whose segments are all months)."""
    columns = model.__table__.c
    parts = []
    for window in scope.windows:
        for grain, start, stop in _segments(*_local_days(window)):
            if "grain" in columns:
                grains = [columns.grain == grain.value]
            elif grain is RollupGrain.MONTH:
                grains = []
            else:  # a unit-month table has no day rows to read
                raise ValueError(f"{model.__tablename__} cannot answer days {start} to {stop}")
            parts.append(
                and_(
                    *grains,
                    stats.ids_in(columns.unit_id, window.unit_ids),
                    _when(model) >= start,
                    _when(model) < stop,
                )
            )
    conditions: list[Any] = [or_(*parts) if parts else False]
    if scope.counter_id is not None:
        conditions.append(columns.counter_id == scope.counter_id)
    if scope.channel is not None:
        conditions.append(columns.channel == scope.channel)
    if scope.verified_only:
        conditions.append(columns.start_method.in_(stats.VERIFIED_METHODS))
    return conditions


def _unit_months_answer(scope: stats.Scope) -> bool:
    """Whether the unit-month tables answer `scope`: whole local months only (no day rows
    around them), and no counter, channel or start method asked for."""
    return (
        scope.counter_id is None
        and scope.channel is None
        and not scope.verified_only
        and all(
            grain == RollupGrain.MONTH
            for window in scope.windows
            for grain, _, _ in _segments(*_local_days(window))
        )
    )


def _month_column(model: type[RollupSurveys] | type[RollupTally], by_month: bool) -> list[Any]:
    return [model.day] if by_month else []


def rolled_tallies(
    session: Session, scope: stats.Scope, *, by_month: bool = False
) -> list[RolledTally]:
    """The scope's answer tallies from the roll-up (repeats included: see `tallies_of`);
    `by_month`: per local month as well (the scope's windows then span whole months)."""
    month = _month_column(RollupTally, by_month)
    keys = [
        *month,
        RollupTally.counter_id,
        RollupTally.channel,
        RollupTally.start_method,
        RollupTally.is_repeat,
        RollupTally.factor,
        RollupTally.criterion,
        RollupTally.item_key,
    ]
    query = (
        select(
            *keys,
            _summed(RollupTally.valid),
            _summed(RollupTally.satisfied),
            _summed(RollupTally.total),
        )
        .where(*_in_scope(RollupTally, scope))
        .group_by(*keys)
    )
    found = []
    for row in session.execute(query):
        values = list(row)
        day = values.pop(0) if by_month else None
        counter_id, channel, method, repeat, factor, criterion, item_key, valid, sat, total = values
        if not valid:
            continue
        found.append(
            RolledTally(
                int(counter_id),
                str(channel),
                str(method),
                bool(repeat),
                stats.CriterionTally(
                    counter_id=int(counter_id),
                    factor=int(factor),
                    criterion=int(criterion) or None,
                    item_id=item_key or None,
                    valid=int(valid),
                    satisfied=int(sat or 0),
                    total=int(total or 0),
                ),
                _month(day) if day is not None else None,
            )
        )
    return found


def rolled_surveys(
    session: Session, scope: stats.Scope, *, by_month: bool = False
) -> list[RolledSurveys]:
    """The scope's survey counts from the roll-up (see `rolled_tallies`)."""
    month = _month_column(RollupSurveys, by_month)
    keys = [
        *month,
        RollupSurveys.counter_id,
        RollupSurveys.channel,
        RollupSurveys.start_method,
        RollupSurveys.is_repeat,
        RollupSurveys.status,
        RollupSurveys.quarantine,
    ]
    query = (
        select(*keys, _summed(RollupSurveys.surveys))
        .where(*_in_scope(RollupSurveys, scope))
        .group_by(*keys)
    )
    found = []
    for row in session.execute(query):
        values = list(row)
        day = values.pop(0) if by_month else None
        counter_id, channel, method, repeat, status, quarantine, n = values
        if n:
            found.append(
                RolledSurveys(
                    int(counter_id),
                    str(channel),
                    str(method),
                    bool(repeat),
                    str(status),
                    str(quarantine),
                    int(n),
                    _month(day) if day is not None else None,
                )
            )
    return found


def unit_tallies(session: Session, scope: stats.Scope) -> dict[int, list[stats.CriterionTally]]:
    """The scope's answer tallies summed per unit and criterion in SQL, by unit id (what
    `tallies_of` gives summed over each unit's counters; `counter_id` is 0 in them): the
    province view ranks units, not counters, and reads a few rows per unit: from
    `rollup_unit_tallies` when the scope is whole months (one row per unit, month and
    criterion), else from the month and day rows of `rollup_tallies`."""
    model = RollupUnitTally if _unit_months_answer(scope) else RollupTally
    keys: list[Any] = [model.unit_id, model.factor, model.criterion, model.item_key]
    repeats = [] if scope.include_repeats else [model.is_repeat.is_(False)]
    query = (
        select(*keys, _summed(model.valid), _summed(model.satisfied), _summed(model.total))
        .where(*_in_scope(model, scope), *repeats)
        .group_by(*keys)
    )
    found: dict[int, list[stats.CriterionTally]] = {}
    for row in session.execute(query):
        unit_id, factor, criterion, item_key, valid, satisfied, total = list(row)
        if valid:
            found.setdefault(int(unit_id), []).append(
                stats.CriterionTally(
                    counter_id=0,
                    factor=int(factor),
                    criterion=int(criterion) or None,
                    item_id=item_key or None,
                    valid=int(valid),
                    satisfied=int(satisfied or 0),
                    total=int(total or 0),
                )
            )
    return found


def unit_counts(session: Session, scope: stats.Scope) -> stats.ResponseCounts:
    """What stats.response_counts gives for `scope`, summed in SQL per unit: `by_counter`
    holds each unit's responses by unit id (the province view's column). Read as
    `unit_tallies` reads (`rollup_unit_surveys` for whole months)."""
    model = RollupUnitSurveys if _unit_months_answer(scope) else RollupSurveys
    keys: list[Any] = [model.unit_id, model.is_repeat, model.status, model.quarantine]
    counts = _Counting(scope.include_repeats)
    for row in session.execute(
        select(*keys, _summed(model.surveys)).where(*_in_scope(model, scope)).group_by(*keys)
    ):
        unit_id, is_repeat, status, quarantine, n = list(row)
        counts.add(int(unit_id), str(status), str(quarantine), bool(is_repeat), int(n or 0))
    return counts.result()


class _Counting:
    """stats.response_counts's rule on summed roll-up rows: held ones apart, repeats counted
    and left out of the index unless included."""

    def __init__(self, include_repeats: bool) -> None:
        self.include_repeats = include_repeats
        self.counts = {"completed": 0, "partial": 0, "repeats": 0, "held": 0}
        self.by_key: dict[int, int] = {}

    def add(self, key: int, status: str, quarantine: str, is_repeat: bool, n: int) -> None:
        if not n:
            return
        if quarantine == QuarantineState.HELD:
            self.counts["held"] += n
            return
        if is_repeat:
            self.counts["repeats"] += n
            if not self.include_repeats:
                return
        self.counts[status] += n
        self.by_key[key] = self.by_key.get(key, 0) + n

    def result(self) -> stats.ResponseCounts:
        return stats.ResponseCounts(**self.counts, by_counter=self.by_key)


def _kept(scope: stats.Scope, *, channel: str, start_method: str, is_repeat: bool) -> bool:
    """Whether a roll-up row of this kind is in `scope`'s figures (stats._response_filter's
    rule on the rolled-up columns)."""
    if scope.channel is not None and channel != scope.channel:
        return False
    if scope.verified_only and start_method not in stats.VERIFIED_METHODS:
        return False
    return scope.include_repeats or not is_repeat


def tallies_of(rows: Iterable[RolledTally], scope: stats.Scope) -> list[stats.CriterionTally]:
    """What stats.criterion_tallies gives for `scope` (one tally per counter and criterion),
    from rows read for a wider one."""
    sums: dict[tuple[int, int, int | None, str | None], list[int]] = {}
    for row in rows:
        if not _kept(
            scope, channel=row.channel, start_method=row.start_method, is_repeat=row.is_repeat
        ):
            continue
        t = row.tally
        found = sums.setdefault((t.counter_id, t.factor, t.criterion, t.item_id), [0, 0, 0])
        found[0] += t.valid
        found[1] += t.satisfied
        found[2] += t.total
    return [
        stats.CriterionTally(counter_id, factor, criterion, item_id, valid, satisfied, total)
        for (counter_id, factor, criterion, item_id), (valid, satisfied, total) in sums.items()
    ]


def counts_of(rows: Iterable[RolledSurveys], scope: stats.Scope) -> stats.ResponseCounts:
    """What stats.response_counts gives for `scope`, from rows read for a wider one."""
    counts = _Counting(scope.include_repeats)
    for row in rows:
        if (scope.channel is not None and row.channel != scope.channel) or (
            scope.verified_only and row.start_method not in stats.VERIFIED_METHODS
        ):
            continue
        counts.add(row.counter_id, row.status, row.quarantine, row.is_repeat, row.surveys)
    return counts.result()


def channels_of(rows: Iterable[RolledSurveys], scope: stats.Scope) -> list[str]:
    """What stats.channels_used gives for `scope`."""
    return sorted(
        {
            row.channel
            for row in rows
            if row.quarantine != QuarantineState.HELD
            and _kept(
                scope, channel=row.channel, start_method=row.start_method, is_repeat=row.is_repeat
            )
        }
    )


def rollup_zones(session: Session) -> dict[int, str | None]:
    """Every unit's roll-up zone; None for a unit without a roll-up that has surveys that
    would be in one (its reports read the raw rows). Units without either are left out."""
    kept = dict(session.execute(select(RollupUnit.unit_id, RollupUnit.zone)).all())
    found: dict[int, str | None] = {int(u): str(z) for u, z in kept.items()}
    for unit_id in session.scalars(select(Unit.id).where(Unit.id.not_in(list(kept)))):
        rolled = select(SurveyResponse.id).where(*_rolled_up(SurveyResponse.unit_id == unit_id))
        if session.scalar(rolled.limit(1)) is not None:
            found[int(unit_id)] = None
    return found


def rollup_row_counts(session: Session) -> dict[str, int]:
    """How many rows each roll-up table holds, by table name."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in ROLLUP_TABLES
    }
