"""`GET /u/<unit>/results`: a unit's published satisfaction figures (opt-in per unit).

What a ward posts at its office every month (as the Trung Văn ward in Hà Nội does), on a
phone: the SIPAS share of the last six months, per factor, with the number of answers behind
every figure. Units that have not set `public_results` get a 404, as if the page did not
exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, current_app, render_template
from flask.typing import ResponseReturnValue

from bot.reporting import numbers
from bot.reporting.cases import CaseFigures
from bot.reporting.report import ROMAN, Figure, Report, recent_months
from bot.units import is_code
from bot.web.current import runtime_of
from storage import repositories as repo
from survey_flow.sipas import FACTORS

blueprint = Blueprint("results", __name__)

MONTHS = 6


@dataclass(frozen=True)
class Line:
    """One figure as the page shows it."""

    label: str
    share: str
    bar: float
    valid: int
    mean: str
    few: bool


@dataclass(frozen=True)
class Month:
    label: str
    running_to: str | None
    overall: Line
    responses: int
    factors: list[Line]
    verified: Line
    verified_responses: int
    cases: CaseFigures


PAGE_LANGUAGE = "vi"  # the page is written in Vietnamese


def _percent(value: float | None) -> str:
    return numbers.percent(value, PAGE_LANGUAGE)


def _line(label: str, figure: Figure) -> Line:
    return Line(
        label=label,
        share=_percent(figure.share),
        bar=round(figure.share or 0.0, 1),
        valid=figure.valid,
        mean=numbers.mean(figure.mean, PAGE_LANGUAGE),
        few=figure.valid > 0 and not figure.enough,
    )


def _month(report: Report, now: datetime) -> Month:
    period = report.period
    running = period.contains(now)
    return Month(
        label=period.label.capitalize(),
        running_to=now.astimezone(period.zone).strftime("%d/%m") if running else None,
        overall=_line("Chung", report.overall),
        responses=report.responses,
        factors=[
            _line(f"{ROMAN[n]}. {FACTORS[n]['vi']}", figure) for n, figure in report.factors.items()
        ],
        verified=_line("Có xác thực có mặt", report.verified),
        verified_responses=report.verified_responses,
        cases=report.cases,
    )


@blueprint.get("/u/<code>/results")
def results(code: str) -> ResponseReturnValue:
    if not is_code(code):
        abort(404)
    runtime = runtime_of(current_app)
    now = runtime.clock()
    with runtime.session_factory() as session:
        unit = repo.find_unit(session, code)
        if unit is None or not unit.public_results:
            abort(404)
        reports = recent_months(
            session,
            unit,
            now=now,
            default_zone=runtime.settings.tz,
            months=MONTHS,
            min_answers=runtime.settings.report_min_answers,
        )
        page = render_template(
            "results.html",
            unit=unit.name,
            months=[_month(report, now) for report in reports],
            min_answers=runtime.settings.report_min_answers,
        )
    return page, 200, {"Cache-Control": "public, max-age=300"}
