"""From a Zalo event to a stored state change and queued replies, in the caller's transaction.

The bridge between the pure engine (survey_flow) and the database (storage): it loads the
user's conversation under a row lock, runs `advance`, writes back the surveys and answers, and
puts the replies in the outbox. No HTTP happens here, so a webhook answers Zalo quickly.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy.orm import Session

from bot.cases.intake import CaseIntake, EndedSurvey
from bot.conversation.counting import Counting
from bot.conversation.leader_commands import LeaderCommands
from bot.conversation.limits import Allowance, MessageBucket
from bot.conversation.presence import CodeCheck, RotatingCodes, visit_code_key
from bot.conversation.registry import FlowRegistry
from bot.delivery.sign_in_links import SignInLinks
from bot.directory import CounterDirectory
from bot.privacy import Pseudonymizer
from storage import repositories as repo
from storage.models import ENVIRONMENT_OA, QUARANTINE_IN_INDEX, Counter, QuarantineState
from storage.repositories import LockedConversation, StoredSurvey
from survey_flow.engine import (
    COMPLETED,
    PARTIAL,
    Answer,
    Conversation,
    CounterInfo,
    Event,
    Greet,
    Message,
    Policy,
    Refusal,
    Start,
    StartMethod,
    Step,
    SurveyState,
    SurveyStatus,
    advance,
    parse_start_code,
)
from survey_flow.questionnaire import Questionnaire
from survey_flow.sipas import LOW_RATINGS
from survey_flow.texts import Texts
from zalo_client.events import InboundEvent, dedupe_key

log = logging.getLogger("sipas_bot.conversations")

GREETING_EVENTS = frozenset({"follow", "user_click_chatnow"})


class TurnStatus(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"  # a re-delivery of an event already handled
    IGNORED = "ignored"  # not from a user, or nothing to act on
    LIMITED = "limited"  # over the account's message allowance: dropped


@dataclass(frozen=True)
class Outcome:
    status: TurnStatus
    replies: int = 0


@dataclass(frozen=True)
class AccountLimits:
    """What one Zalo account may do (ACCOUNT_* settings; docs/integrity.md)."""

    messages: MessageBucket
    starts_per_day: int


class SurveyService:
    def __init__(
        self,
        *,
        texts: Mapping[str, Texts],
        flows: FlowRegistry,
        policy: Policy,
        cooldown: timedelta,
        limits: AccountLimits,
        rotating: RotatingCodes,
        pseudonyms: Pseudonymizer,
        counting: Counting,
        intake: CaseIntake,
        new_token: Callable[[], str] = lambda: secrets.token_hex(6),
        sign_in_links: SignInLinks | None = None,
        directory: CounterDirectory | None = None,
    ) -> None:
        self.intake = intake
        # Counters by code and id, kept between events (checked against the database's
        # stamp at every lookup unless the Runtime gives one checked less often).
        self.directory = directory or CounterDirectory(check_every=timedelta(0))
        self.texts = texts
        self.flows = flows
        self.policy = policy
        self.cooldown = cooldown
        self.limits = limits
        self.rotating = rotating
        self.counting = counting
        self.new_token = new_token
        self.pseudonyms = pseudonyms
        self.leaders = LeaderCommands(texts, pseudonyms, links=sign_in_links)

    def handle(
        self,
        session: Session,
        event: InboundEvent,
        raw_body: bytes,
        *,
        now: datetime,
        oa: str = ENVIRONMENT_OA,
    ) -> Outcome:
        """Process one webhook event once; a re-delivery of the same event does nothing.
        `oa`: the key of the OA the event came to (the conversation is per OA and user)."""
        if not self.acts_on(event):
            return Outcome(TurnStatus.IGNORED)
        assert event.user_id is not None
        key = dedupe_key(event, raw_body)
        row = repo.claim_and_lock(
            session, key=key, event_name=event.name, user_id=event.user_id, now=now, oa=oa
        )
        if row is None:
            log.info(
                "event=%s user=%s outcome=duplicate",
                event.name,
                self.pseudonyms.user_tag(event.user_id),
            )
            return Outcome(TurnStatus.DUPLICATE)
        outcome = self._turn(session, row, event, now)
        # The allowance taken and any other change to the conversation: one UPDATE at most.
        repo.save_conversation(
            session, row, language=row.language, open_response_id=row.open_response_id
        )
        return outcome

    def acts_on(self, event: InboundEvent) -> bool:
        """Whether an event is a citizen speaking (or following, unfollowing); any other is
        ignored, and logged so, before the database is touched."""
        if event.user_id is None or not _from_user(event):
            log.info("event=%s outcome=ignored", event.name)
            return False
        return True

    def _turn(
        self, session: Session, row: LockedConversation, event: InboundEvent, now: datetime
    ) -> Outcome:
        if event.name == "unfollow":
            return Outcome(TurnStatus.HANDLED)
        if not self._allowed(session, row, now):
            return Outcome(TurnStatus.LIMITED)
        if event.name == "user_send_text" and event.text:
            # DANGKY, HUYDANGKY, DANGNHAP and the digests' "Đã nhận" are not survey answers.
            leader_replies = self.leaders.handle(session, row, event.text, now=now)
            if leader_replies is not None:
                repo.enqueue_replies(session, row.user_id, leader_replies, now=now, oa=row.oa_id)
                return Outcome(TurnStatus.HANDLED, len(leader_replies))
        return self.converse(session, row, _engine_event_text(event), now=now)

    def _allowed(self, session: Session, row: LockedConversation, now: datetime) -> bool:
        """Take a token of the user's message allowance; a message over it is dropped, the
        first one dropped with a short notice."""
        verdict = self.limits.messages.take(
            Allowance(row.allowance_tokens, row.allowance_at, row.throttled), now
        )
        kept = verdict.allowance
        repo.take_allowance(row, tokens=kept.tokens or 0.0, at=now, throttled=kept.throttled)
        if verdict.accepted:
            return True
        if verdict.notify:
            t = self.texts.get(row.language) or self.texts["vi"]
            repo.enqueue_replies(
                session, row.user_id, [{"text": t("slow_down")}], now=now, oa=row.oa_id
            )
        log.info(
            "event=turn user=%s outcome=limited notice=%s",
            self.pseudonyms.user_tag(row.user_id),
            verdict.notify,
        )
        return False

    def converse(
        self, session: Session, row: LockedConversation, text: str | None, *, now: datetime
    ) -> Outcome:
        """Run one turn for a locked conversation row: None greets, a text is a message."""
        if text is not None and row.open_response_id is None:
            answer = self.intake.answer(
                session, user_id=row.user_id, language=row.language, text=text, now=now
            )
            if answer is not None:
                repo.enqueue_replies(
                    session, row.user_id, [{"text": answer}], now=now, oa=row.oa_id
                )
                return Outcome(TurnStatus.HANDLED, 1)
        conversation, questionnaire, loaded = self._load(session, row)
        counter: Counter | None = None
        engine_event: Event
        if text is None:
            engine_event = Greet()
        elif (code := parse_start_code(text)) is not None:
            start = self.resolve(session, code, now)
            counter = start.counter
            # The engine resumes a live survey of the same counter instead of starting one.
            resuming = (
                counter is not None
                and loaded is not None
                and loaded.counter_id == counter.id
                and loaded.status == SurveyStatus.ACTIVE
                and now - loaded.updated_at <= self.policy.idle
            )
            if counter is not None and counter.unit.oa_key != row.oa_id:
                # A counter of another OA's unit: that OA's chat is where its survey runs.
                start = dataclasses.replace(start, refusal=Refusal.OTHER_OA)
            engine_event = self._start_event(session, row.user_id, code, start, now, resuming)
        else:
            engine_event = Message(text)
        step = advance(
            conversation,
            engine_event,
            questionnaire=questionnaire,
            texts=self.texts,
            now=now,
            policy=self.policy,
        )
        ended, open_response_id = self._save(session, row, step, counter, loaded, now)
        bodies = self.intake.open_for_turn(
            session,
            user_id=row.user_id,
            oa=row.oa_id,
            language=row.language,
            notes=step.notes,
            survey_place=(loaded.unit_id, loaded.counter_id) if loaded is not None else None,
            ended=[
                EndedSurvey.of_state(
                    survey,
                    questionnaire,
                    response_id=written.id,
                    unit_id=written.unit_id,
                    counter_id=written.counter_id,
                    in_index=written.in_index,
                )
                for survey, questionnaire, written in ended
            ],
            replies=[
                {
                    "text": reply.text,
                    "buttons": [{"title": c.title, "payload": c.payload} for c in reply.choices],
                }
                for reply in step.replies
            ],
            now=now,
        )
        # The conversation's changes (`lock_conversation` already set updated_at; a plain
        # answer changes the allowance only) and the replies: one statement on PostgreSQL.
        repo.save_conversation_and_reply(
            session,
            row,
            bodies,
            language=step.conversation.language,
            open_response_id=open_response_id,
            now=now,
        )
        log.info(
            "event=turn user=%s kind=%s counter=%s open=%s replies=%d",
            self.pseudonyms.user_tag(row.user_id),
            type(engine_event).__name__.lower(),
            counter.code if counter else "-",
            step.conversation.survey is not None,
            len(step.replies),
        )
        return Outcome(TurnStatus.HANDLED, len(step.replies))

    def resolve(self, session: Session, code: str, now: datetime) -> StartCode:
        """What a `#code` is: a counter's printed code, a rotating code shown at a counter, a
        one-time visit code, or nothing known; with the refusal its kind earns, if any.

        A printed code wins over the other shapes (a counter code may itself hold a dash).
        """
        counter = self.directory.by_code(session, code)
        if counter is not None:
            refusal = Refusal.VERIFIED_REQUIRED if counter.unit.require_verified else None
            return StartCode(counter, StartMethod.STATIC, refusal)
        rotating = self.rotating.check(code, now)
        if rotating is not None and rotating.check is not CodeCheck.WRONG:
            counter = self.directory.by_code(session, rotating.counter)
            if counter is not None:
                expired = rotating.check is CodeCheck.EXPIRED
                refusal = Refusal.CODE_EXPIRED if expired else None
                return StartCode(counter, StartMethod.ROTATING, refusal)
        key = visit_code_key(code)
        visit = repo.peek_visit_code(session, key, now=now) if key else None
        if key is not None and visit is not None:
            counter = self.directory.by_id(session, visit.counter_id)
            refusal = (
                Refusal.CODE_USED if visit.used else Refusal.CODE_EXPIRED if visit.expired else None
            )
            return StartCode(counter, StartMethod.VISIT, refusal, visit_key=key)
        return StartCode(None, StartMethod.STATIC, None)

    def _start_event(
        self,
        session: Session,
        user_id: str,
        code: str,
        start: StartCode,
        now: datetime,
        resuming: bool,
    ) -> Start:
        """The engine's Start for `#code`, with the service's verdict on it (the engine
        resumes the open survey of the same counter whatever the verdict)."""
        counter = start.counter
        if counter is None:
            return Start(code=code, counter=None, questionnaire=None, token="")
        refusal = (
            start.refusal
            if resuming
            else self.admit(session, self.pseudonyms.respondent_hash(user_id), start, now=now)
        )
        # Only told to the citizen; the flag itself is decided when the survey qualifies.
        repeat = repo.counted_since(
            session,
            respondent_hash=self.pseudonyms.respondent_hash(user_id),
            counter_id=counter.id,
            since=now - self.cooldown,
        )
        return Start(
            code=code,
            counter=CounterInfo(counter.code, counter.name, counter.unit.name),
            questionnaire=self.flows.for_counter(session, counter, now=now),
            token=self.new_token(),
            repeat=repeat,
            method=start.method,
            refusal=refusal,
        )

    def admit(
        self, session: Session, respondent: str, start: StartCode, *, now: datetime
    ) -> Refusal | None:
        """Why a new survey may not start with this code (None: it may): the code's own
        verdict, then the respondent's starts per day; a visit code is used here, in the
        transaction that stores the survey it starts. The web link admits its starts here too.
        """
        if start.refusal is not None:
            return start.refusal
        started = repo.surveys_started_since(
            session, respondent_hash=respondent, since=now - timedelta(days=1)
        )
        if started >= self.limits.starts_per_day:
            return Refusal.TOO_MANY_STARTS
        if start.visit_key is not None and not repo.consume_visit_code(
            session, start.visit_key, now=now
        ):
            return Refusal.CODE_USED
        return None

    def _load(
        self, session: Session, row: LockedConversation
    ) -> tuple[Conversation, Questionnaire | None, StoredSurvey | None]:
        """The engine's view of the conversation, and the open survey's row it came from."""
        if row.open_response_id is None:
            return Conversation(language=row.language), None, None
        stored = repo.load_survey(session, row.open_response_id)
        assert stored is not None
        questionnaire = self.flows.version(
            session, stored.questionnaire_id, stored.questionnaire_version
        )
        state = SurveyState(
            token=stored.token,
            counter=CounterInfo(stored.counter_code, stored.counter_name, stored.unit_name),
            questionnaire_id=stored.questionnaire_id,
            questionnaire_version=stored.questionnaire_version,
            language=stored.language,
            started_at=stored.started_at,
            updated_at=stored.updated_at,
            position=stored.position,
            answers={item: Answer(value, text) for item, (value, text) in stored.answers.items()},
            # A survey the housekeeping job closed for idleness is handed back as open: its
            # `updated_at` is old, so the engine closes it again and tells the citizen.
            status=(
                SurveyStatus.ACTIVE
                if stored.status == SurveyStatus.PARTIAL
                else SurveyStatus(stored.status)
            ),
            repeat=stored.is_repeat,
            method=StartMethod(stored.start_method),
        )
        return Conversation(language=row.language, survey=state), questionnaire, stored

    def _save(
        self,
        session: Session,
        row: LockedConversation,
        step: Step,
        counter: Counter | None,
        loaded: StoredSurvey | None,
        now: datetime,
    ) -> tuple[list[_Ended], int | None]:
        """Write the turn's surveys; returns those that ended (completed or partial) and the
        id of the survey left open (the conversation is written with the replies)."""
        ended: list[_Ended] = []
        for survey in step.closed:
            questionnaire = self._questionnaire_of(session, survey)
            written = self._write_survey(
                session, row.user_id, survey, questionnaire, counter, loaded, now
            )
            if survey.status in (COMPLETED, PARTIAL):
                ended.append(_Ended(survey, questionnaire, written))
            self.alert_if_low(session, survey, questionnaire, written, now=now)
        open_survey = step.conversation.survey
        open_response_id = None
        if open_survey is not None:
            questionnaire = self._questionnaire_of(session, open_survey)
            open_response_id = self._write_survey(
                session, row.user_id, open_survey, questionnaire, counter, loaded, now
            ).id
        return ended, open_response_id

    def _questionnaire_of(self, session: Session, survey: SurveyState) -> Questionnaire:
        return self.flows.version(session, survey.questionnaire_id, survey.questionnaire_version)

    def _write_survey(
        self,
        session: Session,
        user_id: str,
        survey: SurveyState,
        questionnaire: Questionnaire,
        counter: Counter | None,
        loaded: StoredSurvey | None,
        now: datetime,
    ) -> Written:
        """Store the survey's state, answers and counting decision (conversation/counting.py)."""
        changing = {
            "language": survey.language,
            "status": survey.status,
            "position": survey.position,
            "updated_at": survey.updated_at,
            "completed_at": survey.ended_at if survey.status == COMPLETED else None,
        }
        # The survey the turn began with was loaded by `_load`; any other one was started by
        # this turn and has no row yet (a fresh random token; the unique index guards it).
        if loaded is not None and loaded.token == survey.token:
            response_id, unit_id, counter_id = loaded.id, loaded.unit_id, loaded.counter_id
            self.counting.before_change(
                session,
                response_id,
                status=loaded.status,
                decided=loaded.qualified_at is not None,
            )
            columns: dict[str, object] | None = changing
            kept = loaded.answers
            decided = loaded.qualified_at is not None
            counted = loaded.counted and QuarantineState(loaded.quarantine) in QUARANTINE_IN_INDEX
        else:
            if counter is None or counter.code != survey.counter.code:
                raise RuntimeError("a new survey must come with the counter it was started at")
            unit_id, counter_id = counter.unit_id, counter.id
            response_id = repo.insert_survey(
                session,
                {
                    "token": survey.token,
                    "respondent_hash": self.pseudonyms.respondent_hash(user_id),
                    "unit_id": unit_id,
                    "counter_id": counter_id,
                    "questionnaire_id": survey.questionnaire_id,
                    "questionnaire_version": survey.questionnaire_version,
                    "is_repeat": False,
                    "start_method": survey.method.value,
                    "started_at": survey.started_at,
                    **changing,
                },
                officer_on_shift=True,
            )
            columns, kept = None, {}
            decided = counted = False
        counted = self.counting.record_answers(
            session,
            survey,
            questionnaire,
            response_id=response_id,
            columns=columns,
            kept=kept,
            respondent=self.pseudonyms.respondent_hash(user_id),
            counter_id=counter_id,
            decided=decided,
            counted=counted,
            now=now,
        )
        return Written(response_id, unit_id, counter_id, counted)

    def alert_if_low(
        self,
        session: Session,
        survey: SurveyState,
        questionnaire: Questionnaire,
        written: Written,
        *,
        now: datetime,
    ) -> None:
        """Note a closed, counted survey that rated a factor low, for
        bot/reporting/alerts.py to tell the leaders; once per survey (the expiry job may have
        noted it already). A survey held for review alerts no one."""
        if (
            survey.status in (COMPLETED, PARTIAL)
            and written.in_index
            and _rated_low(survey, questionnaire)
        ):
            repo.add_alert(
                session,
                response_id=written.id,
                unit_id=written.unit_id,
                counter_id=written.counter_id,
                now=now,
            )


