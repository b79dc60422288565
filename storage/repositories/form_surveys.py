"""Surveys answered on a form (the counter's tablet, the web link): the open survey a tablet
may reuse, the surveys a tablet opened in the last hour, and the survey a submission names,
read under a row lock. Each function takes a session; none commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from storage.models import Answer, SurveyResponse
from survey_flow.states import SurveyStatus


@dataclass(frozen=True)
class FormSurveyRow:
    """What a submission needs of the survey it names."""

    id: int
    token: str
    channel: str
    device_id: int | None
    respondent_hash: str
    unit_id: int
    counter_id: int
    questionnaire_id: str
    questionnaire_version: str
    language: str
    status: str
    start_method: str
    started_at: datetime
    has_answers: bool


def _unanswered() -> object:
    return ~exists().where(Answer.response_id == SurveyResponse.id)


def open_device_survey(session: Session, device_id: int, *, since: datetime) -> str | None:
    """The token of the tablet's open survey with no answer yet, opened since `since`: a tap
    while one is open hands it out again rather than opening another."""
    return session.scalar(
        select(SurveyResponse.token)
        .where(
            SurveyResponse.device_id == device_id,
            SurveyResponse.status == SurveyStatus.ACTIVE,
            SurveyResponse.started_at >= since,
            _unanswered(),  # type: ignore[arg-type]
        )
        .order_by(SurveyResponse.id.desc())
        .limit(1)
    )


def device_surveys_since(session: Session, device_id: int, *, since: datetime) -> int:
    """How many surveys the tablet opened since `since` (its per-hour limit)."""
    return int(
        session.scalar(
            select(func.count()).where(
                SurveyResponse.device_id == device_id, SurveyResponse.started_at >= since
            )
        )
        or 0
    )


def lock_form_survey(session: Session, token: str) -> FormSurveyRow | None:
    """The survey of this token, locked until the transaction ends, so that two deliveries
    of the same answers (a tablet retrying after a lost response) are stored once."""
    row = session.execute(
        select(
            SurveyResponse.id,
            SurveyResponse.token,
            SurveyResponse.channel,
            SurveyResponse.device_id,
            SurveyResponse.respondent_hash,
            SurveyResponse.unit_id,
            SurveyResponse.counter_id,
            SurveyResponse.questionnaire_id,
            SurveyResponse.questionnaire_version,
            SurveyResponse.language,
            SurveyResponse.status,
            SurveyResponse.start_method,
            SurveyResponse.started_at,
        )
        .where(SurveyResponse.token == token)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None
    answered = session.scalar(select(exists().where(Answer.response_id == row.id)))
    return FormSurveyRow(**row._asdict(), has_answers=bool(answered))
