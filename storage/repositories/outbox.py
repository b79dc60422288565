"""The outbox: queueing replies, claiming due messages under a lease, recording outcomes. Each
function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, insert, select, true, tuple_, update
from sqlalchemy.orm import Session, aliased

from storage.models import (
    ENVIRONMENT_OA,
    Conversation,
    DeadReason,
    OutboxMessage,
    OutboxStatus,
    UTCDateTime,
)
from storage.repositories._queue import due_heads

# --- outbox --------------------------------------------------------------------------------


_outbox = cast(Table, OutboxMessage.__table__)


# The columns of a queued message's row (`pending_messages`).
PENDING_COLUMNS = (
    "user_id",
    "oa_id",
    "body",
    "status",
    "attempts",
    "created_at",
    "next_attempt_at",
)


def pending_messages(
    user_id: str, bodies: Sequence[dict[str, Any]], *, now: datetime, oa: str = ENVIRONMENT_OA
) -> list[dict[str, Any]]:
    """The rows that queue `bodies` for one user of an OA, in order (`enqueue_replies`)."""
    return [_pending_message(user_id, body, now, oa) for body in bodies]


def _pending_message(
    user_id: str, body: dict[str, Any], now: datetime, oa: str = ENVIRONMENT_OA
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "oa_id": oa,
        "body": body,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


_ENQUEUE = insert(_outbox)


def enqueue_replies(
    session: Session,
    user_id: str,
    bodies: Sequence[dict[str, Any]],
    *,
    now: datetime,
    oa: str = ENVIRONMENT_OA,
) -> None:
    """Queue messages for one user of an OA, in order (their ids are the order they go out
    in)."""
    if bodies:
        session.connection().execute(_ENQUEUE, pending_messages(user_id, bodies, now=now, oa=oa))


def enqueue_message(
    session: Session,
    user_id: str,
    body: dict[str, Any],
    *,
    now: datetime,
    oa: str = ENVIRONMENT_OA,
) -> int:
    """Queue one message and return its id, so that a record can link it."""
    statement = insert(_outbox).returning(_outbox.c.id)
    return int(session.execute(statement, _pending_message(user_id, body, now, oa)).scalar_one())


def _round_robin(session: Session, due: Sequence[Any], limit: int) -> Select[Any]:
    """The ids of the first `limit` due heads taken round-robin over the OAs: each OA's
    oldest, then each OA's second, and so on.

    PostgreSQL: each OA's first `limit` heads only (LATERAL, walking the OA's pending
    messages in id order: ix_outbox_messages_status_oa_id), over the OAs that have pending
    messages (found by skipping from one to the next in the index, not by reading every
    pending row). So a claim reads at most OAs x `limit` heads whatever the backlog; ranking
    every due head instead made a claim grow with the backlog (132 ms at 50,000 pending),
    and a province's morning peak then spent PostgreSQL on claims (docs/benchmarks.md, 2).
    SQLite (one process, small queues): every due head ranked."""
    if session.get_bind().dialect.name != "postgresql":
        turn = (
            func.row_number()
            .over(partition_by=OutboxMessage.oa_id, order_by=OutboxMessage.id)
            .label("turn")
        )
        ranked = select(OutboxMessage.id, turn).where(*due).subquery()
    else:
        pending = OutboxMessage.status == OutboxStatus.PENDING.value
        first = select(func.min(OutboxMessage.oa_id).label("oa_id")).where(pending)
        oas = first.cte("pending_oas", recursive=True)
        later = aliased(OutboxMessage)
        oas = oas.union_all(
            select(
                select(func.min(later.oa_id))
                .where(later.status == OutboxStatus.PENDING.value, later.oa_id > oas.c.oa_id)
                .scalar_subquery()
            ).where(oas.c.oa_id.is_not(None))
        )
        heads = (
            select(OutboxMessage.id, OutboxMessage.oa_id)
            .where(OutboxMessage.oa_id == oas.c.oa_id, *due)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .lateral("heads")
        )
        ranked = (
            select(
                heads.c.id,
                func.row_number()
                .over(partition_by=heads.c.oa_id, order_by=heads.c.id)
                .label("turn"),
            )
            .select_from(oas.join(heads, true()))
            .subquery()
        )
    return select(ranked.c.id).order_by(ranked.c.turn, ranked.c.id).limit(limit)


def claim_due_messages(
    session: Session,
    *,
    now: datetime,
    lease_until: datetime,
    limit: int,
    owner: str | None = None,
    exclude: Collection[int] = (),
    fair: bool = False,
    skip_oas: Collection[str] = (),
) -> list[OutboxMessage]:
    """Lease the oldest pending message of each user whose turn has come, for `owner`
    (`exclude`: ids the owner is still working on, whose lease may have lapsed).

    Only a user's oldest pending message is ever eligible, so one user's messages go out in
    order and never two at a time; a user whose head message waits for a retry holds up
    nobody else. The lease makes a message killed mid-send eligible again once it lapses.

    "The head" is the user's oldest pending message (`due_heads`, shared with the inbox).

    A user is a user of one OA: the head is per (OA, user). With many OAs (`fair`), the due
    heads are taken round-robin over the OAs (each OA's oldest first, then each OA's second,
    …), so an OA with 10,000 queued takes only its share of `limit`; `skip_oas`: OAs whose
    app is paused (-32), not leased at all.
    """
    pending, due_now, is_head = due_heads(OutboxMessage, OutboxStatus.PENDING, now=now)
    due = (
        pending,
        due_now,
        (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
        is_head,
        OutboxMessage.id.not_in(list(exclude)) if exclude else true(),
        OutboxMessage.oa_id.not_in(list(skip_oas)) if skip_oas else true(),
    )
    if fair:
        # FOR UPDATE cannot take a window function: rank the due heads first, then lock the
        # chosen ones (a head another sender locked meanwhile is skipped).
        chosen = _round_robin(session, due, limit)
        # The row's own conditions again: PostgreSQL re-checks them on a row another sender
        # leased after this statement's snapshot (the subquery is not re-run).
        statement = (
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(chosen), *due[:3])
            .order_by(OutboxMessage.id)
        )
    else:
        statement = select(OutboxMessage).where(*due).order_by(OutboxMessage.id).limit(limit)
    candidates = session.scalars(statement.with_for_update(skip_locked=True)).all()
    for message in candidates:
        message.locked_until = lease_until
        message.lease_owner = owner
    session.flush()
    return list(candidates)


def renew_leases(session: Session, *, owner: str, until: datetime) -> int:
    """Extend every lease `owner` holds to `until` (its heartbeat); returns how many. A lease
    that lapsed and was taken by another sender is that sender's, and is not touched."""
    result = session.execute(
        update(_outbox)
        .where(
            _outbox.c.lease_owner == owner,
            _outbox.c.status == OutboxStatus.PENDING,
            _outbox.c.locked_until.is_not(None),
        )
        .values(locked_until=until)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def lease_owners(session: Session, *, now: datetime) -> list[str]:
    """The senders holding a lease that has not lapsed."""
    return list(
        session.scalars(
            select(OutboxMessage.lease_owner)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.locked_until >= now,
                OutboxMessage.lease_owner.is_not(None),
            )
            .distinct()
        )
    )


