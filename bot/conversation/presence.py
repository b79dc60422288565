"""Proof of presence without identity: the codes that show a citizen was at the counter.

Two kinds, both optional per unit (docs/integrity.md):

- a **rotating code**, shown as a QR on a screen at the counter (`/counter/<code>/display`):
  `HVT01-K7KQF` = the counter code, one base32 character for the time step (the step number
  mod 32, so an old code is recognised as expired rather than wrong) and four of an HMAC of
  "counter:step" with PRESENCE_SECRET. Nothing is stored per code; a code is valid for
  PRESENCE_CODE_VALID_STEPS steps of PRESENCE_CODE_STEP_SECONDS.
- a **visit code**, issued one at a time (`POST /api/visits`, `sipas-bot visits issue`) and
  printed on a receipt: ten random base32 characters, stored as a hash, good for one survey.

Secrets (device links, API keys, visit codes) are stored only as SHA-256 hashes: they are
long random strings, so a plain hash is enough and lets them be looked up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from storage import repositories as repo

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32
MAC_CHARS = 4
VISIT_CHARS = 10
_ROTATING = re.compile(
    rf"^(?P<counter>[A-Z0-9][A-Z0-9_-]*)-(?P<step>[{ALPHABET}])(?P<mac>[{ALPHABET}]{{{MAC_CHARS}}})$"
)
_VISIT = re.compile(rf"^[{ALPHABET}]{{5}}-?[{ALPHABET}]{{5}}$")


def secret_hash(secret: str) -> str:
    """What is stored of a device link, an API key or a visit code."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A device link's or an API key's secret: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


class CodeCheck(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    WRONG = "wrong"


@dataclass(frozen=True)
class RotatingCode:
    counter: str
    check: CodeCheck


@dataclass(frozen=True)
class RotatingCodes:
    """Makes and checks rotating codes; the clock is given to each call."""

    secret: str
    step_seconds: int = 60
    valid_steps: int = 5

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def step(self, now: datetime) -> int:
        return int(now.timestamp()) // self.step_seconds

    def code(self, counter_code: str, now: datetime) -> str:
        """The code shown at this counter now."""
        return self._code(counter_code.upper(), self.step(now))

    def seconds_left(self, now: datetime) -> int:
        """Until the code shown changes."""
        return self.step_seconds - int(now.timestamp()) % self.step_seconds

    def _code(self, counter_code: str, step: int) -> str:
        return f"{counter_code}-{ALPHABET[step % 32]}{self._mac(counter_code, step)}"

    def _mac(self, counter_code: str, step: int) -> str:
        digest = hmac.new(
            self.secret.encode(), f"{counter_code}:{step}".encode(), hashlib.sha256
        ).digest()
        return base64.b32encode(digest).decode()[:MAC_CHARS]

    def check(self, text: str, now: datetime) -> RotatingCode | None:
        """The counter and verdict of a code of this shape (None: not a rotating code)."""
        match = _ROTATING.match(text.upper())
        if match is None or not self.enabled:
            return None
        counter = match["counter"]
        current = self.step(now)
        # The latest step at or before now whose number ends (mod 32) in the code's character.
        step = current - (current - ALPHABET.index(match["step"])) % 32
        if not hmac.compare_digest(match["mac"], self._mac(counter, step)):
            return RotatingCode(counter, CodeCheck.WRONG)
        fresh = current - step < self.valid_steps
        return RotatingCode(counter, CodeCheck.VALID if fresh else CodeCheck.EXPIRED)


def new_visit_code() -> str:
    """A one-time visit code as printed: `K7KQ2-M4XPD`."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(VISIT_CHARS))
    return f"{raw[:5]}-{raw[5:]}"


def visit_code_key(text: str) -> str | None:
    """The hash a visit code is stored under (None: not the shape of a visit code)."""
    cleaned = text.strip().upper()
    if not _VISIT.match(cleaned):
        return None
    return secret_hash(cleaned.replace("-", ""))


def issue_visit_codes(
    session: Session, counter_id: int, count: int, *, now: datetime, valid_for: timedelta
) -> tuple[list[str], datetime]:
    """Store `count` new one-time codes for a counter; returns them (shown once, never
    stored in clear) and when they expire."""
    codes = [new_visit_code() for _ in range(count)]
    expires_at = now + valid_for
    repo.add_visit_codes(
        session,
        counter_id=counter_id,
        code_hashes=[secret_hash(code.replace("-", "")) for code in codes],
        now=now,
        expires_at=expires_at,
    )
    return codes, expires_at
