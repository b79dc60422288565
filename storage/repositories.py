"""Queries and writes the rest of the service needs. Each takes a session; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, selectinload

from storage.models import (
    Alert,
    Answer,
    CitizenNote,
    Conversation,
    Counter,
    Digest,
    Leader,
    LeaderMessage,
    LeaderSubscription,
    OutboxMessage,
    ProcessedEvent,
    QuestionnaireVersion,
    RegistrationFailure,
    SurveyResponse,
    Unit,
    UTCDateTime,
    ZaloToken,
)


def _insert(session: Session, model: type[Any]) -> Any:
    """An INSERT that can say ON CONFLICT DO NOTHING on both supported backends."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


# --- webhook deliveries -------------------------------------------------------------------


_processed = cast(Table, ProcessedEvent.__table__)
# Per dialect, built once: the webhook runs these for every event, and building a statement
# costs more CPU than running it.
_CLAIM_EVENT = {
    name: dialect_insert(_processed)
    .values(
        dedupe_key=bindparam("key"),
        event_name=bindparam("event_name"),
        received_at=bindparam("now"),
    )
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(_processed.c.dedupe_key)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def claim_event(session: Session, *, key: str, event_name: str, now: datetime) -> bool:
    """Record a delivery; False when the same delivery was recorded before.

    The insert takes part in the caller's transaction: if handling fails and rolls back,
    the claim goes too, and Zalo's retry is processed afresh.
    """
    statement = _CLAIM_EVENT[session.get_bind().dialect.name]
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT … ON CONFLICT.
    parameters = {"key": key, "event_name": event_name, "now": now}
    return session.execute(statement, parameters).first() is not None


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


def find_units_by_code(session: Session, codes: Sequence[str]) -> dict[str, Unit]:
    """The units with these codes (any case) with their counters, by upper-case code; in one
    query whatever the number of codes (a province's report names a thousand)."""
    wanted = sorted({code.upper() for code in codes})
    if not wanted:
        return {}
    units = session.scalars(
        select(Unit).where(Unit.code.in_(wanted)).options(selectinload(Unit.counters))
    ).all()
    return {unit.code: unit for unit in units}


def list_units(session: Session) -> Sequence[Unit]:
    return session.scalars(
        select(Unit).order_by(Unit.code).options(selectinload(Unit.counters))
    ).all()


# --- conversations and responses -----------------------------------------------------------


@dataclass
class LockedConversation:
    """A user's conversation row, as read under its lock (see `lock_conversation`)."""

    user_id: str
    language: str
    open_response_id: int | None


_conversations = cast(Table, Conversation.__table__)


def _lock_conversation_statement(dialect_insert: Any) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING for one dialect (see `lock_conversation`)."""
    statement = dialect_insert(_conversations).values(
        user_id=bindparam("user_id"),
        language="vi",
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
        last_interaction_at=bindparam("now"),
    )
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={
            "last_interaction_at": statement.excluded.last_interaction_at,
            "updated_at": statement.excluded.updated_at,
        },
    ).returning(
        _conversations.c.user_id, _conversations.c.language, _conversations.c.open_response_id
    )


_LOCK_CONVERSATION = {
    "postgresql": _lock_conversation_statement(postgresql.insert),
    "sqlite": _lock_conversation_statement(sqlite.insert),
}
_UPDATE_CONVERSATION = update(_conversations).where(
    _conversations.c.user_id == bindparam("conversation_user")
)


def lock_conversation(session: Session, user_id: str, *, now: datetime) -> LockedConversation:
    """The user's conversation row, created if new, touched (`last_interaction_at`,
    `updated_at` = now) and locked until the transaction ends.

    One round trip: INSERT … ON CONFLICT DO UPDATE … RETURNING both creates the row and
    takes the row lock that a second delivery for the same user waits on.
    """
    statement = _LOCK_CONVERSATION[session.get_bind().dialect.name]
    row = session.execute(statement, {"user_id": user_id, "now": now}).one()
    return LockedConversation(row.user_id, row.language, row.open_response_id)


def save_conversation(
    session: Session,
    conversation: LockedConversation,
    *,
    language: str,
    open_response_id: int | None,
) -> None:
    """Store the conversation's language and open survey; no statement when neither changed."""
    if (language, open_response_id) == (conversation.language, conversation.open_response_id):
        return
    session.execute(
        _UPDATE_CONVERSATION.values(language=language, open_response_id=open_response_id),
        {"conversation_user": conversation.user_id},
    )
    conversation.language, conversation.open_response_id = language, open_response_id


