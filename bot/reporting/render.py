"""The report as text for a terminal, as JSON for programs, and as CSV: the shared number
formatting, and a row per figure."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from bot.reporting import numbers
from bot.reporting.periods import day_text
from bot.reporting.report import ROMAN, CriterionFigure, Figure, Report, change
from survey_flow.sipas import FACTORS

# --- shared formatting ---------------------------------------------------------------------


# The text report is written in Vietnamese (with English glosses): its numbers are too.
TEXT_LANGUAGE = "vi"


def share_text(figure: Figure) -> str:
    return numbers.percent(figure.share, TEXT_LANGUAGE)


def mean_text(figure: Figure) -> str:
    return numbers.mean(figure.mean, TEXT_LANGUAGE)


def change_text(current: Figure, previous: Figure | None) -> str:
    delta = change(current, previous)
    return "" if delta is None else numbers.signed(delta, TEXT_LANGUAGE)


def two_places(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def previous_counter(report: Report, code: str) -> Figure | None:
    if report.previous is None:
        return None
    return report.previous.figures_by_key.get(("counter", code))


def previous_unit(report: Report, code: str) -> Figure | None:
    if report.previous is None:
        return None
    return report.previous.figures_by_key.get(("unit", code))


def previous_criterion(report: Report, criterion: CriterionFigure) -> Figure | None:
    if report.previous is None:
        return None
    key = (criterion.factor, criterion.criterion, criterion.item_id)
    return report.previous.figures_by_key.get(("criterion", key))


def has_real_criteria(report: Report) -> bool:
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
    labels += [c.name for c in report.criteria] if has_real_criteria(report) else []
    labels += [f"{u.code} {u.name}" for u in report.units] if len(report.units) > 1 else []
    labels += [f" 1. {c.code} {c.name}" for c in report.counters]
    return labels


def render_text(report: Report, *, now: datetime | None = None) -> str:
    """A plain-text report a ward official can read, counts beside every figure.

    With `now` inside the period, the period is shown as running up to today.
    """
    width = max(34, min(52, max(len(label) for label in _labels(report))))
    header = (
        f"{'':<{width}} {'share':>8} {'mean':>5} {'valid':>6} {'prev':>8} {'change':>7}"
    ).rstrip()
    lines = [
        *_heading_lines(report, now),
        "",
        *_overall_lines(report),
        "",
        *_table_lines(report, width, header),
        "",
        *_closing_lines(report),
        "",
        *case_lines(report),
    ]
    return "\n".join(lines) + "\n"


def _heading_lines(report: Report, now: datetime | None) -> list[str]:
    """The title, the period (running to today or whole), and what was counted."""
    period = report.period
    previous = report.previous
    last = period.last_day
    running = now is not None and period.contains(now)
    if running and now is not None:
        last = now.astimezone(period.zone).date()
    lines = [f"CHỈ SỐ HÀI LÒNG SIPAS – {report.title}"]
    lines.append(
        f"Kỳ (period): {period.label} ({day_text(period.first_day)}–{day_text(last)}"
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
        f"{report.partial} dở dang (partial); {repeats}; "
        f"{report.held} phiếu chờ xem xét (held for review) không tính"
    )
    lines.append(
        f"Chỉ phiếu có xác thực có mặt (verified presence only): {report.verified_responses} "
        f"phiếu, {share_text(report.verified)} n={report.verified.valid}"
    )
    if report.channels:
        lines.append(
            "Theo kênh (by channel): "
            + "; ".join(
                f"{name} {figure.responses} phiếu, {share_text(figure.overall)} "
                f"n={figure.overall.valid}"
                for name, figure in report.channels.items()
            )
        )
    return lines


def _overall_lines(report: Report) -> list[str]:
    overall = report.overall
    prev_overall = report.previous.overall if report.previous else None
    summary = (
        f"CHUNG (overall): {share_text(overall)}  điểm TB (mean) {mean_text(overall)}  "
        f"n={overall.valid}"
    )
    if prev_overall is not None:
        summary += f"  kỳ trước {share_text(prev_overall)}"
        if change(overall, prev_overall) is not None:
            summary += f" ({change_text(overall, prev_overall)} điểm)"
    lines = [summary]
    if overall.valid and not overall.enough:
        lines.append(f"  * ít hơn {report.min_answers} câu trả lời: chưa đủ để so sánh, xếp hạng")
    return lines


def _table_lines(report: Report, width: int, header: str) -> list[str]:
    """Factors, then criteria (of the full form), units (of a province) and counters ranked;
    a figure on too few answers is marked with * and never ranked."""
    previous = report.previous
    lines = ["THEO YẾU TỐ (factors)", header]
    for number, figure in report.factors.items():
        label = f"{ROMAN[number]:<4}{FACTORS[number]['vi']}"
        line = _row(label, figure, previous.factors.get(number) if previous else None, width)
        lines.append(line + ("" if figure.enough or not figure.valid else "  *"))
    if has_real_criteria(report):
        lines += ["", "THEO TIÊU CHÍ (criteria)", header]
        for criterion in report.criteria:
            line = _row(
                criterion.name, criterion.figure, previous_criterion(report, criterion), width
            )
            lines.append(line + ("" if criterion.figure.enough else "  *"))
    if len(report.units) > 1:
        lines += ["", "THEO ĐƠN VỊ (units)", header]
        for unit in sorted(report.units, key=lambda u: u.code):
            line = _row(
                f"{unit.code} {unit.name}", unit.overall, previous_unit(report, unit.code), width
            )
            lines.append(line + ("" if unit.overall.enough else "  *"))
    if report.counters:
        lines += ["", "THEO QUẦY (counters), xếp hạng theo tỷ lệ hài lòng", f"    {header[4:]}"]
        for rank, c in report.ranked_counters():
            label = f"{rank:>2}. " if rank else " –  "
            line = _row(
                f"{label}{c.code} {c.name}", c.overall, previous_counter(report, c.code), width
            )
            lines.append(line + ("" if c.overall.rankable else "  *"))
    if report.officers:
        lines += [
            "",
            "THEO CÁN BỘ (officers, for the unit's leaders and operators only)",
            f"    {header[4:]}",
        ]
        for rank, o in report.ranked_officers():
            label = f"{rank:>2}. " if rank else " –  "
            line = _row(f"{label}{o.code} {o.name} ({o.responses} phiếu)", o.overall, None, width)
            lines.append(line + ("" if o.overall.rankable else "  *"))
    return lines


def _closing_lines(report: Report) -> list[str]:
    """The weakest factor and counter, how to read the figures, and the latest comments."""
    lines = []
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
        lines += ["", "GÓP Ý MỚI NHẤT (latest comments)"]
        for comment in report.comments:
            text = " ".join(comment.text.split())
            lines.append(f"  {comment.at:%d/%m/%Y %H:%M}  #{comment.counter_code}  {text}")
    return lines


def case_lines(report: Report) -> list[str]:
    """The period's feedback figures (docs/cases.md), as the text report prints them."""
    c = report.cases
    kinds = ", ".join(f"{label} {count}" for label, count in c.by_kind.items())
    return [
        "Ý KIẾN, PHẢN ÁNH, KIẾN NGHỊ (feedback received in the period)",
        f"  Tiếp nhận {c.received} · đã trả lời {c.answered} · đã giải quyết {c.resolved} "
        f"· đúng hạn {c.resolved_on_time}",
        f"  Theo loại: {kinds}",
        f"  Đang quá hạn: {c.overdue}",
    ]


