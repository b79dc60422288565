"""Paper forms (docs/channels.md): the numbered form as a PDF (`sipas-bot print
paper-form`), reading a form's cells through the engine's rules, the console's entry page
(save, refuse, duplicate, undo, scope, CSRF), and the XLSX import (all or nothing, once)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from bot.cli import cli
from bot.conversation.paper import PaperLine, parse_form_number, parse_visit_date
from bot.reporting.periods import period_containing
from bot.reporting.report import build_report
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import PaperForm, QuarantineState, SurveyResponse
from survey_flow.engine import Answer
from survey_flow.paper import LineProblem, PaperProblem, read_cells, untaken_answers
from survey_flow.questionnaire import load_shipped
from tests.conftest import FakeClock
from tests.console_support import add_user, csrf_token, password_sign_in


def invoke(app: Flask, *args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = app.test_cli_runner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 2, f"{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, result.output


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def print_forms(app: Flask, tmp_path: Path, count: int, *extra: str) -> list[str]:
    out = tmp_path / f"forms-{count}-{len(list(tmp_path.iterdir()))}.pdf"
    code, output = invoke(
        app, "print", "paper-form", "--counter", "HVT01", "--count", str(count), "--out", str(out),
        *extra,
    )
    assert code == 0, output
    return pdf_pages(out)


def paper_surveys(runtime: Runtime) -> list[SurveyResponse]:
    with runtime.session_factory() as db:
        return list(
            db.scalars(
                select(SurveyResponse).where(SurveyResponse.channel == "paper").order_by(
                    SurveyResponse.id
                )
            )
        )


# --- printing ---------------------------------------------------------------------------


def test_print_paper_form_numbers_each_sheet_and_prints_the_questions(
    app: Flask, runtime: Runtime, tmp_path: Path
) -> None:
    pages = print_forms(app, tmp_path, 3, "--questionnaire", "sipas-short")
    assert len(pages) == 3
    for number, page in enumerate(pages, start=1):
        flat = " ".join(page.split())
        assert f"HVT-{number:06d}" in flat
        assert "#HVT01" in flat
        assert "Rất hài lòng" in flat
        assert "thủ tục hành chính" in flat  # question 2 of sipas-short
        assert "góp ý" in flat  # the comment question
        assert "KAD" in flat  # "không áp dụng" on the feedback question
    width_mm = PdfReader(tmp_path.glob("*.pdf").__next__()).pages[0].mediabox.width / 72 * 25.4
    assert round(width_mm) == 210
    # The next printing goes on from there: no two sheets share a number.
    again = print_forms(app, tmp_path, 1)
    assert "HVT-000004" in again[0]


def test_print_paper_form_needs_a_unit(app: Flask, tmp_path: Path) -> None:
    code, output = invoke(app, "print", "paper-form", "--out", str(tmp_path / "f.pdf"))
    assert code == 2 and "--unit or --counter" in output
    assert not (tmp_path / "f.pdf").exists()


# --- reading a form's cells ---------------------------------------------------------------


def test_read_cells_names_every_cell_it_cannot_read() -> None:
    short = load_shipped("sipas-short")
    answers, problems = read_cells(short, ["5", "6", "0", "x", "", "Tốt"])
    assert answers["access"] == Answer(value=5)
    assert "procedure" not in answers and "result" not in answers and "feedback" not in answers
    kinds = [(p.kind, p.question) for p in problems]
    assert (PaperProblem.NOT_A_LEVEL, 2) in kinds  # 6 is no level
    assert (PaperProblem.NO_NOT_APPLICABLE, 3) in kinds  # staff has no "không áp dụng"
    assert (PaperProblem.NO_NOT_APPLICABLE, 4) in kinds
    assert answers["comment"] == Answer(text="Tốt")
    _, empty = read_cells(short, [""] * 6)
    assert [p.kind for p in empty] == [PaperProblem.NO_ANSWER]
    _, short_line = read_cells(short, ["5"])
    assert [p.kind for p in short_line] == [PaperProblem.CELLS]


def test_untaken_answers_explain_what_the_engine_does_not_keep(runtime: Runtime) -> None:
    full = load_shipped("sipas-2022")
    questions = full.questions
    cells = ["4"] * len(questions)
    feedback = next(n for n, q in enumerate(questions) if q.id == "gave-feedback")
    cells[feedback] = "2"  # "Không": criteria 17–19 are not asked
    cells[-1] = ""
    answers, problems = read_cells(full, cells)
    assert problems == []
    with runtime.session_factory() as db:
        counter = repo.find_counter(db, "HVT01")
        assert counter is not None
        survey = runtime.forms.replay(
            counter, full, answers, token="t", method=_paper(), language="vi", now=_now()
        )
    found = untaken_answers(full, answers, survey)
    assert [(p.kind, p.question) for p in found] == [
        (PaperProblem.NOT_ASKED, feedback + 2),
        (PaperProblem.NOT_ASKED, feedback + 3),
        (PaperProblem.NOT_ASKED, feedback + 4),
    ]
    assert found[0].values == {"other": str(feedback + 1), "values": "1"}
    # A required question left blank ends the form: what follows is named, not dropped.
    cells = ["4"] * len(questions)
    cells[feedback] = "1"
    cells[1] = ""
    answers, _ = read_cells(full, cells)
    with runtime.session_factory() as db:
        counter = repo.find_counter(db, "HVT01")
        assert counter is not None
        survey = runtime.forms.replay(
            counter, full, answers, token="t", method=_paper(), language="vi", now=_now()
        )
    found = untaken_answers(full, answers, survey)
    assert found[0] == LineProblem(PaperProblem.AFTER_BLANK, 3, {"blank": "2"})


def test_form_numbers_and_dates_as_staff_write_them() -> None:
    assert parse_form_number("123", "HVT") == 123
    assert parse_form_number("HVT-000123", "HVT") == 123
    assert parse_form_number("hvt-7", "HVT") == 7
    assert parse_form_number("BDH-000123", "HVT") is None
    assert parse_form_number("0", "HVT") is None
    assert parse_form_number("12a", "HVT") is None
    assert str(parse_visit_date("2026-03-10")) == "2026-03-10"
    assert str(parse_visit_date("10/03/2026")) == "2026-03-10"
    assert parse_visit_date("") is None
    assert isinstance(parse_visit_date("31/02/2026"), LineProblem)


def _paper() -> Any:
    from survey_flow.engine import StartMethod

    return StartMethod.PAPER


def _now() -> datetime:
    return datetime(2026, 3, 14, 2, 0, tzinfo=UTC)


# --- storing through the service --------------------------------------------------------


def enter(runtime: Runtime, number: str, cells: list[str], **kwargs: Any) -> Any:
    with runtime.session_factory() as db:
        counter = repo.find_counter(db, "HVT01")
        assert counter is not None
        questionnaire = runtime.flows.named("sipas-short")
        runtime.flows.register(db, questionnaire, now=runtime.clock())
        result = runtime.paper.enter(
            db,
            counter,
            questionnaire,
            PaperLine(number, cells, **kwargs),
            entered_by="test",
            now=runtime.clock(),
        )
        db.commit()
        return result


def allocate(runtime: Runtime, count: int) -> None:
    with runtime.session_factory.begin() as db:
        unit = repo.find_unit(db, "HVT")
        assert unit is not None
        runtime.paper.allocate(db, unit, count)


def test_paper_forms_count_as_one_citizen_each_and_prove_no_presence(
    runtime: Runtime, clock: FakeClock
) -> None:
    allocate(runtime, 8)
    for number in range(1, 9):
        result = enter(runtime, str(number), ["5", "4", "5", "4", "0", ""])
        assert not isinstance(result, list), result
        assert result.counted
    surveys = paper_surveys(runtime)
    assert len(surveys) == 8
    assert {s.start_method for s in surveys} == {"paper"}
    assert len({s.respondent_hash for s in surveys}) == 8
    # Eight forms in a minute from "new accounts" at one counter: no burst rule holds them.
    assert {s.quarantine for s in surveys} == {QuarantineState.NONE.value}
    with runtime.session_factory() as db:
        period = period_containing("month", clock(), runtime.settings.tz)
        report = build_report(db, unit_codes=["HVT"], period=period, min_answers=1)
    assert report.channels["paper"].responses == 8
    assert report.verified_responses == 0  # a paper form proves no presence
    # The same number again is refused, and so is a number never printed.
    again = enter(runtime, "HVT-000003", ["5", "5", "5", "5", "5", ""])
    assert isinstance(again, list) and again[0].kind is PaperProblem.NUMBER_USED
    unprinted = enter(runtime, "9", ["5", "5", "5", "5", "5", ""])
    assert isinstance(unprinted, list) and unprinted[0].kind is PaperProblem.NUMBER_NOT_PRINTED
    assert len(paper_surveys(runtime)) == 8


def test_the_visit_date_on_the_form_is_the_surveys_date(runtime: Runtime) -> None:
    allocate(runtime, 2)
    result = enter(runtime, "1", ["5", "4", "5", "4", "0", ""], visit_date=parse_visit_date("02/03/2026"))
    assert not isinstance(result, list), result
    future = enter(runtime, "2", ["5"] * 5 + [""], visit_date=parse_visit_date("2026-03-15"))
    assert isinstance(future, list) and future[0].kind is PaperProblem.DATE_FUTURE
    (survey,) = paper_surveys(runtime)
    assert survey.started_at == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # noon in Hanoi
