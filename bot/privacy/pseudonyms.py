"""What is kept of a citizen or leader instead of their Zalo id: a respondent hash beside the
answers (enough to spot a repeat, not to name them) and a short pseudonym for log lines and
operator listings, which never carry the raw id.

Both are an HMAC-SHA256 of the Zalo id under a secret pepper (`PRIVACY_PEPPER`) kept outside
the database: whoever holds the database alone cannot hash a known Zalo id and find that
person's answers. The pseudonym is the first 12 hex digits of the respondent hash, so an
operator who has one from a log line can find the surveys it stands for (`privacy erase
--pseudonym`).
"""

from __future__ import annotations

import hashlib
import hmac

from bot.config import ConfigError, Settings

TAG_LENGTH = 12
# Sandbox mode without a pepper: surveys made there are not about real people.
SANDBOX_PEPPER = "sandbox-pepper-not-secret"
MIN_PEPPER_LENGTH = 16


class Pseudonymizer:
    """Turns Zalo ids into respondent hashes and pseudonyms with one secret pepper; built once
    by the Runtime and handed to whatever hashes an id."""

    def __init__(self, pepper: str | None) -> None:
        # None: no pepper is configured outside sandbox mode. Building succeeds (reports,
        # exports and most commands hash nothing); hashing fails with the reason.
        self._key = pepper.encode() if pepper else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymizer:
        if settings.privacy_pepper:
            return cls(settings.privacy_pepper)
        return cls(SANDBOX_PEPPER if settings.zalo_sandbox else None)

    def respondent_hash(self, user_id: str) -> str:
        """The stable stand-in for a user beside their answers (64 hex digits)."""
        if self._key is None:
            raise ConfigError(
                "PRIVACY_PEPPER not set: Zalo ids cannot be pseudonymised without it "
                "(`sipas-bot init-env` writes one; keep it outside the database, never change it)"
            )
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()

    def user_tag(self, user_id: str) -> str:
        """A short pseudonym for log lines and listings."""
        return self.respondent_hash(user_id)[:TAG_LENGTH]


def legacy_respondent_hash(user_id: str) -> str:
    """The unkeyed hash stored before the pepper existed (a plain SHA-256 anyone can
    recompute from a Zalo id). Only the purge and the erasure use it: to re-key, or to find,
    surveys stored before the upgrade (docs/privacy.md)."""
    return hashlib.sha256(f"sipas-respondent:{user_id}".encode()).hexdigest()