@dataclass(frozen=True)
class StoredSurvey:
    """An open survey as a webhook turn needs it: its row, counter and unit names, answers.

    Read and written with Core statements, not ORM objects: the turn runs for every message
    a citizen sends, and loading and flushing mapped objects was most of its CPU time.
    """

    id: int
    token: str
    unit_id: int
    counter_id: int
    counter_code: str
    counter_name: str
    unit_name: str
    questionnaire_id: str
    questionnaire_version: str
    language: str
    status: str
    position: int
    is_repeat: bool
    started_at: datetime
    updated_at: datetime
    answers: dict[str, tuple[int | None, str | None]]


_responses = cast(Table, SurveyResponse.__table__)
_answers = cast(Table, Answer.__table__)
_counters = cast(Table, Counter.__table__)
_units = cast(Table, Unit.__table__)
# Built once (no connection, nothing run): the turn's statements differ only in parameters.
_LOAD_SURVEY = (
    select(
        _responses.c.id,
        _responses.c.token,
        _responses.c.unit_id,
        _responses.c.counter_id,
        _counters.c.code.label("counter_code"),
        _counters.c.name.label("counter_name"),
        _units.c.name.label("unit_name"),
        _responses.c.questionnaire_id,
        _responses.c.questionnaire_version,
        _responses.c.language,
        _responses.c.status,
        _responses.c.position,
        _responses.c.is_repeat,
        _responses.c.started_at,
        _responses.c.updated_at,
        _answers.c.item_id,
        _answers.c.value,
        _answers.c.text,
    )
    .join_from(_responses, _counters, _responses.c.counter_id == _counters.c.id)
    .join(_units, _counters.c.unit_id == _units.c.id)
    .outerjoin(_answers, _answers.c.response_id == _responses.c.id)
    .where(_responses.c.id == bindparam("response_id"))
    .order_by(_answers.c.id)
)
_TURN_COLUMNS = ("language", "status", "position", "updated_at", "completed_at")
_INSERT_SURVEY = insert(_responses).returning(_responses.c.id)
_UPDATE_SURVEY = (
    update(_responses)
    .where(_responses.c.id == bindparam("response_id"))
    .values({name: bindparam(f"new_{name}") for name in _TURN_COLUMNS})
)
_INSERT_ANSWERS = insert(_answers)
_UPDATE_ANSWER = (
    update(_answers)
    .where(
        _answers.c.response_id == bindparam("response_id"),
        _answers.c.item_id == bindparam("answer_item"),
    )
    .values(
        value=bindparam("new_value"),
        text=bindparam("new_text"),
        answered_at=bindparam("new_answered_at"),
    )
)
_DELETE_ANSWERS = delete(_answers).where(
    _answers.c.response_id == bindparam("response_id"),
    _answers.c.item_id.in_(bindparam("item_ids", expanding=True)),
)


def load_survey(session: Session, response_id: int) -> StoredSurvey | None:
    """A survey with its counter, unit and answers, in one query."""
    rows = session.execute(_LOAD_SURVEY, {"response_id": response_id}).all()
    if not rows:
        return None
    survey = rows[0]._asdict()
    for answer_column in ("item_id", "value", "text"):
        del survey[answer_column]
    return StoredSurvey(
        **survey,
        answers={row.item_id: (row.value, row.text) for row in rows if row.item_id is not None},
    )


def insert_survey(session: Session, values: dict[str, Any]) -> int:
    """Store a new survey row; returns its id."""
    return int(session.execute(_INSERT_SURVEY, values).scalar_one())


def update_survey(session: Session, response_id: int, values: dict[str, Any]) -> None:
    """Set the columns a turn changes (language, status, position, updated_at, completed_at)."""
    parameters = {f"new_{name}": values[name] for name in _TURN_COLUMNS}
    session.execute(_UPDATE_SURVEY, {"response_id": response_id, **parameters})


