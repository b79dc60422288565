"""The inbox (WEBHOOK_INTAKE=queued): webhook events stored at once, claimed by the workers
one at a time, each user's in arrival order. Each function takes a session; none commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import InboxEvent, InboxStatus, UTCDateTime
from storage.repositories._queue import due_heads

_inbox = cast(Table, InboxEvent.__table__)
# Per dialect, built once: the webhook runs it for every event.
_STORE_EVENT = {
    name: dialect_insert(_inbox)
    .values(
        dedupe_key=bindparam("key"),
        oa_id=bindparam("oa_id"),
        user_id=bindparam("user_id"),
        body=bindparam("body"),
        status=InboxStatus.PENDING.value,
        attempts=0,
        received_at=bindparam("now", type_=UTCDateTime()),
        next_attempt_at=bindparam("now", type_=UTCDateTime()),
    )
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(_inbox.c.id)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def store_inbox_event(
    session: Session, *, key: str, oa: str, user_id: str, body: bytes, now: datetime
) -> bool:
    """Store an event for a worker (one INSERT); False when an event of the same dedupe key
    is stored already (a re-delivery: pending, done, or given up)."""
    statement = _STORE_EVENT[session.get_bind().dialect.name]
    parameters = {"key": key, "oa_id": oa, "user_id": user_id, "body": body, "now": now}
    return session.connection().execute(statement, parameters).first() is not None


# Built once: an idle worker runs it every WEBHOOK_INBOX_POLL_MS.
_CLAIM_NEXT = (
    select(InboxEvent)
    .where(*due_heads(InboxEvent, InboxStatus.PENDING, now=bindparam("now", type_=UTCDateTime())))
    .order_by(InboxEvent.id)
    .limit(1)
    .with_for_update(skip_locked=True)
)


def claim_inbox_event(session: Session, *, now: datetime) -> InboxEvent | None:
    """Lock the oldest event whose turn has come, of a user with no older pending one, for
    the rest of the caller's transaction (FOR UPDATE SKIP LOCKED on PostgreSQL: another
    worker takes the next user's; SQLite has one writer). While it is locked, that user's
    later events are not eligible anywhere: its row is still their user's oldest pending."""
    return session.scalars(_CLAIM_NEXT, {"now": now}).first()


def finish_inbox_event(session: Session, event_id: int, *, now: datetime) -> None:
    """Mark an event's turn as run, in the turn's transaction. Only its dedupe key is kept
    (a re-delivery is not stored again): the body and the raw Zalo id go at once."""
    session.execute(
        update(_inbox)
        .where(_inbox.c.id == event_id)
        .values(
            status=InboxStatus.DONE.value, handled_at=now, last_error=None, body=b"", user_id=""
        )
    )


def record_inbox_failure(
    session: Session,
    event_id: int,
    *,
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Count a failed attempt at an event's turn: retried at `retry_at` (it stays its user's
    head meanwhile), or given up (None: dead, and the user's later events go on)."""
    values: dict[str, object] = {"attempts": _inbox.c.attempts + 1, "last_error": error}
    if retry_at is None:
        values.update(status=InboxStatus.DEAD.value, handled_at=now)
    else:
        values["next_attempt_at"] = retry_at
    session.execute(
        update(_inbox)
        .where(_inbox.c.id == event_id, _inbox.c.status == InboxStatus.PENDING.value)
        .values(**values)
    )


@dataclass(frozen=True)
class InboxBacklog:
    """The events waiting for a worker, and since when the oldest has waited."""

    pending: int
    oldest: datetime | None


def inbox_backlog(session: Session) -> InboxBacklog:
    """One query: how many events are pending, and the oldest one's arrival."""
    pending, oldest = session.execute(
        select(func.count(), func.min(InboxEvent.received_at)).where(
            InboxEvent.status == InboxStatus.PENDING
        )
    ).one()
    return InboxBacklog(int(pending), oldest)


def forget_inbox_events(session: Session, *, before: datetime) -> int:
    """Drop events run (or given up) that arrived before `before`: kept until then so that a
    re-delivery is not stored again (the caller keeps them as long as processed_events)."""
    result = session.execute(
        delete(InboxEvent).where(
            InboxEvent.status != InboxStatus.PENDING, InboxEvent.received_at < before
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
