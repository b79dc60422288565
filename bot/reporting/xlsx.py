"""The report as an XLSX workbook: a sheet per kind of figure, number formats a
spreadsheet keeps, nothing a formula could run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.files import atomic_binary
from bot.reporting.cells import safe_text
from bot.reporting.render import previous_counter, previous_criterion, previous_unit, two_places
from bot.reporting.report import ROMAN, Figure, Report, change
from survey_flow.sipas import FACTORS

# --- XLSX ----------------------------------------------------------------------------------


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
        two_places(figure.mean),
        figure.valid,
        figure.satisfied,
        "có" if figure.enough else "chưa đủ",
        None if previous is None else _fraction(previous.share),
        two_places(change(figure, previous)),
    ]


def _figure_formats(first: int) -> dict[int, str]:
    return {first: PERCENT, first + 1: MEAN, first + 5: PERCENT, first + 6: POINTS}


def write_xlsx(report: Report, path: Path) -> None:
    """One sheet per level (overall, factors, criteria, counters, units when several), one
    of comments and one of the feedback cases' figures; shares as percentages, a bar chart
    of the factor shares. Atomic."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    _overall_sheet(workbook, report)
    _factor_sheet(workbook, report)
    _criteria_sheet(workbook, report)
    if len(report.units) > 1:
        _unit_sheet(workbook, report)
    _counter_sheet(workbook, report)
    if report.channels:
        _channel_sheet(workbook, report)
    if report.officers:
        _officer_sheet(workbook, report)
    _comment_sheet(workbook, report)
    _case_sheet(workbook, report)
    with atomic_binary(path) as tmp:
        workbook.save(tmp)


def _overall_sheet(workbook: Any, report: Report) -> None:
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
            "Chờ xem xét (held)",
        ],
        [40, 22, 12, 12, *FIGURE_WIDTHS[:5], 14, 14, 14, 14],
    )
    for current in (report, report.previous):
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
                current.held,
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


def _factor_sheet(workbook: Any, report: Report) -> None:
    """The five factors, with a bar chart of their shares (and the previous period's)."""
    from openpyxl.chart import BarChart, Reference

    previous = report.previous
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


def _criteria_sheet(workbook: Any, report: Report) -> None:
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
                *_figure_cells(crit.figure, previous_criterion(report, crit)),
            ]
        )
        _format_row(criteria, _figure_formats(5))


def _unit_sheet(workbook: Any, report: Report) -> None:
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
                *_figure_cells(u.overall, previous_unit(report, u.code)),
            ]
        )
        _format_row(units, _figure_formats(4))


def _counter_sheet(workbook: Any, report: Report) -> None:
    """Counters in rank order (thin ones unranked, at the end), each with its five factors."""
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
                *_figure_cells(desk.overall, previous_counter(report, desk.code)),
                *(_fraction(desk.factors[n].share) if n in desk.factors else None for n in FACTORS),
            ]
        )
        _format_row(
            counters,
            {**_figure_formats(6), **{first_factor + i: PERCENT for i in range(len(FACTORS))}},
        )


def _channel_sheet(workbook: Any, report: Report) -> None:
    """The index per channel; the overall index is every channel's answers together
    (docs/reports.md), not a mean of these."""
    channels = _sheet(
        workbook,
        "Kênh",
        ["Kênh (channel)", "Phiếu (responses)", *FIGURE_HEADERS],
        [12, 12, *FIGURE_WIDTHS],
    )
    before = report.previous.channels if report.previous else {}
    for name, channel in report.channels.items():
        prior = before.get(name)
        channels.append(
            [
                name,
                channel.responses,
                *_figure_cells(channel.overall, prior.overall if prior else None),
            ]
        )
        _format_row(channels, _figure_formats(3))


def _officer_sheet(workbook: Any, report: Report) -> None:
    """Officers in rank order, thin ones unranked and greyed at the end (the counters' rule).
    Only in a workbook built for the unit's leaders and operators."""
    from openpyxl.styles import Font

    officers = _sheet(
        workbook,
        "Cán bộ",
        [
            "Hạng (rank)",
            "Đơn vị (unit)",
            "Cán bộ (officer)",
            "Họ tên (name)",
            "Phiếu (responses)",
            *FIGURE_HEADERS[:5],
        ],
        [8, 10, 12, 30, 12, *FIGURE_WIDTHS[:5]],
    )
    grey = Font(color="808080")
    for rank, officer in report.ranked_officers():
        officers.append(
            [
                rank,
                officer.unit_code,
                officer.code,
                safe_text(officer.name),
                officer.responses,
                *_figure_cells(officer.overall, None)[:5],
            ]
        )
        _format_row(officers, {6: PERCENT, 7: MEAN})
        if not officer.overall.rankable:
            for cell in officers[officers.max_row]:
                cell.font = grey


def _comment_sheet(workbook: Any, report: Report) -> None:
    from openpyxl.styles import Alignment

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


def _case_sheet(workbook: Any, report: Report) -> None:
    """The feedback received in the period and how it was handled (docs/cases.md): the
    figures of `report --format json`'s `cases`, for this period and the previous one."""
    kinds = list(report.cases.by_kind)
    sheet = _sheet(
        workbook,
        "Ý kiến",
        [
            "Kỳ (period)",
            "Tiếp nhận (received)",
            "Đã trả lời (answered)",
            "Đã giải quyết (resolved)",
            "Giải quyết đúng hạn (resolved on time)",
            *(f"{kind} (received)" for kind in kinds),
            "Đang quá hạn (overdue, open)",
        ],
        [22, 14, 14, 14, 18, *([14] * len(kinds)), 16],
    )
    for current in (report, report.previous):
        if current is None:
            continue
        figures = current.cases
        sheet.append(
            [
                current.period.label,
                figures.received,
                figures.answered,
                figures.resolved,
                figures.resolved_on_time,
                *(figures.by_kind.get(kind, 0) for kind in kinds),
                figures.overdue,
            ]
        )
    sheet.append([])
    sheet.append(
        [
            "Các ý kiến, phản ánh, kiến nghị, câu hỏi tiếp nhận trong kỳ: bao nhiêu đã được trả "
            "lời, giải quyết (đóng), giải quyết đúng hạn (đóng không muộn hơn hạn xử lý)."
        ]
    )