def write_answers(
    session: Session,
    response_id: int,
    *,
    added: Sequence[dict[str, Any]],
    changed: Sequence[dict[str, Any]],
    removed: Sequence[str],
) -> None:
    """Apply a turn's answer changes: new rows, new values for kept items, removed items
    (`changed` rows: item_id, value, text, answered_at)."""
    if removed:
        session.execute(_DELETE_ANSWERS, {"response_id": response_id, "item_ids": list(removed)})
    if changed:
        session.execute(
            _UPDATE_ANSWER,
            [
                {
                    "response_id": response_id,
                    "answer_item": row["item_id"],
                    "new_value": row["value"],
                    "new_text": row["text"],
                    "new_answered_at": row["answered_at"],
                }
                for row in changed
            ],
        )
    if added:
        session.execute(_INSERT_ANSWERS, [{"response_id": response_id, **row} for row in added])


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


def expire_idle_responses(session: Session, *, idle_before: datetime) -> int:
    """Mark surveys untouched since `idle_before` as partial, for reports; returns how many.

    The conversation keeps pointing at the survey and `updated_at` keeps the last activity,
    so the citizen's next message is still told that the survey timed out.
    """
    result = session.execute(
        update(SurveyResponse)
        .where(SurveyResponse.status == "active", SurveyResponse.updated_at < idle_before)
        .values(status="partial")
        .returning(SurveyResponse.id)
    )
    return len(result.all())


def forget_processed_events(session: Session, *, before: datetime) -> None:
    """Drop dedupe records older than Zalo's last retry (about 2 h after the first try)."""
    session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < before))


def insert_token_pair_if_missing(
    session: Session, *, access_token: str, refresh_token: str, now: datetime
) -> bool:
    """Store the first token pair unless one exists; safe when processes start together."""
    statement = (
        _insert(session, ZaloToken)
        .values(
            id=1,
            access_token=access_token,
            refresh_token=refresh_token,
            access_expires_at=None,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(ZaloToken.id)
    )
    return session.execute(statement).first() is not None


# --- questionnaires ------------------------------------------------------------------------


def questionnaire_text(session: Session, questionnaire_id: str, version: str) -> str | None:
    row = session.get(QuestionnaireVersion, (questionnaire_id, version))
    return None if row is None else row.source_text


def register_questionnaire(
    session: Session, questionnaire_id: str, version: str, source_text: str, *, now: datetime
) -> str | None:
    """Keep a version's text; returns the text already kept when it differs, else None."""
    # INSERT … ON CONFLICT, not read-then-insert: processes starting together all succeed.
    session.execute(
        _insert(session, QuestionnaireVersion)
        .values(
            questionnaire_id=questionnaire_id,
            version=version,
            source_text=source_text,
            registered_at=now,
        )
        .on_conflict_do_nothing(index_elements=["questionnaire_id", "version"])
    )
    kept = session.scalar(
        select(QuestionnaireVersion.source_text).where(
            QuestionnaireVersion.questionnaire_id == questionnaire_id,
            QuestionnaireVersion.version == version,
        )
    )
    return kept if kept is not None and kept != source_text else None


# --- outbox --------------------------------------------------------------------------------


_outbox = cast(Table, OutboxMessage.__table__)


def _pending_message(user_id: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def enqueue_replies(
    session: Session, user_id: str, bodies: Sequence[dict[str, Any]], *, now: datetime
) -> None:
    """Queue messages for one user, in order (their ids are the order they go out in)."""
    if bodies:
        session.execute(insert(_outbox), [_pending_message(user_id, b, now) for b in bodies])


def enqueue_message(session: Session, user_id: str, body: dict[str, Any], *, now: datetime) -> int:
    """Queue one message and return its id, so that a record can link it."""
    statement = insert(_outbox).returning(_outbox.c.id)
    return int(session.execute(statement, _pending_message(user_id, body, now)).scalar_one())


def claim_due_messages(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxMessage]:
    """Lease the oldest pending message of each user whose turn has come.

    Only a user's oldest pending message is ever eligible, so one user's messages go out in
    order and never two at a time; a user whose head message waits for a retry holds up
    nobody else. The lease makes a message killed mid-send eligible again once it lapses.

    "The head" is a correlated MIN() (one index probe per candidate), not NOT EXISTS (an
    older pending one): PostgreSQL planned that anti-join with an inner scan of every pending
    row whenever its statistics undercounted them, as right after a burst was enqueued: 0.3 s
    per claim at 1,200 pending in a fresh table, 3.6 s in one analysed before the burst
    (docs/benchmarks.md, 2). This form stays linear in the pending rows whatever the plan.
    """
    older = aliased(OutboxMessage)
    head = (
        select(func.min(older.id))
        .where(older.user_id == OutboxMessage.user_id, older.status == "pending")
        .scalar_subquery()
    )
    candidates = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
            OutboxMessage.id == head,
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


@dataclass(frozen=True)
class OutboxOutcome:
    """What became of one attempt at a leased message.

    `status`: "sent", "pending" (to be retried at `next_attempt_at`), "dead", or "released"
    (not tried: the lease is given back, the attempt not counted).
    """

    message_id: int
    lease_until: datetime
    status: str
    sent_at: datetime | None = None
    zalo_message_id: str | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None


_OUTBOX = cast(Table, OutboxMessage.__table__)


def _outcome_update(**values: Any) -> Any:
    # Only while the row still holds the lease this sender took: if the lease lapsed and
    # another sender leased the message meanwhile, the row is that sender's to record.
    return (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id == bindparam("b_id"),
            _OUTBOX.c.locked_until == bindparam("b_lease", type_=UTCDateTime()),
        )
        .values(locked_until=None, **values)
    )


_OUTCOME_UPDATES = {
    "sent": _outcome_update(
        status="sent",
        attempts=_OUTBOX.c.attempts + 1,
        sent_at=bindparam("b_sent_at", type_=UTCDateTime()),
        zalo_message_id=bindparam("b_zalo_message_id"),
        last_error=None,
    ),
    "pending": _outcome_update(
        attempts=_OUTBOX.c.attempts + 1,
        next_attempt_at=bindparam("b_next_attempt_at", type_=UTCDateTime()),
        last_error=bindparam("b_error"),
    ),
    "dead": _outcome_update(
        status="dead",
        attempts=_OUTBOX.c.attempts + 1,
        last_error=bindparam("b_error"),
    ),
    "released": _outcome_update(),
}


def record_outbox_outcomes(session: Session, outcomes: Sequence[OutboxOutcome]) -> None:
    """Record attempts with one UPDATE per kind of outcome (an executemany), not a SELECT
    and an UPDATE per message."""
    by_status: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, []).append(
            {
                "b_id": outcome.message_id,
                "b_lease": outcome.lease_until,
                "b_sent_at": outcome.sent_at,
                "b_zalo_message_id": outcome.zalo_message_id,
                "b_next_attempt_at": outcome.next_attempt_at,
                "b_error": outcome.error,
            }
        )
    for status, rows in by_status.items():
        session.execute(_OUTCOME_UPDATES[status], rows)


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


