"""Reading the roll-up: whether it answers a report's scope (`rollup_covers`), and the scope's
tallies and counts from its day, month and unit-month rows, with stats.py's rules applied to
the summed rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from storage import stats
from storage.models import (
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
from storage.repositories.rollup.rows import (
    ROLLUP_TABLES,
    RollupTable,
    _local_day,
    _month,
    _rolled_up,
    _when,
)


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
