"""The XLSX template for entering paper forms in bulk (`sipas-bot paper template`), and
reading a filled one back (`sipas-bot paper import`).

Sheet `phieu` has one row per form: the form number, the counter's code, the visit date
written on the form, then one column per question (Q1, Q2, … as the form numbers them).
Sheet `mau` says which unit, counter and questionnaire (id and version) the file is for, and
lists the questions with the values each may hold.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import InvalidFileException

from bot.errors import OperatorError
from bot.files import atomic_binary
from storage.models import Counter, Unit
from survey_flow.paper import levels_of, paper_questions
from survey_flow.questionnaire import Questionnaire
from zalo_client.text import clean_text

FORMS_SHEET = "phieu"
ABOUT_SHEET = "mau"
FIXED_COLUMNS = ("so_phieu", "quay", "ngay_den")
MAX_ROWS = 20_000
_ABOUT_KEYS = ("questionnaire", "version", "unit", "counter")


class BadSheet(OperatorError):
    """A file that is not a filled paper forms template."""


@dataclass(frozen=True)
class SheetRow:
    """A filled row as text: its row number in the sheet, and its cells."""

    row: int
    number: str
    counter: str
    visit: str
    cells: list[str]


@dataclass(frozen=True)
class PaperSheet:
    questionnaire: str
    version: str
    unit: str
    counter: str
    rows: list[SheetRow]


def write_template(
    out: Path,
    questionnaire: Questionnaire,
    *,
    name: str,
    unit: Unit,
    counter: Counter | None,
) -> None:
    """Write the template to fill for this questionnaire and unit (whole or not at all)."""
    questions = paper_questions(questionnaire)
    book = Workbook()
    forms = book.active
    assert forms is not None
    forms.title = FORMS_SHEET
    forms.append([*FIXED_COLUMNS, *(f"Q{n}" for n in range(1, len(questions) + 1))])
    for cell in forms[1]:
        cell.font = Font(bold=True)
    forms.freeze_panes = "B2"
    forms.column_dimensions["A"].width = 14
    forms.column_dimensions["C"].width = 12
    about = book.create_sheet(ABOUT_SHEET)
    for key, value in zip(
        _ABOUT_KEYS,
        (name, questionnaire.version, unit.code, counter.code if counter else ""),
        strict=True,
    ):
        about.append([key, value])
    about.append([])
    about.append(["Q", "item", "values", "text"])
    for number, item in enumerate(questions, start=1):
        values = "text" if item.kind == "text" else levels_of(item)
        if item.not_applicable:
            values += ", 0"
        about.append([f"Q{number}", item.id, values, item.text["vi"]])
    about.column_dimensions["D"].width = 90
    for row in about.iter_rows(min_row=6):
        row[3].alignment = Alignment(wrap_text=True)
    with atomic_binary(out) as temporary:
        book.save(temporary)


def _text(value: object) -> str:
    """A cell as the text typed into it: 5.0 is "5", a date is YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return clean_text(str(value)).strip()


def read_sheet(path: Path) -> PaperSheet:
    """The filled template's rows (empty rows left out); BadSheet when it is not one."""
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise BadSheet(f"{path}: not an XLSX file ({exc})") from None
    try:
        if FORMS_SHEET not in book.sheetnames or ABOUT_SHEET not in book.sheetnames:
            raise BadSheet(
                f"{path}: no sheets {FORMS_SHEET!r} and {ABOUT_SHEET!r}: "
                "fill a template from `sipas-bot paper template`"
            )
        about = {
            _text(row[0]): _text(row[1]) if len(row) > 1 else ""
            for row in book[ABOUT_SHEET].iter_rows(max_row=len(_ABOUT_KEYS), values_only=True)
            if row
        }
        if not about.get("questionnaire") or not about.get("unit"):
            raise BadSheet(
                f"{path}: sheet {ABOUT_SHEET!r} does not name the questionnaire and unit"
            )
        forms = book[FORMS_SHEET]
        rows: list[SheetRow] = []
        width = None
        for index, values in enumerate(forms.iter_rows(values_only=True), start=1):
            cells = [_text(value) for value in values]
            if index == 1:
                width = len([c for c in cells if c])
                continue
            if index > MAX_ROWS + 1:
                raise BadSheet(f"{path}: more than {MAX_ROWS} rows; split the file")
            if not any(cells):
                continue
            assert width is not None
            cells = (cells + [""] * width)[:width]
            fixed = len(FIXED_COLUMNS)
            rows.append(SheetRow(index, cells[0], cells[1], cells[2], cells[fixed:]))
    finally:
        book.close()
    return PaperSheet(
        questionnaire=about["questionnaire"],
        version=about.get("version", ""),
        unit=about["unit"],
        counter=about.get("counter", ""),
        rows=rows,
    )
