"""Aggregate queries behind the SIPAS index: GROUP BY in the database, never answer rows in
Python, so a report costs the same whether a period holds ten surveys or a million.

Which responses count (`Scope`): completed and partial ones whose `counted` decision is set
(taken once, when the survey first met the counting rule: survey_flow/counting.py) and that
are not held for review or rejected (`quarantine`), with the answers they hold;
repeat-flagged ones (qualified, not counted) only when asked; each by its `started_at`.
A survey that never qualified is in no figure at all. A scope may hold several windows
because units in different time zones see the same local dates at different instants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from storage.models import QUARANTINE_IN_INDEX, Answer, Counter, QuarantineState, SurveyResponse
from survey_flow.states import PRESENCE_PROOF, SurveyStatus

COUNTED_STATUSES = ("completed", "partial")
IN_INDEX = tuple(state.value for state in QUARANTINE_IN_INDEX)
# The start methods that prove presence: the "verified presence only" figure keeps only them.
VERIFIED_METHODS = tuple(sorted(method.value for method in PRESENCE_PROOF))

# One answer as the index counts it: rated (1–5) on an item that names a factor; 4–5 is
# "satisfied"; an item with no criterion (the short form) stands as its factor's criterion,
# keyed by its item id. The roll-up (storage/repositories/rollup/) counts the same way.
RATED_ANSWER = (Answer.factor.is_not(None), Answer.value.between(1, 5))
SATISFIED = case((Answer.value >= 4, 1), else_=0)
ITEM_KEY = case((Answer.criterion.is_(None), Answer.item_id), else_=None)


@dataclass(frozen=True)
class Window:
    """The responses of these units started in [start, end)."""

    unit_ids: Sequence[int]
    start: datetime
    end: datetime
    # The IANA zone whose local midnights `start` and `end` are (None: not said); the
    # roll-up, kept in local days, can answer only a window that says its zone.
    zone: str | None = None


@dataclass(frozen=True)
class Scope:
    windows: Sequence[Window]
    counter_id: int | None = None
    include_repeats: bool = False
    # Only surveys started in a way that proves presence (PRESENCE_PROOF), for the
    # "verified presence only" figure beside the whole one.
    verified_only: bool = False
    # Only the surveys answered on this channel (storage.models.Channel), for the split.
    channel: str | None = None


@dataclass(frozen=True)
class CriterionTally:
    """Rated answers (1–5) of one criterion at one counter.

    `item_id` is set only when the item names a factor but no criterion (the short form):
    the item then stands as its factor's criterion.
    """

    counter_id: int
    factor: int
    criterion: int | None
    item_id: str | None
    valid: int
    satisfied: int
    total: int


@dataclass(frozen=True)
class ResponseCounts:
    """`completed` and `partial` are the responses the index counts (`by_counter`: their sum
    per counter id); `repeats` are the repeat-flagged ones of the period, counted whether or
    not the index includes them; `held` the counted ones held for review (not in the index
    until released)."""

    completed: int = 0
    partial: int = 0
    repeats: int = 0
    held: int = 0
    by_counter: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CommentRow:
    at: datetime
    counter_code: str
    text: str


def ids_in(column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN (ids)` with the ids written into the statement as numbers, not one bind
    parameter each: a province's thousand unit ids as parameters cost the driver (psycopg
    splits the statement at every placeholder, uncached for long statements) more time than
    PostgreSQL took to answer (docs/benchmarks.md, section 7)."""
    values = [int(i) for i in ids]
    return column.in_(bindparam(None, values, type_=Integer, expanding=True, literal_execute=True))


def _in_windows(windows: Sequence[Window]) -> ColumnElement[bool]:
    parts = [
        and_(
            ids_in(SurveyResponse.unit_id, window.unit_ids),
            SurveyResponse.started_at >= window.start,
            SurveyResponse.started_at < window.end,
        )
        for window in windows
        if window.unit_ids
    ]
    if not parts:
        return false()
    return parts[0] if len(parts) == 1 else or_(*parts)