# --- JSON ----------------------------------------------------------------------------------


def figure_dict(figure: Figure) -> dict[str, Any]:
    return {
        "share": two_places(figure.share),
        "mean": two_places(figure.mean),
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
            "held": report.held,
        },
        "channels": {
            name: {"responses": figure.responses, **figure_dict(figure.overall)}
            for name, figure in report.channels.items()
        },
        "verified_presence": {
            "responses": report.verified_responses,
            **figure_dict(report.verified),
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
                "factors": {str(n): two_places(f.share) for n, f in c.factors.items()},
            }
            for c in report.counters
        ],
        "officers": [
            {
                "code": o.code,
                "name": o.name,
                "unit": o.unit_code,
                "rank": rank,
                "responses": o.responses,
                **figure_dict(o.overall),
            }
            for rank, o in report.ranked_officers()
        ],
        "weakest_factor": None if weakest is None else weakest[0],
        "weakest_counter": None if lowest is None else lowest.code,
        "comments": [
            {"at": c.at.isoformat(timespec="seconds"), "counter": c.counter_code, "text": c.text}
            for c in report.comments
        ],
        "cases": report.cases.as_dict(),
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
        prev = previous_criterion(report, crit)
        yield ("criterion", units, counter, crit.factor, crit.criterion, crit.item_id, crit.name,
               crit.figure, prev)  # fmt: skip
    if len(report.units) > 1:
        for unit in report.units:
            prev = previous_unit(report, unit.code)
            yield ("unit", unit.code, "", None, None, None, unit.name, unit.overall, prev)
    for desk in report.counters:
        prev = previous_counter(report, desk.code)
        yield ("counter", desk.unit_code, desk.code, None, None, None, desk.name, desk.overall,
               prev)  # fmt: skip
    for name, channel in report.channels.items():
        yield ("channel", units, counter, None, None, None, name, channel.overall, None)
    for _rank, o in report.ranked_officers():
        yield ("officer", o.unit_code, "", None, None, None, f"{o.code} {o.name}", o.overall,
               None)  # fmt: skip


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
