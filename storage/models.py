"""Typed SQLAlchemy models. Timestamps are timezone-aware and stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# --- states ---------------------------------------------------------------------------------
# Stored as their string values in String columns; compare and assign the members, never
# string literals. (Survey states belong to the engine: survey_flow.engine.SurveyStatus.)


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent (or to be retried at next_attempt_at)
    SENT = "sent"
    DEAD = "dead"  # given up; `dead_reason` says why


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored by the webhook, its turn not run yet (or to be retried)
    DONE = "done"  # its turn ran (kept while a re-delivery may come, as processed_events)
    DEAD = "dead"  # its turn failed every attempt; logged, the user's later events go on


class DeadReason(StrEnum):
    """Why the sender gave a message up; the e-mail fallback to leaders reads this."""

    WINDOW_CLOSED = "window_closed"  # Zalo's 7-day window (-230/-232, or known beforehand)
    REFUSED = "refused"  # a permanent Zalo error (bad parameter, blocked user, …)
    TOO_OLD = "too_old"  # retried until OUTBOX_MAX_AGE_HOURS
    MAYBE_DELIVERED = "maybe_delivered"  # twice no answer after sending: a third try could copy


class LeaderMessageStatus(StrEnum):
    QUEUED = "queued"  # in the outbox
    SENT = "sent"
    EMAIL_PENDING = "email_pending"
    EMAILING = "emailing"  # claimed by one process
    EMAILED = "emailed"
    UNDELIVERED = "undelivered"


class AlertStatus(StrEnum):
    PENDING = "pending"
    NOTIFIED = "notified"
    HELD = "held"  # over the hourly cap, waiting for the summary
    SUMMARISED = "summarised"
    NO_LEADERS = "no_leaders"


class QuarantineState(StrEnum):
    """Where a survey stands in review (docs/integrity.md): out of the index while HELD or
    REJECTED; NONE (never flagged) and RELEASED (flagged, let in by an operator) count."""

    NONE = "none"
    HELD = "held"
    RELEASED = "released"
    REJECTED = "rejected"


# The review states whose counted surveys are in the index.
QUARANTINE_IN_INDEX = (QuarantineState.NONE, QuarantineState.RELEASED)


class QuarantineRule(StrEnum):
    """Which suspicious pattern held a survey (bot/conversation/quarantine.py)."""

    OUTSIDE_HOURS = "outside_hours"  # started outside the unit's opening hours
    ACCOUNT_SURVEYS = "account_surveys"  # one account, too many counted surveys in a day
    NEW_ACCOUNT_BURST = "new_account_burst"  # a burst at one counter from new accounts


class DigestStatus(StrEnum):
    CLAIMED = "claimed"
    QUEUED = "queued"
    EMPTY = "empty"


class Channel(StrEnum):
    """Where a citizen answered a survey (docs/channels.md); every channel is counted by the
    same rule into the same index."""

    ZALO = "zalo"  # the chat with the Official Account
    KIOSK = "kiosk"  # the tablet paired to the counter
    WEB = "web"  # the web link /s/<code>, in the citizen's browser
    PAPER = "paper"  # a paper form entered by staff


class DeviceKind(StrEnum):
    """What a device paired to a counter is for."""

    DISPLAY = "display"  # shows the counter's rotating code
    KIOSK = "kiosk"  # takes surveys at the counter


class CaseKind(StrEnum):
    """What a citizen's feedback is (docs/cases.md says how it is told)."""

    SUGGESTION = "gop_y"  # góp ý
    COMPLAINT = "phan_anh"  # phản ánh
    RECOMMENDATION = "kien_nghi"  # kiến nghị
    QUESTION = "cau_hoi"  # câu hỏi


class CaseStatus(StrEnum):
    NEW = "moi"  # mới
    IN_PROGRESS = "dang_xu_ly"  # đang xử lý (assigned)
    ANSWERED = "da_tra_loi"  # đã trả lời
    CLOSED = "da_dong"  # đã đóng (resolved, with a resolution)


