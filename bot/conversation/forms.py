"""Surveys answered on a form: the counter's tablet (kiosk) and the web link (docs/channels.md).

The server opens a form survey (the officer's tap of "Mời đánh giá" on a paired tablet, or a
citizen's start on `/s/<code>`): its row is stored at once, active, under a fresh random token
that the page keeps. The page asks the questions itself and sends every answer back in one
POST with that token, which is the idempotency key: the answers are replayed through the pure
engine (survey_flow/forms.py), stored through the same `Counting.record_answers` as a
Zalo survey's, and counted by the same rule; a second delivery of the same token finds the
survey closed and stores nothing. A tablet that lost its network keeps the answers and sends
them later, up to FORM_SUBMIT_HOURS after the survey was opened. A stored survey with a
comment, or counted with a factor rated low, opens its case in the same transaction, by the
chat's rule (bot/cases/intake.py); the reference goes back to the page.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from bot.cases.intake import CaseIntake, EndedSurvey
from bot.conversation.service import StartCode, SurveyService, Written
from storage import repositories as repo
from storage.models import Case, Channel, Counter, Device, SurveyResponse
from storage.repositories import FormSurveyRow
from survey_flow.engine import (
    COMPLETED,
    PARTIAL,
    Answer,
    Conversation,
    CounterInfo,
    Refusal,
    Start,
    StartMethod,
    SurveyState,
    SurveyStatus,
    advance,
)
from survey_flow.forms import replay_form
from survey_flow.questionnaire import Questionnaire

log = logging.getLogger("sipas_bot.forms")

HOUR = timedelta(hours=1)


class KioskRefusal(StrEnum):
    """Why a tap on the tablet opened no survey."""

    HOURLY_LIMIT = "hourly_limit"  # KIOSK_SURVEYS_PER_HOUR reached


class SubmitStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # this token's answers were stored already
    UNKNOWN = "unknown"  # no survey of this channel (and device or respondent) has the token
    TOO_LATE = "too_late"  # sent more than FORM_SUBMIT_HOURS after the survey was opened


@dataclass(frozen=True)
class OpenedSurvey:
    """A form survey just opened (or handed out again): what the page needs to ask it."""

    token: str
    questionnaire: Questionnaire
    language: str
    counter: CounterInfo
    intro: str


@dataclass(frozen=True)
class Submitted:
    status: SubmitStatus
    completed: bool = False
    counted: bool = False
    reference: str | None = None  # the case the survey opened, if any


@dataclass(frozen=True)
class StoredForm:
    """A form survey as stored: the survey, whether it counts, and the case it opened."""

    survey: SurveyState
    counted: bool
    case: Case | None


class FormSurveys:
    """Opens and stores the surveys of the kiosk and web channels."""

    def __init__(
        self,
        service: SurveyService,
        *,
        intake: CaseIntake,
        kiosk_per_hour: int,
        submit_window: timedelta,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(12),
        new_respondent: Callable[[], str] = lambda: secrets.token_hex(32),
    ) -> None:
        self.service = service
        self.intake = intake
        self.kiosk_per_hour = kiosk_per_hour
        self.submit_window = submit_window
        self.new_token = new_token
        self.new_respondent = new_respondent

    def open_kiosk(
        self, session: Session, device: Device, *, now: datetime
    ) -> OpenedSurvey | KioskRefusal:
        """A tap of "Mời đánh giá": the tablet's open, unanswered survey again, or a new one
        unless the tablet opened KIOSK_SURVEYS_PER_HOUR in the last hour. Each survey gets a
        random respondent of its own: the tablet knows nobody, each visit is one citizen."""
        counter = device.counter
        token = repo.open_device_survey(session, device.id, since=now - self.service.policy.idle)
        if token is not None:
            row = repo.lock_form_survey(session, token)
            assert row is not None
            questionnaire = self.service.flows.version(
                session, row.questionnaire_id, row.questionnaire_version
            )
            return self._opened(counter, questionnaire, token, StartMethod.DEVICE, now)
        if repo.device_surveys_since(session, device.id, since=now - HOUR) >= self.kiosk_per_hour:
            log.info("event=kiosk_open device=%d outcome=hourly_limit", device.id)
            return KioskRefusal.HOURLY_LIMIT
        return self._open(
            session,
            counter,
            channel=Channel.KIOSK,
            method=StartMethod.DEVICE,
            respondent=self.new_respondent(),
            device_id=device.id,
            now=now,
        )

    def open_web(
        self, session: Session, start: StartCode, *, respondent: str, now: datetime
    ) -> OpenedSurvey | Refusal:
        """A citizen's start on the web link, admitted by the same rules as `#code` in the
        chat (SurveyService.admit: the code's verdict, starts per day, a visit code used)."""
        assert start.counter is not None
        refusal = self.service.admit(session, respondent, start, now=now)
        if refusal is not None:
            log.info("event=web_open counter=%s outcome=%s", start.counter.code, refusal)
            return refusal
        return self._open(
            session,
            start.counter,
            channel=Channel.WEB,
            method=start.method,
            respondent=respondent,
            device_id=None,
            now=now,
        )

    def _open(
        self,
        session: Session,
        counter: Counter,
        *,
        channel: Channel,
        method: StartMethod,
        respondent: str,
        device_id: int | None,
        now: datetime,
    ) -> OpenedSurvey:
        questionnaire = self.service.flows.for_counter(session, counter, now=now)
        opened = self._opened(counter, questionnaire, self.new_token(), method, now)
        repo.insert_survey(
            session,
            {
                "token": opened.token,
                "respondent_hash": respondent,
                "unit_id": counter.unit_id,
                "counter_id": counter.id,
                "questionnaire_id": questionnaire.id,
                "questionnaire_version": questionnaire.version,
                "language": opened.language,
                "status": SurveyStatus.ACTIVE,
                "position": 0,
                "is_repeat": False,
                "start_method": method.value,
                "channel": channel.value,
                "device_id": device_id,
                "started_at": now,
                "updated_at": now,
                "completed_at": None,
            },
            officer_on_shift=True,
        )
        log.info("event=form_open channel=%s counter=%s", channel, counter.code)
        return opened

    def _opened(
        self,
        counter: Counter,
        questionnaire: Questionnaire,
        token: str,
        method: StartMethod,
        now: datetime,
    ) -> OpenedSurvey:
        """What the page shows: the engine's own opening message, in the questionnaire's
        first language."""
        info = CounterInfo(counter.code, counter.name, counter.unit.name)
        language = questionnaire.languages[0]
        step = advance(
            Conversation(language=language),
            Start(
                code=counter.code,
                counter=info,
                questionnaire=questionnaire,
                token=token,
                method=method,
            ),
            questionnaire=None,
            texts=self.service.texts,
            now=now,
            policy=self.service.policy,
        )
        return OpenedSurvey(token, questionnaire, language, info, step.replies[0].text)

    def submit(
        self,
        session: Session,
        token: str,
        answers: Mapping[str, Answer],
        *,
        channel: Channel,
        device_id: int | None = None,
        respondent: str | None = None,
        now: datetime,
    ) -> Submitted:
        """Store a form survey's answers once. The token must name an open survey of this
        channel and of this tablet (kiosk) or this browser's respondent (web)."""
        row = repo.lock_form_survey(session, token)
        if (
            row is None
            or row.channel != channel
            or (channel is Channel.KIOSK and row.device_id != device_id)
            or (channel is Channel.WEB and row.respondent_hash != respondent)
        ):
            return Submitted(SubmitStatus.UNKNOWN)
        # Open, or closed by the idle-survey job before its answers arrived (none stored).
        open_ = row.status == SurveyStatus.ACTIVE or (
            row.status == SurveyStatus.PARTIAL and not row.has_answers
        )
        if not open_:
            # The same answer as the first delivery's, stored nothing, opened nothing.
            case = repo.case_of_response(session, row.id)
            return Submitted(
                SubmitStatus.DUPLICATE,
                completed=row.status == COMPLETED,
                reference=case.reference if case is not None else None,
            )
        if now - row.started_at > self.submit_window:
            return Submitted(SubmitStatus.TOO_LATE)
        stored = self.store(session, row, answers, now=now)
        log.info(
            "event=form_submit channel=%s counter_id=%d status=%s counted=%s case=%s",
            channel,
            row.counter_id,
            stored.survey.status,
            stored.counted,
            stored.case is not None,
        )
        return Submitted(
            SubmitStatus.STORED,
            completed=stored.survey.status == COMPLETED,
            counted=stored.counted,
            reference=stored.case.reference if stored.case is not None else None,
        )

    def replay(
        self,
        counter: Counter,
        questionnaire: Questionnaire,
        answers: Mapping[str, Answer],
        *,
        token: str,
        method: StartMethod,
        language: str,
        now: datetime,
    ) -> SurveyState:
        """The closed survey the form's answers make, by the engine's rules
        (survey_flow/forms.py); nothing is stored."""
        return replay_form(
            Start(
                code=counter.code,
                counter=CounterInfo(counter.code, counter.name, counter.unit.name),
                questionnaire=questionnaire,
                token=token,
                method=method,
            ),
            answers,
            language=language,
            texts=self.service.texts,
            now=now,
            policy=self.service.policy,
        )

    def store(
        self,
        session: Session,
        row: FormSurveyRow,
        answers: Mapping[str, Answer],
        *,
        now: datetime,
    ) -> StoredForm:
        """Replay a form survey's answers and store what the engine keeps, through the same
        `Counting.record_answers` as a Zalo survey's, and open its case by the chat's
        rule (a comment, or counted with a factor rated low). The row is the caller's, open
        and locked (`repo.lock_form_survey`): a survey is stored, and opens its case, once."""
        questionnaire = self.service.flows.version(
            session, row.questionnaire_id, row.questionnaire_version
        )
        counter = repo.find_counter_by_id(session, row.counter_id)
        assert counter is not None
        survey, counted = self._write(
            session,
            row.id,
            counter,
            questionnaire,
            answers,
            token=row.token,
            method=StartMethod(row.start_method),
            language=row.language,
            respondent=row.respondent_hash,
            kept={},
            decided=False,
            counted=False,
            now=now,
        )
        self.service.alert_if_low(
            session,
            survey,
            questionnaire,
            Written(row.id, row.unit_id, row.counter_id, counted),
            now=now,
        )
        case = None
        if survey.status in (COMPLETED, PARTIAL):
            case = self.intake.open_for_form(
                session,
                EndedSurvey.of_state(
                    survey,
                    questionnaire,
                    response_id=row.id,
                    unit_id=row.unit_id,
                    counter_id=row.counter_id,
                    in_index=counted,
                ),
                respondent_hash=row.respondent_hash,
                now=now,
            )
        return StoredForm(survey, counted, case)

    def withdraw(
        self,
        session: Session,
        response: SurveyResponse,
        *,
        actor: str,
        resolution: str,
        now: datetime,
    ) -> None:
        """Withdraw a stored form survey (a paper form taken back by the clerk who entered
        it): no answers replayed make it cancelled, as a citizen's cancel does, its answers
        are removed and its counting decision undone by the same `record_answers`; an alert
        not sent yet is dropped, and its case closed with `resolution` (withdrawn: out of
        the published figures). It leaves the roll-up of counts first, as any stored survey
        that changes does."""
        self.service.counting.before_change(
            session,
            response.id,
            status=response.status,
            decided=response.qualified_at is not None,
        )
        self._write(
            session,
            response.id,
            response.counter,
            self.service.flows.version(
                session, response.questionnaire_id, response.questionnaire_version
            ),
            {},
            token=response.token,
            method=StartMethod(response.start_method),
            language=response.language,
            respondent=response.respondent_hash,
            kept={a.item_id: (a.value, a.text) for a in response.answers},
            decided=response.qualified_at is not None,
            counted=response.counted,
            now=now,
        )
        repo.drop_pending_alert(session, response.id)
        self.intake.withdraw_form(session, response.id, actor=actor, resolution=resolution, now=now)

    def _write(
        self,
        session: Session,
        response_id: int,
        counter: Counter,
        questionnaire: Questionnaire,
        answers: Mapping[str, Answer],
        *,
        token: str,
        method: StartMethod,
        language: str,
        respondent: str,
        kept: Mapping[str, tuple[int | None, str | None]],
        decided: bool,
        counted: bool,
        now: datetime,
    ) -> tuple[SurveyState, bool]:
        """The survey the answers make, written over the row (its state, its answers over
        those `kept`, its counting decision); returns it and whether it counts."""
        survey = self.replay(
            counter, questionnaire, answers, token=token, method=method, language=language, now=now
        )
        in_index = self.service.counting.record_answers(
            session,
            survey,
            questionnaire,
            response_id=response_id,
            columns={
                "language": survey.language,
                "status": survey.status,
                "position": survey.position,
                "updated_at": now,
                "completed_at": now if survey.status == COMPLETED else None,
            },
            kept=kept,
            respondent=respondent,
            counter_id=counter.id,
            decided=decided,
            counted=counted,
            now=now,
        )
        return survey, in_index
