"""`sipas-bot export --format xlsx` and the --counter/--from/--to filters (CSV and XLSX)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from openpyxl import load_workbook

from bot.cli import cli
from bot.errors import OperatorError
from bot.reporting.export import write_xlsx
from bot.runtime import Runtime
from tests.test_export import QUESTIONS, export_file, second_unit, surveys  # noqa: F401
from tests.test_index import seed


def export(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, ["export", *args])


def read_xlsx(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    book = load_workbook(path)
    (sheet,) = book.worksheets
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(name) for name in rows[0]]
    return header, [dict(zip(header, row, strict=True)) for row in rows[1:]]


def xlsx_file(app: Flask, out: Path, *args: str) -> tuple[list[str], list[dict[str, Any]]]:
    result = export(app, "--format", "xlsx", "--out", str(out), *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return read_xlsx(out)


def test_xlsx_holds_the_same_surveys_as_csv_with_typed_cells(
    app: Flask,
    surveys: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "exports" / "all.xlsx"
    header, rows = xlsx_file(app, out)
    csv_header, csv_rows = export_file(app, tmp_path / "all.csv")
    assert header == csv_header
    assert [r["response_id"] for r in rows] == [r["response_id"] for r in csv_rows]
    completed = next(r for r in rows if r["status"] == "completed")
    # numbers stay numbers, "not applicable" stays NA, times are local wall times
    assert [completed[q] for q in QUESTIONS[:5]] == [5, 4, 3, 2, "NA"]
    assert completed["comment"].startswith("Nhân viên nhiệt tình")
    assert completed["started_at"] == datetime(2026, 3, 14, 9, 0)
    assert completed["completed_at"] == datetime(2026, 3, 14, 9, 6)
    partial = next(r for r in rows if r["status"] == "partial")
    assert [partial[q] for q in QUESTIONS] == [4, 5, None, None, None, None]
    assert partial["completed_at"] is None
    assert [p.name for p in out.parent.iterdir()] == ["all.xlsx"]


def test_xlsx_needs_out(app: Flask) -> None:
    result = export(app, "--format", "xlsx")
    assert isinstance(result.exception, OperatorError)
    assert "--out" in str(result.exception)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_counter_keeps_only_that_counters_surveys(
    app: Flask,
    surveys: None,  # noqa: F811
    second_unit: None,  # noqa: F811
    tmp_path: Path,
    fmt: str,
) -> None:
    reader = export_file if fmt == "csv" else xlsx_file
    _, rows = reader(app, tmp_path / f"out.{fmt}", "--counter", "hvt02")
    assert [(r["counter_code"], r["status"]) for r in rows] == [("HVT02", "partial")]
    _, rows = reader(app, tmp_path / f"both.{fmt}", "--unit", "HVT", "--counter", "HVT01")
    assert [(r["counter_code"], r["status"]) for r in rows] == [("HVT01", "completed")]


@pytest.fixture
def around_midnight(runtime: Runtime) -> None:
    """Started 28/02 23:59 and 01/03 00:00 in Hanoi (both 28/02 in UTC), and 02/03 12:00."""
    with runtime.session_factory.begin() as session:
        form = runtime.flows.for_default(session, now=runtime.clock())
        kept = (form.id, form.version)
        for counter, start, value in [
            ("HVT01", datetime(2026, 2, 28, 23, 59), 1),
            ("HVT02", datetime(2026, 3, 1, 0, 0), 2),
            ("HVT03", datetime(2026, 3, 2, 12, 0), 3),
        ]:
            seed(session, counter, start, {(1, None, "access"): value}, questionnaire=kept)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(
    ("options", "counters"),
    [
        ([], ["HVT01", "HVT02", "HVT03"]),
        (["--from", "2026-03-01"], ["HVT02", "HVT03"]),
        (["--to", "2026-02-28"], ["HVT01"]),
        (["--from", "2026-03-01", "--to", "2026-03-01"], ["HVT02"]),
        (["--unit", "HVT", "--from", "2026-02-28", "--to", "2026-03-01"], ["HVT01", "HVT02"]),
    ],
)
def test_days_are_cut_at_local_midnight(
    app: Flask,
    around_midnight: None,
    tmp_path: Path,
    fmt: str,
    options: list[str],
    counters: list[str],
) -> None:
    reader = export_file if fmt == "csv" else xlsx_file
    _, rows = reader(app, tmp_path / f"out.{fmt}", *options)
    assert [r["counter_code"] for r in rows] == counters


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--counter", "XYZ01"], ["XYZ01"]),
        (["--unit", "HVT", "--counter", "LQD01"], ["LQD01", "LQD", "HVT"]),
        (["--from", "2026-03-05", "--to", "2026-03-01"], ["--from", "--to"]),
        (["--from", "yesterday"], ["--from", "yesterday"]),
    ],
)
def test_bad_filters_are_operator_errors_and_write_nothing(
    app: Flask,
    second_unit: None,  # noqa: F811
    tmp_path: Path,
    options: list[str],
    words: list[str],
) -> None:
    out = tmp_path / "out.csv"
    result = export(app, "--out", str(out), *options)
    assert isinstance(result.exception, OperatorError), result.output
    for word in words:
        assert word in str(result.exception)
    assert not out.exists()


def _rows(count: int) -> Iterator[list[Any]]:
    yield ["response_id", "unit_code", "started_at", "completed_at", "access", "comment"]
    started = datetime(2026, 3, 1, 8)
    for n in range(count):
        yield [f"tok{n:012d}", "HVT", started, started, n % 5 + 1, f"góp ý số {n}"]


def _peak_while_writing(count: int, path: Path) -> int:
    tracemalloc.start()
    try:
        assert write_xlsx(_rows(count), path) == count
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_xlsx_is_written_as_a_stream(tmp_path: Path) -> None:
    """Memory does not grow with the number of surveys: the writer keeps no rows."""
    write_xlsx(_rows(10), tmp_path / "warm-up.xlsx")  # imports and caches out of the way
    small = _peak_while_writing(300, tmp_path / "small.xlsx")
    large = _peak_while_writing(2500, tmp_path / "large.xlsx")
    # Keeping the 2,200 extra rows would take some 600 kB (about 270 bytes a row).
    assert large - small < 200_000, (small, large)
    book = load_workbook(tmp_path / "large.xlsx", read_only=True)
    assert sum(1 for _ in book.worksheets[0].iter_rows(values_only=True)) == 2501