class CaseSource(StrEnum):
    """What opened a case."""

    COMMENT = "comment"  # a survey's free-text answer
    LOW_RATING = "low_rating"  # a counted survey with a factor rated 1–2, and no comment
    MESSAGE = "message"  # a message to the OA outside a survey
    NOTE = "note"  # a message typed during a survey that answered no question


class CaseAction(StrEnum):
    """One line of a case's audit trail."""

    OPENED = "opened"
    ASSIGNED = "assigned"
    REPLIED = "replied"
    REPLY_SENT = "reply_sent"
    REPLY_UNDELIVERABLE = "reply_undeliverable"
    CLOSED = "closed"
    CONTACT_GIVEN = "contact_given"
    OVERDUE_ALERT = "overdue_alert"
    WITHDRAWN = "withdrawn"  # closed because its survey was taken back (a paper form undone)


class ReplyDelivery(StrEnum):
    QUEUED = "queued"  # in the outbox
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # Zalo's window closed (or the citizen's id is gone)
    FAILED = "failed"  # Zalo refused it for another reason


class ShiftSource(StrEnum):
    """How an officer's shift at a counter was started (docs/channels.md, "Who served the
    citizen")."""

    KIOSK = "kiosk"  # the "Cán bộ" control on the counter's paired tablet
    CONSOLE = "console"  # the counter's page in the console, by a leader or an operator
    API = "api"  # the one-stop case system, POST /api/shifts


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that is always aware and in UTC, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


ENVIRONMENT_OA = ""
"""The key of the one OA set in the environment (ZALO_OA_ID, …) when the units file names
none: the `oa_id` of its conversations, outbox messages and token pair (docs/deploy.md)."""


class OfficialAccount(Base):
    """A Zalo Official Account this deployment serves (the units file's `oas`), and the app
    it is linked to. Secrets are never stored: `*_ref` names where to read them
    (`env:NAME` or `file:NAME`, bot/config.py `read_secret`)."""

    __tablename__ = "oas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # Zalo's OA id
    name: Mapped[str] = mapped_column(String(100))  # printed on the posters
    app_id: Mapped[str] = mapped_column(String(32), index=True)
    app_secret_ref: Mapped[str] = mapped_column(String(120))
    oa_secret_key_ref: Mapped[str] = mapped_column(String(120))
    access_token_ref: Mapped[str | None] = mapped_column(String(120))
    refresh_token_ref: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Unit(Base):
    """A ward, or a department of a provincial centre: the body whose service is rated."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    questionnaire: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str | None] = mapped_column(String(64))
    registration_code: Mapped[str | None] = mapped_column(String(64))
    public_results: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Proof of presence (docs/integrity.md): a static counter code starts no survey when set.
    require_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # SHA-256 of the unit's API key for POST /api/visits (`sipas-bot units api-key`).
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A leader's DANGKY for this unit waits for `sipas-bot leaders approve`.
    leader_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # bot/opening_hours.py, e.g. "mon-fri 07:30-17:00, sat 07:30-11:30"; None: no rule.
    opening_hours: Mapped[str | None] = mapped_column(String(200))
    # Working days a case of this unit is due in (None: CASES_DUE_WORKING_DAYS).
    case_due_days: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The OA its citizens and leaders talk to (None: the environment's OA).
    oa_id: Mapped[str | None] = mapped_column(ForeignKey("oas.id"), index=True)

    counters: Mapped[list[Counter]] = relationship(back_populates="unit", order_by="Counter.code")

    @property
    def oa_key(self) -> str:
        """The key of the unit's OA in conversations, outbox and tokens."""
        return self.oa_id or ENVIRONMENT_OA


