"""Reporting periods in a unit's own time zone: days, weeks, months, quarters, years and
ranges, each with the one before it, and the time zone a unit's dates are read in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.errors import BadPeriod
from bot.units import unit_zone
from storage.models import Unit

__all__ = ["unit_zone"]  # re-exported: reports, digests and jobs read a unit's zone here

PERIOD_KINDS = ("day", "week", "month", "quarter", "year")
RANGE = "range"

# The names an operator gives a period, the same for every command (`report --period`,
# `digest send --period`): the bare kind is the current one so far, `last-…` (and
# `yesterday`) the whole one before it. Each maps to (kind, how many periods back).
PERIOD_NAMES: dict[str, tuple[str, int]] = {
    "day": ("day", 0),
    "yesterday": ("day", 1),
    "week": ("week", 0),
    "last-week": ("week", 1),
    "month": ("month", 0),
    "last-month": ("month", 1),
    "quarter": ("quarter", 0),
    "last-quarter": ("quarter", 1),
    "year": ("year", 0),
    "last-year": ("year", 1),
}
PERIOD_NAMES_HELP = (
    "day, week, month, quarter, year: the current one so far; yesterday, last-week, "
    "last-month, last-quarter, last-year: the whole one before"
)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def day_text(day: date) -> str:
    return day.strftime("%d/%m/%Y")


@dataclass(frozen=True)
class Period:
    """Local calendar dates [start, end) in one time zone; `end` is exclusive.

    `kind` is day, week (Monday to Sunday), month, quarter, year, or "range" (any dates).
    """

    kind: str
    start: datetime
    end: datetime

    @property
    def zone(self) -> ZoneInfo:
        zone = self.start.tzinfo
        if isinstance(zone, ZoneInfo):
            return zone
        if zone is not None and self.start.utcoffset() == timedelta(0):
            return ZoneInfo("UTC")
        raise ValueError("a Period's times need a ZoneInfo time zone")

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return self.end.date() - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end.date() - self.start.date()).days

    @property
    def label(self) -> str:
        first, last = self.first_day, self.last_day
        if self.kind == "day" or (self.kind == RANGE and first == last):
            return f"ngày {day_text(first)}"
        if self.kind == "month":
            return f"tháng {first:%m/%Y}"
        if self.kind == "quarter":
            return f"quý {(first.month - 1) // 3 + 1}/{first.year}"
        if self.kind == "year":
            return f"năm {first.year}"
        span = (
            f"{first:%d/%m}–{day_text(last)}"
            if first.year == last.year
            else f"{day_text(first)}–{day_text(last)}"
        )
        return (
            f"tuần {span}" if self.kind == "week" else f"từ {day_text(first)} đến {day_text(last)}"
        )

    def previous(self) -> Period:
        """The period of the same kind just before; for a range, as many days just before."""
        first = self.first_day
        if self.kind in ("month", "quarter", "year"):
            months = {"month": 1, "quarter": 3, "year": 12}[self.kind]
            return _calendar_period(self.kind, _add_months(first, -months), self.zone)
        days = {"day": 1, "week": 7}.get(self.kind, self.days)
        return period_between(
            first - timedelta(days=days), first - timedelta(days=1), self.zone, kind=self.kind
        )

    def in_zone(self, zone: ZoneInfo) -> Period:
        """The same local dates in another time zone."""
        return Period(
            self.kind,
            _midnight(self.first_day, zone),
            _midnight(self.end.date(), zone),
        )

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _calendar_period(kind: str, first: date, zone: ZoneInfo) -> Period:
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    return Period(kind, _midnight(first, zone), _midnight(_add_months(first, months), zone))


def period_containing(kind: str, moment: datetime, zone: ZoneInfo) -> Period:
    """The day, week (from Monday), month, quarter or year holding `moment`, in `zone`."""
    if moment.tzinfo is None:
        raise ValueError("period_containing needs an aware datetime")
    day = moment.astimezone(zone).date()
    if kind == "day":
        return period_between(day, day, zone, kind="day")
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return period_between(monday, monday + timedelta(days=6), zone, kind="week")
    if kind == "month":
        return _calendar_period(kind, day.replace(day=1), zone)
    if kind == "quarter":
        return _calendar_period(kind, date(day.year, (day.month - 1) // 3 * 3 + 1, 1), zone)
    if kind == "year":
        return _calendar_period(kind, date(day.year, 1, 1), zone)
    raise BadPeriod(f"unknown period {kind!r}: use one of {', '.join(PERIOD_KINDS)}")


def named_period(name: str, now: datetime, zone: ZoneInfo) -> Period:
    """The period an operator names (see PERIOD_NAMES) as of `now`, in `zone`."""
    if name not in PERIOD_NAMES:
        raise BadPeriod(f"unknown period {name}: use one of {', '.join(PERIOD_NAMES)}")
    kind, back = PERIOD_NAMES[name]
    period = period_containing(kind, now, zone)
    for _ in range(back):
        period = period.previous()
    return period


def coverage_text(period: Period, now: datetime) -> str:
    """The dates a period covers, for the operator: `01/03/2026–14/03/2026 (so far)` while
    it runs, `01/02/2026–28/02/2026` once over."""
    if period.contains(now):
        today = now.astimezone(period.zone).date()
        return f"{day_text(period.first_day)}–{day_text(today)} (so far)"
    return f"{day_text(period.first_day)}–{day_text(period.last_day)}"


def period_between(start: date, end: date, zone: ZoneInfo, *, kind: str = RANGE) -> Period:
    """From the first moment of `start` to the end of `end` (both dates included), in `zone`."""
    if start > end:
        raise BadPeriod(f"the period starts ({start}) after it ends ({end})")
    return Period(kind, _midnight(start, zone), _midnight(end + timedelta(days=1), zone))


def parse_day(text: str, option: str) -> date:
    """A YYYY-MM-DD date; BadPeriod naming the option otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadPeriod(f"{option} {text!r} is not a date like 2026-03-31") from None


def month_periods(moment: datetime, zone: ZoneInfo, count: int) -> list[Period]:
    """The month holding `moment` and the `count - 1` before it, newest first."""
    periods = [period_containing("month", moment, zone)]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return periods


def common_zone(units: Iterable[Unit], default: ZoneInfo) -> ZoneInfo:
    """The units' own time zone when they share one, else `default`."""
    zones = {unit_zone(unit, default).key for unit in units}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else default
