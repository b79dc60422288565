"""Every survey with its answers, streamed for the export. Each function takes a session; none
commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from storage.models import (
    Answer,
    Counter,
    Officer,
    SurveyResponse,
    Unit,
)

# --- export --------------------------------------------------------------------------------


def iter_export_surveys(
    session: Session,
    *,
    statuses: Sequence[str] | None = ("completed", "partial"),
    unit_code: str | None = None,
    counter_code: str | None = None,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    batch: int = 1000,
) -> Iterator[tuple[Any, dict[str, tuple[int | None, str | None]]]]:
    """Each response (a row: id, token, unit_code, counter_code, questionnaire, status, the
    counting decision, start method, review state, times, channel, officer's code) with its
    answers by item, ordered by response and streamed in batches; only those in `statuses`
    (None: every survey), and optionally only one unit's, one counter's, or those started in
    [started_from, started_before).

    Two streams read side by side and merged by response id, not one join: a join sends
    and decodes every response's columns once per answer (5–6 times per survey).
    """
    filters: list[ColumnElement[bool]] = []
    if statuses is not None:
        filters.append(SurveyResponse.status.in_(list(statuses)))
    if unit_code is not None:
        filters.append(Unit.code == unit_code.upper())
    if counter_code is not None:
        filters.append(Counter.code == counter_code.upper())
    if started_from is not None:
        filters.append(SurveyResponse.started_at >= started_from)
    if started_before is not None:
        filters.append(SurveyResponse.started_at < started_before)
    chosen = (
        select(SurveyResponse.id)
        .join(Unit, Unit.id == SurveyResponse.unit_id)
        .join(Counter, Counter.id == SurveyResponse.counter_id)
        .where(*filters)
    )
    responses = session.execute(
        select(
            SurveyResponse.id,
            SurveyResponse.token,
            Unit.code.label("unit_code"),
            Counter.code.label("counter_code"),
            SurveyResponse.questionnaire_id,
            SurveyResponse.questionnaire_version,
            SurveyResponse.status,
            SurveyResponse.is_repeat,
            SurveyResponse.counted,
            SurveyResponse.start_method,
            SurveyResponse.quarantine,
            SurveyResponse.quarantine_rule,
            SurveyResponse.started_at,
            SurveyResponse.completed_at,
            SurveyResponse.channel,
            Officer.code.label("officer_code"),
        )
        .join(Unit, Unit.id == SurveyResponse.unit_id)
        .join(Counter, Counter.id == SurveyResponse.counter_id)
        .outerjoin(Officer, Officer.id == SurveyResponse.officer_id)
        .where(*filters)
        .order_by(SurveyResponse.id)
        .execution_options(yield_per=batch)
    )
    answers = iter(
        session.execute(
            select(Answer.response_id, Answer.item_id, Answer.value, Answer.text)
            .where(Answer.response_id.in_(chosen))
            .order_by(Answer.response_id)
            .execution_options(yield_per=batch * 8)
        )
    )
    answer = next(answers, None)
    for response in responses:
        by_item: dict[str, tuple[int | None, str | None]] = {}
        while answer is not None and answer.response_id <= response.id:
            if answer.response_id == response.id:
                by_item[answer.item_id] = (answer.value, answer.text)
            answer = next(answers, None)
        yield response, by_item


def questionnaire_versions_used(session: Session) -> list[tuple[str, str]]:
    rows = session.execute(
        select(SurveyResponse.questionnaire_id, SurveyResponse.questionnaire_version)
        .group_by(SurveyResponse.questionnaire_id, SurveyResponse.questionnaire_version)
        .order_by(func.min(SurveyResponse.id))
    ).all()
    return [(qid, version) for qid, version in rows]