class Counter(Base):
    """One desk of a one-stop section; its code is what the citizen sends as `#CODE`."""

    __tablename__ = "counters"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    questionnaire: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    unit: Mapped[Unit] = relationship(back_populates="counters")


class Conversation(Base):
    """One Zalo user's chat with the OA: the language and the survey open right now.

    The row is locked while an event of that user is handled, which serialises
    concurrent deliveries for one user in the database rather than in a process.
    """

    __tablename__ = "conversations"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Per (user, OA): a Zalo user id is the user's id with one OA (ENVIRONMENT_OA: the one).
    oa_id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=ENVIRONMENT_OA, server_default=text("''")
    )
    language: Mapped[str] = mapped_column(String(8), default="vi")
    open_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"))
    last_interaction_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The user's message allowance (bot/conversation/limits.py), read and written under the
    # row lock the turn already holds: tokens left at `allowance_at`, and whether the user
    # was told they are sending too fast.
    allowance_tokens: Mapped[float | None] = mapped_column(Float)
    allowance_at: Mapped[datetime | None]
    throttled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SurveyResponse(Base):
    """One citizen's survey at one counter, from the scan to the end (or to giving up).

    The Zalo user id is not stored here: `respondent_hash` is enough to spot repeats and
    keeps the answers apart from who gave them.
    """

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    respondent_hash: Mapped[str] = mapped_column(String(64), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    questionnaire_id: Mapped[str] = mapped_column(String(64))
    questionnaire_version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The counting decision, taken once, when the survey first meets the rule of
    # survey_flow/counting.py: `counted` (it is the citizen's survey of this counter for the
    # cooldown, in the index unless quarantined) or `is_repeat` (the same citizen had a
    # counted survey of this counter within SURVEY_COOLDOWN_HOURS). Neither, with no
    # `qualified_at`: the survey never counts in any figure (no answer, or too few).
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    qualified_at: Mapped[datetime | None]
    # How the survey was started (survey_flow.states.StartMethod): static | rotating | visit |
    # device | paper.
    start_method: Mapped[str] = mapped_column(String(16), default="static", server_default="static")
    # Review of a counted survey that matched a suspicious pattern, decided with `counted`
    # (QuarantineState, QuarantineRule); `reviewed_at`: when an operator released or
    # rejected it.
    quarantine: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    quarantine_rule: Mapped[str | None] = mapped_column(String(32))
    reviewed_at: Mapped[datetime | None]
    # Where it was answered (Channel); the tablet that took it, for a kiosk survey (its
    # per-hour limit counts these).
    channel: Mapped[str] = mapped_column(
        String(16), default=Channel.ZALO.value, server_default=Channel.ZALO.value
    )
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    # The officer on shift at the counter when the survey started (None: no shift, or a
    # paper form); set once, by the statement that stores the survey.
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", order_by="Answer.id", cascade="all, delete-orphan"
    )
    counter: Mapped[Counter] = relationship()
    unit: Mapped[Unit] = relationship()

    __table_args__ = (
        Index("ix_survey_responses_unit_started", "unit_id", "started_at"),
        Index("ix_survey_responses_counter_started", "counter_id", "started_at"),
        Index("ix_survey_responses_respondent_counter", "respondent_hash", "counter_id"),
        Index("ix_survey_responses_quarantine", "quarantine"),
        Index("ix_survey_responses_device_started", "device_id", "started_at"),
    )


class Device(Base):
    """A screen or tablet paired to a counter by a secret link an operator created.

    kind: a DeviceKind (a display of the counter's rotating code, or a kiosk taking surveys).
    Only a hash of the link's secret is kept; the device keeps the secret in a long-lived
    cookie.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    paired_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    counter: Mapped[Counter] = relationship()


class VisitCode(Base):
    """A one-time code that starts one survey at one counter (printed on a receipt).

    Only its hash is kept; `used_at` is set by the single UPDATE that consumes it.
    """

    __tablename__ = "visit_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Answer(Base):
    """The answer to one item: a value 1–5 or a choice number, a text, or a skip (both null)."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id"))
    item_id: Mapped[str] = mapped_column(String(64))
    # Copied from the questionnaire item when stored, so the index is one SQL aggregate.
    factor: Mapped[int | None]
    criterion: Mapped[int | None]
    value: Mapped[int | None]
    text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]

    response: Mapped[SurveyResponse] = relationship(back_populates="answers")

    __table_args__ = (
        UniqueConstraint("response_id", "item_id"),
        Index("ix_answers_factor_response", "factor", "response_id"),
    )


