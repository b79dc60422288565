"""Rebuilding the roll-up from the raw rows (`rebuild_unit`, `sipas-bot rollup rebuild`) and
checking it against them (`compare_unit`, `sipas-bot rollup check`), a unit's whole local
months at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Subquery,
    and_,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from storage import stats
from storage.models import (
    Answer,
    RollupGrain,
    RollupSurveys,
    RollupTally,
    RollupUnit,
    SurveyResponse,
)
from storage.repositories._dialect import dialect_insert
from storage.repositories.rollup.rows import (
    _UNIT_MONTHS,
    ROLLUP_TABLES,
    Contribution,
    RollupTable,
    _adding,
    _keys,
    _month,
    _rolled_up,
    _sums,
    _when,
)
from storage.repositories.rollup.write import _apply, _contribution


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
