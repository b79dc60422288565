"""`sipas-bot export`: every survey, one row each, as CSV or XLSX."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from bot.cli.context import (
    current_runtime,
    require_schema,
)
from bot.directory import require_counter, require_unit
from bot.errors import BadArguments, BadPeriod
from bot.files import atomic_text
from survey_flow.states import SurveyStatus

# --- export --------------------------------------------------------------------------------


@click.command("export")
@with_appcontext
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output; required for xlsx).",
)
@click.option("--unit", "unit_code", help="Only this unit's surveys.")
@click.option("--counter", "counter_code", help="Only this counter's surveys.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="Started on or after this day.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Started on or before this day.")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every stored survey, whatever its status (open, cancelled, never counted too).",
)
@click.option(
    "--status",
    "statuses",
    type=click.Choice([s.value for s in SurveyStatus]),
    multiple=True,
    help="Only surveys in this status (repeatable). An expired survey is stored as partial.",
)
@click.option(
    "--officers",
    "with_officers",
    is_flag=True,
    help="Fill the `officer` column (the code of the officer on shift): staff's personal "
    "data, for the unit's leaders and operators only. Without it the column is empty.",
)
def export(
    fmt: str,
    out: Path | None,
    unit_code: str | None,
    counter_code: str | None,
    date_from: str | None,
    date_to: str | None,
    every: bool,
    statuses: tuple[str, ...],
    with_officers: bool,
) -> None:
    """Export surveys, one row per survey, streamed: completed and partial ones unless --all
    or --status says otherwise. Each row says whether the survey is counted, a repeat, how it
    was started, its review state, its channel and (with --officers) the officer on shift;
    docs/reports.md says which rows make the index.

    Days are in the unit's time zone (with --unit), else in TIMEZONE. A large export says
    how far it is on standard error every 100,000 surveys.
    """
    from datetime import datetime, time, timedelta

    from bot.reporting.export import (
        DEFAULT_STATUSES,
        ExportFilter,
        export_records,
        export_rows,
        write_csv,
        write_xlsx,
    )
    from bot.reporting.periods import parse_day, unit_zone

    runtime = current_runtime()
    require_schema(runtime)
    if fmt == "xlsx" and out is None:
        raise BadArguments("--format xlsx needs --out FILE")
    if every and statuses:
        raise BadArguments("--all exports every status: give --all or --status, not both")
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        if unit_code:
            zone = unit_zone(require_unit(session, unit_code), zone)
        if counter_code:
            counter = require_counter(session, counter_code, unit_code=unit_code)
            zone = unit_zone(counter.unit, zone)
        first = parse_day(date_from, "--from") if date_from else None
        last = parse_day(date_to, "--to") if date_to else None
        if first and last and first > last:
            raise BadPeriod(f"--from {first} is after --to {last}")
        where = ExportFilter(
            statuses=None if every else (statuses or DEFAULT_STATUSES),
            unit_code=unit_code,
            counter_code=counter_code,
            start=datetime.combine(first, time(), zone) if first else None,
            end=datetime.combine(last + timedelta(days=1), time(), zone) if last else None,
            with_officers=with_officers,
        )
        if fmt == "xlsx":
            assert out is not None
            records = export_records(session, runtime.flows, zone=zone, where=where)
            count = write_xlsx(export_progress(records), out)
        else:
            rows = export_progress(export_rows(session, runtime.flows, zone=zone, where=where))
            if out is None:
                write_csv(rows, sys.stdout)
                return
            with atomic_text(out) as handle:
                count = write_csv(rows, handle)
    click.echo(f"wrote {count} survey(s) to {out}", err=True)


def export_progress(rows: Iterator[list[Any]], *, every: int = 100_000) -> Iterator[list[Any]]:
    """The rows as they are (the header first), with a line on stderr every `every` surveys:
    a million surveys take minutes."""
    for index, row in enumerate(rows):
        if index and index % every == 0:
            click.echo(f"exported {index:,} surveys so far…", err=True)
        yield row


COMMANDS: list[click.Command] = [export]
