"""`sipas-bot integrity list|release|reject`: the surveys a suspicious pattern held for review
(docs/integrity.md), and the operator's decision on them."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from bot.cli.context import current_runtime, require_schema
from bot.directory import require_unit
from bot.errors import UnknownCode
from storage import repositories as repo
from storage.models import QuarantineState

STATE_NAMES = [state.value for state in QuarantineState if state is not QuarantineState.NONE]


@click.group("integrity", cls=AppGroup)
def integrity() -> None:
    """Surveys held for review by the integrity rules (docs/integrity.md)."""


@integrity.command("list")
@click.option("--unit", "unit_code", help="Only this unit's surveys.")
@click.option(
    "--state",
    "states",
    type=click.Choice(STATE_NAMES),
    multiple=True,
    help="Which review states to list (repeatable; default: held).",
)
def integrity_list(unit_code: str | None, states: tuple[str, ...]) -> None:
    """List held surveys: id, token, unit, counter, status, start method, rule, started.

    Times are in TIMEZONE. Held surveys are stored and exported, and out of the index until
    released.
    """
    runtime = current_runtime()
    require_schema(runtime)
    zone = runtime.settings.tz

    def when(moment: datetime | None) -> str:
        return "-" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    chosen = [QuarantineState(s) for s in states] or [QuarantineState.HELD]
    with runtime.session_factory() as session:
        if unit_code is not None:
            unit_code = require_unit(session, unit_code).code
        found = repo.quarantined_surveys(session, states=chosen, unit_code=unit_code)
    for s in found:
        reviewed = f"  {s.state} {when(s.reviewed_at)}" if s.reviewed_at else f"  {s.state}"
        click.echo(
            f"{s.id}  {s.token}  {s.unit_code}  {s.counter_code}  {s.status}  "
            f"{s.start_method}  {s.rule}  started {when(s.started_at)}{reviewed}"
        )
    click.echo(f"{len(found)} survey(s)", err=True)


def _review(ids: tuple[int, ...], state: QuarantineState, allowed_from: QuarantineState) -> None:
    """Move held surveys (or ones in `allowed_from`) to `state`, all or none."""
    runtime = current_runtime()
    require_schema(runtime)
    wanted = sorted(set(ids))
    with runtime.session_factory.begin() as session:
        found = repo.quarantined_surveys(
            session, states=(QuarantineState.HELD, allowed_from, state), ids=wanted
        )
        missing = sorted(set(wanted) - {s.id for s in found})
        if missing:
            raise UnknownCode(
                f"no survey held for review has the id {', '.join(map(str, missing))} "
                "(see `sipas-bot integrity list`); nothing was changed"
            )
        repo.review_surveys(session, wanted, state, now=runtime.clock())
    click.echo(f"{len(wanted)} survey(s) {state.value}: {', '.join(map(str, wanted))}")


@integrity.command("release")
@click.argument("ids", nargs=-1, type=int, required=True)
def integrity_release(ids: tuple[int, ...]) -> None:
    """Release held surveys (by id) into the index. A rejected one may be released too."""
    _review(ids, QuarantineState.RELEASED, allowed_from=QuarantineState.REJECTED)


@integrity.command("reject")
@click.argument("ids", nargs=-1, type=int, required=True)
def integrity_reject(ids: tuple[int, ...]) -> None:
    """Confirm held surveys (by id) as not genuine: they stay stored and exported, out of
    the index for good. A released one may be rejected too."""
    _review(ids, QuarantineState.REJECTED, allowed_from=QuarantineState.RELEASED)


COMMANDS: list[click.Command] = [integrity]