def release_leases(session: Session, owners: Collection[str]) -> int:
    """Free the leases of these (dead) senders: their messages can be leased at once."""
    if not owners:
        return 0
    result = session.execute(
        update(_outbox)
        .where(_outbox.c.lease_owner.in_(list(owners)), _outbox.c.status == OutboxStatus.PENDING)
        .values(locked_until=None, lease_owner=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def last_interactions(
    session: Session, user_ids: set[str], *, oa: str = ENVIRONMENT_OA
) -> dict[str, datetime]:
    """When each of these users of `oa` last did something Zalo counts as an interaction."""
    rows = session.execute(
        select(Conversation.user_id, Conversation.last_interaction_at).where(
            Conversation.oa_id == oa,
            Conversation.user_id.in_(user_ids),
            Conversation.last_interaction_at.is_not(None),
        )
    ).all()
    return {user_id: seen for user_id, seen in rows if seen is not None}


def latest_oa_of_user(session: Session, user_id: str) -> str | None:
    """The OA this Zalo user last interacted with (a user id is an OA's own: with many OAs,
    the one whose chat it is), or None when they have no conversation."""
    oa: str | None = session.scalar(
        select(Conversation.oa_id)
        .where(Conversation.user_id == user_id)
        .order_by(Conversation.last_interaction_at.desc().nulls_last())
        .limit(1)
    )
    return oa


def last_interactions_by_oa(
    session: Session, users: set[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """`last_interactions` for (OA, user) pairs of any OAs, in one query."""
    by_oa: dict[str, set[str]] = {}
    for oa, user_id in users:
        by_oa.setdefault(oa, set()).add(user_id)
    if len(by_oa) == 1:
        ((oa, user_ids),) = by_oa.items()
        return {(oa, u): seen for u, seen in last_interactions(session, user_ids, oa=oa).items()}
    rows = session.execute(
        select(Conversation.oa_id, Conversation.user_id, Conversation.last_interaction_at).where(
            tuple_(Conversation.oa_id, Conversation.user_id).in_(list(users)),
            Conversation.last_interaction_at.is_not(None),
        )
    ).all()
    return {(oa, user_id): seen for oa, user_id, seen in rows if seen is not None}


class OutcomeKind(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    DEAD = "dead"
    RELEASED = "released"


@dataclass(frozen=True)
class OutboxOutcome:
    """What became of one attempt at a leased message.

    `kind`: sent, retry (at `next_attempt_at`), dead (with its `reason`), or released (not
    tried: the lease is given back, the attempt not counted). `uncertain`: the attempt may
    have reached Zalo without an answer (it counts in `uncertain_sends`).
    """

    message_id: int
    owner: str | None
    kind: OutcomeKind
    sent_at: datetime | None = None
    zalo_message_id: str | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None
    reason: DeadReason | None = None
    uncertain: bool = False


_OUTBOX = cast(Table, OutboxMessage.__table__)


def _outcome_update(**values: Any) -> Any:
    # Only while this sender still owns the lease: if it lapsed and another sender leased
    # the message meanwhile, the row is that sender's to record.
    return (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id == bindparam("b_id"),
            _OUTBOX.c.lease_owner == bindparam("b_owner"),
            _OUTBOX.c.locked_until.is_not(None),
        )
        .values(locked_until=None, lease_owner=None, **values)
    )


_OUTCOME_UPDATES = {
    OutcomeKind.SENT: _outcome_update(
        status=OutboxStatus.SENT.value,
        attempts=_OUTBOX.c.attempts + 1,
        sent_at=bindparam("b_sent_at", type_=UTCDateTime()),
        zalo_message_id=bindparam("b_zalo_message_id"),
        last_error=None,
    ),
    OutcomeKind.RETRY: _outcome_update(
        attempts=_OUTBOX.c.attempts + 1,
        uncertain_sends=_OUTBOX.c.uncertain_sends + bindparam("b_uncertain"),
        next_attempt_at=bindparam("b_next_attempt_at", type_=UTCDateTime()),
        last_error=bindparam("b_error"),
    ),
    OutcomeKind.DEAD: _outcome_update(
        status=OutboxStatus.DEAD.value,
        attempts=_OUTBOX.c.attempts + 1,
        uncertain_sends=_OUTBOX.c.uncertain_sends + bindparam("b_uncertain"),
        last_error=bindparam("b_error"),
        dead_reason=bindparam("b_reason"),
    ),
    OutcomeKind.RELEASED: _outcome_update(),
}


def record_outbox_outcomes(session: Session, outcomes: Sequence[OutboxOutcome]) -> None:
    """Record attempts with one UPDATE per kind of outcome (an executemany), not a SELECT
    and an UPDATE per message."""
    by_kind: dict[OutcomeKind, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(
            {
                "b_id": outcome.message_id,
                "b_owner": outcome.owner,
                "b_uncertain": int(outcome.uncertain),
                "b_sent_at": outcome.sent_at,
                "b_zalo_message_id": outcome.zalo_message_id,
                "b_next_attempt_at": outcome.next_attempt_at,
                "b_error": outcome.error,
                "b_reason": outcome.reason,
            }
        )
    for kind, rows in by_kind.items():
        session.execute(_OUTCOME_UPDATES[kind], rows)


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
    message.status = OutboxStatus.PENDING
    message.dead_reason = None
    message.next_attempt_at = now
    message.created_at = now
    message.locked_until = None
    message.lease_owner = None
    message.uncertain_sends = 0
    return message


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    return {status: count for status, count in rows}


def oldest_due_message(session: Session, *, now: datetime) -> datetime | None:
    """When the longest-waiting pending message became due (None when none is due): how far
    behind the sender is."""
    return session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now
        )
    )


def recent_outbox(session: Session, *, limit: int = 100) -> Sequence[OutboxMessage]:
    return session.scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    ).all()


def user_outbox(
    session: Session, user_id: str, *, after_id: int = 0, limit: int = 200
) -> Sequence[OutboxMessage]:
    """One user's messages with an id above `after_id`, oldest first (the sandbox's thread)."""
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.user_id == user_id, OutboxMessage.id > after_id)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()


def last_outbox_id(session: Session) -> int:
    return session.scalar(select(func.max(OutboxMessage.id))) or 0
