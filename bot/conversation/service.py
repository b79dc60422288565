"""From a Zalo event to a stored state change and queued replies, in the caller's transaction.

The bridge between the pure engine (survey_flow) and the database (storage): it loads the
user's conversation under a row lock, runs `advance`, writes back the surveys and answers, and
puts the replies in the outbox. No HTTP happens here, so a webhook answers Zalo quickly.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.conversation.leader_commands import LeaderCommands
from bot.conversation.registry import FlowRegistry
from bot.delivery.sign_in_links import SignInLinks
from bot.privacy import respondent_hash, user_tag
from storage import repositories as repo
from storage.models import Counter
from storage.repositories import LockedConversation, StoredSurvey
from survey_flow.engine import (
    COMPLETED,
    Answer,
    Conversation,
    CounterInfo,
    Event,
    Greet,
    Message,
    Policy,
    Start,
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


@dataclass(frozen=True)
class Outcome:
    status: TurnStatus
    replies: int = 0


class SurveyService:
    def __init__(
        self,
        *,
        texts: Mapping[str, Texts],
        flows: FlowRegistry,
        policy: Policy,
        cooldown: timedelta,
        new_token: Callable[[], str] = lambda: secrets.token_hex(6),
        sign_in_links: SignInLinks | None = None,
    ) -> None:
        self.texts = texts
        self.flows = flows
        self.policy = policy
        self.cooldown = cooldown
        self.new_token = new_token
        self.leaders = LeaderCommands(texts, links=sign_in_links)

    def handle(
        self, session: Session, event: InboundEvent, raw_body: bytes, *, now: datetime
    ) -> Outcome:
        """Process one webhook event once; a re-delivery of the same event does nothing."""
        if event.user_id is None or not _from_user(event):
            log.info("event=%s outcome=ignored", event.name)
            return Outcome(TurnStatus.IGNORED)
        key = dedupe_key(event, raw_body)
        if not repo.claim_event(session, key=key, event_name=event.name, now=now):
            log.info("event=%s user=%s outcome=duplicate", event.name, user_tag(event.user_id))
            return Outcome(TurnStatus.DUPLICATE)
        row = repo.lock_conversation(session, event.user_id, now=now)
        if event.name == "unfollow":
            return Outcome(TurnStatus.HANDLED)
        if event.name == "user_send_text" and event.text:
            # DANGKY, HUYDANGKY, DANGNHAP and the digests' "Đã nhận" are not survey answers.
            leader_replies = self.leaders.handle(session, row, event.text, now=now)
            if leader_replies is not None:
                repo.enqueue_replies(session, row.user_id, leader_replies, now=now)
                return Outcome(TurnStatus.HANDLED, len(leader_replies))
        return self.converse(session, row, _engine_event_text(event), now=now)

    def converse(
        self, session: Session, row: LockedConversation, text: str | None, *, now: datetime
    ) -> Outcome:
        """Run one turn for a locked conversation row: None greets, a text is a message."""
        counter: Counter | None = None
        engine_event: Event
        if text is None:
            engine_event = Greet()
        elif (code := parse_start_code(text)) is not None:
            counter = repo.find_counter(session, code)
            engine_event = self._start_event(session, row.user_id, code, counter, now)
        else:
            engine_event = Message(text)
        conversation, questionnaire, loaded = self._load(session, row)
        step = advance(
            conversation,
            engine_event,
            questionnaire=questionnaire,
            texts=self.texts,
            now=now,
            policy=self.policy,
        )
        self._save(session, row, step, counter, loaded, now)
        bodies = [
            {
                "text": reply.text,
                "buttons": [{"title": c.title, "payload": c.payload} for c in reply.choices],
            }
            for reply in step.replies
        ]
        repo.enqueue_replies(session, row.user_id, bodies, now=now)
        log.info(
            "event=turn user=%s kind=%s counter=%s open=%s replies=%d",
            user_tag(row.user_id),
            type(engine_event).__name__.lower(),
            counter.code if counter else "-",
            step.conversation.survey is not None,
            len(step.replies),
        )
        return Outcome(TurnStatus.HANDLED, len(step.replies))

    def _start_event(
        self, session: Session, user_id: str, code: str, counter: Counter | None, now: datetime
    ) -> Start:
        if counter is None:
            return Start(code=code, counter=None, questionnaire=None, token="")
        repeat = repo.completed_since(
            session,
            respondent_hash=respondent_hash(user_id),
            counter_id=counter.id,
            since=now - self.cooldown,
        )
        return Start(
            code=code,
            counter=CounterInfo(counter.code, counter.name, counter.unit.name),
            questionnaire=self.flows.for_counter(session, counter, now=now),
            token=self.new_token(),
            repeat=repeat,
        )

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
    ) -> None:
        for survey in step.closed:
            questionnaire = self._questionnaire_of(session, survey)
            response_id, unit_id, counter_id = self._write_survey(
                session, row.user_id, survey, questionnaire, counter, loaded, now
            )
            if survey.status == COMPLETED and _rated_low(survey, questionnaire):
                # bot/alerts.py tells the leaders
                repo.add_alert(
                    session,
                    response_id=response_id,
                    unit_id=unit_id,
                    counter_id=counter_id,
                    now=now,
                )
        open_survey = step.conversation.survey
        open_response_id = None
        if open_survey is not None:
            questionnaire = self._questionnaire_of(session, open_survey)
            open_response_id = self._write_survey(
                session, row.user_id, open_survey, questionnaire, counter, loaded, now
            )[0]
        # `lock_conversation` already set updated_at: a plain answer writes nothing more here.
        repo.save_conversation(
            session, row, language=step.conversation.language, open_response_id=open_response_id
        )

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
    ) -> tuple[int, int, int]:
        """Store the survey's state and answers; returns (response id, unit id, counter id)."""
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
            repo.update_survey(session, response_id, changing)
            kept = loaded.answers
        else:
            if counter is None or counter.code != survey.counter.code:
                raise RuntimeError("a new survey must come with the counter it was started at")
            unit_id, counter_id = counter.unit_id, counter.id
            response_id = repo.insert_survey(
                session,
                {
                    "token": survey.token,
                    "respondent_hash": respondent_hash(user_id),
                    "unit_id": unit_id,
                    "counter_id": counter_id,
                    "questionnaire_id": survey.questionnaire_id,
                    "questionnaire_version": survey.questionnaire_version,
                    "is_repeat": survey.repeat,
                    "started_at": survey.started_at,
                    **changing,
                },
            )
            kept = {}
        added: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for item_id, answer in survey.answers.items():
            values = {"value": answer.value, "text": answer.text, "answered_at": now}
            if item_id not in kept:
                item = questionnaire.item(item_id)
                added.append(
                    {
                        "item_id": item_id,
                        "factor": item.factor if item else None,
                        "criterion": item.criterion if item else None,
                        **values,
                    }
                )
            elif kept[item_id] != (answer.value, answer.text):
                changed.append({"item_id": item_id, **values})
        removed = [item_id for item_id in kept if item_id not in survey.answers]
        repo.write_answers(session, response_id, added=added, changed=changed, removed=removed)
        return response_id, unit_id, counter_id


def _rated_low(survey: SurveyState, questionnaire: Questionnaire) -> bool:
    """Whether any factor of the survey was rated 1 or 2 (what alerts the leaders)."""
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
