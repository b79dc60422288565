"""`sipas-bot export`: surveys taken through signed webhooks come out as one CSV row each."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from bot.cli import cli
from bot.config import Settings
from bot.errors import OperatorError
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import SurveyResponse
from storage.repositories import CounterSpec, UnitSpec
from tests.cli_runner import assert_one_error_line, run_cli
from tests.conftest import FakeClock, text_event

QUESTIONS = ["access", "procedure", "staff", "result", "feedback", "comment"]
REQUIRED = ["response_id", "unit_code", "counter_code", "started_at", "completed_at", "status"]
COMMENT = 'Nhân viên nhiệt tình, chu đáo; "rất tốt"'

Post = Callable[..., Any]


def take_survey(signed_post: Post, clock: FakeClock, user_id: str, *texts: str) -> None:
    """Send each text as the citizen, one minute apart."""
    for text in texts:
        response = signed_post(text_event(text, user_id=user_id))
        assert response.status_code == 200, response.get_json()
        clock.advance(minutes=1)


@pytest.fixture
def surveys(signed_post: Post, clock: FakeClock) -> None:
    """One completed, one partial, one still active and one cancelled survey."""
    # 09:00 to 09:06 in Hanoi: the start, then six answers (the fifth not applicable).
    take_survey(signed_post, clock, "1001", "#hvt01", "5", "4", "3", "2", "0", COMMENT)
    # Two answers at HVT02, then a scan at HVT03: HVT02 is kept as partial, HVT03 is open.
    take_survey(signed_post, clock, "1002", "#hvt02", "4", "5", "#HVT03", "3")
    # Started and cancelled.
    take_survey(signed_post, clock, "1003", "#hvt01", "3", "hủy")


def export(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, ["export", *args])


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def export_file(app: Flask, out: Path, *args: str) -> tuple[list[str], list[dict[str, str]]]:
    result = export(app, "--format", "csv", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    return read_csv(out.read_text("utf-8"))


# --- contents -----------------------------------------------------------------------------------


def test_the_header_has_the_survey_columns_then_one_per_question(
    app: Flask, surveys: None, tmp_path: Path
) -> None:
    header, _ = export_file(app, tmp_path / "out.csv")
    assert len(header) == len(set(header))
    assert set(REQUIRED) <= set(header)
    assert [c for c in header if c in QUESTIONS] == QUESTIONS
    assert max(header.index(c) for c in REQUIRED) < header.index("access")


def test_a_completed_survey_is_one_row_with_its_answers_and_local_times(
    app: Flask, surveys: None, tmp_path: Path
) -> None:
    _, rows = export_file(app, tmp_path / "out.csv")
    (row,) = [r for r in rows if r["status"] == "completed"]
    assert row["unit_code"] == "HVT"
    assert row["counter_code"] == "HVT01"
    assert row["started_at"] == "2026-03-14T09:00:00+07:00"
    assert row["completed_at"] == "2026-03-14T09:06:00+07:00"
    assert [row[q] for q in QUESTIONS] == ["5", "4", "3", "2", "NA", COMMENT]
    assert row["response_id"]


def test_a_partial_survey_is_included_with_the_answers_it_has(
    app: Flask, surveys: None, tmp_path: Path
) -> None:
    _, rows = export_file(app, tmp_path / "out.csv")
    (row,) = [r for r in rows if r["status"] == "partial"]
    assert row["counter_code"] == "HVT02"
    assert row["started_at"] == "2026-03-14T09:07:00+07:00"
    assert row["completed_at"] == ""
    assert [row[q] for q in QUESTIONS] == ["4", "5", "", "", "", ""]


def test_active_and_cancelled_surveys_are_left_out(
    app: Flask, surveys: None, runtime: Runtime, tmp_path: Path
) -> None:
    _, rows = export_file(app, tmp_path / "out.csv")
    assert sorted(r["status"] for r in rows) == ["completed", "partial"]
    assert "HVT03" not in {r["counter_code"] for r in rows}
    assert len({r["response_id"] for r in rows}) == 2
    with runtime.session_factory() as session:  # the left-out surveys are stored all right
        stored = sorted(session.scalars(select(SurveyResponse.status)))
    assert stored == ["active", "cancelled", "completed", "partial"]


def test_the_summary_goes_to_stderr_and_the_file_is_utf8(
    app: Flask, surveys: None, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    result = export(app, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 2 survey(s)" in result.stderr
    assert result.stdout == ""
    assert "Nhân viên nhiệt tình, chu đáo" in out.read_bytes().decode("utf-8")


def test_without_out_the_csv_goes_to_stdout(app: Flask, surveys: None, tmp_path: Path) -> None:
    before = sorted(tmp_path.iterdir())
    result = export(app)
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.iterdir()) == before
    header, rows = read_csv(result.stdout)
    assert sorted(r["status"] for r in rows) == ["completed", "partial"]
    assert (header, rows) == export_file(app, tmp_path / "out.csv")


def test_an_empty_database_exports_just_a_header(app: Flask, tmp_path: Path) -> None:
    header, rows = export_file(app, tmp_path / "out.csv")
    assert set(REQUIRED) <= set(header)
    assert rows == []


# --- --unit -------------------------------------------------------------------------------------


@pytest.fixture
def second_unit(runtime: Runtime, clock: FakeClock, signed_post: Post) -> None:
    """A second unit with one completed survey."""
    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session,
            [UnitSpec("LQD", "UBND phường Lê Quý Đôn", [CounterSpec("LQD01", "Quầy 1")])],
            now=clock(),
        )
    take_survey(signed_post, clock, "2001", "#lqd01", "1", "2", "3", "4", "5", "bỏ qua")


def test_unit_keeps_only_that_units_surveys(
    app: Flask, surveys: None, second_unit: None, tmp_path: Path
) -> None:
    _, everything = export_file(app, tmp_path / "all.csv")
    assert {r["unit_code"] for r in everything} == {"HVT", "LQD"}

    _, hvt = export_file(app, tmp_path / "hvt.csv", "--unit", "HVT")
    assert {r["unit_code"] for r in hvt} == {"HVT"}
    assert len(hvt) == 2

    _, lqd = export_file(app, tmp_path / "lqd.csv", "--unit", "lqd")
    assert [(r["counter_code"], r["status"]) for r in lqd] == [("LQD01", "completed")]
    assert [lqd[0][q] for q in QUESTIONS] == ["1", "2", "3", "4", "5", ""]


def test_an_unknown_unit_is_an_error_and_writes_no_file(
    app: Flask, surveys: None, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    result = export(app, "--out", str(out), "--unit", "NOPE")
    assert isinstance(result.exception, OperatorError)
    assert "NOPE" in str(result.exception)
    assert not out.exists()


# --- failures leave no half-written file ---------------------------------------------------------


def test_a_failure_while_writing_keeps_the_previous_file_and_leaves_no_temporary(
    app: Flask, surveys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / "out.csv"
    out.write_text("the previous export\n", "utf-8")
    real_rows = repo.iter_export_surveys

    def rows_then_failure(session: Any, **kwargs: Any) -> Iterator[Any]:
        yield from real_rows(session, **kwargs)
        raise RuntimeError("the database connection was lost")

    monkeypatch.setattr(repo, "iter_export_surveys", rows_then_failure)
    result = export(app, "--out", str(out))
    assert isinstance(result.exception, RuntimeError)
    assert out.read_text("utf-8") == "the previous export\n"
    assert [p.name for p in out_dir.iterdir()] == ["out.csv"]


def test_an_out_path_that_cannot_be_created_writes_nothing(
    app: Flask, surveys: None, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n", "utf-8")
    before = sorted(tmp_path.iterdir())
    result = export(app, "--out", str(blocker / "out.csv"))
    assert result.exit_code != 0
    assert blocker.read_text("utf-8") == "not a folder\n"
    assert sorted(tmp_path.iterdir()) == before


def test_an_out_path_that_cannot_be_created_is_reported_in_one_line(
    app: Flask, settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n", "utf-8")
    result = run_cli(
        "export", "--out", str(blocker / "out.csv"), env={"DATABASE_URL": settings.database_url}
    )
    assert_one_error_line(result, "out.csv")


def test_a_comment_that_looks_like_a_formula_is_exported_as_text() -> None:
    from bot.reporting.export import safe_text

    assert safe_text('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert safe_text("+84 912") == "'+84 912"
    assert safe_text("Nhân viên nhiệt tình") == "Nhân viên nhiệt tình"


def test_a_long_export_reports_progress_on_stderr_and_passes_every_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli.export import export_progress

    rows = [["header"], *([str(n)] for n in range(1, 8))]
    assert list(export_progress(iter(rows), every=3)) == rows
    assert capsys.readouterr().err.splitlines() == [
        "exported 3 surveys so far…",
        "exported 6 surveys so far…",
    ]
