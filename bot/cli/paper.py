"""`sipas-bot paper template|import`: paper forms entered in bulk from an XLSX file
(docs/channels.md). The import is all or nothing: every problem is printed with its sheet
row, and nothing is stored if any row has one; a form whose number is stored already is
left as it is, so importing the same file twice stores it once."""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from bot.cli.context import current_runtime, require_schema
from bot.conversation.paper import (
    EnteredForm,
    PaperLine,
    format_form_number,
    parse_form_number,
    parse_visit_date,
)
from bot.directory import require_counter, require_unit
from bot.errors import BadArguments
from bot.printing.paper_sheet import PaperSheet, SheetRow, read_sheet, write_template
from bot.runtime import Runtime
from bot.web.console.base import load_texts
from bot.web.console.paper import problem_text
from storage import repositories as repo
from storage.models import Counter, Unit
from survey_flow.paper import LineProblem, PaperProblem
from survey_flow.questionnaire import Questionnaire


def where_printed(
    db: Session, unit_code: str | None, counter_code: str | None
) -> tuple[Unit, Counter | None]:
    """The unit (and counter) named by --unit / --counter: form numbers are a unit's."""
    if counter_code:
        counter = require_counter(db, counter_code, unit_code=unit_code)
        return counter.unit, counter
    if not unit_code:
        raise BadArguments("give --unit or --counter: form numbers are a unit's")
    return require_unit(db, unit_code), None


def questionnaire_for(
    runtime: Runtime, name: str | None, unit: Unit, counter: Counter | None
) -> tuple[str, Questionnaire]:
    """The questionnaire named, else the counter's, the unit's or SURVEY_FLOW; registered,
    so that its version is kept for the surveys entered from it."""
    chosen = name or (counter.questionnaire if counter else None) or unit.questionnaire
    chosen = chosen or runtime.settings.survey_flow
    questionnaire = runtime.flows.named(chosen)
    # In a transaction of its own: the registry remembers a version as kept, so the row must
    # not go with an import or a printing that is rolled back.
    with runtime.session_factory.begin() as registering:
        runtime.flows.register(registering, questionnaire, now=runtime.clock())
    return chosen, questionnaire


class _Refused(Exception):
    """Raised in the import's transaction to roll it back (a row has a problem)."""


@click.group("paper", cls=AppGroup)
def paper() -> None:
    """Paper forms: the XLSX template to fill, and importing a filled one."""


@paper.command("template")
@click.option(
    "--questionnaire",
    "name",
    help="Shipped id or file (default: the counter's, the unit's or SURVEY_FLOW).",
)
@click.option("--unit", "unit_code", help="The unit whose forms the file holds.")
@click.option("--counter", "counter_code", help="The counter filled in on every row.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The XLSX file to write.",
)
def paper_template(
    name: str | None, unit_code: str | None, counter_code: str | None, out: Path
) -> None:
    """Write the XLSX template to fill with paper forms, one row per form: the form
    number, the counter, the visit date, then one column per question (Q1, Q2, … as the
    printed form numbers them): a level 1–5, 0 for "không áp dụng", empty if unanswered.

    \b
    Example:
      sipas-bot paper template --counter HVT01 --questionnaire sipas-short --out forms.xlsx
    """
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as db:
        unit, counter = where_printed(db, unit_code, counter_code)
        chosen, questionnaire = questionnaire_for(runtime, name, unit, counter)
        write_template(out, questionnaire, name=chosen, unit=unit, counter=counter)
    click.echo(
        f"wrote the template of {questionnaire.id} {questionnaire.version} for {unit.code} "
        f"to {out}",
        err=True,
    )


