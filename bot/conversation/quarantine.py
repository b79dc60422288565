"""Suspicious patterns: which rule, if any, holds a survey for review when it is counted
(docs/integrity.md). A held survey is stored as any other, out of the index until an
operator releases it (`sipas-bot integrity release`).

The rules, in the order they are tried (the first that matches is recorded):
1. OUTSIDE_HOURS: started outside the unit's opening hours (units file), beyond a grace.
2. ACCOUNT_SURVEYS: the account already has INTEGRITY_ACCOUNT_SURVEYS_PER_DAY counted
   surveys in the last 24 hours, at any counters.
3. NEW_ACCOUNT_BURST: the account is new (its first survey less than
   INTEGRITY_NEW_ACCOUNT_DAYS old) and INTEGRITY_BURST_SURVEYS - 1 other counted surveys from
   new accounts qualified at the same counter in the last INTEGRITY_BURST_MINUTES.

A paper form is never held: the rules weigh when and how often an account answered, and a
paper form has no account (a random respondent per form) and no time of its own (staff enter
a stack at once). What vouches for it is its number and who entered it (docs/integrity.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.opening_hours import OpeningHours
from bot.units import unit_zone
from storage import repositories as repo
from storage.models import Counter, QuarantineRule
from survey_flow.engine import StartMethod


@dataclass(frozen=True)
class QuarantineRules:
    """The thresholds (INTEGRITY_* settings) and the zone of units without their own."""

    burst_surveys: int
    burst_window: timedelta
    new_account_age: timedelta
    account_surveys_per_day: int
    hours_grace: timedelta
    default_zone: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> QuarantineRules:
        return cls(
            burst_surveys=settings.integrity_burst_surveys,
            burst_window=timedelta(minutes=settings.integrity_burst_minutes),
            new_account_age=timedelta(days=settings.integrity_new_account_days),
            account_surveys_per_day=settings.integrity_account_surveys_per_day,
            hours_grace=timedelta(minutes=settings.integrity_hours_grace_minutes),
            default_zone=settings.tz,
        )

    def hold_rule(
        self,
        session: Session,
        *,
        response_id: int,
        respondent: str,
        counter: Counter,
        started_at: datetime,
        method: StartMethod,
        now: datetime,
    ) -> QuarantineRule | None:
        """The rule that holds this survey, just counted, or None. Call it under the
        citizen's conversation lock, in the transaction that stores the counting decision;
        it takes the counter's row lock, so one counter's surveys are weighed one at a time.
        """
        if method is StartMethod.PAPER:
            return None
        unit = counter.unit
        if unit.opening_hours:
            local = started_at.astimezone(unit_zone(unit, self.default_zone))
            if not _opening_hours(unit.opening_hours).is_open(local, grace=self.hours_grace):
                return QuarantineRule.OUTSIDE_HOURS
        earlier = repo.counted_of_account_since(
            session,
            respondent_hash=respondent,
            since=now - timedelta(days=1),
            other_than=response_id,
        )
        if earlier >= self.account_surveys_per_day:
            return QuarantineRule.ACCOUNT_SURVEYS
        new_since = now - self.new_account_age
        first = repo.first_started(session, respondent)
        if first is not None and first >= new_since:
            repo.lock_counter(session, counter.id)
            others = repo.new_account_surveys_since(
                session,
                counter_id=counter.id,
                since=now - self.burst_window,
                new_since=new_since,
                other_than=response_id,
            )
            if others + 1 >= self.burst_surveys:
                return QuarantineRule.NEW_ACCOUNT_BURST
        return None


@lru_cache(maxsize=256)
def _opening_hours(text: str) -> OpeningHours:
    """Parsed once per distinct text (the units file checked it when it was imported)."""
    return OpeningHours.parse(text)
