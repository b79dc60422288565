"""Units and counters looked up by the codes operators type; an unknown code is an
`UnknownCode` naming it, said the same way everywhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from bot.errors import UnknownCode
from storage import repositories as repo
from storage.models import Counter, Unit


def require_unit(session: Session, code: str) -> Unit:
    unit = repo.find_unit(session, code)
    if unit is None:
        raise UnknownCode(f"no unit has the code {code.upper()} (see `sipas-bot units list`)")
    return unit


def require_counter(session: Session, code: str, *, unit_code: str | None = None) -> Counter:
    """The counter, checked to belong to `unit_code` when one is given."""
    counter = repo.find_counter(session, code)
    if counter is None:
        raise UnknownCode(f"no counter has the code {code.upper()} (see `sipas-bot units list`)")
    if unit_code and counter.unit.code != unit_code.upper():
        raise UnknownCode(
            f"counter {counter.code} belongs to unit {counter.unit.code}, not {unit_code.upper()}"
        )
    return counter


class CounterDirectory:
    """Counters by code and by id, with their units, kept in this process between events.

    A citizen's `#CODE` is looked up at every survey start; the counter and its unit change
    only when an operator imports the units file. The cache is checked against
    `repo.directory_stamp` (the row counts and latest `updated_at` of units and counters, one
    small query) at most every `check_every`, and emptied when the stamp changed: a change
    made by `sipas-bot units import` or any other process is seen by every server process
    within `check_every` (DIRECTORY_CHECK_SECONDS; 0 checks at every lookup). The objects
    kept are detached from any session and must be treated as read-only: `.unit` is loaded,
    `.unit.counters` is not. Unknown codes are remembered too (a junk `#CODE` costs no query
    while the stamp holds), up to `max_unknown` of them.
    """

    def __init__(
        self,
        *,
        check_every: timedelta,
        max_unknown: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check_every = check_every.total_seconds()
        self.max_unknown = max_unknown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._checked_at: float | None = None
        self._by_code: dict[str, Counter | None] = {}
        self._by_id: dict[int, Counter] = {}
        self._unknown = 0
        self._generation = 0  # bumped when emptied: a lookup begun before keeps nothing

    def by_code(self, session: Session, code: str) -> Counter | None:
        """`repo.find_counter`, from the cache when it holds the code."""
        generation = self._check(session)
        key = code.upper()
        try:
            return self._by_code[key]
        except KeyError:
            pass
        counter = repo.find_counter(session, key)
        self._keep(session, generation, key, counter)
        return counter

    def by_id(self, session: Session, counter_id: int) -> Counter | None:
        """`repo.find_counter_by_id`, from the cache when it holds the id."""
        generation = self._check(session)
        counter = self._by_id.get(counter_id)
        if counter is None:
            counter = repo.find_counter_by_id(session, counter_id)
            if counter is not None:
                self._keep(session, generation, counter.code, counter)
        return counter

    def forget(self) -> None:
        """Empty the cache (the next lookup checks the stamp and reads afresh)."""
        with self._lock:
            self._stamp = self._checked_at = None
            self._empty()

    def _empty(self) -> None:
        self._by_code, self._by_id, self._unknown = {}, {}, 0
        self._generation += 1

    def _check(self, session: Session) -> int:
        """Empty the cache if the stamp changed (when a check is due); the generation the
        caller's lookup belongs to."""
        now = self._monotonic()
        checked_at = self._checked_at
        if checked_at is not None and 0 <= now - checked_at < self.check_every:
            return self._generation
        stamp = repo.directory_stamp(session)
        with self._lock:
            if stamp != self._stamp:
                self._empty()
                self._stamp = stamp
            self._checked_at = now
            return self._generation

    def _keep(self, session: Session, generation: int, code: str, counter: Counter | None) -> None:
        if counter is not None:
            # Detached with what it holds: the session's commit must not expire them.
            session.expunge(counter.unit)
            session.expunge(counter)
        with self._lock:
            if generation != self._generation:
                return  # read before the cache was emptied: maybe older than the new stamp
            if counter is None:
                if self._unknown >= self.max_unknown:
                    return
                self._unknown += 1
            else:
                self._by_id[counter.id] = counter
            self._by_code[code] = counter