@paper.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def paper_import(file: Path) -> None:
    """Store the paper forms of a filled template, all or nothing: every problem is
    printed with its row ("row 7: Q3 = 6 is not a level 1–5") and then nothing is stored.
    A form whose number is stored already is skipped and said so: importing the same file
    again stores nothing new. Each form is recorded as entered by
    `import:FILE (cli:USER)`. A form with a comment, or counted with a factor rated 1–2,
    opens a case (docs/cases.md); their references are printed.

    \b
    Example:
      sipas-bot paper import forms.xlsx
    """
    runtime = current_runtime()
    require_schema(runtime)
    sheet = read_sheet(file)
    english = load_texts()["en"]

    def say(key: str, **values: object) -> str:
        return english[key].format(**values)

    with runtime.session_factory() as db:
        unit = require_unit(db, sheet.unit)
        _, questionnaire = questionnaire_for(runtime, sheet.questionnaire, unit, None)
    if sheet.version and sheet.version != questionnaire.version:
        raise BadArguments(
            f"{file}: the template is for {questionnaire.id} version {sheet.version}, "
            f"the questionnaire is now version {questionnaire.version}: "
            "enter these forms in the console, or write a new template"
        )
    by = f"import:{file.name} (cli:{getpass.getuser()})"[:200]
    try:
        with runtime.session_factory.begin() as db:
            unit = require_unit(db, sheet.unit)
            stored, skipped, problems = _import_rows(runtime, db, sheet, unit, questionnaire, by)
            if problems:
                raise _Refused()
    except _Refused:
        for row, problem in problems:
            click.echo(f"row {row}: {problem_text(say, problem)}", err=True)
        click.echo(
            f"nothing was stored: {len(problems)} problem(s) in {file}; "
            "correct them and import the file again",
            err=True,
        )
        raise click.exceptions.Exit(2) from None
    if skipped:
        rows = ", ".join(str(row) for row in skipped)
        click.echo(
            f"{len(skipped)} form(s) were stored already and are left as they are (rows {rows})",
            err=True,
        )
    if stored:
        click.echo(f"stored {len(stored)} paper form(s) of {unit.code} from {file}", err=True)
        opened = [form.reference for form in stored if form.reference is not None]
        if opened:
            click.echo(f"opened {len(opened)} case(s): {', '.join(opened)}", err=True)
    else:
        click.echo(f"nothing new: no form of {file} was stored now", err=True)


def _import_rows(
    runtime: Runtime,
    db: Session,
    sheet: PaperSheet,
    unit: Unit,
    questionnaire: Questionnaire,
    by: str,
) -> tuple[list[EnteredForm], list[int], list[tuple[int, LineProblem]]]:
    """Enter every row in the caller's transaction: the forms stored, the rows of forms
    stored before, and every problem with its row (the caller then stores nothing)."""
    counters = {c.code: c for c in unit.counters}
    seen: dict[int, int] = {}
    stored: list[EnteredForm] = []
    skipped: list[int] = []
    problems: list[tuple[int, LineProblem]] = []
    now = runtime.clock()
    for row in sheet.rows:
        found = _row_problems(row, sheet, unit, counters, seen)
        number = parse_form_number(row.number, unit.code)
        if number is not None and number not in seen:
            seen[number] = row.row
            if repo.find_paper_form(db, unit.id, number) is not None:
                skipped.append(row.row)
                continue
        counter = counters.get((row.counter or sheet.counter).upper())
        visit = parse_visit_date(row.visit)
        if found or counter is None or isinstance(visit, LineProblem):
            problems.extend((row.row, p) for p in found)
            continue
        line = PaperLine(number=row.number, cells=row.cells, visit_date=visit)
        result = runtime.paper.enter(db, counter, questionnaire, line, entered_by=by, now=now)
        if isinstance(result, list):
            problems.extend((row.row, p) for p in result)
        else:
            stored.append(result)
    return stored, skipped, problems


def _row_problems(
    row: SheetRow, sheet: PaperSheet, unit: Unit, counters: dict[str, Counter], seen: dict[int, int]
) -> list[LineProblem]:
    """What is wrong with a row before its answers are read: its counter, its date, a
    number already on another row."""
    problems = []
    code = (row.counter or sheet.counter).upper()
    if code not in counters:
        problems.append(
            LineProblem(
                PaperProblem.COUNTER_UNKNOWN, values={"value": code or "—", "unit": unit.code}
            )
        )
    visit = parse_visit_date(row.visit)
    if isinstance(visit, LineProblem):
        problems.append(visit)
    number = parse_form_number(row.number, unit.code)
    if number is not None and number in seen:
        shown = format_form_number(unit.code, number)
        problems.append(
            LineProblem(
                PaperProblem.NUMBER_TWICE, values={"number": shown, "row": str(seen[number])}
            )
        )
    return problems


COMMANDS: list[click.Command] = [paper]
