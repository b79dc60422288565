"""Exports and reports are safe for any stored text (issue 12): text stored before the webhook
cleaned it may hold control characters, lone surrogates and formula starts anywhere."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import update

from bot.cli import cli
from bot.reporting.cells import FORMULA_STARTS, safe_text
from bot.runtime import Runtime
from storage.models import Answer
from tests.test_export import surveys  # noqa: F401

# No lone surrogate: no database driver stores one (safe_text's own test has it).
POISON = '\x1b[2J\x1b[31mđỏ\x01\x00 tốt;=HYPERLINK("http://x");@SUM(1),+1\n-2\t\x0b hết'
PERIOD = ["--unit", "HVT", "--from", "2026-03-01", "--to", "2026-03-31"]


@pytest.fixture
def poisoned(runtime: Runtime, surveys: None) -> None:  # noqa: F811
    """The completed survey's comment, as an old row might hold it."""
    # PostgreSQL cannot store a NUL either.
    text = POISON if runtime.engine.dialect.name == "sqlite" else POISON.replace("\x00", "")
    with runtime.session_factory.begin() as session:
        session.execute(update(Answer).where(Answer.item_id == "comment").values(text=text))


def pieces(cell: str) -> list[str]:
    """What a spreadsheet could see as cells, splitting on ; , or a line."""
    for separator in (";", ",", "\n"):
        cell = cell.replace(separator, "\x1f")
    return cell.split("\x1f")


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "a;=1+1",
        "a; =cmd|' /C calc'!A0",
        "a,@SUM(A1)",
        "a\n+1",
        "a;\t=1",
        "a;\r=1",
        "-5",
        POISON,
        POISON + "\ud800",
        "bình thường; không sao",
    ],
)
def test_no_piece_of_a_safe_cell_starts_a_formula(text: str) -> None:
    for piece in pieces(safe_text(text)):
        assert not piece.lstrip(" ").startswith(FORMULA_STARTS), (text, piece)


def test_safe_text_keeps_ordinary_text() -> None:
    assert safe_text('Nhân viên nhiệt tình, chu đáo; "rất tốt"') == (
        'Nhân viên nhiệt tình, chu đáo; "rất tốt"'
    )
    assert safe_text("a;=1") == "a;'=1"
    assert safe_text("dòng 1\ndòng 2") == "dòng 1\ndòng 2"


def test_csv_export_of_poisoned_text(app: Flask, poisoned: None, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    result = app.test_cli_runner().invoke(cli, ["export", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8"), newline="")))
    comment = next(r["comment"] for r in rows if r["status"] == "completed")
    assert "\x1b" not in comment and "\x00" not in comment and "\x01" not in comment
    assert "đỏ" in comment and "hết" in comment
    for piece in pieces(comment):
        assert not piece.lstrip(" ").startswith(FORMULA_STARTS), piece


def test_xlsx_export_of_poisoned_text(app: Flask, poisoned: None, tmp_path: Path) -> None:
    out = tmp_path / "all.xlsx"
    result = app.test_cli_runner().invoke(cli, ["export", "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(load_workbook(out).worksheets[0].iter_rows(values_only=True))
    comment = next(str(v) for v in rows[1] if isinstance(v, str) and "đỏ" in v)
    assert "\x1b" not in comment and "hết" in comment


def test_xlsx_report_of_poisoned_text(app: Flask, poisoned: None, tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    result = app.test_cli_runner().invoke(
        cli, ["report", *PERIOD, "--format", "xlsx", "--out", str(out)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    book = load_workbook(out)
    texts = [
        v for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row
    ]
    comment = next(v for v in texts if isinstance(v, str) and "đỏ" in v)
    assert "\x1b" not in comment and "\x00" not in comment


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_text_and_json_reports_print_no_control_characters(
    app: Flask, poisoned: None, fmt: str
) -> None:
    result = app.test_cli_runner().invoke(cli, ["report", *PERIOD, "--format", fmt])
    assert result.exit_code == 0, (result.output, result.exception)
    if fmt == "text":
        assert "đỏ" in result.stdout
    for char in ("\x1b", "\x00", "\x01", "\x0b"):
        assert char not in result.stdout
