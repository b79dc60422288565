"""Zalo's side: events received (once each, and queued for the inbox), messages waiting in
the outbox, and each OA's token pair."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import ENVIRONMENT_OA, Base, BigId
from storage.models.states import InboxStatus, OutboxStatus


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
