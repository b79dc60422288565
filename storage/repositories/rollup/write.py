"""Keeping the roll-up up to date: `take_out` a survey's contribution before a change to it,
`put_in` after, each an INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n on sorted keys
(see the package's docstring)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    select,
)
from sqlalchemy.orm import Session

from storage import stats
from storage.models import (
    Answer,
    RollupSurveys,
    RollupTally,
    RollupUnit,
    SurveyResponse,
    Unit,
)
from storage.repositories._dialect import dialect_insert
from storage.repositories.rollup.rows import (
    ROLLUP_TABLES,
    Contribution,
    RollupTable,
    _adding,
    _grains,
    _keys,
    _local_day,
    _rolled_up,
    _sums,
)

_CHUNK = 2000  # rows per INSERT


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
