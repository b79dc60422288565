"""`sipas-bot print report|posters|paper-form`: the console's print pages as PDF files, for
the notice board, the counters and the paper forms (docs/console.md, docs/channels.md). The
pages are the console's own templates, rendered here in a request context of their own and
written by bot.printing.pdf."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.context import current_runtime, require_schema
from bot.cli.paper import questionnaire_for, where_printed
from bot.config import ConfigError
from bot.conversation.paper import MAX_PRINT, format_form_number
from bot.directory import require_unit
from bot.errors import BadPeriod, NotReady
from bot.printing.pdf import write_pdf
from bot.reporting.periods import Period, period_containing, unit_zone
from bot.web.console.paper import render_paper_forms
from bot.web.console.printables import STATIC_FILES, PaperSize, render_posters, render_report

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def choose_month(text: str | None, *, now: datetime, zone: ZoneInfo) -> Period:
    """`YYYY-MM`, or (None) the last whole month: the one a notice board shows."""
    if text is None:
        return period_containing("month", now, zone).previous()
    match = _MONTH.match(text.strip())
    if match is None:
        raise BadPeriod(f"--period {text!r}: give a month as YYYY-MM, e.g. 2026-03")
    year, month = int(match.group(1)), int(match.group(2))
    try:
        first = date(year, month, 1)
    except ValueError:
        raise BadPeriod(f"--period {text!r}: no such month") from None
    if first > now.astimezone(zone).date():
        raise BadPeriod(f"--period {text}: the month has not begun")
    moment = datetime(first.year, first.month, 1, 12, tzinfo=zone)
    return period_containing("month", moment, zone)


@click.group("print", cls=AppGroup)
def print_group() -> None:
    """PDF files to print: the month's report, the counter posters and paper forms."""


@print_group.command("report")
@click.option("--unit", "unit_code", required=True, help="The unit's code.")
@click.option(
    "--period",
    "month_text",
    metavar="YYYY-MM",
    help="The month (default: the last whole month).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The PDF file to write (default: sipas-<UNIT>-<YYYY-MM>.pdf here).",
)
def print_report(unit_code: str, month_text: str | None, out: Path | None) -> None:
    """The month's one-page A4 report of a unit for the notice board: the index, the five
    factors, the 12-month trend, the counters and how comments and alerts were handled.

    \b
    Example:
      sipas-bot print report --unit HVT --period 2026-03
    """
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as db:
        unit = require_unit(db, unit_code)
        zone = unit_zone(unit, runtime.settings.tz)
        month = choose_month(month_text, now=runtime.clock(), zone=zone)
        path = f"/console/units/{unit.code}/print/report"
        with current_app.test_request_context(path, base_url=runtime.settings.public_base_url):
            html = render_report(db, unit, month, runtime=runtime)
        target = out or Path(f"sipas-{unit.code}-{month.first_day:%Y-%m}.pdf")
    result = write_pdf(html, target, static=STATIC_FILES)
    click.echo(f"wrote the report of {unit.code} for {month.label} to {target}", err=True)
    if result.pages != 1:
        click.echo(f"note: the report took {result.pages} pages (many counters)", err=True)


@print_group.command("posters")
@click.option("--unit", "unit_code", required=True, help="The unit whose counters get posters.")
@click.option(
    "--size",
    type=click.Choice([s.value for s in PaperSize]),
    default=PaperSize.A4.value,
    show_default=True,
    help="Paper size.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The PDF file to write: one page per counter.",
)
def print_posters(unit_code: str, size: str, out: Path) -> None:
    """A poster for every counter of a unit, one page each, in one PDF: the unit and counter,
    the QR code, the code to type, three steps in Vietnamese and the OA's name.

    \b
    Example:
      sipas-bot print posters --unit HVT --size a5 --out posters.pdf
    """
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as db:
        unit = require_unit(db, unit_code)
        if not runtime.oa_shown(unit)[1]:
            raise ConfigError(
                "ZALO_OA_NAME is not set: the posters name the Official Account citizens look for"
            )
        if not unit.counters:
            raise NotReady(f"unit {unit.code} has no counters (see `sipas-bot units import`)")
        path = f"/console/units/{unit.code}/print/posters"
        with current_app.test_request_context(path, base_url=runtime.settings.public_base_url):
            html = render_posters(unit, PaperSize(size), runtime=runtime)
        count = len(unit.counters)
    result = write_pdf(html, out, static=STATIC_FILES)
    click.echo(
        f"wrote {count} {size.upper()} posters of {unit.code} ({result.pages} pages) to {out}",
        err=True,
    )


@print_group.command("paper-form")
@click.option(
    "--questionnaire",
    "name",
    help="Shipped id or file (default: the counter's, the unit's or SURVEY_FLOW).",
)
@click.option("--unit", "unit_code", help="The unit whose form numbers are taken.")
@click.option("--counter", "counter_code", help="The counter printed on the forms.")
@click.option(
    "--count",
    type=click.IntRange(1, MAX_PRINT),
    default=1,
    show_default=True,
    help="How many forms, each with a number of its own.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The PDF file to write (default: sipas-paper-<UNIT>-<first>-<last>.pdf here).",
)
def print_paper_form(
    name: str | None,
    unit_code: str | None,
    counter_code: str | None,
    count: int,
    out: Path | None,
) -> None:
    """The official paper form as an A4 PDF, in Vietnamese, one page per form: the unit
    and counter (a line to fill when no --counter), the questions with the five levels as
    boxes to tick ("không áp dụng" where allowed), a comment box, and a form number of the
    unit (HVT-000123) taken from the database, so that each form is entered once.

    \b
    Example:
      sipas-bot print paper-form --counter HVT01 --questionnaire sipas-short --count 50
    """
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as db:
        unit, counter = where_printed(db, unit_code, counter_code)
        _, questionnaire = questionnaire_for(runtime, name, unit, counter)
    # The numbers are taken in the transaction that writes the PDF: kept only once it is.
    with runtime.session_factory.begin() as db:
        numbers = runtime.paper.allocate(db, unit, count)
        path = f"/console/units/{unit.code}/paper/print"
        with current_app.test_request_context(
            path, method="POST", base_url=runtime.settings.public_base_url
        ):
            html = render_paper_forms(unit, counter, questionnaire, numbers, runtime=runtime)
        first = format_form_number(unit.code, numbers[0])
        last = format_form_number(unit.code, numbers[-1])
        target = out or Path(f"sipas-paper-{first}-{numbers[-1]:06d}.pdf")
        result = write_pdf(html, target, static=STATIC_FILES)
    click.echo(
        f"wrote {count} paper form(s) {first} … {last} ({result.pages} pages) to {target}",
        err=True,
    )


COMMANDS: list[click.Command] = [print_group]