def iter_export_surveys(
    session: Session,
    *,
    statuses: Sequence[str] = ("completed", "partial"),
    unit_code: str | None = None,
    counter_code: str | None = None,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    batch: int = 1000,
) -> Iterator[tuple[Any, dict[str, tuple[int | None, str | None]]]]:
    """Each response (a row: id, token, unit_code, counter_code, questionnaire, status,
    repeat, times) with its answers by item, ordered by response and streamed in batches;
    optionally only one unit's, one counter's, or those started in [started_from,
    started_before).

    Two streams read side by side and merged by response id, not one join: a join sends
    and decodes every response's columns once per answer (5–6 times per survey).
    """
    filters: list[ColumnElement[bool]] = [SurveyResponse.status.in_(statuses)]
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
            SurveyResponse.started_at,
            SurveyResponse.completed_at,
        )
        .join(Unit, Unit.id == SurveyResponse.unit_id)
        .join(Counter, Counter.id == SurveyResponse.counter_id)
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


# --- leaders: registration, digests, alerts ------------------------------------------------


def units_with_registration_code(session: Session) -> Sequence[Unit]:
    return session.scalars(
        select(Unit).where(Unit.registration_code.is_not(None)).order_by(Unit.code)
    ).all()


def find_leader(session: Session, user_id: str) -> Leader | None:
    return session.scalar(
        select(Leader)
        .where(Leader.user_id == user_id)
        .options(selectinload(Leader.subscriptions).selectinload(LeaderSubscription.unit))
    )


