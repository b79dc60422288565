"""The officials' console (docs/console.md): its users, their units, sign-in links and
attempts, and alerts acknowledged there."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base, BigId

if TYPE_CHECKING:
    from storage.models.directory import Unit


class AlertAcknowledgement(Base):
    """Someone took note of an alert: a leader's "Đã nhận" in the chat, or an acknowledgement
    in the console with a note of what was done. One alert may have several."""

    __tablename__ = "alert_acknowledgements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("leaders.id"))
    console_user_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id"))
    by_name: Mapped[str] = mapped_column(String(254))
    note: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime]


class ConsoleUser(Base):
    """An official who signs in to the console with an e-mail and a password (operators and
    viewers; leaders sign in from the chat instead). `role` is a ConsoleRole value; the
    password is kept as an Argon2id hash, the TOTP secret only when TOTP is turned on."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    units: Mapped[list[ConsoleUserUnit]] = relationship(
        cascade="all, delete-orphan", order_by="ConsoleUserUnit.unit_id"
    )


class ConsoleUserUnit(Base):
    """A unit a console user may see; a user without any sees every unit."""

    __tablename__ = "console_user_units"

    console_user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)

    unit: Mapped[Unit] = relationship()


class SignInLink(Base):
    """A one-time sign-in link for a leader. Only the SHA-256 of the token is kept: the
    database alone cannot sign anybody in. `used_at` is set by the one UPDATE that consumes
    it, so two requests with the same link cannot both succeed."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("leaders.id"), index=True)
    next_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SignInAttempt(Base):
    """A password sign-in, kept for rate limiting per account and per address (in the
    database, so every server process sees the same count)."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "attempted_at"),
        Index("ix_sign_in_attempts_address_at", "address", "attempted_at"),
    )
