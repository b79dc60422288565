"""Who and where: Official Accounts, units, their counters and officers, officers' shifts,
and the devices and visit codes tied to a counter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import ENVIRONMENT_OA, Base, BigId


class OfficialAccount(Base):
    """A Zalo Official Account this deployment serves (the units file's `oas`), and the app
    it is linked to. Secrets are never stored: `*_ref` names where to read them
    (`env:NAME` or `file:NAME`, bot/config.py `read_secret`)."""

    __tablename__ = "oas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # Zalo's OA id
    name: Mapped[str] = mapped_column(String(100))  # printed on the posters
    app_id: Mapped[str] = mapped_column(String(32), index=True)
    app_secret_ref: Mapped[str] = mapped_column(String(120))
    oa_secret_key_ref: Mapped[str] = mapped_column(String(120))
    access_token_ref: Mapped[str | None] = mapped_column(String(120))
    refresh_token_ref: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Unit(Base):
    """A ward, or a department of a provincial centre: the body whose service is rated."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    questionnaire: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str | None] = mapped_column(String(64))
    registration_code: Mapped[str | None] = mapped_column(String(64))
    public_results: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Proof of presence (docs/integrity.md): a static counter code starts no survey when set.
    require_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # SHA-256 of the unit's API key for POST /api/visits (`sipas-bot units api-key`).
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A leader's DANGKY for this unit waits for `sipas-bot leaders approve`.
    leader_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # bot/opening_hours.py, e.g. "mon-fri 07:30-17:00, sat 07:30-11:30"; None: no rule.
    opening_hours: Mapped[str | None] = mapped_column(String(200))
    # Working days a case of this unit is due in (None: CASES_DUE_WORKING_DAYS).
    case_due_days: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The OA its citizens and leaders talk to (None: the environment's OA).
    oa_id: Mapped[str | None] = mapped_column(ForeignKey("oas.id"), index=True)

    counters: Mapped[list[Counter]] = relationship(back_populates="unit", order_by="Counter.code")

    @property
    def oa_key(self) -> str:
        """The key of the unit's OA in conversations, outbox and tokens."""
        return self.oa_id or ENVIRONMENT_OA


class Counter(Base):
    """One desk of a one-stop section; its code is what the citizen sends as `#CODE`."""

    __tablename__ = "counters"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    questionnaire: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    unit: Mapped[Unit] = relationship(back_populates="counters")


class Device(Base):
    """A screen or tablet paired to a counter by a secret link an operator created.

    kind: a DeviceKind (a display of the counter's rotating code, or a kiosk taking surveys).
    Only a hash of the link's secret is kept; the device keeps the secret in a long-lived
    cookie.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    paired_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    counter: Mapped[Counter] = relationship()


class VisitCode(Base):
    """A one-time code that starts one survey at one counter (printed on a receipt).

    Only its hash is kept; `used_at` is set by the single UPDATE that consumes it.
    """

    __tablename__ = "visit_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Officer(Base):
    """A civil servant of a unit, as listed under the unit in the units file (its code and
    name: staff's personal data, shown only to the unit's leaders and operators;
    docs/privacy.md). `active` is False once the file no longer lists them: past surveys
    still name them."""

    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("unit_id", "code", name="uq_officers_unit_code"),)


class Shift(Base):
    """An officer signed in to a counter, from `started_at` until `ended_at`: the end of the
    unit's day when the shift starts, set earlier when it is ended or another shift starts
    at the counter. The officer on shift is the one whose shift holds the moment."""

    __tablename__ = "shifts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), index=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    # ShiftSource
    opened_via: Mapped[str] = mapped_column(String(16))

    officer: Mapped[Officer] = relationship()

    __table_args__ = (Index("ix_shifts_counter_ended", "counter_id", "ended_at"),)
