"""The SIPAS index for officials: periods, the report, and its renderings (text, JSON, CSV, XLSX).

How the index is computed (Bộ Nội vụ, QĐ 1001/QĐ-BNV; docs/reports.md):

- per criterion, the share of valid answers (1–5) that are 4 or 5; "not applicable" (stored as
  0) and unanswered items are left out of the denominator. An item that names a factor but no
  criterion (the short form) stands as its factor's only criterion;
- per factor, the mean of its criteria's shares; overall, the mean of the factor shares;
- beside every share, the number of valid answers and the mean score 1–5.

Counted: completed and partial responses (the answers given), by `started_at`, in the period's
local dates of each unit's time zone; repeat-flagged responses only on request. The counting
is SQL (storage.stats); this module only combines a few dozen aggregate rows.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from bot.config import ConfigError
from bot.export import safe_text
from storage import repositories as repo
from storage import stats
from storage.models import Counter, Unit
from survey_flow.sipas import FACTORS

PERIOD_KINDS = ("day", "week", "month", "quarter", "year")
RANGE = "range"
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}

# Short names of the Ministry's 19 criteria (2022 form), for tables; the full wording is in
# shared/reference/sipas.md and in each questionnaire.
CRITERIA_NAMES: dict[int, str] = {
    1: "Thông tin TTHC dễ tiếp cận, dễ hiểu",
    2: "Biển hiệu, hướng dẫn rõ ràng",
    3: "Trụ sở sạch sẽ, văn minh",
    4: "Trang thiết bị đầy đủ, tốt",
    5: "TTHC niêm yết công khai, dễ hiểu",
    6: "Thành phần hồ sơ đúng quy định",
    7: "Phí, lệ phí đúng quy định",
    8: "Thời hạn giải quyết đúng quy định",
    9: "Thái độ lịch sự, tôn trọng",
    10: "Trả lời kịp thời, đầy đủ",
    11: "Hướng dẫn dễ hiểu, một lần",
    12: "Tuân thủ đúng quy định",
    13: "Tận tình, chu đáo",
    14: "Trả kết quả đúng hẹn",
    15: "Kết quả đầy đủ, chính xác",
    16: "Kết quả công bằng",
    17: "Dễ góp ý, phản ánh, kiến nghị",
    18: "Góp ý được xử lý đúng quy định",
    19: "Kết quả xử lý được báo kịp thời",
}


# --- periods -------------------------------------------------------------------------------


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _dmy(day: date) -> str:
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
            return f"ngày {_dmy(first)}"
        if self.kind == "month":
            return f"tháng {first:%m/%Y}"
        if self.kind == "quarter":
            return f"quý {(first.month - 1) // 3 + 1}/{first.year}"
        if self.kind == "year":
            return f"năm {first.year}"
        span = (
            f"{first:%d/%m}–{_dmy(last)}"
            if first.year == last.year
            else f"{_dmy(first)}–{_dmy(last)}"
        )
        return f"tuần {span}" if self.kind == "week" else f"từ {_dmy(first)} đến {_dmy(last)}"

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
    raise ConfigError(f"unknown period {kind!r}: use one of {', '.join(PERIOD_KINDS)}")


def period_between(start: date, end: date, zone: ZoneInfo, *, kind: str = RANGE) -> Period:
    """From the first moment of `start` to the end of `end` (both dates included), in `zone`."""
    if start > end:
        raise ConfigError(f"the period starts ({start}) after it ends ({end})")
    return Period(kind, _midnight(start, zone), _midnight(end + timedelta(days=1), zone))


def parse_day(text: str, option: str) -> date:
    """A YYYY-MM-DD date; ConfigError naming the option otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date like 2026-03-31") from None


def month_periods(moment: datetime, zone: ZoneInfo, count: int) -> list[Period]:
    """The month holding `moment` and the `count - 1` before it, newest first."""
    periods = [period_containing("month", moment, zone)]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return periods


