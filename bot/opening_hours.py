"""A unit's opening hours, as written in the units file, e.g.
`mon-fri 07:30-17:00, sat 07:30-11:30`: entries separated by commas, each a day or a range of
days (mon tue wed thu fri sat sun) and a time range HH:MM-HH:MM (24:00 allowed as an end).
A day may appear in several entries (a lunch break: `mon-fri 07:30-11:30, mon-fri
13:30-17:00`). A survey started outside these hours is held for review (docs/integrity.md).

Pure: the caller gives the moment in the unit's own time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY = re.compile(r"^(?P<days>\S+)\s+(?P<start>\S+?)\s*-\s*(?P<end>\S+)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class BadOpeningHours(ValueError):
    """Opening hours that cannot be read; the message is one line saying what is wrong."""


@dataclass(frozen=True)
class Opening:
    """Open on `weekday` (0 = Monday) from `start` to `end` minutes after midnight."""

    weekday: int
    start: int
    end: int


@dataclass(frozen=True)
class OpeningHours:
    openings: tuple[Opening, ...]

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """Read `text`; BadOpeningHours names the entry that is wrong and why."""
        entries = [entry.strip() for entry in text.split(",")]
        if not any(entries):
            raise BadOpeningHours("is empty: write e.g. 'mon-fri 07:30-17:00' or leave it out")
        openings: list[Opening] = []
        for entry in entries:
            found = _ENTRY.match(entry.lower())
            if found is None:
                raise BadOpeningHours(
                    f"entry {entry!r}: expected days and hours, e.g. 'mon-fri 07:30-17:00'"
                )
            days = _days(found["days"], entry)
            start = _minutes(found["start"], entry)
            end = _minutes(found["end"], entry)
            if end <= start:
                raise BadOpeningHours(f"entry {entry!r}: closes before it opens")
            openings.extend(Opening(day, start, end) for day in days)
        return cls(tuple(openings))

    def is_open(self, moment: datetime, *, grace: timedelta = timedelta(0)) -> bool:
        """Whether `moment` (local wall time) falls in an opening, widened by `grace` on
        both sides (a citizen may scan while queueing, or rate on the way home)."""
        slack = grace.total_seconds() / 60
        for day_offset in (-1, 0, 1):  # grace may cross midnight
            day = (moment.weekday() - day_offset) % 7
            minute = moment.hour * 60 + moment.minute + moment.second / 60 + day_offset * 24 * 60
            for opening in self.openings:
                if opening.weekday == day and (
                    opening.start - slack <= minute < opening.end + slack
                ):
                    return True
        return False


def _days(spec: str, entry: str) -> list[int]:
    first, _, last = spec.partition("-")
    for name in (first, last) if last else (first,):
        if name not in DAYS:
            raise BadOpeningHours(f"entry {entry!r}: unknown day {name!r} (use {', '.join(DAYS)})")
    start = DAYS.index(first)
    end = DAYS.index(last) if last else start
    if end < start:
        raise BadOpeningHours(f"entry {entry!r}: write a range of days Monday first, e.g. mon-fri")
    return list(range(start, end + 1))


def _minutes(clock: str, entry: str) -> int:
    found = _CLOCK.match(clock)
    if found is None:
        raise BadOpeningHours(f"entry {entry!r}: {clock!r} is not a time HH:MM")
    hours, minutes = int(found[1]), int(found[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise BadOpeningHours(f"entry {entry!r}: {clock!r} is not a time of day")
    return hours * 60 + minutes
