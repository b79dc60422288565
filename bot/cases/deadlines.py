"""When a case is due: a number of working days after the day it was received, counting
neither weekends nor the public holidays of a holidays file (CASES_HOLIDAYS_FILE; e.g.
examples/holidays.yaml). The day of receipt is not counted: a case received on Friday with a
deadline of 2 working days is due on Tuesday (Wednesday when Monday is a holiday).

The file lists single days and ranges:

    holidays:
      - 2026-01-01                       # a day
      - {from: 2026-02-14, to: 2026-02-22}  # a range, both ends included
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from survey_flow.sourcefile import FileProblems, LineDict, LineList, Problem, load_yaml

_SATURDAY = 5


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are working days: Monday to Friday, but for the holidays listed."""

    holidays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < _SATURDAY and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (`start` itself is not counted)."""
        day = start
        left = days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days come after `start` up to and including `end` (0 when
        `end` is not after `start`): how late a case due on `start` is on `end`."""
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count


def read_holidays_file(path: str | Path) -> WorkingCalendar:
    """The calendar of a holidays file; FileProblems names every bad line."""
    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise FileProblems([Problem(source, 0, f"cannot read: {exc.strerror}")]) from None
    data = load_yaml(text, source)
    if not isinstance(data, LineDict) or not isinstance(data.get("holidays"), LineList):
        raise FileProblems([Problem(source, 1, "expected `holidays:` followed by a list of days")])
    days: set[date] = set()
    problems: list[Problem] = []
    entries: LineList = data["holidays"]
    for index, entry in enumerate(entries):
        line = entries.line_of(index)
        if isinstance(entry, date):
            days.add(entry)
        elif (
            isinstance(entry, LineDict)
            and isinstance(entry.get("from"), date)
            and isinstance(entry.get("to"), date)
            and entry["from"] <= entry["to"]
        ):
            days.update(_days(entry["from"], entry["to"]))
        else:
            problems.append(
                Problem(source, line, "a holiday is a date (2026-09-02) or {from: DATE, to: DATE}")
            )
    if problems:
        raise FileProblems(problems)
    return WorkingCalendar(frozenset(days))


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
