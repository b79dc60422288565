"""A user's conversation and surveys: the row lock that serialises a user's events, the survey
a turn loads and writes, and the jobs that close idle surveys. Each function takes a
session; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    ENVIRONMENT_OA,
    QUARANTINE_IN_INDEX,
    Alert,
    AlertStatus,
    Answer,
    Conversation,
    Counter,
    OutboxMessage,
    SurveyResponse,
    Unit,
    UTCDateTime,
)
from storage.repositories._dialect import UpdateWithInsert
from storage.repositories.events import claim_event, claim_statement
from storage.repositories.officers import OFFICER_ON_SHIFT
from storage.repositories.outbox import PENDING_COLUMNS, enqueue_replies, pending_messages
from storage.repositories.rollup import put_in
from survey_flow.states import SurveyStatus

# --- conversations and responses -----------------------------------------------------------


@dataclass
class LockedConversation:
    """A user's conversation row, as read under its lock (see `lock_conversation`).

    A turn changes it in memory (`take_allowance`, `save_conversation`); what differs from
    the row as stored is written by one UPDATE (`save_conversation`)."""

    user_id: str
    language: str
    open_response_id: int | None
    allowance_tokens: float | None = None
    allowance_at: datetime | None = None
    throttled: bool = False
    oa_id: str = ENVIRONMENT_OA  # the OA the user talks to (the row is per OA and user)
    stored: tuple[object, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        self.stored = self._values()

    def _values(self) -> tuple[object, ...]:
        return (
            self.language,
            self.open_response_id,
            self.allowance_tokens,
            self.allowance_at,
            self.throttled,
        )


_conversations = cast(Table, Conversation.__table__)
# What `LockedConversation` holds.
_LOCKED_COLUMNS = (
    _conversations.c.user_id,
    _conversations.c.language,
    _conversations.c.open_response_id,
    _conversations.c.allowance_tokens,
    _conversations.c.allowance_at,
    _conversations.c.throttled,
    _conversations.c.oa_id,
)


def _lock_conversation_statement(dialect_insert: Any) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING for one dialect (see `lock_conversation`)."""
    statement = dialect_insert(_conversations).values(
        user_id=bindparam("user_id"),
        oa_id=bindparam("oa_id"),
        language="vi",
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
        last_interaction_at=bindparam("now"),
    )
    return statement.on_conflict_do_update(
        index_elements=["user_id", "oa_id"],
        set_={
            "last_interaction_at": statement.excluded.last_interaction_at,
            "updated_at": statement.excluded.updated_at,
        },
    ).returning(*_LOCKED_COLUMNS)


_LOCK_CONVERSATION = {
    "postgresql": _lock_conversation_statement(postgresql.insert),
    "sqlite": _lock_conversation_statement(sqlite.insert),
}
_UPDATE_CONVERSATION = update(_conversations).where(
    _conversations.c.user_id == bindparam("conversation_user"),
    _conversations.c.oa_id == bindparam("conversation_oa"),
)
_SAVE_CONVERSATION = _UPDATE_CONVERSATION.values(
    language=bindparam("language"),
    open_response_id=bindparam("open_response_id"),
    allowance_tokens=bindparam("tokens"),
    allowance_at=bindparam("at"),
    throttled=bindparam("throttled"),
)
_SAVE_CONVERSATION_QUEUEING_REPLIES = UpdateWithInsert(
    "conversation", _SAVE_CONVERSATION, cast(Table, OutboxMessage.__table__), PENDING_COLUMNS
)


def lock_conversation(
    session: Session, user_id: str, *, now: datetime, oa: str = ENVIRONMENT_OA
) -> LockedConversation:
    """The user's conversation row with this OA, created if new, touched
    (`last_interaction_at`, `updated_at` = now) and locked until the transaction ends.

    One round trip: INSERT … ON CONFLICT DO UPDATE … RETURNING both creates the row and
    takes the row lock that a second delivery for the same user waits on.
    """
    statement = _LOCK_CONVERSATION[session.get_bind().dialect.name]
    parameters = {"user_id": user_id, "oa_id": oa, "now": now}
    row = session.connection().execute(statement, parameters).one()
    return LockedConversation(**row._asdict())


