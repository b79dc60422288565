"""Cases end to end: opened by a comment, a low rating and a free question through signed
webhooks; answered through the CLI and through the console's reply form; delivered
in order through the outbox; undeliverable when Zalo's window has closed; counted in the month's
figures; due in working days across weekends and holidays."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import select

from bot.cases.deadlines import WorkingCalendar, read_holidays_file
from bot.cases.kinds import classify
from bot.cases.references import parse_reference
from bot.cli.main import cli
from bot.jobs import follow_cases
from bot.runtime import Runtime
from storage.models import Case, CaseContact, CaseKind, CaseReply, OutboxMessage, Unit
from survey_flow.sourcefile import FileProblems
from tests.conftest import API_BASE, ROOT, FakeClock, text_event, zalo_success
from tests.console_support import add_user, password_sign_in, post_case_form

Post = Callable[..., Any]
CITIZEN = "246845883529197922"
SECOND = "246845883529197923"
THIRD = "246845883529197924"
SEND_URL = f"{API_BASE}/v3.0/oa/message/cs"
REF = re.compile(r"PA-2026-\d{6}")


def texts_to(runtime: Runtime, user_id: str) -> list[str]:
    with runtime.session_factory() as session:
        return [
            body["text"]
            for body in session.scalars(
                select(OutboxMessage.body)
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id)
            )
        ]


def cases(runtime: Runtime) -> list[Case]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(Case).order_by(Case.id)))


def answer_all(signed_post: Post, runtime: Runtime, user_id: str, value: str, comment: str) -> None:
    """Answer the open survey: `value` to each rating (buttons' payloads), `comment` to text."""
    for _ in range(40):
        with runtime.session_factory() as session:
            last = session.scalars(
                select(OutboxMessage.body)
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id.desc())
            ).first()
        assert last is not None
        buttons = last.get("buttons") or []
        if not buttons and "Câu" not in last["text"]:
            return
        scale = [b for b in buttons if b["payload"].rsplit(":", 1)[1] in "12345"]
        if len(buttons) == 1 and buttons[0]["title"] == "Bỏ qua":  # a comment is asked
            text = comment or buttons[0]["payload"]
        elif len(scale) == 5:
            text = scale[int(value) - 1]["payload"]
        elif buttons:
            text = buttons[0]["payload"]
        else:
            text = "1"
        signed_post(text_event(text, user_id=user_id))
    raise AssertionError("the survey did not end")


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, list(args))


