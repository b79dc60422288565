"""Paper forms (docs/channels.md): the numbered form as a PDF (`sipas-bot print
paper-form`), reading a form's cells through the engine's rules, the console's entry page
(save, refuse, duplicate, undo, scope, CSRF), and the XLSX import (all or nothing, once)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bot.cli import cli
from bot.conversation.paper import PaperLine, parse_form_number, parse_visit_date
from bot.reporting.cases import case_figures
from bot.reporting.periods import period_containing
from bot.reporting.report import build_report
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import (
    Case,
    CaseReply,
    OutboxMessage,
    PaperForm,
    QuarantineState,
    SurveyResponse,
)
from survey_flow.engine import Answer, StartMethod
from survey_flow.paper import LineProblem, PaperProblem, read_cells, untaken_answers
from survey_flow.questionnaire import Questionnaire, load_shipped
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
        app,
        "print",
        "paper-form",
        "--counter",
        "HVT01",
        "--count",
        str(count),
        "--out",
        str(out),
        *extra,
    )
    assert code == 0, output
    return pdf_pages(out)


def paper_surveys(runtime: Runtime) -> list[SurveyResponse]:
    with runtime.session_factory() as db:
        return list(
            db.scalars(
                select(SurveyResponse)
                .where(SurveyResponse.channel == "paper")
                .options(selectinload(SurveyResponse.counter))
                .order_by(SurveyResponse.id)
            )
        )


def paper_cases(runtime: Runtime) -> list[Case]:
    with runtime.session_factory() as db:
        return list(
            db.scalars(select(Case).options(selectinload(Case.events)).order_by(Case.id)).all()
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
    survey = replay(runtime, full, answers)
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
    survey = replay(runtime, full, answers)
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


def replay(runtime: Runtime, questionnaire: Questionnaire, answers: dict[str, Answer]) -> Any:
    """The survey the engine makes of these answers at HVT01 (nothing stored)."""
    with runtime.session_factory() as db:
        counter = repo.find_counter(db, "HVT01")
        assert counter is not None
        return runtime.forms.replay(
            counter,
            questionnaire,
            answers,
            token="t",
            method=StartMethod.PAPER,
            language="vi",
            now=runtime.clock(),
        )


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
    result = enter(
        runtime, "1", ["5", "4", "5", "4", "0", ""], visit_date=parse_visit_date("02/03/2026")
    )
    assert not isinstance(result, list), result
    future = enter(runtime, "2", ["5"] * 5 + [""], visit_date=parse_visit_date("2026-03-15"))
    assert isinstance(future, list) and future[0].kind is PaperProblem.DATE_FUTURE
    (survey,) = paper_surveys(runtime)
    assert survey.started_at == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # noon in Hanoi


# --- the XLSX import --------------------------------------------------------------------


def filled_template(app: Flask, tmp_path: Path, rows: list[list[Any]]) -> Path:
    out = tmp_path / "forms.xlsx"
    code, output = invoke(
        app,
        "paper",
        "template",
        "--counter",
        "HVT01",
        "--questionnaire",
        "sipas-short",
        "--out",
        str(out),
    )
    assert code == 0, output
    book = load_workbook(out)
    sheet = book["phieu"]
    assert [c.value for c in sheet[1]] == [
        "so_phieu",
        "quay",
        "ngay_den",
        "Q1",
        "Q2",
        "Q3",
        "Q4",
        "Q5",
        "Q6",
    ]
    for row in rows:
        sheet.append(row)
    book.save(out)
    return out


GOOD_ROWS: list[list[Any]] = [
    ["HVT-000001", "HVT01", "2026-03-10", 5, 4, 5, 4, 0, "Cán bộ nhiệt tình"],
    [2, "", "11/03/2026", 4, 4, 4, 4, 4, None],
    ["3", "HVT02", None, "5", "5", "5", "5", "x", None],
]


def test_import_stores_a_good_file_once_counted_in_the_report(
    app: Flask, runtime: Runtime, tmp_path: Path, clock: FakeClock
) -> None:
    allocate(runtime, 3)
    path = filled_template(app, tmp_path, GOOD_ROWS)
    code, output = invoke(app, "paper", "import", str(path))
    assert code == 0, output
    assert "stored 3 paper form(s)" in output
    surveys = paper_surveys(runtime)
    assert [s.status for s in surveys] == ["completed"] * 3
    assert [s.counter.code for s in surveys] == ["HVT01", "HVT01", "HVT02"]
    assert surveys[0].started_at.date().isoformat() == "2026-03-10"
    with runtime.session_factory() as db:
        forms = db.scalars(select(PaperForm).order_by(PaperForm.number)).all()
        assert [f.number for f in forms] == [1, 2, 3]
        assert forms[0].entered_by.startswith("import:forms.xlsx")
        period = period_containing("month", clock(), runtime.settings.tz)
        report = build_report(db, unit_codes=["HVT"], period=period, min_answers=1)
    assert report.channels["paper"].responses == 3
    # The first form's comment opened a case.
    (case,) = paper_cases(runtime)
    assert f"opened 1 case(s): {case.reference}" in output
    assert (case.source, case.response_id, case.text) == (
        "comment",
        surveys[0].id,
        "Cán bộ nhiệt tình",
    )
    # Again: nothing new, and it says so; no case either.
    code, output = invoke(app, "paper", "import", str(path))
    assert code == 0, output
    assert "nothing new" in output and "3 form(s) were stored already" in output
    assert len(paper_surveys(runtime)) == 3
    assert len(paper_cases(runtime)) == 1 and "opened" not in output


def test_import_with_one_bad_row_stores_nothing_and_names_the_row(
    app: Flask, runtime: Runtime, tmp_path: Path
) -> None:
    allocate(runtime, 5)
    bad = [
        *GOOD_ROWS,
        ["4", "HVT01", None, 5, 5, 6, 5, 5, None],  # row 5: Q3 = 6
        ["3", "HVT09", "2026-13-01", 5, 5, 5, 5, 5, None],  # row 6: three problems
    ]
    path = filled_template(app, tmp_path, bad)
    code, output = invoke(app, "paper", "import", str(path))
    assert code == 2
    lines = output.strip().splitlines()
    assert "row 5: Q3 = 6 is not a level 1–5" in lines
    assert "row 6: HVT09 is not a counter of HVT" in lines
    assert "row 6: 2026-13-01 is not a date (YYYY-MM-DD or DD/MM/YYYY)" in lines
    assert "row 6: Form HVT-000003 is also on row 4" in lines
    assert lines[-1].startswith("nothing was stored: 4 problem(s)")
    assert paper_surveys(runtime) == []
    with runtime.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(PaperForm)) == 0


def test_import_refuses_a_file_that_is_no_template(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_text("not a workbook")
    code, output = invoke(app, "paper", "import", str(path))
    assert code == 2 and "not an XLSX file" in output


# --- the console's entry page -----------------------------------------------------------

ENTRY = "/console/units/HVT/paper?counter=HVT01&questionnaire=sipas-short"


def operator(app: Flask, client: FlaskClient, *units: str, role: str = "operator") -> None:
    email = f"{role}-{'-'.join(units).lower() or 'all'}@phuong.gov.vn"
    assert add_user(app, email, role, *units).exit_code == 0
    assert password_sign_in(client, email).status_code == 302


def save_line(client: FlaskClient, number: str, *cells: str, csrf: bool = True) -> Any:
    page = client.get(ENTRY)
    assert page.status_code == 200, page.status_code
    data = {"counter": "HVT01", "questionnaire": "sipas-short", "number": number}
    data |= {f"q{n}": cell for n, cell in enumerate(cells, start=1)}
    if csrf:
        data["csrf_token"] = csrf_token(page.text)
    return client.post("/console/units/HVT/paper", data=data)


def undo_line(client: FlaskClient) -> Any:
    """The entry page's "Hoàn tác" of one's last line at HVT01."""
    page = client.get(ENTRY)
    return client.post(
        "/console/units/HVT/paper/undo",
        data={"counter": "HVT01", "csrf_token": csrf_token(page.text)},
    )


def test_entry_page_saves_a_line_and_lists_it(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    allocate(runtime, 3)
    operator(app, client, "HVT")
    page = client.get("/console/units/HVT")
    assert "/console/units/HVT/paper" in page.text  # in the navigation
    saved = save_line(client, "1", "5", "4", "5", "4", "0", "Rất tốt")
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith(
        "/console/units/HVT/paper?counter=HVT01&questionnaire=sipas-short"
    )
    (survey,) = paper_surveys(runtime)
    assert survey.status == "completed" and survey.channel == "paper"
    with runtime.session_factory() as db:
        (form,) = db.scalars(select(PaperForm)).all()
        assert form.entered_by.startswith("operator-hvt@phuong.gov.vn [user:")
        values = {a.item_id: (a.value, a.text) for a in form.response.answers}
    assert values["feedback"] == (0, None) and values["comment"] == (None, "Rất tốt")
    listing = client.get(ENTRY).text
    assert 'data-number="HVT-000001"' in listing
    assert "Hoàn tác phiếu HVT-000001" in listing


def test_entry_page_refuses_a_bad_line_with_its_message_and_stores_nothing(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    allocate(runtime, 3)
    operator(app, client, "HVT")
    refused = save_line(client, "2", "5", "6", "5", "4", "", "")
    assert refused.status_code == 422
    assert "Câu 2 = 6: không phải mức 1–5" in refused.text
    assert 'value="6"' in refused.text  # the line as typed, to correct
    assert paper_surveys(runtime) == []
    # A number never printed, and one entered already.
    assert "chưa từng được in" in save_line(client, "7", "5", "5", "5", "5", "5", "").text
    assert save_line(client, "2", "5", "5", "5", "5", "5", "").status_code == 303
    again = save_line(client, "HVT-000002", "4", "4", "4", "4", "4", "")
    assert again.status_code == 422
    assert "Phiếu HVT-000002 đã được nhập" in again.text
    assert len(paper_surveys(runtime)) == 1


def test_undo_takes_back_the_last_line_and_frees_its_number(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    allocate(runtime, 3)
    operator(app, client, "HVT")
    assert save_line(client, "1", "1", "1", "1", "1", "1", "").status_code == 303
    assert undo_line(client).status_code == 303
    (survey,) = paper_surveys(runtime)
    assert survey.status == "cancelled" and not survey.counted
    with runtime.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(PaperForm)) == 0
        assert repo.pending_alerts(db) == []  # the low rating's alert went with it
        # ... and the survey left the roll-up of counts that it had entered when saved.
        assert repo.rollup_row_counts(db)["rollup_surveys"] > 0  # the rows stay, at zero
        assert repo.compare_unit(db, survey.unit_id, span=None) == []
    assert save_line(client, "1", "5", "5", "5", "5", "5", "").status_code == 303


def test_entry_page_follows_the_consoles_scope_and_csrf(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    from tests.test_leaders import add_unit

    add_unit(runtime, clock, "BDH", "7000-BDH")
    allocate(runtime, 3)
    assert client.get(ENTRY).status_code == 302  # signed out: to the sign-in page
    operator(app, client, "BDH")
    assert client.get(ENTRY).status_code == 404  # not their unit
    assert client.get("/console/units/BDH/paper").status_code == 200
    client.post(
        "/console/logout", data={"csrf_token": csrf_token(client.get("/console/units/BDH").text)}
    )
    operator(app, client, "HVT", role="viewer")
    assert client.get(ENTRY).status_code == 403  # a viewer reads, does not enter
    client.post(
        "/console/logout", data={"csrf_token": csrf_token(client.get("/console/units/HVT").text)}
    )
    operator(app, client, "HVT")
    assert save_line(client, "1", "5", "5", "5", "5", "5", "", csrf=False).status_code == 400
    assert paper_surveys(runtime) == []
    # Only the unit's questionnaires may be named, never a file on the server.
    bad = client.get("/console/units/HVT/paper?counter=HVT01&questionnaire=/etc/passwd.yaml")
    assert bad.status_code == 400


def test_entry_page_speaks_english_and_prints_numbered_forms(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    allocate(runtime, 1)
    operator(app, client, "HVT")
    client.get("/console/lang/en")
    refused = save_line(client, "1", "5", "5", "5", "5", "9", "")
    assert refused.status_code == 422
    assert "Q5 = 9 is not a level 1–5" in refused.text
    page = client.get(ENTRY)
    printed = client.post(
        "/console/units/HVT/paper/print",
        data={
            "counter": "HVT01",
            "questionnaire": "sipas-short",
            "count": "2",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert printed.status_code == 200
    assert 'data-form-number="HVT-000002"' in printed.text
    assert 'data-form-number="HVT-000003"' in printed.text
    with runtime.session_factory() as db:
        assert repo.last_paper_number(db, repo.find_unit(db, "HVT").id) == 3  # type: ignore[union-attr]


def test_a_paper_form_opens_its_case_once_with_no_channel_to_reply_and_undo_withdraws_it(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    allocate(runtime, 3)
    operator(app, client, "HVT")
    comment = "Thái độ cán bộ chưa tốt, gọi tôi 0912345678"
    assert save_line(client, "1", "1", "4", "5", "4", "0", comment).status_code == 303
    (survey,) = paper_surveys(runtime)
    (case,) = paper_cases(runtime)
    assert (case.source, case.kind, case.response_id) == ("comment", "phan_anh", survey.id)
    assert (case.unit_id, case.counter_id) == (survey.unit_id, survey.counter_id)
    assert "0912345678" not in case.text and case.scores and 1 in case.scores.values()
    listing = client.get(ENTRY).text  # the clerk sees the reference beside the line
    assert f"data-case-reference>{case.reference}</a>" in listing
    # The same form number again stores nothing and opens nothing.
    assert save_line(client, "HVT-000001", "5", "5", "5", "5", "5", "").status_code == 422
    assert len(paper_cases(runtime)) == 1
    # The case shows its form number, and offers no reply: its citizen has no Zalo.
    page = client.get(f"/console/cases/{case.reference}")
    assert "data-paper-form>HVT-000001<" in page.text
    assert "data-no-reply-channel" in page.text and 'data-form="reply"' not in page.text
    assert 'data-form="close"' in page.text
    refused = client.post(
        f"/console/cases/{case.reference}/reply",
        data={"csrf_token": csrf_token(page.text), "key": "k1", "text": "Cảm ơn Ông/Bà"},
        follow_redirects=True,
    )
    assert f"case {case.reference} came from a paper form: no channel to reply" in refused.text
    code, shown = invoke(app, "cases", "show", case.reference)
    assert code == 0 and "channel: paper, form HVT-000001 (no channel to reply)" in shown
    code, output = invoke(app, "cases", "reply", case.reference, "--text", "Cảm ơn")
    assert code == 2 and output.startswith("NoReplyChannel: case")
    assert "no channel to reply" in output and "\n" not in output
    with runtime.session_factory() as db:
        assert db.scalars(select(CaseReply)).all() == []
        assert db.scalars(select(OutboxMessage)).all() == []
    # The clerk takes the form back: its case closes as withdrawn, out of the figures.
    assert undo_line(client).status_code == 303
    (case,) = paper_cases(runtime)
    assert case.status == "da_dong" and case.resolution and "HVT-000001" in case.resolution
    last = case.events[-1]
    assert last.action == "withdrawn" and last.actor.startswith("operator-hvt@phuong.gov.vn")
    with runtime.session_factory() as db:
        period = period_containing("month", clock(), runtime.settings.tz)
        assert case_figures(db, unit_ids=None, period=period).received == 0
    trail = client.get(f"/console/cases/{case.reference}").text
    assert "Rút (phiếu giấy được hoàn tác)" in trail
    # Entered again, as a low rating without a comment: a new case of its own.
    assert save_line(client, "1", "2", "5", "5", "5", "5", "").status_code == 303
    cases = paper_cases(runtime)
    assert len(cases) == 2 and (cases[1].source, cases[1].kind) == ("low_rating", "phan_anh")
    with runtime.session_factory() as db:
        assert case_figures(db, unit_ids=None, period=period).received == 1