class QuestionnaireVersion(Base):
    """The text of every questionnaire version ever used, so that stored answers and surveys
    in progress are always read with the form they were asked with."""

    __tablename__ = "questionnaire_versions"

    questionnaire_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_text: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime]


class ProcessedEvent(Base):
    """A webhook delivery already handled; Zalo re-sends the same body when it saw no 200."""

    __tablename__ = "processed_events"

    dedupe_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_name: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]


class InboxEvent(Base):
    """A webhook event stored to be run by a worker (WEBHOOK_INTAKE=queued): the raw body as
    signed, received and checked by the webhook, which answered 200 at once.

    `dedupe_key` is the event's (as processed_events): a re-delivery is not stored twice.
    A done event keeps only that key and its times (the body and user id are emptied); one
    given up keeps its body for a look until it is forgotten with the dedupe records.
    A worker runs the turn, and marks the row done, in the transaction that locked the row
    (FOR UPDATE SKIP LOCKED): a worker killed meanwhile leaves it pending. Only a user's
    oldest pending event is ever eligible, so a user's events run in their arrival order.
    """

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    oa_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the bytes Zalo signed, as they came
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_inbox_events_status_oa_user", "status", "oa_id", "user_id", "id"),
        # The claim's scan: the pending events in arrival order (not every event run).
        Index("ix_inbox_events_status_id", "status", "id"),
    )


class OutboxMessage(Base):
    """A message to a Zalo user, written in the same transaction as the state change.

    `body` is our own shape, `{"text": ..., "buttons": [{"title", "payload"}]}`: how it is
    rendered for Zalo is the client's business. While a sender works on it, `locked_until`
    is its lease and `lease_owner` the sender ("host/pid/random"), which renews the lease
    while it lives; a starting sender frees the leases of owners it knows are dead.
    `uncertain_sends` counts attempts that may have reached Zalo without an answer
    (timeouts): after two, it is not sent again (at most one duplicate).
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    # The OA that sends it (its token, its app's rate limit); ENVIRONMENT_OA: the one.
    oa_id: Mapped[str] = mapped_column(
        String(32), default=ENVIRONMENT_OA, server_default=text("''")
    )
    body: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    uncertain_sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_reason: Mapped[str | None] = mapped_column(String(16))
    zalo_message_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_outbox_messages_status_user", "status", "user_id", "id"),
        Index("ix_outbox_messages_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_status_oa_user", "status", "oa_id", "user_id", "id"),
        # a claim walks the pending ones in id order (per OA with many) and stops at `limit`
        Index("ix_outbox_messages_status_id", "status", "id"),
        Index("ix_outbox_messages_status_oa_id", "status", "oa_id", "id"),
    )


class ZaloToken(Base):
    """An OA's current token pair: one row per OA (`oa_id`; the environment's OA is row 1),
    replaced only under its own row lock.

    Zalo's refresh token is single use: a refresh that is not committed before the next one
    starts loses the pair for good, so every refresh happens while holding this row.
    """

    __tablename__ = "zalo_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    refresh_failed_at: Mapped[datetime | None]
    refresh_error: Mapped[str | None] = mapped_column(Text)
    oa_id: Mapped[str] = mapped_column(
        String(32), unique=True, default=ENVIRONMENT_OA, server_default=text("''")
    )


# --- leaders: registration, digests, alerts -------------------------------------------------


class Leader(Base):
    """A unit leader who receives digests and alerts in the chat (registered with DANGKY).

    `email` is where a digest goes when Zalo's 7-day window has closed on them.
    """

    __tablename__ = "leaders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    subscriptions: Mapped[list[LeaderSubscription]] = relationship(
        back_populates="leader", cascade="all, delete-orphan", order_by="LeaderSubscription.unit_id"
    )


class LeaderSubscription(Base):
    """A leader receives this unit's digests and alerts; one leader may follow several units."""

    __tablename__ = "leader_subscriptions"

    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    # Registered with the unit's code but not yet approved (units with leader_approval):
    # nothing is sent to a pending subscription.
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]

    leader: Mapped[Leader] = relationship(back_populates="subscriptions")
    unit: Mapped[Unit] = relationship()


