"""Console accounts: roles, who is signed in (a leader or a console user), password hashing
(Argon2id, argon2-cffi) and TOTP (pyotp). The CLI (`sipas-bot users`) and the sign-in pages
both use this module, so a rule about accounts lives here only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.errors import BadArguments
from storage.models import ConsoleUser, Leader

MIN_PASSWORD_CHARS = 12
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")
_HASHER = PasswordHasher()
TOTP_ISSUER = "sipas-bot"


class ConsoleRole(StrEnum):
    """What a console user may do: an operator acts (acknowledges alerts), a viewer reads."""

    OPERATOR = "operator"
    VIEWER = "viewer"


class PrincipalKind(StrEnum):
    LEADER = "leader"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    """Whoever is signed in, as Flask-Login wants a user: a leader from the chat, or a console
    user. `unit_ids` are the units they may see; None means every unit."""

    kind: PrincipalKind
    record_id: int
    name: str
    can_act: bool
    unit_ids: frozenset[int] | None

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.kind.value}:{self.record_id}"

    @classmethod
    def of_leader(cls, leader: Leader) -> Principal:
        return cls(
            kind=PrincipalKind.LEADER,
            record_id=leader.id,
            name=leader.display_name or f"Lãnh đạo #{leader.id}",
            can_act=True,
            unit_ids=frozenset(s.unit_id for s in leader.subscriptions),
        )

    @classmethod
    def of_user(cls, user: ConsoleUser) -> Principal:
        return cls(
            kind=PrincipalKind.USER,
            record_id=user.id,
            name=user.email,
            can_act=user.role == ConsoleRole.OPERATOR,
            unit_ids=frozenset(u.unit_id for u in user.units) if user.units else None,
        )


def parse_principal_id(text: str) -> tuple[PrincipalKind, int] | None:
    kind, _, number = text.partition(":")
    if kind not in {k.value for k in PrincipalKind} or not number.isdigit():
        return None
    return PrincipalKind(kind), int(number)


def clean_email(text: str) -> str:
    """An e-mail address as stored (trimmed, lower case); BadArguments when it is not one."""
    email = text.strip().lower()
    if not _EMAIL.match(email):
        raise BadArguments(f"{text.strip()!r} is not an e-mail address")
    return email


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadArguments(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    return _HASHER.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_password_check(password: str) -> None:
    """Spend the time of a real check, so that an unknown e-mail answers as slowly as a
    wrong password (the timing does not tell which accounts exist)."""
    check_password(_DUMMY_HASH, password)


_DUMMY_HASH = _HASHER.hash("not-a-password-of-anyone")


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def check_totp(secret: str, code: str, *, now: datetime) -> bool:
    """A 6-digit code of `now`'s 30-second step or the one either side (clock drift)."""
    code = code.strip().replace(" ", "")
    return code.isdigit() and pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1)
