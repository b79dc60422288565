"""Charts of the index as inline SVG, drawn on the server by pygal.

pygal's tooltips load a script from the internet by default: every chart here is made with
`js=[]`, so a page or a PDF holding it makes no request anywhere (the server may sit on a
closed network). Figures with too few answers are drawn grey and never stand out as data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from pygal.style import Style

from bot.reporting.report import ROMAN, Report

THIN = "#b8b8b8"
COLOURS = ("#1f5fa8", "#d9822b", "#3a9a5b", "#a83a3a", "#7a4fa8", "#2b9ab0")
_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333333",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    colors=COLOURS,
    font_family="DejaVu Sans, Arial, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=12,
    legend_font_size=13,
    title_font_size=15,
)


# pygal writes its tooltip settings in an inline <script> even with js=[]: inert without
# the tooltip script, and refused by the console's Content-Security-Policy, so it is dropped
# (with pygal's comments, which name its web site).
_INLINE = re.compile(r"<script\b[^>]*>.*?</script>|<!--.*?-->", re.DOTALL)


def _render(chart: pygal.graph.graph.Graph) -> str:
    return _INLINE.sub("", str(chart.render(is_unicode=True)))


def factor_bars(report: Report, names: Sequence[str], *, width: int = 640) -> str:
    """The five factors' shares as horizontal bars (grey when there are too few answers)."""
    chart = pygal.HorizontalBar(
        js=[],
        style=_STYLE,
        width=width,
        height=320,
        range=(0, 100),
        show_legend=False,
        print_values=True,
        value_formatter=lambda v: "" if v is None else f"{v:.1f}%",
        disable_xml_declaration=True,
        margin=10,
    )
    chart.x_labels = [f"{ROMAN[n]}. {names[n - 1]}" for n in report.factors]
    chart.add(
        "share",
        [
            {"value": round(f.share, 2), "color": COLOURS[0] if f.enough else THIN}
            if f.share is not None
            else None
            for f in report.factors.values()
        ],
    )
    return _render(chart)


def trend_lines(
    reports: Sequence[Report],
    *,
    index_label: str,
    factor_names: Sequence[str],
    width: int = 800,
    legend_columns: int = 3,
) -> str:
    """The index and each factor over the months of `reports` (oldest first); a month with
    too few answers is a gap in the line."""
    chart = pygal.Line(
        js=[],
        style=_STYLE,
        width=width,
        height=360,
        range=(0, 100),
        allow_interruptions=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=legend_columns,
        truncate_legend=-1,
        truncate_label=-1,
        x_label_rotation=0,
        show_minor_x_labels=True,
        dots_size=3,
        value_formatter=lambda v: "" if v is None else f"{v:.1f}%",
        disable_xml_declaration=True,
        margin=10,
    )
    chart.x_labels = [f"{r.period.first_day:%m/%y}" for r in reports]
    chart.add(
        index_label,
        [_share(r.overall.share, r.overall.enough) for r in reports],
        stroke_style={"width": 4},
    )
    for n, name in enumerate(factor_names, start=1):
        chart.add(
            f"{ROMAN[n]}. {name}",
            [_share(r.factors[n].share, r.factors[n].enough) for r in reports],
        )
    return _render(chart)


def _share(share: float | None, enough: bool) -> float | None:
    return round(share, 2) if share is not None and enough else None
