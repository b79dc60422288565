"""`sipas-bot report`: the SIPAS index for officials."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import with_appcontext

from bot.cli.context import current_runtime, require_schema
from bot.errors import BadArguments, BadPeriod, NotReady
from bot.files import UnwritableFile, atomic_text
from bot.reporting.periods import (
    PERIOD_KINDS,
    PERIOD_NAMES,
    PERIOD_NAMES_HELP,
    Period,
    common_zone,
    coverage_text,
    named_period,
    parse_day,
    period_between,
    period_containing,
)
from bot.reporting.render import render_json, render_text, write_csv
from bot.reporting.report import Report, build_report, find_units
from bot.reporting.xlsx import write_xlsx

FORMATS = ("text", "json", "csv", "xlsx")


def choose_period(
    kind: str | None,
    date_from: str | None,
    date_to: str | None,
    *,
    now: datetime,
    zone: ZoneInfo,
) -> Period:
    """The period the options name.

    --from and --to: those dates, both included. --from alone: with --period (a kind: day,
    week, month …), the period of that kind holding the date; without, from that date to
    today. Neither: the named --period (default month: this month so far).
    """
    if date_to is not None and date_from is None:
        raise BadArguments("--to needs --from")
    if date_from is None:
        return named_period(kind or "month", now, zone)
    first = parse_day(date_from, "--from")
    if date_to is None:
        if kind is not None:
            if kind not in PERIOD_KINDS:
                raise BadArguments(
                    f"--period {kind} with --from: give the kind ({PERIOD_NAMES[kind][0]}) "
                    "holding the --from date"
                )
            return period_containing(
                kind, datetime(first.year, first.month, first.day, 12, tzinfo=zone), zone
            )
        last = now.astimezone(zone).date()
        if first > last:
            raise BadPeriod(f"--from {first} is in the future")
        return period_between(first, last, zone)
    if kind is not None:
        raise BadArguments("give --period or --from/--to, not both")
    last = parse_day(date_to, "--to")
    if first > last:
        raise BadPeriod(f"--from {first} is after --to {last}")
    return period_between(first, last, zone)


@click.command("report")
@click.option(
    "--unit",
    "unit_codes",
    multiple=True,
    required=True,
    help="A unit code; repeat the option for several units, or give `all`.",
)
@click.option("--counter", "counter_code", help="Only this counter (of the unit).")
@click.option(
    "--period",
    "kind",
    type=click.Choice(list(PERIOD_NAMES)),
    help=f"{PERIOD_NAMES_HELP} (default month). With --from, a kind: the one holding that date.",
)
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First day (unit's time zone).")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last day, included.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output; required for xlsx).",
)
@click.option(
    "--include-repeats",
    is_flag=True,
    help="Count repeat-flagged responses too (left out by default).",
)
@click.option(
    "--officers",
    "with_officers",
    is_flag=True,
    help="Add the index per officer (where the unit records officers): staff's personal "
    "data, for the unit's leaders and operators only, never to publish.",
)
@with_appcontext
def report(
    unit_codes: Sequence[str],
    counter_code: str | None,
    kind: str | None,
    date_from: str | None,
    date_to: str | None,
    fmt: str,
    out: Path | None,
    include_repeats: bool,
    with_officers: bool,
) -> None:
    """The SIPAS index of one or more units for a period, with the previous period beside it.

    \b
    Examples:
      sipas-bot report --unit HVT
      sipas-bot report --unit HVT --period week
      sipas-bot report --unit HVT --period last-month
      sipas-bot report --unit HVT --counter HVT02 --from 2026-01-01 --to 2026-03-31
      sipas-bot report --unit all --period quarter --format xlsx --out q1.xlsx
      sipas-bot report --unit HVT --officers --format xlsx --out hvt-can-bo.xlsx
    """
    runtime = current_runtime()
    require_schema(runtime)
    if fmt == "xlsx" and out is None:
        raise BadArguments("--format xlsx needs --out FILE")
    codes = None if any(code.lower() == "all" for code in unit_codes) else list(unit_codes)
    settings = runtime.settings
    with runtime.session_factory() as session:
        units = find_units(session, codes)
        if not units:
            raise NotReady("no units yet: run `sipas-bot units import FILE`")
        zone = common_zone(units, settings.tz)
        period = choose_period(kind, date_from, date_to, now=runtime.clock(), zone=zone)
        result = build_report(
            session,
            unit_codes=codes,
            counter_code=counter_code,
            period=period,
            min_answers=settings.report_min_answers,
            include_repeats=include_repeats,
            comment_limit=None if fmt == "xlsx" else 20,
            with_officers=with_officers,
        )
    covers = f"{result.period.label}, {coverage_text(result.period, runtime.clock())}"
    # The workbook is written straight to its file (xlsx needs --out, checked above); the
    # other formats are rendered as text first.
    text = "" if fmt == "xlsx" else _rendered(result, fmt, now=runtime.clock())
    if out is None:
        sys.stdout.write(text)
        if fmt != "text":  # the text names its dates itself
            click.echo(f"period: {covers}", err=True)
        return
    try:
        if fmt == "xlsx":
            write_xlsx(result, out)
        else:
            with atomic_text(out) as handle:
                handle.write(text)
    except OSError as exc:
        raise UnwritableFile(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote the report for {covers} to {out}", err=True)


def _rendered(result: Report, fmt: str, *, now: datetime) -> str:
    if fmt == "csv":
        buffer = io.StringIO()
        write_csv(result, buffer)
        return buffer.getvalue()
    return render_json(result) if fmt == "json" else render_text(result, now=now)


COMMANDS: list[click.Command] = [report]
