"""Per-account limits, kept on the citizen's conversation row (never in process memory, so
every process and every restart sees the same allowance).

A token bucket per Zalo user: `burst` messages at once, refilled at `per_minute` a minute. A
message that finds the bucket empty is dropped; the first one dropped gets one short notice,
the next ones none until a message is accepted again. Why these defaults: docs/integrity.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Allowance:
    """The bucket as stored: tokens left at `at` (None: a new account, the bucket full)."""

    tokens: float | None
    at: datetime | None
    throttled: bool = False


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    notify: bool  # the first message dropped since the last accepted one
    allowance: Allowance


@dataclass(frozen=True)
class MessageBucket:
    burst: int
    per_minute: int

    def take(self, allowance: Allowance, now: datetime) -> Verdict:
        """Take one token for a message at `now`; the new allowance to store."""
        tokens = float(self.burst) if allowance.tokens is None else allowance.tokens
        if allowance.at is not None:
            elapsed = max((now - allowance.at).total_seconds(), 0.0)
            tokens = min(float(self.burst), tokens + elapsed * self.per_minute / 60)
        if tokens >= 1:
            return Verdict(True, False, Allowance(tokens - 1, now, throttled=False))
        return Verdict(False, not allowance.throttled, Allowance(tokens, now, throttled=True))
