"""Leaders: registration, subscriptions to units, digests, alerts and the messages that
carry them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base, BigId

if TYPE_CHECKING:
    from storage.models.directory import Counter, Unit
    from storage.models.messaging import OutboxMessage
    from storage.models.surveys import SurveyResponse


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