def _claim_and_lock_statement() -> Any:
    """PostgreSQL: the event's claim (`claim_event`) and the conversation's lock
    (`lock_conversation`) in one statement; no row when the event was claimed before."""
    claimed = claim_statement("postgresql").cte("claimed")
    now = bindparam("now", type_=UTCDateTime())
    user_id = bindparam("user_id", type_=_conversations.c.user_id.type)
    oa_id = bindparam("oa_id", type_=_conversations.c.oa_id.type)
    lock = postgresql.insert(_conversations).from_select(
        [
            "user_id",
            "oa_id",
            "language",
            "created_at",
            "updated_at",
            "last_interaction_at",
            "throttled",
        ],
        select(user_id, oa_id, literal("vi"), now, now, now, false()).select_from(claimed),
        include_defaults=False,
    )
    return (
        lock.on_conflict_do_update(
            index_elements=["user_id", "oa_id"],
            set_={
                "last_interaction_at": lock.excluded.last_interaction_at,
                "updated_at": lock.excluded.updated_at,
            },
        )
        .returning(*_LOCKED_COLUMNS)
        .add_cte(claimed, nest_here=True)
    )


_CLAIM_AND_LOCK = _claim_and_lock_statement()


def claim_and_lock(
    session: Session,
    *,
    key: str,
    event_name: str,
    user_id: str,
    now: datetime,
    oa: str = ENVIRONMENT_OA,
) -> LockedConversation | None:
    """`claim_event` then `lock_conversation`: None when the delivery was recorded before
    (and then no conversation is touched). One round trip on PostgreSQL (the claim is a
    data-modifying CTE of the lock), two on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        if not claim_event(session, key=key, event_name=event_name, now=now):
            return None
        return lock_conversation(session, user_id, now=now, oa=oa)
    parameters = {
        "key": key,
        "event_name": event_name,
        "user_id": user_id,
        "oa_id": oa,
        "now": now,
    }
    row = session.connection().execute(_CLAIM_AND_LOCK, parameters).first()
    return None if row is None else LockedConversation(**row._asdict())


def take_allowance(
    conversation: LockedConversation, *, tokens: float, at: datetime, throttled: bool
) -> None:
    """Set the user's message allowance (bot/conversation/limits.py); stored with the rest of
    the turn's changes by `save_conversation`, in the same transaction."""
    conversation.allowance_tokens, conversation.allowance_at = tokens, at
    conversation.throttled = throttled


def surveys_started_since(session: Session, *, respondent_hash: str, since: datetime) -> int:
    """How many surveys this respondent started since the given time (any counter, status)."""
    parameters = {"respondent_hash": respondent_hash, "since": since}
    return int(session.connection().execute(_STARTED_SINCE, parameters).scalar_one())


def save_conversation(
    session: Session,
    conversation: LockedConversation,
    *,
    language: str,
    open_response_id: int | None,
) -> None:
    """Store the conversation's language and open survey, and the allowance taken this turn
    (`take_allowance`): one UPDATE, or no statement when nothing differs from the row as
    stored (a second call writes only what changed since the first)."""
    parameters = _conversation_changes(conversation, language, open_response_id)
    if parameters is not None:
        session.connection().execute(_SAVE_CONVERSATION, parameters)
        conversation.stored = conversation._values()


def save_conversation_and_reply(
    session: Session,
    conversation: LockedConversation,
    bodies: Sequence[dict[str, Any]],
    *,
    language: str,
    open_response_id: int | None,
    now: datetime,
) -> None:
    """`save_conversation`, then queue `bodies` to the conversation's user with its OA
    (`enqueue_replies`). One statement on PostgreSQL when both write (the conversation's
    UPDATE a data-modifying CTE of the outbox's INSERT: neither reads the other's table, and
    neither's result is needed); two on SQLite."""
    connection = session.connection()
    user, oa = conversation.user_id, conversation.oa_id
    if connection.dialect.name != "postgresql" or not bodies:
        save_conversation(
            session, conversation, language=language, open_response_id=open_response_id
        )
        enqueue_replies(session, user, bodies, now=now, oa=oa)
        return
    parameters = _conversation_changes(conversation, language, open_response_id)
    if parameters is None:
        enqueue_replies(session, user, bodies, now=now, oa=oa)
        return
    rows = pending_messages(user, bodies, now=now, oa=oa)
    _SAVE_CONVERSATION_QUEUEING_REPLIES.execute(connection, parameters, rows)
    conversation.stored = conversation._values()