class RegistrationFailure(Base):
    """A DANGKY with a wrong code: counted per user, per unit it named, and in all, to
    rate-limit guessing."""

    __tablename__ = "registration_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    # The unit whose code the guess began with (`HVT-…`), when it named one.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    failed_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_registration_failures_user_failed", "user_id", "failed_at"),
        Index("ix_registration_failures_failed", "failed_at"),
        Index("ix_registration_failures_unit_failed", "unit_id", "failed_at"),
    )


class RegistrationLockout(Base):
    """Registration closed after too many wrong codes from all accounts: for one unit
    (unit_id) or for every unit (unit_id null) until `locked_until`. The operator is told in
    the log and by `sipas-bot leaders list`."""

    __tablename__ = "registration_lockouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    failures: Mapped[int] = mapped_column(Integer)
    locked_at: Mapped[datetime]
    locked_until: Mapped[datetime]

    unit: Mapped[Unit | None] = relationship()

    __table_args__ = (Index("ix_registration_lockouts_until", "locked_until"),)


class Digest(Base):
    """A unit's digest for one period (kind day | week | month).

    A scheduled digest carries `claim_key` = "<unit id>:<kind>:<period start>", unique: the
    process whose INSERT of that key succeeds is the one that sends the period, so several
    server processes (or a re-run) never send it twice. Manual sends have no key.
    """

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    claim_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # claimed | queued | empty
    responses: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    unit: Mapped[Unit] = relationship()


class LeaderMessage(Base):
    """One digest or alert for one leader, and how it reached them.

    status: queued (in the outbox) → sent; or email_pending → emailing → emailed; or
    undelivered (the window closed and no e-mail could be sent). `outbox_message_id` is how
    the fallback finds a message the sender dead-lettered.
    """

    __tablename__ = "leader_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(16))  # digest | alert | alert_summary
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id"))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    # The alert this message tells of (kind alert): its "Đã nhận" acknowledges that alert.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)

    leader: Mapped[Leader] = relationship()
    unit: Mapped[Unit] = relationship()
    outbox_message: Mapped[OutboxMessage | None] = relationship()

    __table_args__ = (
        UniqueConstraint("digest_id", "leader_id"),
        Index("ix_leader_messages_status", "status"),
    )