def test_three_cases_answered_by_cli_and_console_reach_the_citizen_in_order(
    app: Flask,
    signed_post: Post,
    runtime: Runtime,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
    tmp_path: Path,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    # A comment (all ratings good), a low rating (no comment), a free question to the OA.
    signed_post(text_event("#HVT01"))
    answer_all(signed_post, runtime, CITIZEN, "5", "Nên bố trí thêm ghế ngồi chờ cho người già")
    signed_post(text_event("#HVT02", user_id=SECOND))
    answer_all(signed_post, runtime, SECOND, "1", "")
    before = len(texts_to(runtime, SECOND))
    question = "Cho hỏi hồ sơ đất của tôi bao giờ có kết quả?"
    signed_post(text_event(question, user_id=SECOND))

    opened = cases(runtime)
    assert [(c.source, c.kind, c.unit_id is not None) for c in opened] == [
        ("comment", CaseKind.RECOMMENDATION, True),
        ("low_rating", CaseKind.COMPLAINT, True),
        ("message", CaseKind.QUESTION, True),
    ]
    references = [c.reference for c in opened]
    assert references == ["PA-2026-000001", "PA-2026-000002", "PA-2026-000003"]
    assert opened[1].scores and max(opened[1].scores.values()) == 1  # 0: not applicable
    # Each citizen got their reference at once.
    assert f"đã được ghi nhận, mã {references[0]}" in texts_to(runtime, CITIZEN)[-1]
    assert f"đã được ghi nhận, mã {references[1]}" in texts_to(runtime, SECOND)[-2]
    # The question is answered with its reference alone, not with the greeting.
    assert len(texts_to(runtime, SECOND)) == before + 1
    assert f"đã được ghi nhận, mã {references[2]}" in texts_to(runtime, SECOND)[-1]

    # The citizen asks for the status, typed loosely; then leaves a phone number.
    signed_post(text_event("pa 2026 3", user_id=SECOND))
    assert "PA-2026-000003 (câu hỏi): mới tiếp nhận" in texts_to(runtime, SECOND)[-1]
    signed_post(text_event("PA-2026-000001", user_id=SECOND))  # not theirs
    assert "Không tìm thấy" in texts_to(runtime, SECOND)[-1]
    signed_post(text_event("0912 345 678", user_id=SECOND))
    assert "Đã lưu số điện thoại" in texts_to(runtime, SECOND)[-1]

    # An official answers case 3 twice through the CLI (a retry), then another official
    # answers case 3 again with another text, and case 1, through the console.
    result = run(app, "cases", "assign", "PA-2026-000003", "--to", "Chị Lan")
    assert result.exit_code == 0, result.output
    result = run(app, "cases", "reply", "pa-2026-000003", "--text", "Hồ sơ có kết quả ngày 20/3.")
    assert result.exit_code == 0 and "queued" in result.output
    result = run(app, "cases", "reply", "PA-2026-000003", "--text", "Hồ sơ có kết quả ngày 20/3.")
    assert "given already" in result.output
    # The console: an operator signed in with a password sends each case's reply form.
    assert add_user(app, "lan@phuong.gov.vn", "operator", "HVT").exit_code == 0
    console = app.test_client()
    assert password_sign_in(console, "lan@phuong.gov.vn").status_code == 302
    for reference, reply in (
        ("PA-2026-000003", "Ông/Bà mang theo giấy hẹn khi đến nhận."),
        ("PA-2026-000001", "Cảm ơn, đã bố trí thêm ghế."),
    ):
        assert post_case_form(console, reference, "reply", text=reply).status_code == 302
    sender = runtime.sender()
    try:
        sender.drain()
    finally:
        sender.close()
    delivered = [
        json.loads(call.request.body)
        for call in zalo_api.calls
        if json.loads(call.request.body)["recipient"]["user_id"] == SECOND
    ]
    third = [d["message"]["text"] for d in delivered]
    assert "Hồ sơ có kết quả ngày 20/3." in third[-2]
    assert "giấy hẹn" in third[-1]
    assert sum("Hồ sơ có kết quả" in text for text in third) == 1
    assert follow_cases(runtime) == (3, 0)
    with runtime.session_factory() as session:
        written = list(session.scalars(select(CaseReply).order_by(CaseReply.id)))
        assert [(r.delivery, r.author) for r in written] == [
            ("sent", "cli"),
            ("sent", "console:lan@phuong.gov.vn"),
            ("sent", "console:lan@phuong.gov.vn"),
        ]
        contact = session.get(CaseContact, 3)
        assert contact is not None and contact.phone == "0912345678"
        case = session.scalars(select(Case).where(Case.reference == "PA-2026-000003")).one()
        assert (case.status, case.assignee) == ("da_tra_loi", "Chị Lan")
        assert [e.action for e in case.events] == [
            "opened",
            "contact_given",
            "assigned",
            "replied",
            "replied",
            "reply_sent",
            "reply_sent",
        ]

    result = run(app, "cases", "close", "PA-2026-000003", "--resolution", "Đã trả kết quả.")
    assert result.exit_code == 0
    result = run(app, "cases", "reply", "PA-2026-000003", "--text", "thêm")
    assert result.exit_code != 0 and "closed" in str(result.exception)
    shown = run(app, "cases", "show", "PA-2026-000003").output
    assert "đã đóng" in shown and "Đã trả kết quả." in shown and "0912345678" in shown
    listed = run(app, "cases", "list", "--status", "moi").output
    assert "PA-2026-000002" in listed and "PA-2026-000003" not in listed

    # The month's figures: on the public page and in the JSON report.
    figures = {"received": 3, "answered": 2, "resolved": 1, "resolved_on_time": 1}
    report = run(app, "report", "--unit", "HVT", "--format", "json")
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)  # the dates covered go to stderr
    assert {k: data["cases"][k] for k in figures} == figures
    assert data["cases"]["by_kind"] == {"câu hỏi": 1, "góp ý": 0, "kiến nghị": 1, "phản ánh": 1}
    # The same figures in the XLSX report's sheet of cases.
    out = tmp_path / "report.xlsx"
    result = run(app, "report", "--unit", "HVT", "--format", "xlsx", "--out", str(out))
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out)["Ý kiến"]
    header = [cell.value for cell in sheet[1]]
    row = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert row["Kỳ (period)"] == data["period"]["label"]
    assert [row[h] for h in header[1:5]] == [3, 2, 1, 1]
    assert {h: row[h] for h in header[5:9]} == {
        "câu hỏi (received)": 1,
        "góp ý (received)": 0,
        "kiến nghị (received)": 1,
        "phản ánh (received)": 1,
    }
    with runtime.session_factory.begin() as session:
        session.scalars(select(Unit).where(Unit.code == "HVT")).one().public_results = True
    page = app.test_client().get("/u/HVT/results").get_data(as_text=True)
    first_month = page[
        page.index('id="month-1"') : page.index("</section>", page.index('id="month-1"'))
    ]
    for name, value in (("received", 3), ("answered", 2), ("resolved", 1), ("on-time", 1)):
        assert f'<b class="cases-{name}">{value}</b>' in first_month
    assert "câu hỏi: 1" in first_month and "kiến nghị: 1" in first_month

    # The phone number is kept while the case is open, deleted once it has been closed for
    # CASES_CONTACT_RETENTION_DAYS (30) by the daily purge.
    clock.advance(days=29)
    assert run(app, "privacy", "purge").exit_code == 0
    with runtime.session_factory() as session:
        assert session.get(CaseContact, 3) is not None
    clock.advance(days=2)
    assert run(app, "privacy", "purge").exit_code == 0
    with runtime.session_factory() as session:
        assert session.get(CaseContact, 3) is None
        # Case 2 is open but its author's Zalo id went with their window: nothing is left.
        assert session.get(CaseContact, 2) is None and session.get(Case, 2) is not None


