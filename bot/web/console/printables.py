"""Print pages of the console: the month's one-page A4 report for the notice board and the
counter posters (A4 or A5, one page per counter).

Each is one template that the browser prints (print CSS, static/print.css) and that
bot.printing.pdf turns into a PDF for `sipas-bot print` (bot/cli/printing.py): the CLI renders
the same page through `render_report` / `render_posters` in a request context of its own.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from bot.printing.qr import qr_svg
from bot.reporting import charts
from bot.reporting.periods import Period, period_containing, unit_zone
from bot.reporting.report import ROMAN, build_report, change, monthly_reports, report_scope
from bot.runtime import Runtime
from bot.web.console.base import HERE, blueprint, console_runtime, text, unit_or_404
from bot.web.console.pages import TREND_MONTHS, chosen_period, factor_names
from storage import repositories as repo
from storage import stats
from storage.models import Unit
from survey_flow.sipas import LOW_RATINGS

# What the print pages load, for the PDF writer: the console's own static folder only.
STATIC_FILES = {"/console/static/": HERE / "static"}


class PaperSize(StrEnum):
    A4 = "a4"
    A5 = "a5"


def month_of(period: Period) -> Period:
    """The calendar month holding the period's first day: the report is a month's."""
    return period_containing("month", period.start, period.zone)


def render_report(db: Session, unit: Unit, month: Period, *, runtime: Runtime) -> str:
    """The month's one-page report of the unit, as HTML (in a request context)."""
    settings = runtime.settings
    min_answers = settings.report_min_answers
    report = build_report(
        db, unit_codes=[unit.code], period=month, min_answers=min_answers, comment_limit=0
    )
    trend = monthly_reports(
        db, unit_codes=[unit.code], last=month, months=TREND_MONTHS, min_answers=min_answers
    )
    scope = report_scope(db, unit_codes=[unit.code], period=month)
    _, with_comment = stats.feedback(db, scope, low_values=LOW_RATINGS, with_comment=True, limit=0)
    _, low = stats.feedback(db, scope, low_values=LOW_RATINGS, low_only=True, limit=0)
    alerts, acknowledged = repo.alert_counts(db, unit.id, start=month.start, end=month.end)
    names = factor_names()
    previous = report.previous
    zone = unit_zone(unit, settings.tz)
    return render_template(
        "console/print_report.html",
        unit=unit,
        report=report,
        month=month,
        change=change(report.overall, previous.overall if previous else None),
        ranked=report.ranked_counters(),
        factor_names=names,
        roman=ROMAN,
        min_answers=min_answers,
        # Narrower than on screen: the labels come out larger on the paper.
        factor_chart=charts.factor_bars(report, names, width=400),
        trend_chart=charts.trend_lines(
            trend, index_label=text("index"), factor_names=names, width=520, legend_columns=2
        ),
        handling={
            "comments": with_comment,
            "low": low,
            "alerts": alerts,
            "acknowledged": acknowledged,
        },
        made_at=runtime.clock().astimezone(zone),
    )


def render_posters(unit: Unit, size: PaperSize, *, runtime: Runtime) -> str:
    """A poster per counter of the unit, one page each, as HTML (in a request context)."""
    settings = runtime.settings
    counters = [
        {"counter": counter, "qr": qr_svg(settings.qr_url(counter.code))}
        for counter in unit.counters
    ]
    return render_template(
        "console/print_posters.html",
        unit=unit,
        size=size,
        counters=counters,
        oa_name=runtime.oa_shown(unit)[1],  # the unit's OA (ZALO_OA_NAME: the one)
        t=runtime.texts.of("vi"),  # posters speak to citizens, in Vietnamese
    )


@blueprint.get("/units/<code>/print/report")
@login_required
def print_report(code: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        now: datetime = runtime.clock()
        choice = chosen_period(unit_zone(unit, runtime.settings.tz), now)
        return render_report(db, unit, month_of(choice.period), runtime=runtime)


@blueprint.get("/units/<code>/print/posters")
@login_required
def print_posters(code: str) -> ResponseReturnValue:
    try:
        size = PaperSize(request.args.get("size", "a4"))
    except ValueError:
        abort(400)
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        return render_posters(unit, size, runtime=runtime)