class Alert(Base):
    """A counted survey that ended with a factor rated 1–2, written in the survey's own
    transaction (or the expiry job's).

    status: pending → notified (sent to the unit's leaders) | held (over the hourly cap) →
    summarised (in the one message sent for the rest of that hour) | no_leaders.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id"), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    status: Mapped[str] = mapped_column(String(16))
    hour_start: Mapped[datetime | None]
    created_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]

    response: Mapped[SurveyResponse] = relationship()
    counter: Mapped[Counter] = relationship()
    unit: Mapped[Unit] = relationship()

    __table_args__ = (
        Index("ix_alerts_status", "status"),
        Index("ix_alerts_unit_hour", "unit_id", "hour_start"),
    )


# --- cases: feedback handled to the end (docs/cases.md) ---------------------------------------


class CaseSequence(Base):
    """The last case number given in a year: `PA-<year>-<number>` is allocated by one UPDATE
    of this row, which the database serialises between processes."""

    __tablename__ = "case_sequences"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """A citizen's comment, complaint, recommendation or question, from receipt to closing.

    The author is known by the respondent hash (as beside their answers); the Zalo id that a
    reply is sent to, and a phone number they chose to give, live apart in `CaseContact`.
    """

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counters.id"))
    # The survey it came from (a comment or a low rating): one case per survey at most.
    response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    # The survey's ratings, item id → value, when it came from a survey.
    scores: Mapped[dict[str, Any] | None]
    respondent_hash: Mapped[str] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    due_on: Mapped[date] = mapped_column(Date)
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    # A reply could not reach the citizen on Zalo (the 7-day window had closed).
    undeliverable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    overdue_alerted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    unit: Mapped[Unit | None] = relationship()
    counter: Mapped[Counter | None] = relationship()
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )
    replies: Mapped[list[CaseReply]] = relationship(
        back_populates="case", order_by="CaseReply.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_cases_unit_received", "unit_id", "received_at"),
        Index("ix_cases_status_due", "status", "due_on"),
    )


class CaseEvent(Base):
    """The audit trail: every change of a case and every reply, who did it and when."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="events")


class CaseReply(Base):
    """The ward's answer to a case, written once with its outbox message (`reply_key` is
    unique: the same reply sent twice, by a retry or a second worker, is one row)."""

    __tablename__ = "case_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reply_key: Mapped[str] = mapped_column(String(64), unique=True)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id"), index=True
    )
    delivery: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship(back_populates="replies")
    outbox_message: Mapped[OutboxMessage | None] = relationship()


class CaseContact(Base):
    """How to reach a case's author: their Zalo id (dropped with their conversation once
    Zalo's window has closed) and a phone number they chose to send. Personal data, kept apart
    from the case (docs/privacy.md)."""

    __tablename__ = "case_contacts"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]


# --- the officials' console (docs/console.md) ------------------------------------------------


class AlertAcknowledgement(Base):
    """Someone took note of an alert: a leader's "Đã nhận" in the chat, or an acknowledgement
    in the console with a note of what was done. One alert may have several."""

    __tablename__ = "alert_acknowledgements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("leaders.id"))
    console_user_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id"))
    by_name: Mapped[str] = mapped_column(String(254))
    note: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime]


class ConsoleUser(Base):
    """An official who signs in to the console with an e-mail and a password (operators and
    viewers; leaders sign in from the chat instead). `role` is a ConsoleRole value; the
    password is kept as an Argon2id hash, the TOTP secret only when TOTP is turned on."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    units: Mapped[list[ConsoleUserUnit]] = relationship(
        cascade="all, delete-orphan", order_by="ConsoleUserUnit.unit_id"
    )


class ConsoleUserUnit(Base):
    """A unit a console user may see; a user without any sees every unit."""

    __tablename__ = "console_user_units"

    console_user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)

    unit: Mapped[Unit] = relationship()


class SignInLink(Base):
    """A one-time sign-in link for a leader. Only the SHA-256 of the token is kept: the
    database alone cannot sign anybody in. `used_at` is set by the one UPDATE that consumes
    it, so two requests with the same link cannot both succeed."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id"), index=True)
    next_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SignInAttempt(Base):
    """A password sign-in, kept for rate limiting per account and per address (in the
    database, so every server process sees the same count)."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "attempted_at"),
        Index("ix_sign_in_attempts_address_at", "address", "attempted_at"),
    )


class PaperFormSequence(Base):
    """The last paper form number printed for a unit: `sipas-bot print paper-form` takes the
    next ones by one UPDATE of this row, which the database serialises between processes."""

    __tablename__ = "paper_form_sequences"

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id"), primary_key=True, autoincrement=False
    )
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class PaperForm(Base):
    """A paper form entered (docs/channels.md): its number is unique in its unit, so a form
    is stored once; who entered it (a console principal, `cli:<os user>` or
    `import:<file name>`) and when; the survey it made (channel paper)."""

    __tablename__ = "paper_forms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    number: Mapped[int] = mapped_column(Integer)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id"), unique=True)
    entered_by: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[datetime]

    response: Mapped[SurveyResponse] = relationship()

    __table_args__ = (
        UniqueConstraint("unit_id", "number"),
        Index("ix_paper_forms_entered_by_at", "entered_by", "entered_at"),
    )


# --- the daily roll-up of the index's counts (storage/repositories/rollup/) -----------------


class RollupGrain(StrEnum):
    """How long a roll-up row's `day` lasts: that local day, or the local month it starts."""

    DAY = "day"
    MONTH = "month"