def _response_filter(
    scope: Scope, *, repeats: bool | None = None, held: bool = False
) -> list[ColumnElement[bool]]:
    """The scope's responses in the index; with `held`, those held for review as well."""
    conditions = [_in_windows(scope.windows), SurveyResponse.status.in_(COUNTED_STATUSES)]
    states = (*IN_INDEX, QuarantineState.HELD.value) if held else IN_INDEX
    conditions.append(SurveyResponse.quarantine.in_(states))
    if scope.counter_id is not None:
        conditions.append(SurveyResponse.counter_id == scope.counter_id)
    if scope.verified_only:
        conditions.append(SurveyResponse.start_method.in_(VERIFIED_METHODS))
    if scope.channel is not None:
        conditions.append(SurveyResponse.channel == scope.channel)
    include = scope.include_repeats if repeats is None else repeats
    if include:
        conditions.append(SurveyResponse.qualified_at.is_not(None))
    else:
        conditions.append(SurveyResponse.counted.is_(True))
    return conditions


def response_id_range(session: Session, scope: Scope) -> tuple[int, int] | None:
    """The smallest and largest id of the scope's responses (None when there is none).

    Ids grow with time, so a period's responses, and their answers, lie in a narrow id range:
    given to the answer queries, it lets PostgreSQL read that range of the answers' index
    instead of every answer ever stored (a month of a province's report is 1/12 of a year's
    answers; without the range the planner scans them all).
    """
    # count() is there to keep PostgreSQL from answering min/max by walking the primary key
    # from either end (it would skip every response before the period, filtering row by row).
    low, high, _count = session.execute(
        select(func.min(SurveyResponse.id), func.max(SurveyResponse.id), func.count()).where(
            *_response_filter(scope)
        )
    ).one()
    return None if low is None else (int(low), int(high))


def criterion_tallies_query(
    scope: Scope,
    *,
    response_ids: tuple[int, int] | None = None,
    by: ColumnElement[Any] | None = None,
) -> Select[Any]:
    """The statement behind `criterion_tallies` (kept apart so a benchmark can EXPLAIN it);
    `response_ids` as `response_id_range` gives it; `by`: the column the tallies are
    grouped by instead of the counter (the officer, for `officer_tallies`)."""
    group = SurveyResponse.counter_id if by is None else by
    item_key = ITEM_KEY
    in_range = () if response_ids is None else (Answer.response_id.between(*response_ids),)
    grouped = () if by is None else (by.is_not(None),)
    return (
        select(
            group,
            Answer.factor,
            Answer.criterion,
            item_key,
            func.count(),
            func.sum(SATISFIED),
            func.sum(Answer.value),
        )
        .join(SurveyResponse, SurveyResponse.id == Answer.response_id)
        .where(
            *_response_filter(scope),
            *RATED_ANSWER,
            *in_range,
            *grouped,
        )
        .group_by(group, Answer.factor, Answer.criterion, item_key)
    )


def criterion_tallies(
    session: Session, scope: Scope, *, response_ids: tuple[int, int] | None = None
) -> list[CriterionTally]:
    """Per counter and criterion: valid answers, answers 4–5, and the sum of values.

    "Not applicable" (0), skipped items (NULL) and items outside the index (no factor) are
    left out here, so they never reach a denominator. `response_ids`: the scope's
    `response_id_range` when the caller has it already.
    """
    response_ids = response_ids or response_id_range(session, scope)
    if response_ids is None:
        return []
    return [
        _tally(int(counter_id), rest)
        for counter_id, *rest in session.execute(
            criterion_tallies_query(scope, response_ids=response_ids)
        )
    ]


def _tally(counter_id: int, row: Sequence[Any]) -> CriterionTally:
    """A tally from a `criterion_tallies_query` row without its first (grouping) column."""
    factor, criterion, item_id, valid, satisfied, total = row
    return CriterionTally(
        counter_id=counter_id,
        factor=int(factor),
        criterion=None if criterion is None else int(criterion),
        item_id=item_id,
        valid=int(valid),
        satisfied=int(satisfied or 0),
        total=int(total or 0),
    )


# What the split figures group by: the channel, the officer recorded on the survey.
SPLITS: dict[str, Any] = {
    "channel": SurveyResponse.channel,
    "officer": SurveyResponse.officer_id,
}


