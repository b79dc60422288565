"""Cases: feedback handled to the end (docs/cases.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base, BigId

if TYPE_CHECKING:
    from storage.models.directory import Counter, Unit
    from storage.models.messaging import OutboxMessage


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