def _conversation_changes(
    conversation: LockedConversation, language: str, open_response_id: int | None
) -> dict[str, Any] | None:
    """Set the conversation's language and open survey; the parameters of its UPDATE, or None
    when nothing differs from the row as stored."""
    conversation.language, conversation.open_response_id = language, open_response_id
    if conversation._values() == conversation.stored:
        return None
    return {
        "conversation_user": conversation.user_id,
        "conversation_oa": conversation.oa_id,
        "language": language,
        "open_response_id": open_response_id,
        "tokens": conversation.allowance_tokens,
        "at": conversation.allowance_at,
        "throttled": conversation.throttled,
    }


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
    counted: bool
    qualified_at: datetime | None
    quarantine: str
    start_method: str
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
        _responses.c.counted,
        _responses.c.qualified_at,
        _responses.c.quarantine,
        _responses.c.start_method,
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
# The same, recording the officer on shift at the counter in the same statement.
_INSERT_SURVEY_ON_SHIFT = (
    insert(_responses).values(officer_id=OFFICER_ON_SHIFT).returning(_responses.c.id)
)
_UPDATE_SURVEY = (
    update(_responses)
    .where(_responses.c.id == bindparam("response_id"))
    .values({name: bindparam(f"new_{name}") for name in _TURN_COLUMNS})
)
_INSERT_ANSWERS = insert(_answers)
_UPDATE_SURVEY_INSERTING_ANSWERS = UpdateWithInsert(
    "survey",
    _UPDATE_SURVEY,
    _answers,
    ("response_id", "item_id", "factor", "criterion", "value", "text", "answered_at"),
)
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
_STARTED_SINCE = (
    select(func.count())
    .select_from(_responses)
    .where(
        _responses.c.respondent_hash == bindparam("respondent_hash"),
        _responses.c.started_at >= bindparam("since"),
    )
)
_COUNTED_SINCE = (
    select(_responses.c.id)
    .where(
        _responses.c.respondent_hash == bindparam("respondent_hash"),
        _responses.c.counter_id == bindparam("counter_id"),
        _responses.c.counted.is_(True),
        _responses.c.qualified_at >= bindparam("since"),
    )
    .limit(1)
)
_SET_COUNTING = (
    update(_responses)
    .where(_responses.c.id == bindparam("response_id"))
    .values(
        counted=bindparam("counted"),
        is_repeat=bindparam("is_repeat"),
        qualified_at=bindparam("qualified_at"),
    )
)


def load_survey(session: Session, response_id: int) -> StoredSurvey | None:
    """A survey with its counter, unit and answers, in one query."""
    rows = session.connection().execute(_LOAD_SURVEY, {"response_id": response_id}).all()
    if not rows:
        return None
    survey = rows[0]._asdict()
    for answer_column in ("item_id", "value", "text"):
        del survey[answer_column]
    return StoredSurvey(
        **survey,
        answers={row.item_id: (row.value, row.text) for row in rows if row.item_id is not None},
    )


def insert_survey(
    session: Session, values: dict[str, Any], *, officer_on_shift: bool = False
) -> int:
    """Store a new survey row; returns its id. With `officer_on_shift`, the row records the
    officer whose shift at its counter holds its `started_at` (docs/channels.md), looked up
    inside the INSERT itself (no statement of its own)."""
    if not officer_on_shift:
        return int(session.connection().execute(_INSERT_SURVEY, values).scalar_one())
    shift = {"shift_counter": values["counter_id"], "shift_at": values["started_at"]}
    statement = _INSERT_SURVEY_ON_SHIFT
    return int(session.connection().execute(statement, {**values, **shift}).scalar_one())