@dataclass(frozen=True)
class StartCode:
    """A `#code` resolved (see `SurveyService.resolve`)."""

    counter: Counter | None
    method: StartMethod
    refusal: Refusal | None
    visit_key: str | None = None


class _Ended(NamedTuple):
    """A survey that ended in a turn, with its questionnaire and row."""

    survey: SurveyState
    questionnaire: Questionnaire
    written: Written


@dataclass(frozen=True)
class Written:
    """A survey row as a turn left it."""

    id: int
    unit_id: int
    counter_id: int
    in_index: bool  # counted, and not held for review


def _rated_low(survey: SurveyState, questionnaire: Questionnaire) -> bool:
    """Whether any factor of the survey was rated low (what alerts the leaders)."""
    for item_id, answer in survey.answers.items():
        item = questionnaire.item(item_id)
        if item is not None and item.factor is not None and answer.value in LOW_RATINGS:
            return True
    return False


def _from_user(event: InboundEvent) -> bool:
    return event.name.startswith("user_send_") or event.name in GREETING_EVENTS | {"unfollow"}


def _engine_event_text(event: InboundEvent) -> str | None:
    """None for a greeting event; the text for a message (empty for stickers, images…)."""
    if event.name in GREETING_EVENTS:
        return None
    return event.text or ""
