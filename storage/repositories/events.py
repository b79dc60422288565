"""Webhook deliveries already handled (dedupe by msg_id), and forgetting them. Each function
takes a session; none commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    ProcessedEvent,
)

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


def claim_statement(dialect: str) -> Any:
    """The INSERT … ON CONFLICT DO NOTHING RETURNING of `claim_event` for a dialect (the
    conversation's lock makes it a CTE of its own statement on PostgreSQL)."""
    return _CLAIM_EVENT[dialect]


def claim_event(session: Session, *, key: str, event_name: str, now: datetime) -> bool:
    """Record a delivery; False when the same delivery was recorded before.

    The insert takes part in the caller's transaction: if handling fails and rolls back,
    the claim goes too, and Zalo's retry is processed afresh.
    """
    statement = _CLAIM_EVENT[session.get_bind().dialect.name]
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT … ON CONFLICT.
    parameters = {"key": key, "event_name": event_name, "now": now}
    return session.connection().execute(statement, parameters).first() is not None


def forget_processed_events(session: Session, *, before: datetime) -> None:
    """Drop dedupe records received before `before`: the caller keeps them for as long as a
    copy of the event could still pass the webhook's timestamp window."""
    session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < before))


def probe_writable(session: Session, *, now: datetime) -> None:
    """Write a row as the webhook would, then roll the session back: raises what a webhook
    would meet (no table, a read-only or full database, a lock held too long). The only
    function here that ends the caller's transaction, which is its point."""
    try:
        session.execute(
            insert(_processed).values(
                dedupe_key="healthz:probe", event_name="healthz", received_at=now
            )
        )
    finally:
        session.rollback()
