"""The officials' console: its users, one-time sign-in links, sign-in attempts, and the
alerts it lists and acknowledges. Each function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    Alert,
    AlertAcknowledgement,
    ConsoleUser,
    ConsoleUserUnit,
    Leader,
    LeaderMessage,
    LeaderSubscription,
    SignInAttempt,
    SignInLink,
    SurveyResponse,
    Unit,
)

# --- users ---------------------------------------------------------------------------------


def find_console_user(session: Session, email: str) -> ConsoleUser | None:
    return session.scalar(
        select(ConsoleUser)
        .where(ConsoleUser.email == email)
        .options(selectinload(ConsoleUser.units).selectinload(ConsoleUserUnit.unit))
    )


def get_console_user(session: Session, user_id: int) -> ConsoleUser | None:
    return session.scalar(
        select(ConsoleUser)
        .where(ConsoleUser.id == user_id)
        .options(selectinload(ConsoleUser.units).selectinload(ConsoleUserUnit.unit))
    )


def list_console_users(session: Session) -> Sequence[ConsoleUser]:
    return session.scalars(
        select(ConsoleUser)
        .order_by(ConsoleUser.email)
        .options(selectinload(ConsoleUser.units).selectinload(ConsoleUserUnit.unit))
    ).all()


def add_console_user(
    session: Session,
    *,
    email: str,
    role: str,
    password_hash: str,
    units: Sequence[Unit],
    now: datetime,
) -> ConsoleUser:
    user = ConsoleUser(
        email=email,
        role=role,
        password_hash=password_hash,
        created_at=now,
        updated_at=now,
        units=[ConsoleUserUnit(unit=unit) for unit in units],
    )
    session.add(user)
    session.flush()
    return user


def remove_console_user(session: Session, user: ConsoleUser) -> None:
    """Delete the user; their acknowledgements stay, with the name they were made under."""
    session.execute(
        update(AlertAcknowledgement)
        .where(AlertAcknowledgement.console_user_id == user.id)
        .values(console_user_id=None)
    )
    session.delete(user)
    session.flush()


# --- leaders -------------------------------------------------------------------------------


def get_leader(session: Session, leader_id: int) -> Leader | None:
    return session.scalar(
        select(Leader)
        .where(Leader.id == leader_id)
        .options(selectinload(Leader.subscriptions).selectinload(LeaderSubscription.unit))
    )


# --- sign-in links -------------------------------------------------------------------------


def add_sign_in_link(
    session: Session,
    *,
    token_hash: str,
    leader_id: int,
    next_path: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    session.add(
        SignInLink(
            token_hash=token_hash,
            leader_id=leader_id,
            next_path=next_path,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()


def usable_sign_in_link(session: Session, token_hash: str, *, now: datetime) -> SignInLink | None:
    """The link, if it is unused and not expired (a look only: it stays usable)."""
    return session.scalar(
        select(SignInLink).where(
            SignInLink.token_hash == token_hash,
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now,
        )
    )


def consume_sign_in_link(
    session: Session, token_hash: str, *, now: datetime
) -> tuple[int, str] | None:
    """Mark the link used and return (leader id, next path); None when it is unknown, used or
    expired. One UPDATE … WHERE used_at IS NULL … RETURNING: of two requests with the same
    link, the database lets exactly one change the row."""
    row = session.execute(
        update(SignInLink)
        .where(
            SignInLink.token_hash == token_hash,
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(SignInLink.leader_id, SignInLink.next_path)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def forget_sign_in_links(session: Session, *, before: datetime) -> None:
    session.execute(delete(SignInLink).where(SignInLink.expires_at < before))


# --- sign-in attempts ----------------------------------------------------------------------


def record_sign_in_attempt(
    session: Session, *, email: str, address: str, succeeded: bool, now: datetime
) -> None:
    session.add(SignInAttempt(email=email, address=address, succeeded=succeeded, attempted_at=now))


def failed_sign_ins_since(
    session: Session, *, since: datetime, email: str | None = None, address: str | None = None
) -> int:
    """Failed password sign-ins since `since` for this e-mail, or from this address."""
    query = (
        select(func.count())
        .select_from(SignInAttempt)
        .where(SignInAttempt.succeeded.is_(False), SignInAttempt.attempted_at >= since)
    )
    if email is not None:
        query = query.where(SignInAttempt.email == email)
    if address is not None:
        query = query.where(SignInAttempt.address == address)
    return session.scalar(query) or 0


def forget_sign_in_attempts(session: Session, *, before: datetime) -> None:
    session.execute(delete(SignInAttempt).where(SignInAttempt.attempted_at < before))


# --- alerts --------------------------------------------------------------------------------


def list_alerts(
    session: Session,
    unit_ids: Sequence[int],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 200,
) -> Sequence[Alert]:
    """The units' alerts, newest first, with their survey's answers and acknowledgements."""
    query = (
        select(Alert)
        .where(Alert.unit_id.in_(list(unit_ids)))
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(limit)
        .options(
            selectinload(Alert.response).selectinload(SurveyResponse.answers),
            selectinload(Alert.counter),
            selectinload(Alert.unit),
        )
    )
    if start is not None:
        query = query.where(Alert.created_at >= start)
    if end is not None:
        query = query.where(Alert.created_at < end)
    return session.scalars(query).all()


def alert_counts(
    session: Session, unit_id: int, *, start: datetime, end: datetime
) -> tuple[int, int]:
    """How many alerts the unit had in [start, end), and how many of them someone
    acknowledged (in the chat or in the console)."""
    in_window = (Alert.unit_id == unit_id, Alert.created_at >= start, Alert.created_at < end)
    total = session.scalar(select(func.count()).select_from(Alert).where(*in_window))
    acknowledged = session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(
            *in_window,
            select(AlertAcknowledgement.id)
            .where(AlertAcknowledgement.alert_id == Alert.id)
            .exists(),
        )
    )
    return int(total or 0), int(acknowledged or 0)


def get_alert(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def alert_acknowledgements(
    session: Session, alert_ids: Sequence[int]
) -> dict[int, list[AlertAcknowledgement]]:
    found: dict[int, list[AlertAcknowledgement]] = {alert_id: [] for alert_id in alert_ids}
    for ack in session.scalars(
        select(AlertAcknowledgement)
        .where(AlertAcknowledgement.alert_id.in_(list(alert_ids)))
        .order_by(AlertAcknowledgement.acknowledged_at, AlertAcknowledgement.id)
    ):
        found[ack.alert_id].append(ack)
    return found


def add_alert_acknowledgement(
    session: Session,
    *,
    alert_id: int,
    by_name: str,
    note: str | None,
    now: datetime,
    leader_id: int | None = None,
    console_user_id: int | None = None,
) -> AlertAcknowledgement:
    ack = AlertAcknowledgement(
        alert_id=alert_id,
        leader_id=leader_id,
        console_user_id=console_user_id,
        by_name=by_name,
        note=note,
        acknowledged_at=now,
    )
    session.add(ack)
    session.flush()
    return ack


def leader_alert_message(session: Session, alert_id: int, leader_id: int) -> LeaderMessage | None:
    """The message that told this leader of this alert, if one did."""
    return session.scalar(
        select(LeaderMessage).where(
            LeaderMessage.alert_id == alert_id, LeaderMessage.leader_id == leader_id
        )
    )


def leader_acknowledged(session: Session, alert_id: int, leader_id: int) -> bool:
    return (
        session.scalar(
            select(func.count())
            .select_from(AlertAcknowledgement)
            .where(
                AlertAcknowledgement.alert_id == alert_id,
                AlertAcknowledgement.leader_id == leader_id,
            )
        )
        or 0
    ) > 0
