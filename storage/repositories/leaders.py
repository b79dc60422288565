"""Leaders: registration, subscriptions, digests, leader messages and alerts. Each function
takes a session; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    Alert,
    AlertStatus,
    Conversation,
    Digest,
    DigestStatus,
    Leader,
    LeaderMessage,
    LeaderMessageStatus,
    LeaderSubscription,
    OutboxMessage,
    OutboxStatus,
    RegistrationFailure,
    RegistrationLockout,
    Unit,
)
from storage.repositories._dialect import dialect_insert

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
        dialect_insert(session, Leader)
        .values(user_id=user_id, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    leader = find_leader(session, user_id)
    assert leader is not None
    return leader


def subscribe(
    session: Session, leader: Leader, unit: Unit, *, now: datetime, pending: bool = False
) -> bool:
    """Subscribe a leader to a unit (pending: until an operator approves); False when they
    were already."""
    if any(s.unit_id == unit.id for s in leader.subscriptions):
        return False
    leader.subscriptions.append(LeaderSubscription(unit=unit, created_at=now, pending=pending))
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


def record_registration_failure(
    session: Session, user_id: str, *, unit_id: int | None, now: datetime
) -> None:
    session.add(RegistrationFailure(user_id=user_id, unit_id=unit_id, failed_at=now))
    session.flush()


def all_registration_failures_since(
    session: Session, *, since: datetime, unit_id: int | None = None
) -> int:
    """Wrong codes from every account since `since`; for one unit when `unit_id` is given."""
    query = (
        select(func.count())
        .select_from(RegistrationFailure)
        .where(RegistrationFailure.failed_at >= since)
    )
    if unit_id is not None:
        query = query.where(RegistrationFailure.unit_id == unit_id)
    return session.scalar(query) or 0


def active_lockout(
    session: Session, *, unit_id: int | None, now: datetime
) -> RegistrationLockout | None:
    """The lockout in force for this unit (None: the one for every unit), if any."""
    unit_condition = (
        RegistrationLockout.unit_id.is_(None)
        if unit_id is None
        else RegistrationLockout.unit_id == unit_id
    )
    return session.scalar(
        select(RegistrationLockout)
        .where(unit_condition, RegistrationLockout.locked_until > now)
        .order_by(RegistrationLockout.locked_until.desc())
        .limit(1)
    )


def add_lockout(
    session: Session, *, unit_id: int | None, failures: int, now: datetime, until: datetime
) -> RegistrationLockout:
    lockout = RegistrationLockout(
        unit_id=unit_id, failures=failures, locked_at=now, locked_until=until
    )
    session.add(lockout)
    session.flush()
    return lockout


def active_lockouts(session: Session, *, now: datetime) -> Sequence[RegistrationLockout]:
    return session.scalars(
        select(RegistrationLockout)
        .where(RegistrationLockout.locked_until > now)
        .options(selectinload(RegistrationLockout.unit))
        .order_by(RegistrationLockout.locked_at)
    ).all()


def approve_subscriptions(session: Session, leader: Leader, *, now: datetime) -> list[Unit]:
    """Approve the leader's pending subscriptions; returns their units."""
    approved = [s for s in leader.subscriptions if s.pending]
    for subscription in approved:
        subscription.pending = False
    if approved:
        leader.updated_at = now
    session.flush()
    return [s.unit for s in approved]


def forget_registration_failures(session: Session, *, before: datetime) -> None:
    session.execute(delete(RegistrationFailure).where(RegistrationFailure.failed_at < before))


def subscribed_leaders(session: Session, unit_id: int) -> Sequence[Leader]:
    return session.scalars(
        select(Leader)
        .join(LeaderSubscription, LeaderSubscription.leader_id == Leader.id)
        .where(LeaderSubscription.unit_id == unit_id, LeaderSubscription.pending.is_(False))
        .order_by(Leader.id)
    ).all()


def units_with_leaders(session: Session) -> Sequence[Unit]:
    return session.scalars(
        select(Unit)
        .where(
            select(LeaderSubscription.unit_id)
            .where(LeaderSubscription.unit_id == Unit.id, LeaderSubscription.pending.is_(False))
            .exists()
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
        dialect_insert(session, Digest)
        .values(
            unit_id=unit_id,
            kind=kind,
            period_start=period_start,
            period_end=period_end,
            claim_key=claim_key,
            status=DigestStatus.CLAIMED,
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
        .where(
            LeaderMessage.status == LeaderMessageStatus.QUEUED,
            OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.DEAD)),
        )
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
                (LeaderMessage.status == LeaderMessageStatus.EMAIL_PENDING)
                | (
                    (LeaderMessage.status == LeaderMessageStatus.EMAILING)
                    & (LeaderMessage.updated_at < stale_before)
                )
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
            (LeaderMessage.status == LeaderMessageStatus.EMAIL_PENDING)
            | (
                (LeaderMessage.status == LeaderMessageStatus.EMAILING)
                & (LeaderMessage.updated_at < stale_before)
            ),
        )
        .values(
            status=LeaderMessageStatus.EMAILING, updated_at=now, attempts=LeaderMessage.attempts + 1
        )
    )
    return bool(getattr(result, "rowcount", 0))


def add_alert(
    session: Session, *, response_id: int, unit_id: int, counter_id: int, now: datetime
) -> None:
    """Note a low-rated survey for the alert job (once per survey)."""
    session.execute(
        dialect_insert(session, Alert)
        .values(
            response_id=response_id,
            unit_id=unit_id,
            counter_id=counter_id,
            status=AlertStatus.PENDING,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["response_id"])
    )


def pending_alerts(session: Session, *, limit: int = 200) -> Sequence[Alert]:
    return session.scalars(
        select(Alert)
        .where(Alert.status == AlertStatus.PENDING)
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
                Alert.status == AlertStatus.NOTIFIED,
            )
        )
        or 0
    )


def held_alerts(session: Session, *, hour_before: datetime) -> Sequence[Alert]:
    """Alerts held back by the hourly cap whose hour has ended."""
    return session.scalars(
        select(Alert)
        .where(Alert.status == AlertStatus.HELD, Alert.hour_start < hour_before)
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


def drop_pending_alert(session: Session, response_id: int) -> None:
    """Forget a survey's alert that has not been sent (the survey was withdrawn)."""
    session.execute(
        delete(Alert).where(Alert.response_id == response_id, Alert.status == AlertStatus.PENDING)
    )
