"""The console's cases (docs/cases.md): a list across the units the principal may see, with
filters and a search by reference, and a case's page with its text, scores, replies and
audit trail, where an official assigns, replies and closes.

Every change goes through bot.cases.desk (`CaseDesk.assign/reply/close`), the same functions
the CLI calls, in one transaction per form; a viewer reads and cannot act. A case outside the
principal's units is a 404, as if it did not exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from bot.cases.desk import FORM_CHANNELS
from bot.cases.references import parse_reference
from bot.conversation.paper import format_form_number
from bot.errors import OperatorError
from bot.reporting.periods import period_containing
from bot.web.console.accounts import Principal
from bot.web.console.base import blueprint, console_runtime, text, visible_units
from storage import repositories as repo
from storage.models import Case, CaseKind, CaseStatus, Unit
from zalo_client.limits import MAX_TEXT_CHARS

CASES_SHOWN = 200
_OPEN = (CaseStatus.NEW.value, CaseStatus.IN_PROGRESS.value)


class AssignForm(FlaskForm):
    assignee = SelectField(validators=[DataRequired()])


class ReplyForm(FlaskForm):
    text = TextAreaField(validators=[DataRequired(), Length(max=MAX_TEXT_CHARS)])
    key = HiddenField(validators=[DataRequired(), Length(max=64)])


class CloseForm(FlaskForm):
    resolution = TextAreaField(validators=[DataRequired(), Length(max=MAX_TEXT_CHARS)])


def _may_see(principal: Principal, case: Case) -> bool:
    """A case with no unit is seen only by those who see every unit."""
    if principal.unit_ids is None:
        return True
    return case.unit_id is not None and case.unit_id in principal.unit_ids


def _case_or_404(db: Session, reference: str, *, for_update: bool = False) -> Case:
    parsed = parse_reference(reference[:32])
    case = repo.find_case(db, parsed, for_update=for_update) if parsed else None
    if case is None or not _may_see(current_user, case):
        abort(404)
    return case


def _month(raw: str) -> tuple[datetime, datetime, str] | None:
    """[start, end) of the month `2026-03` in TIMEZONE, and the value as given; None if blank."""
    if not raw:
        return None
    try:
        first = date.fromisoformat(f"{raw[:7]}-01")
    except ValueError:
        abort(400)
    zone = console_runtime().settings.tz
    period = period_containing("month", datetime(first.year, first.month, 1, 12, tzinfo=zone), zone)
    return period.start, period.end, raw[:7]


def _assignees(db: Session, case: Case) -> list[str]:
    """Who a case may be given to: the leaders of its unit and the console operators who see
    it (by the name the console shows them under)."""
    names: list[str] = []
    if case.unit_id is not None:
        names += [
            Principal.of_leader(leader).name for leader in repo.subscribed_leaders(db, case.unit_id)
        ]
    for user in repo.list_console_users(db):
        principal = Principal.of_user(user)
        if principal.can_act and _may_see(principal, case):
            names.append(principal.name)
    return list(dict.fromkeys(names))


def _list_context(db: Session) -> dict[str, Any]:
    units = visible_units(db, current_user)
    args = request.args
    unit = next((u for u in units if u.code == args.get("unit", "").upper()[:32]), None)
    if args.get("unit") and unit is None:
        abort(404)
    if unit is None and len(units) == 1:
        unit = units[0]
    status = args.get("status", "")
    kind = args.get("kind", "")
    if status not in {"", "open", *(s.value for s in CaseStatus)}:
        abort(400)
    if kind not in {"", *(k.value for k in CaseKind)}:
        abort(400)
    counter = None
    if args.get("counter"):
        if unit is None:
            abort(400)
        counter = next((c for c in unit.counters if c.code == args["counter"].upper()[:32]), None)
        if counter is None:
            abort(404)
    overdue = args.get("overdue") == "1"
    month = _month(args.get("month", ""))
    search = " ".join(args.get("q", "").split())[:40]
    reference = parse_reference(search) if search else None
    runtime = console_runtime()
    today = runtime.clock().astimezone(runtime.settings.tz).date()
    wanted = set(_OPEN) if status == "open" else ({status} if status else None)
    if overdue:
        wanted = set(_OPEN) & (wanted or set(_OPEN))
    found: list[Case] = []
    if wanted != set() and (not search or reference is not None):
        found = list(
            repo.list_cases(
                db,
                unit_ids=[unit.id] if unit else current_user.unit_ids,
                statuses=sorted(wanted) if wanted else None,
                kinds=[kind] if kind else None,
                counter_id=counter.id if counter else None,
                due_before=today if overdue else None,
                received_from=month[0] if month else None,
                received_before=month[1] if month else None,
                reference=reference,
                newest_first=True,
                limit=CASES_SHOWN,
            )
        )
    return {
        "units": units,
        "chosen_unit": unit,
        "unit_filter": unit.code if unit else "",
        "cases": found,
        "today": today,
        "filters": {
            "status": status,
            "kind": kind,
            "counter": counter.code if counter else "",
            "overdue": overdue,
            "month": month[2] if month else "",
            "q": search,
        },
        "statuses": list(CaseStatus),
        "kinds": list(CaseKind),
        "shown_max": CASES_SHOWN,
        "zone": runtime.settings.tz,
        "is_overdue": runtime.cases.is_overdue,
    }


@blueprint.get("/cases")
@login_required
def cases() -> ResponseReturnValue:
    with console_runtime().session_factory() as db:
        context = _list_context(db)
        unit: Unit | None = context["chosen_unit"]
        # The unit's tabs are shown when the list is one unit's.
        extra = {"unit": unit, "period_args": {}} if unit is not None else {}
        return render_template("console/cases.html", **context, **extra)


@blueprint.get("/cases/<reference>")
@login_required
def case_page(reference: str) -> ResponseReturnValue:
    runtime = console_runtime()
    with runtime.session_factory() as db:
        case = _case_or_404(db, reference)
        today = runtime.clock().astimezone(runtime.settings.tz).date()
        assign = AssignForm()
        assign.assignee.choices = [(n, n) for n in _assignees(db, case)]
        reply = ReplyForm(key=secrets.token_hex(16))
        origin = repo.case_origin(db, case)
        paper_form = (
            format_form_number(case.unit.code, origin.paper_number)
            if origin.paper_number is not None and case.unit is not None
            else None
        )
        extra = {}
        if case.unit is not None:  # the unit's tabs
            extra = {"unit": case.unit, "units": visible_units(db, current_user), "period_args": {}}
        return render_template(
            "console/case.html",
            case=case,
            closed=case.status == CaseStatus.CLOSED,
            overdue=runtime.cases.is_overdue(case, today),
            channel=origin.channel,
            paper_form=paper_form,
            # A survey answered on a form has no Zalo conversation: no reply form.
            no_reply_channel=origin.channel in FORM_CHANNELS,
            assign_form=assign,
            reply_form=reply,
            close_form=CloseForm(),
            zone=runtime.settings.tz,
            **extra,
        )


Action = Callable[[Session, Case, str, datetime], str]


def _act(reference: str, form: FlaskForm, action: Action) -> ResponseReturnValue:
    """Validate the form, then do `action` on the case in one transaction through the desk;
    an operator's mistake (a closed case, an empty text) is shown on the case's page."""
    if not current_user.can_act:
        abort(403)
    if not form.validate_on_submit():
        abort(400)
    runtime = console_runtime()
    try:
        with runtime.session_factory.begin() as db:
            case = _case_or_404(db, reference, for_update=True)
            flash(action(db, case, f"console:{current_user.name}", runtime.clock()))
    except OperatorError as problem:
        flash(str(problem), "error")
    runtime.sender_wakeup.set()  # a reply may wait in the outbox
    return redirect(url_for("console.case_page", reference=reference))


@blueprint.post("/cases/<reference>/assign")
@login_required
def assign_case(reference: str) -> ResponseReturnValue:
    form = AssignForm()
    form.assignee.validate_choice = False  # checked against the case's own names below

    def assign(db: Session, case: Case, actor: str, now: datetime) -> str:
        if form.assignee.data not in _assignees(db, case):
            abort(400)
        console_runtime().cases.assign(
            db, case.reference, to=form.assignee.data, actor=actor, now=now
        )
        return text("case_assigned")

    return _act(reference, form, assign)


@blueprint.post("/cases/<reference>/reply")
@login_required
def reply_case(reference: str) -> ResponseReturnValue:
    form = ReplyForm()

    def reply(db: Session, case: Case, actor: str, now: datetime) -> str:
        runtime = console_runtime()
        outcome = runtime.cases.reply(
            db,
            case.reference,
            text=form.text.data,
            author=actor,
            now=now,
            # The form's key: a double click or a resent form writes one reply.
            key=f"console:{case.id}:{form.key.data}",
        )
        if not outcome.created:
            return text("case_reply_given")
        return text(f"case_reply_{outcome.delivery}")

    return _act(reference, form, reply)


@blueprint.post("/cases/<reference>/close")
@login_required
def close_case(reference: str) -> ResponseReturnValue:
    form = CloseForm()

    def close(db: Session, case: Case, actor: str, now: datetime) -> str:
        console_runtime().cases.close(
            db, case.reference, resolution=form.resolution.data, actor=actor, now=now
        )
        return text("case_closed")

    return _act(reference, form, close)