def get_or_create_leader(session: Session, user_id: str, *, now: datetime) -> Leader:
    session.execute(
        _insert(session, Leader)
        .values(user_id=user_id, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    leader = find_leader(session, user_id)
    assert leader is not None
    return leader


def subscribe(session: Session, leader: Leader, unit: Unit, *, now: datetime) -> bool:
    """Subscribe a leader to a unit; False when they were already."""
    if any(s.unit_id == unit.id for s in leader.subscriptions):
        return False
    leader.subscriptions.append(LeaderSubscription(unit=unit, created_at=now))
    leader.updated_at = now
    session.flush()
    return True


def unsubscribe(
    session: Session, leader: Leader, unit_ids: Iterable[int] | None, *, now: datetime
) -> list[Unit]:
    """Drop the leader's subscriptions to these units (None: all); returns the units dropped."""
    wanted = None if unit_ids is None else set(unit_ids)
    dropped = [s for s in leader.subscriptions if wanted is None or s.unit_id in wanted]
    for subscription in dropped:
        leader.subscriptions.remove(subscription)
    if dropped:
        leader.updated_at = now
    session.flush()
    return [s.unit for s in dropped]


def registration_failures_since(session: Session, user_id: str, *, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RegistrationFailure)
            .where(RegistrationFailure.user_id == user_id, RegistrationFailure.failed_at >= since)
        )
        or 0
    )


def record_registration_failure(session: Session, user_id: str, *, now: datetime) -> None:
    session.add(RegistrationFailure(user_id=user_id, failed_at=now))


def forget_registration_failures(session: Session, *, before: datetime) -> None:
    session.execute(delete(RegistrationFailure).where(RegistrationFailure.failed_at < before))


def subscribed_leaders(session: Session, unit_id: int) -> Sequence[Leader]:
    return session.scalars(
        select(Leader)
        .join(LeaderSubscription, LeaderSubscription.leader_id == Leader.id)
        .where(LeaderSubscription.unit_id == unit_id)
        .order_by(Leader.id)
    ).all()


def units_with_leaders(session: Session) -> Sequence[Unit]:
    return session.scalars(
        select(Unit)
        .where(
            select(LeaderSubscription.unit_id).where(LeaderSubscription.unit_id == Unit.id).exists()
        )
        .order_by(Unit.code)
        .options(selectinload(Unit.counters))
    ).all()


def list_leaders(session: Session) -> Sequence[Leader]:
    return session.scalars(
        select(Leader)
        .order_by(Leader.id)
        .options(selectinload(Leader.subscriptions).selectinload(LeaderSubscription.unit))
    ).all()


def conversation_languages(session: Session, user_ids: set[str]) -> dict[str, str]:
    rows = session.execute(
        select(Conversation.user_id, Conversation.language).where(
            Conversation.user_id.in_(user_ids)
        )
    ).all()
    return {user_id: language for user_id, language in rows}


def claim_digest(
    session: Session,
    *,
    unit_id: int,
    kind: str,
    period_start: datetime,
    period_end: datetime,
    claim_key: str | None,
    now: datetime,
) -> Digest | None:
    """Create the digest record; with a claim key, None when another process holds it.

    INSERT … ON CONFLICT DO NOTHING on the unique key: on PostgreSQL a concurrent insert of
    the same key waits for the first transaction and then inserts nothing; if the first
    rolls back, the second gets the claim. So exactly one transaction sends the period.
    """
    result = session.execute(
        _insert(session, Digest)
        .values(
            unit_id=unit_id,
            kind=kind,
            period_start=period_start,
            period_end=period_end,
            claim_key=claim_key,
            status="claimed",
            responses=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["claim_key"])
        .returning(Digest.id)
    )
    digest_id = result.scalar()
    if digest_id is None:
        return None
    return session.get(Digest, digest_id)


def digest_message(session: Session, digest_id: int, user_id: str) -> LeaderMessage | None:
    return session.scalar(
        select(LeaderMessage)
        .join(Leader, Leader.id == LeaderMessage.leader_id)
        .where(LeaderMessage.digest_id == digest_id, Leader.user_id == user_id)
    )


def leader_message(session: Session, message_id: int, user_id: str) -> LeaderMessage | None:
    return session.scalar(
        select(LeaderMessage)
        .join(Leader, Leader.id == LeaderMessage.leader_id)
        .where(LeaderMessage.id == message_id, Leader.user_id == user_id)
    )


