"""The console's pages: the province view, a unit's overview, a counter, comments, alerts.

Every figure comes from bot.reporting (build_report and the rules beside it); this module only
chooses what to ask for and how the page shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import TextAreaField
from wtforms.validators import Length

from bot.conversation.acknowledgements import NOTE_CHARS, acknowledge_alert
from bot.conversation.shifts import end_shift, sign_in
from bot.reporting import charts
from bot.reporting.periods import Period, period_containing, unit_zone
from bot.reporting.report import (
    ROMAN,
    Report,
    build_report,
    change,
    monthly_reports,
    province_report,
    report_scope,
)
from bot.web.console.accounts import PrincipalKind
from bot.web.console.base import (
    blueprint,
    console_runtime,
    language,
    links_to,
    text,
    unit_or_404,
    visible_units,
)
from storage import repositories as repo
from storage import stats
from storage.models import ShiftSource, Unit
from survey_flow.sipas import FACTORS, LOW_RATINGS
from survey_flow.states import SurveyStatus

PERIOD_KINDS = ("week", "month", "quarter", "year")
TREND_MONTHS = 12
LOW_RATINGS_SHOWN = 10
COMMENTS_SHOWN = 100


class AcknowledgeForm(FlaskForm):
    note = TextAreaField(validators=[Length(max=NOTE_CHARS)])


def factor_names() -> list[str]:
    lang = language()
    return [FACTORS[n].get(lang, FACTORS[n]["vi"]) for n in sorted(FACTORS)]


@dataclass(frozen=True)
class PeriodChoice:
    """The period a page shows, from `?period=month&date=2026-03-01` (a day inside it)."""

    period: Period
    kind: str
    day: date

    def args(self, period: Period | None = None) -> dict[str, str]:
        chosen = period or self.period
        return {"period": chosen.kind, "date": chosen.first_day.isoformat()}


def chosen_period(zone: Any, now: datetime) -> PeriodChoice:
    kind = request.args.get("period", "month")
    if kind not in PERIOD_KINDS:
        abort(400)
    raw = request.args.get("date", "")[:10]
    try:
        day = date.fromisoformat(raw) if raw else now.astimezone(zone).date()
    except ValueError:
        abort(400)
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    return PeriodChoice(period_containing(kind, moment, zone), kind, day)


def _period_links(choice: PeriodChoice, now: datetime) -> dict[str, Any]:
    previous = choice.period.previous()
    following = period_containing(choice.kind, choice.period.end, choice.period.zone)
    return {
        "previous": choice.args(previous),
        "next": choice.args(following) if following.start <= now else None,
    }


def _unit_context(db: Session, unit: Unit) -> dict[str, Any]:
    runtime = console_runtime()
    now = runtime.clock()
    zone = unit_zone(unit, runtime.settings.tz)
    choice = chosen_period(zone, now)
    return {
        "unit": unit,
        "units": visible_units(db, current_user),
        "choice": choice,
        "period_args": choice.args(),
        "period_links": _period_links(choice, now),
        "period_kinds": PERIOD_KINDS,
        "min_answers": runtime.settings.report_min_answers,
        "zone": zone,
    }


def _figures(report: Report) -> dict[str, Any]:
    previous = report.previous
    return {
        "report": report,
        "change": change(report.overall, previous.overall if previous else None),
        "factor_names": factor_names(),
        "roman": ROMAN,
    }


def _charts(report: Report, trend: list[Report]) -> dict[str, str]:
    names = factor_names()
    return {
        "factor_chart": charts.factor_bars(report, names),
        "trend_chart": charts.trend_lines(trend, index_label=text("index"), factor_names=names),
    }


def split_context(report: Report) -> dict[str, Any]:
    """The index and counts by channel (from the report's own rows: the roll-up's, when it
    covers the period), and by officer when the report was built `with_officers` (the unit's
    leaders and operators; never a viewer) (_split.html)."""
    return {
        "split_channels": dict(sorted(report.channels.items())),
        "split_officers": report.ranked_officers(),
    }


@blueprint.get("/")
@login_required
def home() -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        units = visible_units(db, current_user)
    if len(units) == 1:
        return redirect(url_for("console.overview", code=units[0].code))
    if not units:
        return render_template("console/no_units.html"), 200
    return redirect(url_for("console.province"))


@blueprint.get("/province")
@login_required
def province() -> ResponseReturnValue:
    runtime = console_runtime()
    now = runtime.clock()
    with runtime.session_factory() as db:
        units = visible_units(db, current_user)
        if not units:
            abort(404)
        choice = chosen_period(runtime.settings.tz, now)
        report = province_report(
            db,
            units=units,
            period=choice.period,
            min_answers=runtime.settings.report_min_answers,
        )
        previous = report.previous.figures_by_key if report.previous else {}
        return render_template(
            "console/province.html",
            units=units,
            choice=choice,
            period_args=choice.args(),
            period_links=_period_links(choice, now),
            period_kinds=PERIOD_KINDS,
            min_answers=runtime.settings.report_min_answers,
            unit_link=links_to("console.overview", "code", **choice.args()),
            ranked=[
                (rank, u, change(u.overall, previous.get(("unit", u.code))))
                for rank, u in report.ranked_units()
            ],
            factor_chart=charts.factor_bars(report, factor_names()),
            **_figures(report),
        )


@blueprint.get("/units/<code>")
@login_required
def overview(code: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        context = _unit_context(db, unit)
        period: Period = context["choice"].period
        min_answers = runtime.settings.report_min_answers
        report = build_report(
            db,
            unit_codes=[unit.code],
            period=period,
            min_answers=min_answers,
            comment_limit=0,
            with_officers=current_user.can_act,
        )
        trend = monthly_reports(
            db, unit_codes=[unit.code], last=period, months=TREND_MONTHS, min_answers=min_answers
        )
        scope = report_scope(db, unit_codes=[unit.code], period=period)
        low, low_total = stats.feedback(
            db, scope, low_values=LOW_RATINGS, low_only=True, limit=LOW_RATINGS_SHOWN
        )
        previous = report.previous.figures_by_key if report.previous else {}
        starts = stats.start_counts(db, scope)
        return render_template(
            "console/overview.html",
            ranked=[
                (rank, c, change(c.overall, previous.get(("counter", c.code))))
                for rank, c in report.ranked_counters()
            ],
            statuses=starts.statuses(),
            starts=starts,
            start_statuses=list(SurveyStatus),
            low=low,
            low_total=low_total,
            **context,
            **_figures(report),
            **_charts(report, trend),
            **split_context(report),
        )


@blueprint.get("/units/<code>/counters/<counter_code>")
@login_required
def counter(code: str, counter_code: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        found = next((c for c in unit.counters if c.code == counter_code.upper()[:32]), None)
        if found is None:
            abort(404)
        context = _unit_context(db, unit)
        period = context["choice"].period
        min_answers = runtime.settings.report_min_answers
        report = build_report(
            db,
            unit_codes=[unit.code],
            counter_code=found.code,
            period=period,
            min_answers=min_answers,
            comment_limit=0,
            with_officers=current_user.can_act,
        )
        trend = monthly_reports(
            db,
            unit_codes=[unit.code],
            counter_code=found.code,
            last=period,
            months=TREND_MONTHS,
            min_answers=min_answers,
        )
        scope = report_scope(db, unit_codes=[unit.code], counter_code=found.code, period=period)
        low, low_total = stats.feedback(
            db, scope, low_values=LOW_RATINGS, low_only=True, limit=LOW_RATINGS_SHOWN
        )
        full_form = any(c.criterion is not None for c in report.criteria)
        return render_template(
            "console/counter.html",
            counter=found,
            statuses=stats.status_counts(db, scope),
            low=low,
            low_total=low_total,
            full_form=full_form,
            **context,
            **_figures(report),
            **_charts(report, trend),
            **split_context(report),
            **shift_context(db, unit, found.id),
        )


def shift_context(db: Session, unit: Unit, counter_id: int) -> dict[str, Any]:
    """The counter's shift and the unit's officers, for _shift.html."""
    return {
        "shift_officers": repo.unit_officers(db, unit.id),
        "on_shift": repo.current_shift(db, counter_id, now=console_runtime().clock()),
    }


@blueprint.post("/units/<code>/counters/<counter_code>/shift")
@login_required
def shift(code: str, counter_code: str) -> ResponseReturnValue:
    """A leader or an operator of the unit starts an officer's shift at the counter (ending
    the one before) or ends the open one."""
    if not current_user.can_act:
        abort(403)
    runtime = console_runtime()
    now = runtime.clock()
    with runtime.session_factory.begin() as db:
        unit = unit_or_404(db, current_user, code)
        found = next((c for c in unit.counters if c.code == counter_code.upper()[:32]), None)
        if found is None:
            abort(404)
        if request.form.get("action") == "end":
            end_shift(db, found, now=now)
        elif (
            sign_in(
                db,
                found,
                request.form.get("officer", ""),
                via=ShiftSource.CONSOLE,
                now=now,
                default_zone=runtime.settings.tz,
            )
            is None
        ):
            abort(400)
    back = urlencode({k: v for k, v in request.args.items() if k in ("period", "date")})
    target = url_for("console.counter", code=unit.code, counter_code=found.code)
    return redirect(f"{target}?{back}#shift")


@blueprint.get("/units/<code>/comments")
@login_required
def comments(code: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        context = _unit_context(db, unit)
        counter_code = request.args.get("counter", "").upper()[:32] or None
        if counter_code and counter_code not in {c.code for c in unit.counters}:
            abort(404)
        search = " ".join(request.args.get("q", "").split())[:100] or None
        low_only = request.args.get("low") == "1"
        scope = report_scope(
            db, unit_codes=[unit.code], counter_code=counter_code, period=context["choice"].period
        )
        rows, total = stats.feedback(
            db,
            scope,
            low_values=LOW_RATINGS,
            low_only=low_only,
            with_comment=True,
            search=search,
            limit=COMMENTS_SHOWN,
        )
        return render_template(
            "console/comments.html",
            rows=rows,
            total=total,
            counter_code=counter_code,
            search=search or "",
            low_only=low_only,
            roman=ROMAN,
            **context,
        )


@dataclass(frozen=True)
class AlertLine:
    id: int
    at: datetime
    counter_code: str
    counter_name: str
    low: dict[int, int]
    comment: str | None
    acknowledgements: list[Any]


def _alert_lines(db: Session, unit: Unit, period: Period) -> list[AlertLine]:
    alerts = repo.list_alerts(db, [unit.id], start=period.start, end=period.end)
    acks = repo.alert_acknowledgements(db, [a.id for a in alerts])
    lines = []
    for alert in alerts:
        low: dict[int, int] = {}
        comment = None
        for answer in alert.response.answers:
            if answer.factor is not None and answer.value in LOW_RATINGS:
                low[answer.factor] = min(answer.value, low.get(answer.factor, 5))
            elif answer.factor is None and answer.text and comment is None:
                comment = answer.text
        lines.append(
            AlertLine(
                id=alert.id,
                at=alert.response.completed_at or alert.created_at,
                counter_code=alert.counter.code,
                counter_name=alert.counter.name,
                low=dict(sorted(low.items())),
                comment=comment,
                acknowledgements=acks.get(alert.id, []),
            )
        )
    return lines


@blueprint.get("/units/<code>/alerts")
@login_required
def alerts(code: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        context = _unit_context(db, unit)
        return render_template(
            "console/alerts.html",
            alerts=_alert_lines(db, unit, context["choice"].period),
            form=AcknowledgeForm(),
            roman=ROMAN,
            factor_names=factor_names(),
            **context,
        )


@blueprint.post("/units/<code>/alerts/<int:alert_id>/ack")
@login_required
def acknowledge(code: str, alert_id: int) -> ResponseReturnValue:
    if not current_user.can_act:
        abort(403)
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        abort(400)
    runtime = console_runtime()
    with runtime.session_factory.begin() as db:
        unit = unit_or_404(db, current_user, code)
        alert = repo.get_alert(db, alert_id)
        if alert is None or alert.unit_id != unit.id:
            abort(404)
        if current_user.kind is PrincipalKind.LEADER:
            leader = repo.get_leader(db, current_user.record_id)
            acknowledge_alert(db, alert.id, leader=leader, note=form.note.data, now=runtime.clock())
        else:
            user = repo.get_console_user(db, current_user.record_id)
            acknowledge_alert(
                db, alert.id, console_user=user, note=form.note.data, now=runtime.clock()
            )
    back = urlencode({k: v for k, v in request.args.items() if k in ("period", "date")})
    target = url_for("console.alerts", code=unit.code)
    return redirect(f"{target}?{back}#alert-{alert_id}")