def split_tallies(
    session: Session,
    scope: Scope,
    split: str,
    *,
    response_ids: tuple[int, int] | None = None,
) -> dict[Any, list[CriterionTally]]:
    """`criterion_tallies` per value of a `SPLITS` column (a channel, an officer id), in one
    grouped statement; surveys where it is NULL (no officer) are left out. Each tally's
    `counter_id` is 0: a channel's or an officer's tallies mix counters."""
    response_ids = response_ids or response_id_range(session, scope)
    if response_ids is None:
        return {}
    found: dict[Any, list[CriterionTally]] = {}
    for key, *rest in session.execute(
        criterion_tallies_query(scope, response_ids=response_ids, by=SPLITS[split])
    ):
        found.setdefault(key, []).append(_tally(0, rest))
    return found


def split_response_counts(session: Session, scope: Scope, split: str) -> dict[Any, int]:
    """The scope's responses in the index per value of a `SPLITS` column, in one grouped
    statement (NULL left out). It reads the responses the index reads: by unit and start."""
    column = SPLITS[split]
    query = (
        select(column, func.count())
        .where(*_response_filter(scope), column.is_not(None))
        .group_by(column)
    )
    return {key: int(count) for key, count in session.execute(query)}


def response_counts(session: Session, scope: Scope) -> ResponseCounts:
    """How many responses of the scope are completed, partial, flagged as repeats, and held
    for review."""
    query = (
        select(
            SurveyResponse.counter_id,
            SurveyResponse.status,
            SurveyResponse.is_repeat,
            SurveyResponse.quarantine,
            func.count(),
        )
        .where(*_response_filter(scope, repeats=True, held=True))
        .group_by(
            SurveyResponse.counter_id,
            SurveyResponse.status,
            SurveyResponse.is_repeat,
            SurveyResponse.quarantine,
        )
    )
    counts = {"completed": 0, "partial": 0, "repeats": 0, "held": 0}
    by_counter: dict[int, int] = {}
    for counter_id, status, is_repeat, quarantine, count in session.execute(query):
        if quarantine == QuarantineState.HELD:
            counts["held"] += int(count)
            continue
        if is_repeat:
            counts["repeats"] += int(count)
            if not scope.include_repeats:
                continue
        counts[status] += int(count)
        by_counter[int(counter_id)] = by_counter.get(int(counter_id), 0) + int(count)
    return ResponseCounts(**counts, by_counter=by_counter)