def write_answers(
    session: Session,
    response_id: int,
    *,
    columns: Mapping[str, Any] | None,
    added: Sequence[dict[str, Any]],
    changed: Sequence[dict[str, Any]],
    removed: Sequence[str],
) -> None:
    """Write a turn's changes to a stored survey: the columns a turn changes (`columns`:
    language, status, position, updated_at, completed_at; None for a row just inserted with
    them) and its answers: new rows, new values for kept items, removed items (`changed`
    rows: item_id, value, text, answered_at). On PostgreSQL the survey's UPDATE and the new
    answers' INSERT are one statement (the UPDATE a data-modifying CTE of the INSERT); on
    SQLite, two."""
    connection = session.connection()
    survey: dict[str, Any] = {"response_id": response_id}
    if columns is not None:
        survey.update({f"new_{name}": columns[name] for name in _TURN_COLUMNS})
    together = columns is not None and bool(added) and connection.dialect.name == "postgresql"
    if columns is not None and not together:
        connection.execute(_UPDATE_SURVEY, survey)
    if removed:
        connection.execute(_DELETE_ANSWERS, {"response_id": response_id, "item_ids": list(removed)})
    if changed:
        connection.execute(
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
    if together:
        rows = [{"response_id": response_id, **row} for row in added]
        _UPDATE_SURVEY_INSERTING_ANSWERS.execute(connection, survey, rows)
    elif added:
        connection.execute(_INSERT_ANSWERS, [{"response_id": response_id, **row} for row in added])


def counted_since(
    session: Session, *, respondent_hash: str, counter_id: int, since: datetime
) -> bool:
    """Whether this respondent has a survey of this counter counted since the given time
    (whatever its status: the counting decision is taken when a survey qualifies)."""
    parameters = {"respondent_hash": respondent_hash, "counter_id": counter_id, "since": since}
    return session.connection().execute(_COUNTED_SINCE, parameters).first() is not None


def set_counting(
    session: Session,
    response_id: int,
    *,
    counted: bool,
    repeat: bool,
    qualified_at: datetime | None,
) -> None:
    """Store a survey's counting decision (or withdraw it: all false and None)."""
    session.connection().execute(
        _SET_COUNTING,
        {
            "response_id": response_id,
            "counted": counted,
            "is_repeat": repeat,
            "qualified_at": qualified_at,
        },
    )


def expire_idle_responses(
    session: Session,
    *,
    idle_before: datetime,
    low_values: Iterable[int],
    now: datetime,
    rollup_zone: str | None = None,
) -> list[int]:
    """Mark surveys untouched since `idle_before` as partial, for reports; returns their ids.

    A counted survey among them (not held for review) that rated a factor with one of
    `low_values` gets its alert here, as it would have had it closed in a turn. The
    conversation keeps pointing at the survey and `updated_at` keeps the last activity, so
    the citizen's next message is still told that the survey timed out. A counted one
    enters the roll-up (`rollup_zone`: TIMEZONE, for a unit with no roll-up yet).
    """
    expired = [
        row.id
        for row in session.execute(
            update(SurveyResponse)
            .where(
                SurveyResponse.status == SurveyStatus.ACTIVE,
                SurveyResponse.updated_at < idle_before,
            )
            .values(status=SurveyStatus.PARTIAL)
            .returning(SurveyResponse.id)
        )
    ]
    if expired:
        put_in(session, expired, default_zone=rollup_zone)
        low = select(
            SurveyResponse.id,
            SurveyResponse.unit_id,
            SurveyResponse.counter_id,
            literal(AlertStatus.PENDING.value),
            literal(now, UTCDateTime()),
        ).where(
            SurveyResponse.id.in_(expired),
            SurveyResponse.counted.is_(True),
            SurveyResponse.quarantine.in_([state.value for state in QUARANTINE_IN_INDEX]),
            exists().where(
                Answer.response_id == SurveyResponse.id,
                Answer.factor.is_not(None),
                Answer.value.in_(list(low_values)),
            ),
        )
        session.execute(
            insert(Alert).from_select(
                ["response_id", "unit_id", "counter_id", "status", "created_at"], low
            )
        )
    return expired
