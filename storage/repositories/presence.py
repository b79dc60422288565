"""Proof of presence: devices paired to counters, one-time visit codes, units' API keys.
Secrets arrive hashed; nothing here sees one. Each function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import Counter, Device, Unit, VisitCode

# --- devices -------------------------------------------------------------------------------


def add_device(
    session: Session, *, counter_id: int, kind: str, secret_hash: str, now: datetime
) -> Device:
    device = Device(kind=kind, counter_id=counter_id, secret_hash=secret_hash, created_at=now)
    session.add(device)
    session.flush()
    return device


def list_devices(session: Session) -> Sequence[Device]:
    return session.scalars(
        select(Device)
        .order_by(Device.id)
        .options(selectinload(Device.counter).selectinload(Counter.unit))
    ).all()


def find_device(session: Session, secret_hash: str) -> Device | None:
    """The device of this secret, unless revoked."""
    return session.scalar(
        select(Device)
        .where(Device.secret_hash == secret_hash, Device.revoked_at.is_(None))
        .options(selectinload(Device.counter).selectinload(Counter.unit))
    )


def revoke_devices(session: Session, device_ids: Sequence[int], *, now: datetime) -> list[int]:
    """Revoke these devices; returns the ids that were live."""
    rows = session.execute(
        update(Device)
        .where(Device.id.in_(list(device_ids)), Device.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(Device.id)
    )
    return sorted(row.id for row in rows)


# --- visit codes ---------------------------------------------------------------------------


def add_visit_codes(
    session: Session,
    *,
    counter_id: int,
    code_hashes: Sequence[str],
    now: datetime,
    expires_at: datetime,
) -> None:
    session.execute(
        insert(VisitCode),
        [
            {"code_hash": h, "counter_id": counter_id, "created_at": now, "expires_at": expires_at}
            for h in code_hashes
        ],
    )


@dataclass(frozen=True)
class VisitState:
    counter_id: int
    used: bool
    expired: bool


def peek_visit_code(session: Session, code_hash: str, *, now: datetime) -> VisitState | None:
    """What a visit code is, without using it (None: no such code)."""
    row = session.execute(
        select(VisitCode.counter_id, VisitCode.used_at, VisitCode.expires_at).where(
            VisitCode.code_hash == code_hash
        )
    ).one_or_none()
    if row is None:
        return None
    return VisitState(row.counter_id, row.used_at is not None, row.expires_at <= now)


def consume_visit_code(session: Session, code_hash: str, *, now: datetime) -> bool:
    """Use the code; True only for the one caller whose UPDATE took it (atomic: two citizens
    sending the same code at once cannot both start a survey)."""
    taken = session.execute(
        update(VisitCode)
        .where(
            VisitCode.code_hash == code_hash,
            VisitCode.used_at.is_(None),
            VisitCode.expires_at > now,
        )
        .values(used_at=now)
        .returning(VisitCode.id)
    ).first()
    return taken is not None


# --- units' API keys -----------------------------------------------------------------------


def set_unit_api_key(session: Session, unit_id: int, key_hash: str, *, now: datetime) -> None:
    session.execute(
        update(Unit).where(Unit.id == unit_id).values(api_key_hash=key_hash, updated_at=now)
    )


def find_unit_by_api_key(session: Session, key_hash: str) -> Unit | None:
    return session.scalar(
        select(Unit).where(Unit.api_key_hash == key_hash).options(selectinload(Unit.counters))
    )