def unit_zone(unit: Unit, default: ZoneInfo) -> ZoneInfo:
    if not unit.timezone:
        return default
    try:
        return ZoneInfo(unit.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unit {unit.code}: unknown time zone {unit.timezone!r}") from None


def common_zone(units: Iterable[Unit], default: ZoneInfo) -> ZoneInfo:
    """The units' own time zone when they share one, else `default`."""
    zones = {unit_zone(unit, default).key for unit in units}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else default


# --- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One cell of the index.

    `share` is the SIPAS percentage (0–100, not rounded): for a criterion, answers 4–5 over
    valid answers; for a factor, the mean of its criteria's shares; overall, the mean of the
    factor shares. `valid`, `satisfied` and `mean` always count the answers themselves.
    """

    valid: int
    satisfied: int
    mean: float | None
    share: float | None
    enough: bool

    @property
    def rankable(self) -> bool:
        return self.enough and self.share is not None


def _figure(
    valid: int, satisfied: int, total: int, min_answers: int, share: float | None = None
) -> Figure:
    """The figure of these counts; `share` given for a factor or overall (a mean of shares)."""
    if valid == 0:
        return Figure(0, 0, None, None, enough=min_answers <= 0)
    return Figure(
        valid=valid,
        satisfied=satisfied,
        mean=total / valid,
        share=100 * satisfied / valid if share is None else share,
        enough=valid >= min_answers,
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class CriterionFigure:
    """A criterion's figure; `item_id` is set when an item stands as its factor's criterion."""

    factor: int
    criterion: int | None
    item_id: str | None
    figure: Figure

    @property
    def name(self) -> str:
        if self.criterion is not None:
            return f"{self.criterion}. {CRITERIA_NAMES.get(self.criterion, '')}".rstrip(". ")
        return f"{ROMAN[self.factor]} ({self.item_id})"


@dataclass(frozen=True)
class _Index:
    overall: Figure
    factors: dict[int, Figure]
    criteria: list[CriterionFigure]


def _index(rows: Iterable[stats.CriterionTally], min_answers: int) -> _Index:
    """Combine per-criterion tallies (of any set of counters) into the SIPAS figures.

    Called for every counter and unit of a report (4,000 times for a province's month and
    the month before), hence plain lists of counts rather than objects.
    """
    tallies: dict[tuple[int, int, str], list[int]] = {}
    for row in rows:
        key = (row.factor, row.criterion or 0, row.item_id or "")
        counts = tallies.get(key)
        if counts is None:
            tallies[key] = [row.valid, row.satisfied, row.total]
        else:
            counts[0] += row.valid
            counts[1] += row.satisfied
            counts[2] += row.total
    criteria: list[CriterionFigure] = []
    # per factor: valid, satisfied, total, and its criteria's shares
    by_factor: dict[int, tuple[list[int], list[float | None]]] = {}
    for (factor, criterion, item_id), (valid, satisfied, total) in sorted(tallies.items()):
        figure = _figure(valid, satisfied, total, min_answers)
        criteria.append(CriterionFigure(factor, criterion or None, item_id or None, figure))
        sums, shares = by_factor.setdefault(factor, ([0, 0, 0], []))
        sums[0] += valid
        sums[1] += satisfied
        sums[2] += total
        shares.append(figure.share)
    factors: dict[int, Figure] = {}
    everything = [0, 0, 0]
    for factor in FACTORS:
        sums, shares = by_factor.get(factor, ([0, 0, 0], []))
        factors[factor] = _figure(sums[0], sums[1], sums[2], min_answers, _mean(shares))
        for n in range(3):
            everything[n] += sums[n]
    valid, satisfied, total = everything
    overall = _figure(
        valid, satisfied, total, min_answers, _mean(f.share for f in factors.values())
    )
    return _Index(overall, factors, criteria)


def _weakest_key(figure: Figure) -> tuple[float, float]:
    return (figure.share or 0.0, figure.mean or 0.0)


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CounterFigure:
    code: str
    name: str
    unit_code: str
    overall: Figure
    factors: Mapping[int, Figure] = field(default_factory=dict)
    responses: int = 0


@dataclass(frozen=True)
class UnitFigure:
    code: str
    name: str
    overall: Figure
    factors: Mapping[int, Figure] = field(default_factory=dict)
    responses: int = 0


@dataclass(frozen=True)
class Comment:
    """A free-text answer; `at` is when it was given, in the period's time zone."""

    at: datetime
    counter_code: str
    text: str


@dataclass(frozen=True)
class Report:
    """The index of some units (or one counter) over a period, with the previous period.

    `overall.valid`/`.satisfied`/`.mean` sum every rated answer; `overall.share` follows the
    SIPAS rule, the mean of the factor shares (factors with no valid answer left out), so it
    is not `satisfied / valid`. `completed` and `partial` count the responses in the index;
    `repeats` counts the period's repeat-flagged responses, left out unless `include_repeats`.
    """

    unit_codes: tuple[str, ...]
    counter_code: str | None
    period: Period
    overall: Figure
    factors: dict[int, Figure]
    criteria: list[CriterionFigure]
    counters: list[CounterFigure]
    completed: int
    partial: int
    repeats: int
    comments: list[Comment]
    previous: Report | None
    units: list[UnitFigure] = field(default_factory=list)
    unit_names: Mapping[str, str] = field(default_factory=dict)
    min_answers: int = 0
    include_repeats: bool = False

    @property
    def responses(self) -> int:
        return self.completed + self.partial

    @cached_property
    def figures_by_key(self) -> dict[tuple[str, Any], Figure]:
        """Each counter's, unit's and criterion's figure by ("counter", code), ("unit", code)
        and ("criterion", (factor, criterion, item_id)). Renderings look the previous period up
        here: a province has thousands of counters."""
        found: dict[tuple[str, Any], Figure] = {}
        for c in self.counters:
            found["counter", c.code] = c.overall
        for u in self.units:
            found["unit", u.code] = u.overall
        for crit in self.criteria:
            found["criterion", (crit.factor, crit.criterion, crit.item_id)] = crit.figure
        return found

    def weakest_factor(self) -> tuple[int, Figure] | None:
        """The factor with the lowest share among those with enough answers."""
        ranked = [(n, f) for n, f in self.factors.items() if f.rankable]
        return min(ranked, key=lambda nf: (*_weakest_key(nf[1]), nf[0])) if ranked else None

    def weakest_counter(self) -> CounterFigure | None:
        """The counter with the lowest share among those with enough answers (one counter
        alone is not "the lowest")."""
        ranked = [c for c in self.counters if c.overall.rankable]
        if len(ranked) < 2:
            return None
        return min(ranked, key=lambda c: (*_weakest_key(c.overall), c.code))

    def ranked_counters(self) -> list[tuple[int | None, CounterFigure]]:
        """Counters with enough answers ranked by share (then mean), best first; the others
        after them, unranked, by code."""
        ranked = sorted(
            (c for c in self.counters if c.overall.rankable),
            key=lambda c: (-(c.overall.share or 0), -(c.overall.mean or 0), c.code),
        )
        rest = [c for c in self.counters if not c.overall.rankable]
        return [(i, c) for i, c in enumerate(ranked, start=1)] + [(None, c) for c in rest]

    @property
    def title(self) -> str:
        names = [f"{self.unit_names.get(code, code)} ({code})" for code in self.unit_codes]
        if len(names) > 3:
            names = [f"{len(names)} đơn vị"]
        title = ", ".join(names)
        return f"{title}, quầy {self.counter_code}" if self.counter_code else title


def find_units(session: Session, unit_codes: Sequence[str] | None) -> list[Unit]:
    """The units with these codes (None: all of them); ConfigError for an unknown code."""
    if unit_codes is None:
        return list(repo.list_units(session))
    by_code = repo.find_units_by_code(session, unit_codes)
    units: list[Unit] = []
    seen: set[int] = set()
    for code in unit_codes:
        unit = by_code.get(code.upper())
        if unit is None:
            raise ConfigError(f"no unit has the code {code.upper()} (see `sipas-bot units list`)")
        if unit.id not in seen:
            seen.add(unit.id)
            units.append(unit)
    return units


def _scope(
    units: Sequence[Unit], counter: Counter | None, period: Period, include_repeats: bool
) -> stats.Scope:
    by_zone: dict[str, list[int]] = defaultdict(list)
    for unit in units:
        by_zone[unit_zone(unit, period.zone).key].append(unit.id)
    windows = []
    for key, unit_ids in by_zone.items():
        local = period.in_zone(ZoneInfo(key))
        windows.append(stats.Window(unit_ids, local.start, local.end))
    return stats.Scope(
        windows,
        counter_id=counter.id if counter is not None else None,
        include_repeats=include_repeats,
    )


def build_report(
    session: Session,
    *,
    unit_codes: Sequence[str] | None,
    counter_code: str | None = None,
    period: Period,
    min_answers: int,
    include_repeats: bool = False,
    with_previous: bool = True,
    comment_limit: int | None = 20,
) -> Report:
    """The index of these units (None: every unit), or of one of their counters, over
    `period`, with the same for the period before unless `with_previous` is False.

    A unit with its own time zone is counted over the period's local dates in that zone;
    units without one use the period's zone. Comments are the newest `comment_limit`
    free-text answers (None: all of them, 0: none). Raises ConfigError for an unknown unit
    or counter.
    """
    units = find_units(session, unit_codes)
    counter: Counter | None = None
    if counter_code is not None:
        counter = next(
            (c for u in units for c in u.counters if c.code == counter_code.upper()), None
        )
        if counter is None:
            found = repo.find_counter(session, counter_code)
            where = f" (it belongs to unit {found.unit.code})" if found else ""
            raise ConfigError(
                f"no counter {counter_code.upper()} in unit(s) "
                f"{', '.join(u.code for u in units) or '(none)'}{where}"
            )
        units = [next(u for u in units if u.id == counter.unit_id)]
    return _build(
        session,
        units,
        counter,
        period,
        min_answers=min_answers,
        include_repeats=include_repeats,
        with_previous=with_previous,
        comment_limit=comment_limit,
    )


def _build(
    session: Session,
    units: Sequence[Unit],
    counter: Counter | None,
    period: Period,
    *,
    min_answers: int,
    include_repeats: bool,
    with_previous: bool,
    comment_limit: int | None,
) -> Report:
    """`build_report` once the units (and the counter) are known: the previous period reuses
    them rather than looking the units up again."""
    scope = _scope(units, counter, period, include_repeats)
    response_ids = stats.response_id_range(session, scope)
    rows = (
        []
        if response_ids is None
        else stats.criterion_tallies(session, scope, response_ids=response_ids)
    )
    counts = stats.response_counts(session, scope)
    per_counter = counts.by_counter
    index = _index(rows, min_answers)

    rows_by_counter: dict[int, list[stats.CriterionTally]] = defaultdict(list)
    for row in rows:
        rows_by_counter[row.counter_id].append(row)
    counters: list[CounterFigure] = []
    unit_figures: list[UnitFigure] = []
    for unit in units:
        unit_rows: list[stats.CriterionTally] = []
        for c in unit.counters:
            if counter is not None and c.id != counter.id:
                continue
            counter_index = _index(rows_by_counter.get(c.id, []), min_answers)
            unit_rows += rows_by_counter.get(c.id, [])
            counters.append(
                CounterFigure(
                    code=c.code,
                    name=c.name,
                    unit_code=unit.code,
                    overall=counter_index.overall,
                    factors=counter_index.factors,
                    responses=per_counter.get(c.id, 0),
                )
            )
        unit_index = _index(unit_rows, min_answers)
        unit_figures.append(
            UnitFigure(
                code=unit.code,
                name=unit.name,
                overall=unit_index.overall,
                factors=unit_index.factors,
                responses=sum(per_counter.get(c.id, 0) for c in unit.counters),
            )
        )

    comments = (
        []
        if comment_limit == 0 or response_ids is None
        else [
            Comment(at=row.at.astimezone(period.zone), counter_code=row.counter_code, text=row.text)
            for row in stats.comments(
                session, scope, limit=comment_limit, response_ids=response_ids
            )
        ]
    )
    previous = (
        _build(
            session,
            units,
            counter,
            period.previous(),
            min_answers=min_answers,
            include_repeats=include_repeats,
            with_previous=False,
            comment_limit=0,
        )
        if with_previous
        else None
    )
    return Report(
        unit_codes=tuple(u.code for u in units),
        counter_code=counter.code if counter is not None else None,
        period=period,
        overall=index.overall,
        factors=index.factors,
        criteria=index.criteria,
        counters=counters,
        completed=counts.completed,
        partial=counts.partial,
        repeats=counts.repeats,
        comments=comments,
        previous=previous,
        units=unit_figures,
        unit_names={u.code: u.name for u in units},
        min_answers=min_answers,
        include_repeats=include_repeats,
    )


# --- shared formatting ---------------------------------------------------------------------


def share_text(figure: Figure) -> str:
    return "—" if figure.share is None else f"{figure.share:.2f}%"


def mean_text(figure: Figure) -> str:
    return "—" if figure.mean is None else f"{figure.mean:.2f}"


def change(current: Figure, previous: Figure | None) -> float | None:
    """Percentage points since the previous period (None when either has no share)."""
    if previous is None or current.share is None or previous.share is None:
        return None
    return current.share - previous.share


def change_text(current: Figure, previous: Figure | None) -> str:
    delta = change(current, previous)
    return "" if delta is None else f"{delta:+.2f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _previous_counter(report: Report, code: str) -> Figure | None:
    if report.previous is None:
        return None
    return report.previous.figures_by_key.get(("counter", code))


def _previous_unit(report: Report, code: str) -> Figure | None:
    if report.previous is None:
        return None
    return report.previous.figures_by_key.get(("unit", code))


def _previous_criterion(report: Report, criterion: CriterionFigure) -> Figure | None:
    if report.previous is None:
        return None
    key = (criterion.factor, criterion.criterion, criterion.item_id)
    return report.previous.figures_by_key.get(("criterion", key))


def _has_real_criteria(report: Report) -> bool:
    return any(c.criterion is not None for c in report.criteria)


# --- text ----------------------------------------------------------------------------------


def _row(label: str, figure: Figure, previous: Figure | None, width: int) -> str:
    prev = "" if previous is None else share_text(previous)
    line = (
        f"{label[:width]:<{width}} {share_text(figure):>8} {mean_text(figure):>5} "
        f"{figure.valid:>6} {prev:>8} {change_text(figure, previous):>7}"
    )
    return line.rstrip()


def _labels(report: Report) -> list[str]:
    labels = [f"{ROMAN[n]:<4}{FACTORS[n]['vi']}" for n in report.factors]
    labels += [c.name for c in report.criteria] if _has_real_criteria(report) else []
    labels += [f"{u.code} {u.name}" for u in report.units] if len(report.units) > 1 else []
    labels += [f" 1. {c.code} {c.name}" for c in report.counters]
    return labels


def render_text(report: Report, *, now: datetime | None = None) -> str:
    """A plain-text report a ward official can read, counts beside every figure.

    With `now` inside the period, the period is shown as running up to today.
    """
    period = report.period
    previous = report.previous
    last = period.last_day
    running = now is not None and period.contains(now)
    if running and now is not None:
        last = now.astimezone(period.zone).date()
    lines = [f"CHỈ SỐ HÀI LÒNG SIPAS – {report.title}"]
    lines.append(
        f"Kỳ (period): {period.label} ({_dmy(period.first_day)}–{_dmy(last)}"
        + (", đến nay)" if running else ")")
        + (f"; so với (previous) {previous.period.label}" if previous else "")
    )
    repeats = (
        f"{report.repeats} phiếu lặp (repeats) đã tính"
        if report.include_repeats
        else f"{report.repeats} phiếu lặp (repeats) không tính"
    )
    lines.append(
        f"Phiếu (responses): {report.completed} hoàn thành (completed), "
        f"{report.partial} dở dang (partial); {repeats}"
    )
    lines.append("")
    overall = report.overall
    prev_overall = previous.overall if previous else None
    summary = (
        f"CHUNG (overall): {share_text(overall)}  điểm TB (mean) {mean_text(overall)}  "
        f"n={overall.valid}"
    )
    if prev_overall is not None:
        summary += f"  kỳ trước {share_text(prev_overall)}"
        if change(overall, prev_overall) is not None:
            summary += f" ({change_text(overall, prev_overall)} điểm)"
    lines.append(summary)
    if overall.valid and not overall.enough:
        lines.append(f"  * ít hơn {report.min_answers} câu trả lời: chưa đủ để so sánh, xếp hạng")
    lines.append("")

    width = max(34, min(52, max(len(label) for label in _labels(report))))
    header = (
        f"{'':<{width}} {'share':>8} {'mean':>5} {'valid':>6} {'prev':>8} {'change':>7}"
    ).rstrip()
    lines.append("THEO YẾU TỐ (factors)")
    lines.append(header)
    for number, figure in report.factors.items():
        label = f"{ROMAN[number]:<4}{FACTORS[number]['vi']}"
        line = _row(label, figure, previous.factors.get(number) if previous else None, width)
        lines.append(line + ("" if figure.enough or not figure.valid else "  *"))

    if _has_real_criteria(report):
        lines.append("")
        lines.append("THEO TIÊU CHÍ (criteria)")
        lines.append(header)
        for criterion in report.criteria:
            line = _row(
                criterion.name,
                criterion.figure,
                _previous_criterion(report, criterion),
                width,
            )
            lines.append(line + ("" if criterion.figure.enough else "  *"))

    if len(report.units) > 1:
        lines.append("")
        lines.append("THEO ĐƠN VỊ (units)")
        lines.append(header)
        for unit in sorted(report.units, key=lambda u: u.code):
            line = _row(
                f"{unit.code} {unit.name}", unit.overall, _previous_unit(report, unit.code), width
            )
            lines.append(line + ("" if unit.overall.enough else "  *"))

    if report.counters:
        lines.append("")
        lines.append("THEO QUẦY (counters), xếp hạng theo tỷ lệ hài lòng")
        lines.append(f"    {header[4:]}")
        for rank, c in report.ranked_counters():
            label = f"{rank:>2}. " if rank else " –  "
            line = _row(
                f"{label}{c.code} {c.name}",
                c.overall,
                _previous_counter(report, c.code),
                width,
            )
            lines.append(line + ("" if c.overall.rankable else "  *"))

    lines.append("")
    weakest = report.weakest_factor()
    if weakest is not None:
        number, figure = weakest
        lines.append(
            f"Yếu tố thấp nhất (weakest factor): {ROMAN[number]} {FACTORS[number]['vi']} "
            f"{share_text(figure)} (n={figure.valid})"
        )
    lowest = report.weakest_counter()
    if lowest is not None:
        lines.append(
            f"Quầy thấp nhất (lowest counter): {lowest.code} {lowest.name} "
            f"{share_text(lowest.overall)} (n={lowest.overall.valid})"
        )
    lines.append(
        f"* dưới {report.min_answers} câu trả lời hợp lệ (valid): chỉ để tham khảo, "
        "không xếp hạng (too few to rank)"
    )
    lines.append(
        "Tỷ lệ hài lòng = câu trả lời 4–5 / câu trả lời hợp lệ 1–5 ('không áp dụng' không tính); "
        "yếu tố = trung bình các tiêu chí; chung = trung bình 5 yếu tố."
    )
    if report.comments:
        lines.append("")
        lines.append("GÓP Ý MỚI NHẤT (latest comments)")
        for comment in report.comments:
            text = " ".join(comment.text.split())
            lines.append(f"  {comment.at:%d/%m/%Y %H:%M}  #{comment.counter_code}  {text}")
    return "\n".join(lines) + "\n"


# --- JSON ----------------------------------------------------------------------------------


def figure_dict(figure: Figure) -> dict[str, Any]:
    return {
        "share": _round(figure.share),
        "mean": _round(figure.mean),
        "valid": figure.valid,
        "satisfied": figure.satisfied,
        "enough": figure.enough,
    }


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain data: shares and means rounded to two decimals."""
    period = report.period
    weakest = report.weakest_factor()
    lowest = report.weakest_counter()
    ranks = {c.code: rank for rank, c in report.ranked_counters()}
    return {
        "units": [
            {"code": code, "name": report.unit_names.get(code, code)} for code in report.unit_codes
        ],
        "counter": report.counter_code,
        "period": {
            "kind": period.kind,
            "label": period.label,
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "min_answers": report.min_answers,
        "include_repeats": report.include_repeats,
        "responses": {
            "completed": report.completed,
            "partial": report.partial,
            "repeats": report.repeats,
        },
        "overall": figure_dict(report.overall),
        "factors": [
            {"factor": number, "name": FACTORS[number]["vi"], **figure_dict(figure)}
            for number, figure in report.factors.items()
        ],
        "criteria": [
            {
                "factor": c.factor,
                "criterion": c.criterion,
                "item_id": c.item_id,
                "name": c.name,
                **figure_dict(c.figure),
            }
            for c in report.criteria
        ],
        "unit_figures": [
            {"code": u.code, "name": u.name, "responses": u.responses, **figure_dict(u.overall)}
            for u in report.units
        ],
        "counters": [
            {
                "code": c.code,
                "name": c.name,
                "unit": c.unit_code,
                "rank": ranks.get(c.code),
                "responses": c.responses,
                **figure_dict(c.overall),
                "factors": {str(n): _round(f.share) for n, f in c.factors.items()},
            }
            for c in report.counters
        ],
        "weakest_factor": None if weakest is None else weakest[0],
        "weakest_counter": None if lowest is None else lowest.code,
        "comments": [
            {"at": c.at.isoformat(timespec="seconds"), "counter": c.counter_code, "text": c.text}
            for c in report.comments
        ],
        "previous": None if report.previous is None else report_dict(report.previous),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), ensure_ascii=False, indent=2) + "\n"


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = [
    "level",
    "unit",
    "counter",
    "factor",
    "criterion",
    "item_id",
    "name",
    "share",
    "mean",
    "valid",
    "satisfied",
    "enough",
    "previous_share",
    "change",
]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


_CsvLine = tuple[str, str, str, int | None, int | None, str | None, str, Figure, Figure | None]


def _csv_lines(report: Report) -> Iterator[_CsvLine]:
    previous = report.previous
    units, counter = " ".join(report.unit_codes), report.counter_code or ""
    prev_overall = previous.overall if previous else None
    yield ("overall", units, counter, None, None, None, report.period.label, report.overall,
           prev_overall)  # fmt: skip
    for number, figure in report.factors.items():
        prev = previous.factors.get(number) if previous else None
        yield ("factor", units, counter, number, None, None, FACTORS[number]["vi"], figure, prev)
    for crit in report.criteria:
        prev = _previous_criterion(report, crit)
        yield ("criterion", units, counter, crit.factor, crit.criterion, crit.item_id, crit.name,
               crit.figure, prev)  # fmt: skip
    if len(report.units) > 1:
        for unit in report.units:
            prev = _previous_unit(report, unit.code)
            yield ("unit", unit.code, "", None, None, None, unit.name, unit.overall, prev)
    for desk in report.counters:
        prev = _previous_counter(report, desk.code)
        yield ("counter", desk.unit_code, desk.code, None, None, None, desk.name, desk.overall,
               prev)  # fmt: skip


def _csv_rows(report: Report) -> Iterator[list[str]]:
    for level, unit, counter, factor, criterion, item_id, name, figure, prev in _csv_lines(report):
        yield [
            level,
            unit,
            counter,
            "" if factor is None else str(factor),
            "" if criterion is None else str(criterion),
            item_id or "",
            name,
            _number(figure.share),
            _number(figure.mean),
            str(figure.valid),
            str(figure.satisfied),
            "yes" if figure.enough else "no",
            "" if prev is None else _number(prev.share),
            _number(change(figure, prev)),
        ]


def write_csv(report: Report, out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_rows(report))


# --- XLSX ----------------------------------------------------------------------------------


@contextmanager
def atomic_binary(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed to it only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


PERCENT = "0.00%"
POINTS = "+0.00;-0.00;0.00"
MEAN = "0.00"


def _fraction(value: float | None) -> float | None:
    """A percentage as the fraction a `0.00%` cell shows, rounded as the JSON is."""
    return None if value is None else round(value / 100, 4)


def _sheet(workbook: Any, title: str, headers: Sequence[str], widths: Sequence[int]) -> Any:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(title)
    sheet.append(list(headers))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDE7F5")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    return sheet


def _format_row(sheet: Any, formats: Mapping[int, str]) -> None:
    row = sheet.max_row
    for column, number_format in formats.items():
        sheet.cell(row=row, column=column).number_format = number_format


FIGURE_HEADERS = [
    "Tỷ lệ hài lòng (share)",
    "Điểm TB (mean)",
    "Câu trả lời hợp lệ (valid)",
    "Hài lòng 4–5 (satisfied)",
    "Đủ để xếp hạng (enough)",
    "Kỳ trước (previous)",
    "Thay đổi, điểm % (change)",
]
FIGURE_WIDTHS = [14, 10, 14, 14, 14, 14, 14]


def _figure_cells(figure: Figure, previous: Figure | None) -> list[Any]:
    return [
        _fraction(figure.share),
        _round(figure.mean),
        figure.valid,
        figure.satisfied,
        "có" if figure.enough else "chưa đủ",
        None if previous is None else _fraction(previous.share),
        _round(change(figure, previous)),
    ]


def _figure_formats(first: int) -> dict[int, str]:
    return {first: PERCENT, first + 1: MEAN, first + 5: PERCENT, first + 6: POINTS}


def write_xlsx(report: Report, path: Path) -> None:
    """One sheet per level (overall, factors, criteria, counters, units when several) and
    one of comments; shares as percentages, a bar chart of the factor shares. Atomic."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment

    workbook = Workbook()
    workbook.remove(workbook.active)
    previous = report.previous

    overall = _sheet(
        workbook,
        "Tổng hợp",
        [
            "Đơn vị (unit)",
            "Kỳ (period)",
            "Từ (from)",
            "Đến (to)",
            *FIGURE_HEADERS[:5],
            "Phiếu hoàn thành (completed)",
            "Phiếu dở dang (partial)",
            "Phiếu lặp (repeats)",
        ],
        [40, 22, 12, 12, *FIGURE_WIDTHS[:5], 14, 14, 14],
    )
    for current in (report, previous):
        if current is None:
            continue
        overall.append(
            [
                report.title,
                current.period.label,
                current.period.first_day,
                current.period.last_day,
                *_figure_cells(current.overall, None)[:5],
                current.completed,
                current.partial,
                current.repeats,
            ]
        )
        _format_row(overall, {3: "dd/mm/yyyy", 4: "dd/mm/yyyy", 5: PERCENT, 6: MEAN})
    overall.append([])
    overall.append(
        [
            "Tỷ lệ hài lòng = câu trả lời 4–5 / câu trả lời hợp lệ 1–5 ('không áp dụng' không "
            "tính); yếu tố = trung bình các tiêu chí; chung = trung bình các yếu tố. "
            f"Xếp hạng khi có ít nhất {report.min_answers} câu trả lời hợp lệ."
        ]
    )

    factors = _sheet(
        workbook,
        "Yếu tố",
        ["Yếu tố (factor)", "Tên (name)", *FIGURE_HEADERS],
        [10, 34, *FIGURE_WIDTHS],
    )
    for number, figure in report.factors.items():
        factors.append(
            [
                ROMAN[number],
                FACTORS[number]["vi"],
                *_figure_cells(figure, previous.factors.get(number) if previous else None),
            ]
        )
        _format_row(factors, _figure_formats(3))
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"Tỷ lệ hài lòng theo yếu tố – {report.period.label}"
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.height, chart.width = 8, 18
    last = len(report.factors) + 1
    chart.add_data(Reference(factors, min_col=3, min_row=1, max_row=last), titles_from_data=True)
    if previous is not None:
        chart.add_data(
            Reference(factors, min_col=8, min_row=1, max_row=last), titles_from_data=True
        )
    chart.set_categories(Reference(factors, min_col=2, min_row=2, max_row=last))
    factors.add_chart(chart, f"A{last + 3}")

    criteria = _sheet(
        workbook,
        "Tiêu chí",
        [
            "Yếu tố (factor)",
            "Tiêu chí (criterion)",
            "Câu hỏi (item)",
            "Tên (name)",
            *FIGURE_HEADERS,
        ],
        [10, 12, 14, 36, *FIGURE_WIDTHS],
    )
    for crit in report.criteria:
        criteria.append(
            [
                ROMAN[crit.factor],
                crit.criterion,
                crit.item_id,
                crit.name,
                *_figure_cells(crit.figure, _previous_criterion(report, crit)),
            ]
        )
        _format_row(criteria, _figure_formats(5))

    if len(report.units) > 1:
        units = _sheet(
            workbook,
            "Đơn vị",
            ["Đơn vị (unit)", "Tên (name)", "Phiếu (responses)", *FIGURE_HEADERS],
            [12, 36, 12, *FIGURE_WIDTHS],
        )
        for u in report.units:
            units.append(
                [
                    u.code,
                    u.name,
                    u.responses,
                    *_figure_cells(u.overall, _previous_unit(report, u.code)),
                ]
            )
            _format_row(units, _figure_formats(4))

    factor_headers = [f"{ROMAN[n]} {FACTORS[n]['vi']}" for n in FACTORS]
    counters = _sheet(
        workbook,
        "Quầy",
        [
            "Hạng (rank)",
            "Đơn vị (unit)",
            "Quầy (counter)",
            "Tên (name)",
            "Phiếu (responses)",
            *FIGURE_HEADERS,
            *factor_headers,
        ],
        [8, 10, 12, 36, 12, *FIGURE_WIDTHS, *([16] * len(factor_headers))],
    )
    first_factor = 6 + len(FIGURE_HEADERS)
    for rank, desk in report.ranked_counters():
        counters.append(
            [
                rank,
                desk.unit_code,
                desk.code,
                desk.name,
                desk.responses,
                *_figure_cells(desk.overall, _previous_counter(report, desk.code)),
                *(_fraction(desk.factors[n].share) if n in desk.factors else None for n in FACTORS),
            ]
        )
        _format_row(
            counters,
            {**_figure_formats(6), **{first_factor + i: PERCENT for i in range(len(FACTORS))}},
        )

    comments = _sheet(
        workbook,
        "Góp ý",
        ["Thời gian (time)", "Quầy (counter)", "Góp ý (comment)"],
        [18, 12, 100],
    )
    for comment in report.comments:
        comments.append(
            [comment.at.replace(tzinfo=None), comment.counter_code, safe_text(comment.text)]
        )
        _format_row(comments, {1: "dd/mm/yyyy hh:mm"})
        comments.cell(row=comments.max_row, column=3).alignment = Alignment(wrap_text=True)

    with atomic_binary(path) as tmp:
        workbook.save(tmp)


# --- the public page -----------------------------------------------------------------------


def recent_months(
    session: Session,
    unit: Unit,
    *,
    now: datetime,
    default_zone: ZoneInfo,
    months: int,
    min_answers: int,
) -> list[Report]:
    """One report per month for the last `months` months (this one so far), newest first."""
    zone = unit_zone(unit, default_zone)
    return [
        build_report(
            session,
            unit_codes=[unit.code],
            period=period,
            min_answers=min_answers,
            with_previous=False,
            comment_limit=0,
        )
        for period in month_periods(now, zone, months)
    ]