def comments(
    session: Session,
    scope: Scope,
    *,
    limit: int | None = 20,
    response_ids: tuple[int, int] | None = None,
) -> list[CommentRow]:
    """Free-text answers of the scope's responses, newest first (`response_ids` as in
    `criterion_tallies`)."""
    response_ids = response_ids or response_id_range(session, scope)
    if response_ids is None:
        return []
    query: Any = (
        select(Answer.answered_at, Counter.code, Answer.text)
        .join(SurveyResponse, SurveyResponse.id == Answer.response_id)
        .join(Counter, Counter.id == SurveyResponse.counter_id)
        .where(
            *_response_filter(scope),
            Answer.text.is_not(None),
            Answer.text != "",
            Answer.response_id.between(*response_ids),
        )
        .order_by(Answer.answered_at.desc(), Answer.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        CommentRow(at=at, counter_code=code, text=text) for at, code, text in session.execute(query)
    ]


def status_counts(session: Session, scope: Scope) -> dict[SurveyStatus, int]:
    """Every survey of the scope's windows by status (each SurveyStatus, zeros included),
    repeats included: what happened at the counters, not what the index counts."""
    conditions = [_in_windows(scope.windows)]
    if scope.counter_id is not None:
        conditions.append(SurveyResponse.counter_id == scope.counter_id)
    query = (
        select(SurveyResponse.status, func.count())
        .where(*conditions)
        .group_by(SurveyResponse.status)
    )
    found = {str(status): int(count) for status, count in session.execute(query)}
    return {status: found.get(status, 0) for status in SurveyStatus}


@dataclass(frozen=True)
class StartCounts:
    """Every survey of a scope's windows by how it was started (StartMethod's values) and
    status, repeats included, and per start method the counted ones held for review (out of
    the index until released)."""

    by_method: Mapping[str, Mapping[SurveyStatus, int]]
    held: Mapping[str, int]

    def statuses(self) -> dict[SurveyStatus, int]:
        """The surveys by status, whatever their start (what `status_counts` gives)."""
        return {
            status: sum(counts.get(status, 0) for counts in self.by_method.values())
            for status in SurveyStatus
        }


def start_counts(session: Session, scope: Scope) -> StartCounts:
    """The scope's surveys by start method and status (one GROUP BY over the windows'
    surveys, which the (unit_id, started_at) index finds)."""
    conditions = [_in_windows(scope.windows)]
    if scope.counter_id is not None:
        conditions.append(SurveyResponse.counter_id == scope.counter_id)
    held = and_(
        SurveyResponse.quarantine == QuarantineState.HELD.value,
        SurveyResponse.counted.is_(True),
    )
    is_held = case((held, 1), else_=0)
    by_method: dict[str, dict[SurveyStatus, int]] = {}
    held_by_method: dict[str, int] = {}
    for method, status, held_flag, count in session.execute(
        select(SurveyResponse.start_method, SurveyResponse.status, is_held, func.count())
        .where(*conditions)
        .group_by(SurveyResponse.start_method, SurveyResponse.status, is_held)
    ):
        counts = by_method.setdefault(str(method), dict.fromkeys(SurveyStatus, 0))
        counts[SurveyStatus(status)] += int(count)
        if held_flag:
            held_by_method[str(method)] = held_by_method.get(str(method), 0) + int(count)
    return StartCounts(by_method, held_by_method)


@dataclass(frozen=True)
class FeedbackRow:
    """One counted survey as the console lists it: its factor scores (the lowest rating
    given to each factor), its free-text comments, and whether it holds a low rating."""

    response_id: int
    started_at: datetime
    status: str
    counter_code: str
    counter_name: str
    scores: Mapping[int, int]
    comment: str | None
    low: bool


def feedback(
    session: Session,
    scope: Scope,
    *,
    low_values: frozenset[int],
    low_only: bool = False,
    with_comment: bool = False,
    search: str | None = None,
    limit: int = 50,
) -> tuple[list[FeedbackRow], int]:
    """The scope's counted surveys, newest first: those with a rating in `low_values`
    (`low_only`), with a comment (`with_comment`), whose comment holds `search`; at most
    `limit` of them, and how many there are in all."""
    conditions = _response_filter(scope)
    low_answer = (
        select(Answer.id)
        .where(
            Answer.response_id == SurveyResponse.id,
            Answer.factor.is_not(None),
            Answer.value.in_(sorted(low_values)),
        )
        .exists()
    )
    if low_only:
        conditions.append(low_answer)
    text_answer = [Answer.response_id == SurveyResponse.id, Answer.text.is_not(None)]
    if search:
        pattern = (
            "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        text_answer.append(func.lower(Answer.text).like(pattern, escape="\\"))
    if with_comment or search:
        conditions.append(select(Answer.id).where(*text_answer, Answer.text != "").exists())
    total = session.scalar(select(func.count()).select_from(SurveyResponse).where(*conditions))
    rows = session.execute(
        select(
            SurveyResponse.id,
            SurveyResponse.started_at,
            SurveyResponse.status,
            Counter.code,
            Counter.name,
        )
        .join(Counter, Counter.id == SurveyResponse.counter_id)
        .where(*conditions)
        .order_by(SurveyResponse.started_at.desc(), SurveyResponse.id.desc())
        .limit(limit)
    ).all()
    ids = [int(row[0]) for row in rows]
    scores: dict[int, dict[int, int]] = {i: {} for i in ids}
    comments: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for response_id, factor, value, text in session.execute(
            select(Answer.response_id, Answer.factor, Answer.value, Answer.text)
            .where(Answer.response_id.in_(ids))
            .order_by(Answer.id)
        ):
            if factor is not None and value is not None and 1 <= value <= 5:
                given = scores[response_id]
                given[factor] = min(value, given.get(factor, value))
            elif text:
                comments[response_id].append(text)
    return [
        FeedbackRow(
            response_id=int(response_id),
            started_at=started_at,
            status=str(status),
            counter_code=code,
            counter_name=name,
            scores=scores[int(response_id)],
            comment=" / ".join(comments[int(response_id)]) or None,
            low=any(v in low_values for v in scores[int(response_id)].values()),
        )
        for response_id, started_at, status, code, name in rows
    ], int(total or 0)