def messages_awaiting_outbox(session: Session, *, limit: int = 500) -> Sequence[LeaderMessage]:
    """Leader messages queued to Zalo whose outbox message has been sent or given up."""
    return session.scalars(
        select(LeaderMessage)
        .join(OutboxMessage, OutboxMessage.id == LeaderMessage.outbox_message_id)
        .where(LeaderMessage.status == "queued", OutboxMessage.status.in_(("sent", "dead")))
        .order_by(LeaderMessage.id)
        .limit(limit)
        .options(selectinload(LeaderMessage.outbox_message), selectinload(LeaderMessage.leader))
        .with_for_update(skip_locked=True, of=LeaderMessage)
    ).all()


def emails_due(session: Session, *, stale_before: datetime, limit: int = 100) -> list[int]:
    """Ids of leader messages to e-mail: waiting ones, and ones whose sender vanished."""
    return list(
        session.scalars(
            select(LeaderMessage.id)
            .where(
                (LeaderMessage.status == "email_pending")
                | ((LeaderMessage.status == "emailing") & (LeaderMessage.updated_at < stale_before))
            )
            .order_by(LeaderMessage.id)
            .limit(limit)
        )
    )


def claim_email(
    session: Session, message_id: int, *, stale_before: datetime, now: datetime
) -> bool:
    """Mark one leader message as being e-mailed; False when another process has it."""
    result = session.execute(
        update(LeaderMessage)
        .where(
            LeaderMessage.id == message_id,
            (LeaderMessage.status == "email_pending")
            | ((LeaderMessage.status == "emailing") & (LeaderMessage.updated_at < stale_before)),
        )
        .values(status="emailing", updated_at=now, attempts=LeaderMessage.attempts + 1)
    )
    return bool(getattr(result, "rowcount", 0))


def add_citizen_note(
    session: Session,
    *,
    unit_id: int,
    counter_id: int,
    respondent_hash: str,
    text: str,
    received_at: datetime,
) -> None:
    """Keep a message typed during a survey that answered no question, for the unit."""
    session.add(
        CitizenNote(
            unit_id=unit_id,
            counter_id=counter_id,
            respondent_hash=respondent_hash,
            text=text,
            received_at=received_at,
        )
    )


def add_alert(
    session: Session, *, response_id: int, unit_id: int, counter_id: int, now: datetime
) -> None:
    """Note a low-rated survey for the alert job (once per survey)."""
    session.execute(
        _insert(session, Alert)
        .values(
            response_id=response_id,
            unit_id=unit_id,
            counter_id=counter_id,
            status="pending",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["response_id"])
    )


def pending_alerts(session: Session, *, limit: int = 200) -> Sequence[Alert]:
    return session.scalars(
        select(Alert)
        .where(Alert.status == "pending")
        .order_by(Alert.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def lock_unit(session: Session, unit_id: int) -> Unit:
    """The unit row, locked: serialises the alert cap of one unit across processes.

    FOR NO KEY UPDATE on PostgreSQL, so inserts that only reference the unit (a survey, an
    alert) do not wait for it.
    """
    unit = session.scalar(select(Unit).where(Unit.id == unit_id).with_for_update(key_share=True))
    assert unit is not None
    return unit


def notified_alerts(session: Session, unit_id: int, *, hour_start: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Alert)
            .where(
                Alert.unit_id == unit_id,
                Alert.hour_start == hour_start,
                Alert.status == "notified",
            )
        )
        or 0
    )


def held_alerts(session: Session, *, hour_before: datetime) -> Sequence[Alert]:
    """Alerts held back by the hourly cap whose hour has ended."""
    return session.scalars(
        select(Alert)
        .where(Alert.status == "held", Alert.hour_start < hour_before)
        .order_by(Alert.unit_id, Alert.hour_start, Alert.id)
        .options(selectinload(Alert.counter))
        .with_for_update(skip_locked=True)
    ).all()


def recent_digests(session: Session, *, unit_id: int | None, limit: int) -> Sequence[Digest]:
    query = (
        select(Digest).order_by(Digest.id.desc()).limit(limit).options(selectinload(Digest.unit))
    )
    if unit_id is not None:
        query = query.where(Digest.unit_id == unit_id)
    return session.scalars(query).all()


def digest_messages(session: Session, digest_id: int) -> Sequence[LeaderMessage]:
    return session.scalars(
        select(LeaderMessage)
        .where(LeaderMessage.digest_id == digest_id)
        .order_by(LeaderMessage.id)
        .options(selectinload(LeaderMessage.leader))
    ).all()
