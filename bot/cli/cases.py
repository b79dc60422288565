"""`sipas-bot cases`: citizens' feedback handled to the end (docs/cases.md): list, show,
assign, reply (through the outbox) and close."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cases.desk import FORM_CHANNELS, STATUS_LABELS
from bot.cases.kinds import KIND_LABELS
from bot.cli.context import current_runtime, require_schema
from bot.conversation.paper import format_form_number
from bot.directory import require_unit
from bot.errors import UnknownCode
from storage import repositories as repo
from storage.models import CaseKind, CaseStatus, ReplyDelivery

_STATUS_NAMES = {status.value: status for status in CaseStatus}
_BY = click.option(
    "--by",
    "actor",
    default="cli",
    show_default=True,
    help="Who does it (the audit trail names them).",
)


@click.group("cases", cls=AppGroup)
def cases_group() -> None:
    """Citizens' comments, complaints and questions: list, show, assign, reply, close."""


@cases_group.command("list")
@click.option("--unit", "unit_code", help="Only this unit's cases (its code).")
@click.option(
    "--status",
    type=click.Choice(sorted(_STATUS_NAMES)),
    help="Only cases in this status: moi, dang_xu_ly, da_tra_loi, da_dong.",
)
@click.option("--overdue", is_flag=True, help="Only open cases past their due date.")
def cases_list(unit_code: str | None, status: str | None, overdue: bool) -> None:
    """List cases, oldest first: reference, status, kind, unit, due date, assignee."""
    runtime = current_runtime()
    require_schema(runtime)
    today = runtime.clock().astimezone(runtime.settings.tz).date()
    with runtime.session_factory() as session:
        unit_id = require_unit(session, unit_code).id if unit_code else None
        statuses = [status] if status else None
        if overdue:
            statuses = [
                s.value
                for s in (CaseStatus.NEW, CaseStatus.IN_PROGRESS)
                if not status or s == status
            ]
        cases = repo.list_cases(
            session, unit_id=unit_id, statuses=statuses, due_before=today if overdue else None
        )
        for case in cases:
            late = runtime.cases.is_overdue(case, today)
            click.echo(
                f"{case.reference}  {STATUS_LABELS[CaseStatus(case.status)]:<11} "
                f"{KIND_LABELS[CaseKind(case.kind)]:<9} {case.unit.code if case.unit else '-':<6} "
                f"due {case.due_on:%d/%m/%Y}{' OVERDUE' if late else ''}"
                f"{'  undeliverable' if case.undeliverable else ''}  "
                f"{case.assignee or '-'}  {' '.join(case.text.split())[:60]}"
            )
    if not cases:
        click.echo("no cases")


@cases_group.command("show")
@click.argument("reference")
def cases_show(reference: str) -> None:
    """A case whole: its text, scores, status, replies and audit trail."""
    runtime = current_runtime()
    require_schema(runtime)
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        case = repo.find_case(session, reference.strip().upper())
        if case is None:
            raise UnknownCode(f"no case has the reference {reference.strip()!r}")
        click.echo(f"{case.reference}  {STATUS_LABELS[CaseStatus(case.status)]}")
        click.echo(f"kind: {KIND_LABELS[CaseKind(case.kind)]} (from {case.source})")
        click.echo(f"unit: {case.unit.name if case.unit else '-'}")
        origin = repo.case_origin(session, case)
        if origin.channel in FORM_CHANNELS:
            form = (
                f", form {format_form_number(case.unit.code, origin.paper_number)}"
                if origin.paper_number is not None and case.unit is not None
                else ""
            )
            click.echo(f"channel: {origin.channel}{form} (no channel to reply)")
        click.echo(f"received: {case.received_at.astimezone(zone):%d/%m/%Y %H:%M}")
        click.echo(f"due: {case.due_on:%d/%m/%Y}")
        click.echo(f"assignee: {case.assignee or '-'}")
        if case.scores:
            click.echo("scores: " + ", ".join(f"{k}={v}" for k, v in case.scores.items()))
        click.echo(f"text: {case.text}")
        if case.undeliverable:
            click.echo("a reply could not be delivered on Zalo (the 7-day window had closed)")
        contact = repo.contact_of(session, case.id)
        if contact is not None and contact.phone:
            click.echo(f"phone (given by the citizen): {contact.phone}")
        if case.resolution:
            click.echo(f"resolution: {case.resolution}")
        for reply in case.replies:
            click.echo(
                f"reply {reply.created_at.astimezone(zone):%d/%m/%Y %H:%M} by {reply.author} "
                f"[{reply.delivery}]: {reply.text}"
            )
        click.echo("trail:")
        for event in case.events:
            detail = f": {' '.join(event.detail.split())[:80]}" if event.detail else ""
            at = event.at.astimezone(zone)
            click.echo(f"  {at:%d/%m/%Y %H:%M}  {event.actor}  {event.action}{detail}")


@cases_group.command("assign")
@click.argument("reference")
@click.option("--to", "assignee", required=True, help="The official who handles it.")
@_BY
def cases_assign(reference: str, assignee: str, actor: str) -> None:
    """Give a case to an official (a new case is then being handled)."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory.begin() as session:
        case = runtime.cases.assign(
            session, reference, to=assignee, actor=actor, now=runtime.clock()
        )
        click.echo(f"{case.reference} assigned to {case.assignee}")


@cases_group.command("reply")
@click.argument("reference")
@click.option("--text", required=True, help="The answer the citizen receives in Zalo.")
@_BY
def cases_reply(reference: str, text: str, actor: str) -> None:
    """Answer the citizen in Zalo (through the outbox); the same reply twice is sent once.
    A case from the counter's tablet, the web link or a paper form is refused: its citizen
    has no Zalo conversation (no channel to reply); close it with a resolution."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory.begin() as session:
        outcome = runtime.cases.reply(
            session, reference, text=text, author=actor, now=runtime.clock()
        )
        reference = outcome.case.reference
    if not outcome.created:
        click.echo(f"{reference}: this reply was given already; nothing sent again")
    elif outcome.delivery == ReplyDelivery.UNDELIVERABLE:
        click.echo(
            f"{reference}: reply recorded, but Zalo cannot deliver it (the citizen's 7-day "
            "window has closed); reach them another way"
        )
    else:
        runtime.sender_wakeup.set()
        click.echo(f"{reference}: reply queued for the citizen")


@cases_group.command("close")
@click.argument("reference")
@click.option("--resolution", required=True, help="How the case was settled.")
@_BY
def cases_close(reference: str, resolution: str, actor: str) -> None:
    """Close a case with its resolution."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory.begin() as session:
        case = runtime.cases.close(
            session, reference, resolution=resolution, actor=actor, now=runtime.clock()
        )
        click.echo(f"{case.reference} closed")


COMMANDS: list[click.Command] = [cases_group]
