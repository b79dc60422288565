"""Acknowledging an alert: one code path for the leader's "Đã nhận" in the chat and the
console's "acknowledge" button, so both leave the same record (docs/console.md)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from storage import repositories as repo
from storage.models import AlertAcknowledgement, ConsoleUser, Leader

log = logging.getLogger("sipas_bot.acknowledgements")

NOTE_CHARS = 1000


def leader_name(leader: Leader) -> str:
    """How a leader is named in the console (the chat gives no name unless one was set)."""
    return leader.display_name or f"Lãnh đạo #{leader.id}"


def acknowledge_alert(
    session: Session,
    alert_id: int,
    *,
    now: datetime,
    leader: Leader | None = None,
    console_user: ConsoleUser | None = None,
    note: str | None = None,
) -> AlertAcknowledgement | None:
    """Record that a leader or a console user took note of an alert, with an optional note
    of what was done. A leader's acknowledgement also marks the message that told them of
    the alert as acknowledged, exactly as the "Đã nhận" button does. A leader's second
    acknowledgement without a note records nothing (None): a button tapped twice is one."""
    if (leader is None) == (console_user is None):
        raise ValueError("an acknowledgement is made by a leader or by a console user")
    note = (note or "").strip()[:NOTE_CHARS] or None
    if leader is not None:
        message = repo.leader_alert_message(session, alert_id, leader.id)
        if message is not None and message.acknowledged_at is None:
            message.acknowledged_at = now
        if note is None and repo.leader_acknowledged(session, alert_id, leader.id):
            return None
        ack = repo.add_alert_acknowledgement(
            session,
            alert_id=alert_id,
            leader_id=leader.id,
            by_name=leader_name(leader),
            note=note,
            now=now,
        )
    else:
        assert console_user is not None
        ack = repo.add_alert_acknowledgement(
            session,
            alert_id=alert_id,
            console_user_id=console_user.id,
            by_name=console_user.email,
            note=note,
            now=now,
        )
    log.info(
        "event=alert_ack alert=%d by=%s note=%s",
        alert_id,
        "leader" if leader is not None else "console_user",
        "yes" if note else "no",
    )
    return ack