class RollupUnit(Base):
    """A unit whose counted surveys are in the roll-up, kept in the local days of `zone`
    (the unit's time zone, or TIMEZONE when it has none, as when the row was written)."""

    __tablename__ = "rollup_units"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime]


class RollupSurveys(Base):
    """How many qualified surveys (completed or partial; counted or repeat; in the index or
    held for review) a counter had on a local day or month, per channel, start method,
    status and review state: what storage.stats.response_counts counts."""

    __tablename__ = "rollup_surveys"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_method: Mapped[str] = mapped_column(String(16), primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    quarantine: Mapped[str] = mapped_column(String(16), primary_key=True)
    surveys: Mapped[int] = mapped_column(BigInteger)


class CriterionCounts:
    """The last keys and the counts of both tally tables of the roll-up (a mixin's columns
    come after the table's own): the criterion, and its rated answers. `criterion` 0 and
    `item_key` "" stand for none (a key column cannot be NULL)."""

    factor: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    criterion: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    valid: Mapped[int] = mapped_column(BigInteger)
    satisfied: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)


class RollupTally(CriterionCounts, Base):
    """The rated answers (1–5) of the surveys in the index of a counter on a local day or
    month, per channel, start method and criterion: what storage.stats.criterion_tallies
    counts."""

    __tablename__ = "rollup_tallies"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_method: Mapped[str] = mapped_column(String(16), primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)


class RollupUnitSurveys(Base):
    """The month rows of `rollup_surveys` summed over a unit's counters, channels and start
    methods: one row per unit, local month (`month` the 1st) and kind, so that the province
    view reads a few rows per unit with nothing to sum (docs/reports.md, "The roll-up")."""

    __tablename__ = "rollup_unit_surveys"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    quarantine: Mapped[str] = mapped_column(String(16), primary_key=True)
    surveys: Mapped[int] = mapped_column(BigInteger)


class RollupUnitTally(CriterionCounts, Base):
    """The month rows of `rollup_tallies` summed over a unit's counters, channels and start
    methods (see RollupUnitSurveys)."""

    __tablename__ = "rollup_unit_tallies"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)


class Officer(Base):
    """A civil servant of a unit, as listed under the unit in the units file (its code and
    name: staff's personal data, shown only to the unit's leaders and operators;
    docs/privacy.md). `active` is False once the file no longer lists them: past surveys
    still name them."""

    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("unit_id", "code", name="uq_officers_unit_code"),)


class Shift(Base):
    """An officer signed in to a counter, from `started_at` until `ended_at`: the end of the
    unit's day when the shift starts, set earlier when it is ended or another shift starts
    at the counter. The officer on shift is the one whose shift holds the moment."""

    __tablename__ = "shifts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), index=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    # ShiftSource
    opened_via: Mapped[str] = mapped_column(String(16))

    officer: Mapped[Officer] = relationship()

    __table_args__ = (Index("ix_shifts_counter_ended", "counter_id", "ended_at"),)
