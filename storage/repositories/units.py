"""Units and counters: the units file's upsert and lookups by code. Each function takes a
session; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    Counter,
    OfficialAccount,
    Unit,
)
from storage.repositories.officers import OfficerSpec, upsert_officers

# --- units and counters -------------------------------------------------------------------


@dataclass(frozen=True)
class CounterSpec:
    code: str
    name: str
    questionnaire: str | None = None


# What a unit's row holds from the units file, compared to tell a change.


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    counters: Sequence[CounterSpec]
    questionnaire: str | None = None
    timezone: str | None = None
    registration_code: str | None = None
    public_results: bool = False
    require_verified: bool = False
    leader_approval: bool = False
    opening_hours: str | None = None
    case_due_days: int | None = None
    officers: Sequence[OfficerSpec] = ()

    oa_id: str | None = None  # None: the environment's OA

    def settings(self) -> UnitSettings:
        return (
            self.name,
            self.questionnaire,
            self.timezone,
            self.registration_code,
            self.public_results,
            self.require_verified,
            self.leader_approval,
            self.opening_hours,
            self.case_due_days,
            self.oa_id,
        )


# What `upsert_units` compares to tell a changed unit: the settings of `UnitSpec` in order.
UnitSettings = tuple[
    str, str | None, str | None, str | None, bool, bool, bool, str | None, int | None, str | None
]


@dataclass(frozen=True)
class OaSpec:
    """An Official Account of the units file: where its secrets are, never the secrets."""

    oa_id: str
    name: str
    app_id: str
    app_secret_ref: str
    oa_secret_key_ref: str
    access_token_ref: str | None = None
    refresh_token_ref: str | None = None

    def settings(self) -> tuple[str, str, str, str, str | None, str | None]:
        return (
            self.name,
            self.app_id,
            self.app_secret_ref,
            self.oa_secret_key_ref,
            self.access_token_ref,
            self.refresh_token_ref,
        )


def upsert_oas(session: Session, oas: Iterable[OaSpec], *, now: datetime) -> list[str]:
    """Create or update the OAs; returns a line per change. An OA absent from the file is
    left alone: its units, conversations and messages refer to it."""
    changes: list[str] = []
    for spec in oas:
        row = session.get(OfficialAccount, spec.oa_id)
        if row is None:
            row = OfficialAccount(id=spec.oa_id, created_at=now)
            session.add(row)
            changes.append(f"OA {spec.oa_id}: created")
        elif oa_settings(row) == spec.settings():
            continue
        else:
            changes.append(f"OA {spec.oa_id}: updated")
        row.name, row.app_id = spec.name, spec.app_id
        row.app_secret_ref, row.oa_secret_key_ref = spec.app_secret_ref, spec.oa_secret_key_ref
        row.access_token_ref, row.refresh_token_ref = spec.access_token_ref, spec.refresh_token_ref
        row.updated_at = now
    session.flush()
    return changes


def oa_settings(row: OfficialAccount) -> tuple[str, str, str, str, str | None, str | None]:
    """What an OA's row holds from the units file (as `OaSpec.settings`): a change to it is
    an update, and a process builds the OA again."""
    return (
        row.name,
        row.app_id,
        row.app_secret_ref,
        row.oa_secret_key_ref,
        row.access_token_ref,
        row.refresh_token_ref,
    )


def list_oas(session: Session) -> Sequence[OfficialAccount]:
    """The OAs the deployment serves (none: the environment's one)."""
    return session.scalars(select(OfficialAccount).order_by(OfficialAccount.id)).all()


def upsert_units(session: Session, units: Iterable[UnitSpec], *, now: datetime) -> list[str]:
    """Create or update units and their counters; returns a line per change (empty: no change).

    Counters absent from the file are left alone: answers refer to them.
    """
    changes: list[str] = []
    for spec in units:
        unit = session.scalar(select(Unit).where(Unit.code == spec.code))
        if unit is None:
            unit = Unit(code=spec.code, created_at=now, updated_at=now)
            _apply_unit(unit, spec)
            session.add(unit)
            session.flush()
            changes.append(f"unit {spec.code}: created")
        elif _unit_settings(unit) != spec.settings():
            _apply_unit(unit, spec)
            unit.updated_at = now
            changes.append(f"unit {spec.code}: updated")
        for counter_spec in spec.counters:
            counter = session.scalar(select(Counter).where(Counter.code == counter_spec.code))
            wanted = (unit.id, counter_spec.name, counter_spec.questionnaire)
            if counter is None:
                session.add(
                    Counter(
                        unit_id=unit.id,
                        code=counter_spec.code,
                        name=counter_spec.name,
                        questionnaire=counter_spec.questionnaire,
                        created_at=now,
                        updated_at=now,
                    )
                )
                changes.append(f"counter {counter_spec.code}: created")
            elif (counter.unit_id, counter.name, counter.questionnaire) != wanted:
                counter.unit_id, counter.name, counter.questionnaire = wanted
                counter.updated_at = now
                changes.append(f"counter {counter_spec.code}: updated")
        changes += upsert_officers(session, unit.id, unit.code, spec.officers, now=now)
    session.flush()
    return changes


def _unit_settings(unit: Unit) -> UnitSettings:
    return (
        unit.name,
        unit.questionnaire,
        unit.timezone,
        unit.registration_code,
        unit.public_results,
        unit.require_verified,
        unit.leader_approval,
        unit.opening_hours,
        unit.case_due_days,
        unit.oa_id,
    )


def _apply_unit(unit: Unit, spec: UnitSpec) -> None:
    unit.name, unit.questionnaire, unit.timezone = spec.name, spec.questionnaire, spec.timezone
    unit.registration_code, unit.public_results = spec.registration_code, spec.public_results
    unit.require_verified = spec.require_verified
    unit.leader_approval = spec.leader_approval
    unit.opening_hours = spec.opening_hours
    unit.case_due_days = spec.case_due_days
    unit.oa_id = spec.oa_id


def find_counter(session: Session, code: str) -> Counter | None:
    return session.scalar(
        select(Counter).where(Counter.code == code.upper()).options(selectinload(Counter.unit))
    )


def find_counter_by_id(session: Session, counter_id: int) -> Counter | None:
    return session.scalar(
        select(Counter).where(Counter.id == counter_id).options(selectinload(Counter.unit))
    )


def find_unit(session: Session, code: str) -> Unit | None:
    return session.scalar(
        select(Unit).where(Unit.code == code.upper()).options(selectinload(Unit.counters))
    )


def find_units_by_code(session: Session, codes: Sequence[str]) -> dict[str, Unit]:
    """The units with these codes (any case) with their counters, by upper-case code; in one
    query whatever the number of codes (a province's report names a thousand)."""
    wanted = sorted({code.upper() for code in codes})
    if not wanted:
        return {}
    units = session.scalars(
        select(Unit).where(Unit.code.in_(wanted)).options(selectinload(Unit.counters))
    ).all()
    return {unit.code: unit for unit in units}


def list_units(session: Session, *, counters: bool = True) -> Sequence[Unit]:
    """Every unit by code, with its counters loaded (`counters=False`: the units alone, their
    counters loaded on first use; a province's list of a thousand units does not need its
    three thousand counters)."""
    query = select(Unit).order_by(Unit.code)
    if counters:
        query = query.options(selectinload(Unit.counters))
    return session.scalars(query).all()


_units = cast(Table, Unit.__table__)
_counters = cast(Table, Counter.__table__)
_DIRECTORY_STAMP = select(
    select(func.count()).select_from(_units).scalar_subquery(),
    select(func.max(_units.c.updated_at)).scalar_subquery(),
    select(func.count()).select_from(_counters).scalar_subquery(),
    select(func.max(_counters.c.updated_at)).scalar_subquery(),
)


def directory_stamp(session: Session) -> tuple[object, ...]:
    """What changes whenever a unit or a counter is added or changed: the number of rows and
    the latest `updated_at` of both tables (every write sets `updated_at`; none deletes).
    The per-process caches of units and counters (bot/directory.py) compare it."""
    return tuple(session.execute(_DIRECTORY_STAMP).one())
