"""Surveys held for review: what the quarantine rules count, the hold itself, the operator's
list, release and reject (docs/integrity.md). Each function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from storage.models import (
    Counter,
    QuarantineRule,
    QuarantineState,
    SurveyResponse,
    Unit,
)
from storage.repositories.rollup import put_in, take_out


def lock_counter(session: Session, counter_id: int) -> None:
    """Take the counter's row lock until the transaction ends, so that the surveys of one
    counter are weighed against each other one at a time (a burst counted by two
    transactions at once would each see one survey fewer). SQLite writes one at a time
    anyway and ignores FOR UPDATE.

    FOR NO KEY UPDATE (`key_share=True`), not FOR UPDATE: the transaction has already written
    rows that refer to the counter (the survey, its answers), which take FOR KEY SHARE on the
    counter's row; FOR UPDATE conflicts with that, so two surveys of one counter decided at
    once each waited for the other (PostgreSQL: deadlock detected, the webhook a 500; seen
    by bench/province_day.py). FOR NO KEY UPDATE leaves key-share locks alone and still
    makes the lockers of one counter take turns."""
    session.execute(
        select(Counter.id).where(Counter.id == counter_id).with_for_update(key_share=True)
    )


def first_started(session: Session, respondent_hash: str) -> datetime | None:
    """When this account's first survey (any counter, any status) was started: its first
    contact with the survey, kept as long as its surveys are."""
    return session.scalar(
        select(func.min(SurveyResponse.started_at)).where(
            SurveyResponse.respondent_hash == respondent_hash
        )
    )


def new_account_surveys_since(
    session: Session, *, counter_id: int, since: datetime, new_since: datetime, other_than: int
) -> int:
    """Counted surveys of this counter that qualified since `since` (held, released or
    rejected ones too: they are part of the pattern) from accounts whose first survey was
    started on or after `new_since`; `other_than` (the survey being decided) left out."""
    first = aliased(SurveyResponse)
    first_started_at = (
        select(func.min(first.started_at))
        .where(first.respondent_hash == SurveyResponse.respondent_hash)
        .scalar_subquery()
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(
                SurveyResponse.counter_id == counter_id,
                SurveyResponse.counted.is_(True),
                SurveyResponse.qualified_at >= since,
                SurveyResponse.id != other_than,
                first_started_at >= new_since,
            )
        )
        or 0
    )


def counted_of_account_since(
    session: Session, *, respondent_hash: str, since: datetime, other_than: int
) -> int:
    """Counted surveys of this account (any counter, any review state) that qualified since
    `since`, `other_than` left out."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(
                SurveyResponse.respondent_hash == respondent_hash,
                SurveyResponse.counted.is_(True),
                SurveyResponse.qualified_at >= since,
                SurveyResponse.id != other_than,
            )
        )
        or 0
    )


def hold_survey(session: Session, response_id: int, rule: QuarantineRule) -> None:
    """Hold a survey for review: out of the index until an operator releases it."""
    session.execute(
        update(SurveyResponse)
        .where(SurveyResponse.id == response_id)
        .values(quarantine=QuarantineState.HELD.value, quarantine_rule=rule.value)
    )


@dataclass(frozen=True)
class QuarantinedSurvey:
    """A survey that a rule held, as `sipas-bot integrity list` shows it."""

    id: int
    token: str
    unit_code: str
    counter_code: str
    status: str
    start_method: str
    rule: str
    state: str
    started_at: datetime
    qualified_at: datetime | None
    reviewed_at: datetime | None


def quarantined_surveys(
    session: Session,
    *,
    states: Sequence[QuarantineState] = (QuarantineState.HELD,),
    unit_code: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[QuarantinedSurvey]:
    """Surveys a rule held that are now in one of `states` (optionally one unit's, or
    these ids), oldest first."""
    query = (
        select(
            SurveyResponse.id,
            SurveyResponse.token,
            Unit.code.label("unit_code"),
            Counter.code.label("counter_code"),
            SurveyResponse.status,
            SurveyResponse.start_method,
            SurveyResponse.quarantine_rule.label("rule"),
            SurveyResponse.quarantine.label("state"),
            SurveyResponse.started_at,
            SurveyResponse.qualified_at,
            SurveyResponse.reviewed_at,
        )
        .join(Unit, Unit.id == SurveyResponse.unit_id)
        .join(Counter, Counter.id == SurveyResponse.counter_id)
        .where(
            SurveyResponse.quarantine.in_([state.value for state in states]),
            SurveyResponse.quarantine_rule.is_not(None),
        )
        .order_by(SurveyResponse.id)
    )
    if unit_code is not None:
        query = query.where(Unit.code == unit_code.upper())
    if ids is not None:
        query = query.where(SurveyResponse.id.in_(list(ids)))
    return [QuarantinedSurvey(**row._asdict()) for row in session.execute(query)]


def review_surveys(
    session: Session, ids: Sequence[int], state: QuarantineState, *, now: datetime
) -> None:
    """Set the review state of surveys a rule held (the caller checked they are); a
    released survey enters the roll-up of counts, a rejected one leaves it."""
    take_out(session, ids)
    session.execute(
        update(SurveyResponse)
        .where(SurveyResponse.id.in_(list(ids)), SurveyResponse.quarantine_rule.is_not(None))
        .values(quarantine=state.value, reviewed_at=now)
    )
    put_in(session, ids, default_zone=None)