def test_a_reply_after_the_window_closed_is_marked_undeliverable(
    app: Flask,
    signed_post: Post,
    runtime: Runtime,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    signed_post(text_event("Thái độ cán bộ quầy 2 không nhiệt tình với người dân", user_id=THIRD))
    sender = runtime.sender()
    try:
        sender.drain()
        # Zalo refuses the next message: the window closed (the clock moved less than 7 days,
        # so only Zalo knows).
        zalo_api.replace(
            responses.POST, SEND_URL, json={"error": -230, "message": "User not interact"}
        )
        clock.advance(days=2)
        result = run(app, "cases", "reply", "PA-2026-000001", "--text", "Đã nhắc nhở cán bộ.")
        assert "queued" in result.output
        sender.drain()
    finally:
        sender.close()
    assert follow_cases(runtime)[0] == 1
    (case,) = cases(runtime)
    assert case.undeliverable and case.kind == CaseKind.COMPLAINT
    # Known beforehand: 8 days later the reply is not even queued.
    clock.advance(days=8)
    result = run(app, "cases", "reply", "PA-2026-000001", "--text", "Xin lỗi Ông/Bà.")
    assert "cannot deliver" in result.output
    assert "undeliverable" in run(app, "cases", "show", "PA-2026-000001").output


def test_a_duplicate_webhook_opens_one_case(signed_post: Post, runtime: Runtime) -> None:
    event = text_event("Cho hỏi thủ tục đăng ký khai sinh cần giấy tờ gì?", user_id=THIRD)
    signed_post(event)
    signed_post(event)
    assert len(cases(runtime)) == 1
    assert len(texts_to(runtime, THIRD)) == 1


def test_working_day_deadlines_skip_weekends_and_holidays(tmp_path: Path) -> None:
    calendar = read_holidays_file(ROOT / "examples" / "holidays.yaml")
    # Friday 24/4/2026; Saturday, Sunday, then Monday 27/4 is a holiday (Giỗ Tổ).
    assert calendar.add_working_days(date(2026, 4, 24), 2) == date(2026, 4, 29)
    assert WorkingCalendar().add_working_days(date(2026, 4, 24), 2) == date(2026, 4, 28)
    # Across Tết: 13/2 (Friday) + 1 working day is Monday 23/2.
    assert calendar.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 23)
    assert calendar.working_days_between(date(2026, 4, 24), date(2026, 4, 29)) == 2
    bad = tmp_path / "h.yaml"
    bad.write_text("holidays:\n  - tomorrow\n", "utf-8")
    with pytest.raises(FileProblems, match=r"h\.yaml:2"):
        read_holidays_file(bad)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Cho hỏi hồ sơ bao giờ có kết quả", CaseKind.QUESTION),
        ("Hồ sơ xong chưa?", CaseKind.QUESTION),
        ("Cán bộ có thái độ hách dịch với dân", CaseKind.COMPLAINT),
        ("Đề nghị bố trí thêm quầy vào buổi sáng", CaseKind.RECOMMENDATION),
        ("Phòng chờ sạch sẽ, cán bộ vui vẻ", CaseKind.SUGGESTION),
    ],
)
def test_kinds_are_told_by_a_few_words(text: str, kind: CaseKind) -> None:
    assert classify(text) == kind


def test_references_are_read_however_typed() -> None:
    assert parse_reference(" pa-2026-000123 ") == "PA-2026-000123"
    assert parse_reference("PA 2026 123") == "PA-2026-000123"
    assert parse_reference("PA2026000123") == "PA-2026-000123"
    assert parse_reference("PA-2026") is None
    assert parse_reference("hồ sơ PA-2026-000123 thế nào") is None


def test_new_and_overdue_cases_appear_in_the_digest(
    app: Flask, signed_post: Post, clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01", user_id=THIRD))
    signed_post(text_event("Cho hỏi hồ sơ của tôi bao giờ có kết quả?", user_id=THIRD))
    result = run(app, "digest", "send", "--unit", "HVT", "--period", "day", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Ý kiến, phản ánh mới: 1; đang quá hạn: 0" in result.output
    clock.advance(days=20)
    result = run(app, "digest", "send", "--unit", "HVT", "--period", "day", "--dry-run")
    assert "Ý kiến, phản ánh mới: 0; đang quá hạn: 1" in result.output
