"""`sipas-bot rollup rebuild|check`: the roll-up of the index's counts per counter and local
day, and per unit and local month (storage/repositories/rollup/; docs/reports.md),
recomputed from the stored surveys, or compared with them."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup

from bot.cli.context import current_runtime, require_schema
from bot.errors import BadArguments
from bot.reporting.periods import parse_day
from bot.reporting.report import find_units
from bot.runtime import Runtime
from bot.units import unit_zone
from storage import repositories as repo
from storage.models import Unit

SHOWN_DIFFERENCES = 10


@click.group("rollup", cls=AppGroup)
def rollup() -> None:
    """The roll-up of counts per counter and day (and per unit and month) that reports read
    (docs/reports.md)."""


def _chosen(
    runtime: Runtime, unit_codes: Sequence[str], date_from: str | None, date_to: str | None
) -> tuple[list[tuple[int, str, str]], tuple[str, str] | None]:
    """(unit id, code, zone) of the chosen units (all when none is named), and the dates."""
    if (date_from is None) != (date_to is None):
        raise BadArguments("give both --from and --to, or neither")
    if date_from is not None and date_to is not None:
        first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
        if first > last:
            raise BadArguments(f"--from {first} is after --to {last}")
    with runtime.session_factory() as session:
        units: list[Unit] = find_units(session, list(unit_codes) or None)
        chosen = [(u.id, u.code, unit_zone(u, runtime.settings.tz).key) for u in units]
    dates = (date_from, date_to) if date_from is not None and date_to is not None else None
    return chosen, dates


def _span(dates: tuple[str, str] | None, zone: str) -> repo.Span | None:
    if dates is None:
        return None
    return repo.months_span(
        parse_day(dates[0], "--from"), parse_day(dates[1], "--to"), ZoneInfo(zone)
    )


@rollup.command("rebuild")
@click.option("--unit", "unit_codes", multiple=True, help="Only this unit (repeatable).")
@click.option("--from", "date_from", help="First day (YYYY-MM-DD); whole months are rebuilt.")
@click.option("--to", "date_to", help="Last day (YYYY-MM-DD), with --from.")
def rollup_rebuild(unit_codes: tuple[str, ...], date_from: str | None, date_to: str | None) -> None:
    """Recompute the roll-up from the stored surveys: every unit (or those named), all their
    days (or the months holding --from to --to), one transaction per unit, in the unit's
    time zone (or TIMEZONE). Progress on standard error. On PostgreSQL each unit's rows
    are grouped in SQL; on SQLite each survey is read (docs/reports.md).

    Needed after a unit's time zone or TIMEZONE changed (reports read the raw rows of such
    a unit until then; `sipas-bot rollup check` tells which); safe at any time, also while
    the service runs.
    """
    runtime = current_runtime()
    require_schema(runtime)
    chosen, dates = _chosen(runtime, unit_codes, date_from, date_to)
    started = time.monotonic()
    total = 0
    for n, (unit_id, code, zone) in enumerate(chosen, start=1):
        with runtime.session_factory.begin() as session:
            kept = repo.rollup_zone(session, unit_id)
            if dates is not None and kept is not None and kept != zone:
                raise BadArguments(
                    f"unit {code}'s roll-up is kept in {kept}, its time zone is now {zone}: "
                    "rebuild it whole (without --from/--to)"
                )
            surveys = repo.rebuild_unit(
                session, unit_id, zone=zone, span=_span(dates, zone), now=runtime.clock()
            )
        total += surveys
        if n == len(chosen) or n % 50 == 0 or surveys > 10_000:
            click.echo(
                f"{n}/{len(chosen)} units ({code}: {surveys:,} surveys), "
                f"{time.monotonic() - started:.0f} s",
                err=True,
            )
    click.echo(f"rebuilt the roll-up of {len(chosen)} unit(s): {total:,} surveys counted", err=True)


@rollup.command("check")
@click.option("--unit", "unit_codes", multiple=True, help="Only this unit (repeatable).")
@click.option("--from", "date_from", help="First day (YYYY-MM-DD); whole months are checked.")
@click.option("--to", "date_to", help="Last day (YYYY-MM-DD), with --from.")
def rollup_check(unit_codes: tuple[str, ...], date_from: str | None, date_to: str | None) -> None:
    """Compare the roll-up with the stored surveys, row by row, and say what differs (for
    an auditor: every figure of a report read from the roll-up is the raw rows' figure).
    Exit status 1 when something differs or a unit's roll-up is kept in another time zone.
    """
    runtime = current_runtime()
    require_schema(runtime)
    chosen, dates = _chosen(runtime, unit_codes, date_from, date_to)
    problems = 0
    for unit_id, code, zone in chosen:
        with runtime.session_factory() as session:
            kept = repo.rollup_zone(session, unit_id)
            differences = repo.compare_unit(session, unit_id, span=_span(dates, kept or zone))
        if kept is not None and kept != zone:
            problems += 1
            click.echo(
                f"{code}: kept in {kept}, its time zone is {zone}: reports read the raw rows; "
                f"run `sipas-bot rollup rebuild --unit {code}`"
            )
        if differences:
            problems += 1
            tables = Counter(d.table for d in differences)
            click.echo(
                f"{code}: "
                + ", ".join(f"{n} {table} row(s)" for table, n in sorted(tables.items()))
                + " differ from the stored surveys"
            )
            for d in differences[:SHOWN_DIFFERENCES]:
                key = " ".join(str(part) for part in d.key)
                click.echo(f"  {d.table} [{key}]: stored {d.stored}, computed {d.computed}")
            click.echo(f"  -> run `sipas-bot rollup rebuild --unit {code}`")
    click.echo(
        f"checked the roll-up of {len(chosen)} unit(s): "
        + (f"{problems} with a problem" if problems else "all equal to the stored surveys"),
        err=True,
    )
    if problems:
        sys.exit(1)


COMMANDS: list[click.Command] = [rollup]
