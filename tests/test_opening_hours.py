"""Opening hours as the units file writes them: read, checked with one-line errors, and
asked whether a local moment is inside them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.opening_hours import BadOpeningHours, OpeningHours
from bot.units import read_units_file

WARD = OpeningHours.parse("mon-fri 07:30-17:00, sat 07:30-11:30")


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (datetime(2026, 3, 16, 7, 30), True),  # Monday, opening
        (datetime(2026, 3, 16, 16, 59), True),
        (datetime(2026, 3, 16, 17, 0), False),  # closing time
        (datetime(2026, 3, 16, 7, 29), False),
        (datetime(2026, 3, 14, 11, 0), True),  # Saturday morning
        (datetime(2026, 3, 14, 13, 0), False),  # Saturday afternoon
        (datetime(2026, 3, 15, 9, 0), False),  # Sunday
    ],
)
def test_a_moment_is_inside_or_outside_the_hours(moment: datetime, open_: bool) -> None:
    assert WARD.is_open(moment) is open_


def test_the_grace_widens_both_ends_and_may_cross_midnight() -> None:
    hour = timedelta(hours=1)
    assert WARD.is_open(datetime(2026, 3, 16, 17, 59), grace=hour)
    assert not WARD.is_open(datetime(2026, 3, 16, 18, 0), grace=hour)
    assert WARD.is_open(datetime(2026, 3, 16, 6, 30), grace=hour)
    late = OpeningHours.parse("fri 20:00-24:00")
    assert late.is_open(datetime(2026, 3, 21, 0, 30), grace=hour)  # Saturday 00:30
    assert not late.is_open(datetime(2026, 3, 21, 1, 0), grace=hour)


def test_a_day_may_have_a_lunch_break() -> None:
    hours = OpeningHours.parse("mon-fri 07:30-11:30, MON-FRI 13:30-17:00")
    assert hours.is_open(datetime(2026, 3, 16, 11, 0))
    assert not hours.is_open(datetime(2026, 3, 16, 12, 30))
    assert hours.is_open(datetime(2026, 3, 16, 14, 0))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is empty"),
        ("mon-fri", "expected days and hours"),
        ("mon-fry 07:30-17:00", "unknown day 'fry'"),
        ("fri-mon 07:30-17:00", "Monday first"),
        ("mon-fri 7h30-17:00", "'7h30' is not a time HH:MM"),
        ("mon-fri 07:30-25:00", "'25:00' is not a time of day"),
        ("mon-fri 17:00-07:30", "closes before it opens"),
        ("mon-fri 07:30-17:00,", "expected days and hours"),
    ],
)
def test_bad_hours_are_one_clear_line(text: str, says: str) -> None:
    with pytest.raises(BadOpeningHours) as caught:
        OpeningHours.parse(text)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_units_file_keeps_the_hours_as_written(tmp_path: Path) -> None:
    path = tmp_path / "units.yaml"
    path.write_text(
        "units:\n  - code: HVT\n    name: Phường\n"
        '    opening_hours: "mon-fri 07:30-17:00, sat 07:30-11:30"\n'
        "    counters:\n      - code: HVT01\n        name: Quầy 1\n",
        "utf-8",
    )
    (unit,) = read_units_file(path)
    assert unit.opening_hours == "mon-fri 07:30-17:00, sat 07:30-11:30"
