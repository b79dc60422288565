"""Queries and writes the rest of the service needs. Each takes a session; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, selectinload

from storage.models import (
    Answer,
    Conversation,
    Counter,
    OutboxMessage,
    ProcessedEvent,
    QuestionnaireVersion,
    SurveyResponse,
    Unit,
)


def _insert(session: Session, model: type[Any]) -> Any:
    """An INSERT that can say ON CONFLICT DO NOTHING on both supported backends."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


# --- webhook deliveries -------------------------------------------------------------------


def claim_event(session: Session, *, key: str, event_name: str, now: datetime) -> bool:
    """Record a delivery; False when the same delivery was recorded before.

    The insert takes part in the caller's transaction: if handling fails and rolls back,
    the claim goes too, and Zalo's retry is processed afresh.
    """
    statement = (
        _insert(session, ProcessedEvent)
        .values(dedupe_key=key, event_name=event_name, received_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


# --- units and counters -------------------------------------------------------------------


@dataclass(frozen=True)
class CounterSpec:
    code: str
    name: str
    questionnaire: str | None = None


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    counters: Sequence[CounterSpec]
    questionnaire: str | None = None
    timezone: str | None = None
    registration_code: str | None = None
    public_results: bool = False

    def settings(self) -> tuple[str, str | None, str | None, str | None, bool]:
        return (
            self.name,
            self.questionnaire,
            self.timezone,
            self.registration_code,
            self.public_results,
        )


def upsert_units(session: Session, units: Iterable[UnitSpec], *, now: datetime) -> list[str]:
    """Create or update units and their counters; returns a line per change (empty: no change).

    Counters absent from the file are left alone: answers refer to them.
    """
    changes: list[str] = []
    for spec in units:
        unit = session.scalar(select(Unit).where(Unit.code == spec.code))
        if unit is None:
            unit = Unit(code=spec.code, created_at=now, updated_at=now)
            _apply_unit(unit, spec)
            session.add(unit)
            session.flush()
            changes.append(f"unit {spec.code}: created")
        elif _unit_settings(unit) != spec.settings():
            _apply_unit(unit, spec)
            unit.updated_at = now
            changes.append(f"unit {spec.code}: updated")
        for counter_spec in spec.counters:
            counter = session.scalar(select(Counter).where(Counter.code == counter_spec.code))
            wanted = (unit.id, counter_spec.name, counter_spec.questionnaire)
            if counter is None:
                session.add(
                    Counter(
                        unit_id=unit.id,
                        code=counter_spec.code,
                        name=counter_spec.name,
                        questionnaire=counter_spec.questionnaire,
                        created_at=now,
                        updated_at=now,
                    )
                )
                changes.append(f"counter {counter_spec.code}: created")
            elif (counter.unit_id, counter.name, counter.questionnaire) != wanted:
                counter.unit_id, counter.name, counter.questionnaire = wanted
                counter.updated_at = now
                changes.append(f"counter {counter_spec.code}: updated")
    session.flush()
    return changes


def _unit_settings(unit: Unit) -> tuple[str, str | None, str | None, str | None, bool]:
    return (
        unit.name,
        unit.questionnaire,
        unit.timezone,
        unit.registration_code,
        unit.public_results,
    )


def _apply_unit(unit: Unit, spec: UnitSpec) -> None:
    unit.name, unit.questionnaire, unit.timezone = spec.name, spec.questionnaire, spec.timezone
    unit.registration_code, unit.public_results = spec.registration_code, spec.public_results


def find_counter(session: Session, code: str) -> Counter | None:
    return session.scalar(
        select(Counter).where(Counter.code == code.upper()).options(selectinload(Counter.unit))
    )


def find_unit(session: Session, code: str) -> Unit | None:
    return session.scalar(
        select(Unit).where(Unit.code == code.upper()).options(selectinload(Unit.counters))
    )


def list_units(session: Session) -> Sequence[Unit]:
    return session.scalars(
        select(Unit).order_by(Unit.code).options(selectinload(Unit.counters))
    ).all()


# --- conversations and responses -----------------------------------------------------------


def lock_conversation(session: Session, user_id: str, *, now: datetime) -> Conversation:
    """The user's conversation row, created if new, locked until the transaction ends."""
    session.execute(
        _insert(session, Conversation)
        .values(user_id=user_id, language="vi", created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    conversation = session.scalar(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert conversation is not None
    return conversation


def get_response(session: Session, response_id: int) -> SurveyResponse | None:
    return session.scalar(
        select(SurveyResponse)
        .where(SurveyResponse.id == response_id)
        .options(
            selectinload(SurveyResponse.answers),
            selectinload(SurveyResponse.counter).selectinload(Counter.unit),
        )
    )


def get_response_by_token(session: Session, token: str) -> SurveyResponse | None:
    return session.scalar(
        select(SurveyResponse)
        .where(SurveyResponse.token == token)
        .options(selectinload(SurveyResponse.answers))
    )


def completed_since(
    session: Session, *, respondent_hash: str, counter_id: int, since: datetime
) -> bool:
    """Whether this respondent completed a survey of this counter since the given time."""
    found = session.scalar(
        select(SurveyResponse.id)
        .where(
            SurveyResponse.respondent_hash == respondent_hash,
            SurveyResponse.counter_id == counter_id,
            SurveyResponse.status == "completed",
            SurveyResponse.completed_at >= since,
        )
        .limit(1)
    )
    return found is not None


def expire_idle_responses(session: Session, *, idle_before: datetime, now: datetime) -> int:
    """Close surveys untouched since `idle_before` as partial; returns how many."""
    stale = select(SurveyResponse.id).where(
        SurveyResponse.status == "active", SurveyResponse.updated_at < idle_before
    )
    ids = list(session.scalars(stale))
    if not ids:
        return 0
    session.execute(
        update(Conversation)
        .where(Conversation.open_response_id.in_(ids))
        .values(open_response_id=None, updated_at=now)
    )
    session.execute(
        update(SurveyResponse)
        .where(SurveyResponse.id.in_(ids))
        .values(status="partial", updated_at=now)
    )
    return len(ids)


def forget_processed_events(session: Session, *, before: datetime) -> None:
    """Drop dedupe records older than Zalo's last retry (about 2 h after the first try)."""
    session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < before))


# --- questionnaires ------------------------------------------------------------------------


def questionnaire_text(session: Session, questionnaire_id: str, version: str) -> str | None:
    row = session.get(QuestionnaireVersion, (questionnaire_id, version))
    return None if row is None else row.source_text


def register_questionnaire(
    session: Session, questionnaire_id: str, version: str, source_text: str, *, now: datetime
) -> str | None:
    """Keep a version's text; returns the text already kept when it differs, else None."""
    kept = questionnaire_text(session, questionnaire_id, version)
    if kept is None:
        session.add(
            QuestionnaireVersion(
                questionnaire_id=questionnaire_id,
                version=version,
                source_text=source_text,
                registered_at=now,
            )
        )
        session.flush()
        return None
    return kept if kept != source_text else None


# --- outbox --------------------------------------------------------------------------------


def enqueue(session: Session, user_id: str, body: dict[str, Any], *, now: datetime) -> None:
    session.add(
        OutboxMessage(
            user_id=user_id,
            body=body,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )


def claim_due_messages(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxMessage]:
    """Lease the oldest pending message of each user whose turn has come.

    Only a user's oldest pending message is ever eligible, so one user's messages go out in
    order and never two at a time; a user whose head message waits for a retry holds up
    nobody else. The lease makes a message killed mid-send eligible again once it lapses.
    """
    older = aliased(OutboxMessage)
    has_older = (
        select(older.id)
        .where(
            older.user_id == OutboxMessage.user_id,
            older.status == "pending",
            older.id < OutboxMessage.id,
        )
        .exists()
    )
    candidates = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
            ~has_older,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for message in candidates:
        message.locked_until = lease_until
    session.flush()
    return list(candidates)


def last_interactions(session: Session, user_ids: set[str]) -> dict[str, datetime]:
    """When each of these users last did something Zalo counts as an interaction."""
    rows = session.execute(
        select(Conversation.user_id, Conversation.last_interaction_at).where(
            Conversation.user_id.in_(user_ids), Conversation.last_interaction_at.is_not(None)
        )
    ).all()
    return {user_id: seen for user_id, seen in rows if seen is not None}


def list_outbox(
    session: Session, *, status: str | None = None, limit: int = 50
) -> Sequence[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return session.scalars(query).all()


def retry_message(session: Session, message_id: int, *, now: datetime) -> OutboxMessage | None:
    """Put a message back in line; its age (for giving up) counts from now."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        return None
    message.status = "pending"
    message.next_attempt_at = now
    message.created_at = now
    message.locked_until = None
    return message


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    return {status: count for status, count in rows}


def recent_outbox(session: Session, *, limit: int = 100) -> Sequence[OutboxMessage]:
    return session.scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    ).all()


# --- export --------------------------------------------------------------------------------


def iter_export_rows(
    session: Session,
    *,
    statuses: Sequence[str] = ("completed", "partial"),
    unit_code: str | None = None,
    batch: int = 1000,
) -> Iterator[Any]:
    """Responses with their answers, one row per answer (or per response without answers),
    ordered by response, streamed from the database in batches."""
    query = (
        select(
            SurveyResponse.id,
            SurveyResponse.token,
            Unit.code.label("unit_code"),
            Counter.code.label("counter_code"),
            SurveyResponse.questionnaire_id,
            SurveyResponse.questionnaire_version,
            SurveyResponse.status,
            SurveyResponse.is_repeat,
            SurveyResponse.started_at,
            SurveyResponse.completed_at,
            Answer.item_id,
            Answer.value,
            Answer.text,
        )
        .join(Unit, Unit.id == SurveyResponse.unit_id)
        .join(Counter, Counter.id == SurveyResponse.counter_id)
        .outerjoin(Answer, Answer.response_id == SurveyResponse.id)
        .where(SurveyResponse.status.in_(statuses))
        .order_by(SurveyResponse.id, Answer.id)
        .execution_options(yield_per=batch)
    )
    if unit_code is not None:
        query = query.where(and_(Unit.code == unit_code.upper()))
    yield from session.execute(query)


def questionnaire_versions_used(session: Session) -> list[tuple[str, str]]:
    rows = session.execute(
        select(SurveyResponse.questionnaire_id, SurveyResponse.questionnaire_version)
        .group_by(SurveyResponse.questionnaire_id, SurveyResponse.questionnaire_version)
        .order_by(func.min(SurveyResponse.id))
    ).all()
    return [(qid, version) for qid, version in rows]
