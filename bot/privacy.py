"""What is kept of a citizen or leader instead of their Zalo id: a respondent hash beside the
answers (enough to spot a repeat, not to name them) and a short pseudonym for log lines and
operator listings, which never carry the raw id."""

from __future__ import annotations

import hashlib


def respondent_hash(user_id: str) -> str:
    """The stable stand-in for a user beside their answers."""
    return hashlib.sha256(f"sipas-respondent:{user_id}".encode()).hexdigest()


def user_tag(user_id: str) -> str:
    """A short pseudonym for log lines and listings."""
    return respondent_hash(user_id)[:12]
