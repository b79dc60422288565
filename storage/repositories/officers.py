"""Officers and their shifts at counters, and the officer a survey records (docs/channels.md,
"Who served the citizen"). Each function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import Officer, Shift, ShiftSource


@dataclass(frozen=True)
class OfficerSpec:
    """An officer as the units file lists them under their unit."""

    code: str
    name: str


def upsert_officers(
    session: Session, unit_id: int, unit_code: str, specs: Sequence[OfficerSpec], *, now: datetime
) -> list[str]:
    """Create, rename, retire (absent from the file: `active` False, kept because surveys name
    them) or bring back the unit's officers; returns a line per change."""
    existing = {
        o.code: o for o in session.scalars(select(Officer).where(Officer.unit_id == unit_id))
    }
    changes: list[str] = []
    for spec in specs:
        officer = existing.pop(spec.code, None)
        if officer is None:
            session.add(
                Officer(
                    unit_id=unit_id,
                    code=spec.code,
                    name=spec.name,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            changes.append(f"officer {unit_code}/{spec.code}: created")
        elif (officer.name, officer.active) != (spec.name, True):
            officer.name, officer.active, officer.updated_at = spec.name, True, now
            changes.append(f"officer {unit_code}/{spec.code}: updated")
    for officer in existing.values():
        if officer.active:
            officer.active, officer.updated_at = False, now
            changes.append(f"officer {unit_code}/{officer.code}: no longer listed")
    return changes


def unit_officers(session: Session, unit_id: int, *, active_only: bool = True) -> list[Officer]:
    """The unit's officers by code (only those the units file lists, unless asked)."""
    query = select(Officer).where(Officer.unit_id == unit_id).order_by(Officer.code)
    if active_only:
        query = query.where(Officer.active.is_(True))
    return list(session.scalars(query))


def find_officer(session: Session, unit_id: int, code: str) -> Officer | None:
    """A listed (active) officer of the unit by code (any case)."""
    return session.scalar(
        select(Officer).where(
            Officer.unit_id == unit_id,
            Officer.code == code.strip().upper(),
            Officer.active.is_(True),
        )
    )


def officers_by_id(session: Session, officer_ids: Iterable[int]) -> dict[int, Officer]:
    wanted = sorted(set(officer_ids))
    if not wanted:
        return {}
    return {o.id: o for o in session.scalars(select(Officer).where(Officer.id.in_(wanted)))}


def _on_shift(counter_id: object, at: object) -> object:
    """The officer whose shift at the counter holds the moment (at most one: starting a
    shift ends the one before). Reads the index (counter_id, ended_at): shifts that ended
    before `at` are skipped by the index, leaving the counter's current shift."""
    return (
        select(Shift.officer_id)
        .where(Shift.counter_id == counter_id, Shift.ended_at > at, Shift.started_at <= at)
        .order_by(Shift.started_at.desc())
        .limit(1)
        .scalar_subquery()
    )


# Used by the statement that inserts a survey (storage/repositories/surveys.py), so that the
# officer costs no statement of its own; its parameters are `shift_counter` and `shift_at`.
OFFICER_ON_SHIFT = _on_shift(bindparam("shift_counter"), bindparam("shift_at"))


def current_shift(session: Session, counter_id: int, *, now: datetime) -> Shift | None:
    """The counter's shift holding `now`, with its officer, or None."""
    return session.scalar(
        select(Shift)
        .where(Shift.counter_id == counter_id, Shift.ended_at > now, Shift.started_at <= now)
        .order_by(Shift.started_at.desc())
        .limit(1)
        .options(selectinload(Shift.officer))
    )


def end_shifts(session: Session, counter_id: int, *, now: datetime) -> int:
    """End the counter's shift that holds `now` (if any) at `now`; returns how many ended."""
    return _end_shifts(session, Shift.counter_id == counter_id, now=now)


def end_officer_shifts(session: Session, officer_id: int, *, now: datetime) -> int:
    """End the officer's shifts that hold `now`, at any counter, at `now` (one person serves
    at one counter at a time); returns how many ended."""
    return _end_shifts(session, Shift.officer_id == officer_id, now=now)


def _end_shifts(session: Session, condition: ColumnElement[bool], *, now: datetime) -> int:
    result = session.execute(
        update(Shift)
        .where(condition, Shift.ended_at > now, Shift.started_at <= now)
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def lock_officer(session: Session, officer_id: int) -> None:
    """Take the officer's row lock until the transaction ends: two sign-ins of one officer at
    two counters, on any processes, run one after the other (each ends the other's shift).
    FOR NO KEY UPDATE, as `lock_counter`: a survey recording the officer is not blocked."""
    session.execute(
        select(Officer.id).where(Officer.id == officer_id).with_for_update(key_share=True)
    )


def add_shift(
    session: Session,
    *,
    officer_id: int,
    counter_id: int,
    started_at: datetime,
    ended_at: datetime,
    opened_via: ShiftSource,
) -> Shift:
    shift = Shift(
        officer_id=officer_id,
        counter_id=counter_id,
        started_at=started_at,
        ended_at=ended_at,
        opened_via=opened_via.value,
    )
    session.add(shift)
    session.flush()
    return shift
