"""The console's cases through Flask's test client: the list and its filters, a case's page,
assigning, replying (once, through the desk) and closing; a leader sees only their units'
cases whatever the URL says, a viewer cannot act, and a form without its CSRF token or a
session changes nothing."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import Case, CaseKind, CaseReply, CaseSource, OutboxMessage, Unit
from storage.repositories import NewCase
from tests.conftest import FakeClock
from tests.console_support import (
    Post,
    add_user,
    csrf_token,
    leader_signed_in,
    password_sign_in,
    post_case_form,
    seed,
)

HVT_CASE = "PA-2026-000001"  # the seeded low-rated survey's comment "Chờ quá lâu"


@pytest.fixture
def seeded(runtime: Runtime, signed_post: Post, clock: FakeClock) -> Runtime:
    seed(runtime, signed_post, clock)
    open_case(runtime, clock, "BDH", "Cho hỏi thủ tục khai sinh cần giấy tờ gì?")
    return runtime


def open_case(runtime: Runtime, clock: FakeClock, unit_code: str, text: str) -> str:
    """A message case of `unit_code`, opened through the desk; its reference."""
    with runtime.session_factory.begin() as session:
        unit = session.scalars(select(Unit).where(Unit.code == unit_code)).one()
        case = runtime.cases.open(
            session,
            NewCase(
                unit_id=unit.id,
                counter_id=None,
                response_id=None,
                source=CaseSource.MESSAGE.value,
                kind=CaseKind.QUESTION.value,
                text=text,
                scores=None,
                respondent_hash="r" * 64,
                language="vi",
                user_id=None,
            ),
            now=clock(),
        )
        assert case is not None
        return case.reference


def replies_of(runtime: Runtime, reference: str) -> list[CaseReply]:
    with runtime.session_factory() as session:
        case = repo.find_case(session, reference)
        assert case is not None
        return list(case.replies)


def test_a_leader_lists_filters_opens_assigns_replies_and_closes_their_units_case(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    listed = client.get("/console/cases")
    assert listed.status_code == 200
    assert HVT_CASE in listed.text and "PA-2026-000002" not in listed.text  # BDH's
    assert "Chờ quá lâu" in listed.text
    # Filters: a status, a kind, a month, overdue, and the search by reference.
    assert HVT_CASE in client.get("/console/cases?status=moi").text
    assert HVT_CASE not in client.get("/console/cases?status=da_dong").text
    assert HVT_CASE in client.get("/console/cases?kind=phan_anh").text
    assert HVT_CASE not in client.get("/console/cases?kind=cau_hoi").text
    assert HVT_CASE in client.get("/console/cases?month=2026-03").text
    assert HVT_CASE not in client.get("/console/cases?month=2026-02").text
    assert HVT_CASE not in client.get("/console/cases?overdue=1").text
    assert HVT_CASE in client.get("/console/cases?counter=HVT01&q=pa 2026 1").text
    assert HVT_CASE not in client.get("/console/cases?q=PA-2026-000009").text
    assert client.get("/console/cases?status=bogus").status_code == 400

    page = client.get(f"/console/cases/{HVT_CASE.lower()}")
    assert page.status_code == 200
    assert "Chờ quá lâu" in page.text and 'class="score s1"' in page.text

    assigned = post_case_form(client, HVT_CASE, "assign", assignee="Lãnh đạo #1")
    assert assigned.status_code == 302
    assert "Đã giao xử lý." in client.get(f"/console/cases/{HVT_CASE}").text
    # A name that is not one of the case's people is refused.
    assert post_case_form(client, HVT_CASE, "assign", assignee="Ai đó").status_code == 400

    page = client.get(f"/console/cases/{HVT_CASE}")
    key = page.text.split('name="key" value="', 1)[1].split('"', 1)[0]
    form = {"csrf_token": csrf_token(page.text), "key": key, "text": "Đã bố trí thêm cán bộ."}
    assert client.post(f"/console/cases/{HVT_CASE}/reply", data=form).status_code == 302
    assert client.post(f"/console/cases/{HVT_CASE}/reply", data=form).status_code == 302  # twice
    (reply,) = replies_of(seeded, HVT_CASE)
    assert reply.author == "console:Lãnh đạo #1" and reply.text == "Đã bố trí thêm cán bộ."
    with seeded.session_factory() as session:
        queued = session.get(OutboxMessage, reply.outbox_message_id)
        assert queued is not None and "Đã bố trí thêm cán bộ." in queued.body["text"]
    shown = client.get(f"/console/cases/{HVT_CASE}").text
    assert "Trả lời này đã được gửi trước đó." in shown and 'data-reply="queued"' in shown

    closed = post_case_form(client, HVT_CASE, "close", resolution="Đã bổ sung cán bộ giờ cao điểm.")
    assert closed.status_code == 302
    shown = client.get(f"/console/cases/{HVT_CASE}").text
    assert "Đã đóng hồ sơ." in shown and 'data-form="reply"' not in shown
    with seeded.session_factory() as session:
        case = session.scalars(select(Case).where(Case.reference == HVT_CASE)).one()
        assert (case.status, case.assignee) == ("da_dong", "Lãnh đạo #1")
        assert [e.action for e in case.events] == ["opened", "assigned", "replied", "closed"]


def test_a_leader_cannot_reach_another_units_case_by_changing_the_url(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    other = "PA-2026-000002"
    assert client.get(f"/console/cases/{other}").status_code == 404
    assert client.get("/console/cases?unit=BDH").status_code == 404
    assert f'data-case="{other}"' not in client.get("/console/cases?q=" + other).text
    token = csrf_token(client.get(f"/console/cases/{HVT_CASE}").text)
    for action, field in (("reply", "text"), ("close", "resolution")):
        data = {"csrf_token": token, "key": "k" * 32, field: "x"}
        assert client.post(f"/console/cases/{other}/{action}", data=data).status_code == 404
    assert replies_of(seeded, other) == []
    with seeded.session_factory() as session:
        case = repo.find_case(session, other)
        assert case is not None and case.status == "moi"


def test_a_form_without_its_csrf_token_or_a_session_changes_nothing(
    app: Flask, client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    stranger = app.test_client()
    assert stranger.get("/console/cases").status_code == 302  # to the sign-in page
    assert stranger.get(f"/console/cases/{HVT_CASE}").status_code == 302
    data = {"text": "Xin chào", "key": "k" * 32}
    assert stranger.post(f"/console/cases/{HVT_CASE}/reply", data=data).status_code in (400, 302)

    leader_signed_in(client, signed_post, seeded)
    assert client.post(f"/console/cases/{HVT_CASE}/reply", data=data).status_code == 400
    assert (
        client.post(f"/console/cases/{HVT_CASE}/close", data={"resolution": "x"}).status_code == 400
    )
    assert replies_of(seeded, HVT_CASE) == []
    with seeded.session_factory() as session:
        case = repo.find_case(session, HVT_CASE)
        assert case is not None and case.status == "moi"


def test_a_viewer_reads_cases_but_cannot_act(
    app: Flask, client: FlaskClient, seeded: Runtime
) -> None:
    add_user(app, "xem@phuong.gov.vn", "viewer", "HVT")
    assert password_sign_in(client, "xem@phuong.gov.vn").status_code == 302
    page = client.get(f"/console/cases/{HVT_CASE}")
    assert page.status_code == 200 and "chỉ được xem" in page.text
    assert 'data-form="reply"' not in page.text
    data = {"csrf_token": csrf_token(page.text), "key": "k" * 32, "text": "Xin chào"}
    assert client.post(f"/console/cases/{HVT_CASE}/reply", data=data).status_code == 403
    assert replies_of(seeded, HVT_CASE) == []
    # An operator of every unit sees both units' cases and may act.
    add_user(app, "vh@tinh.gov.vn", "operator")
    operator = app.test_client()
    assert password_sign_in(operator, "vh@tinh.gov.vn").status_code == 302
    listed = operator.get("/console/cases").text
    assert HVT_CASE in listed and "PA-2026-000002" in listed
    replied = post_case_form(operator, "PA-2026-000002", "reply", text="Cần giấy chứng sinh.")
    assert replied.status_code == 302
    (reply,) = replies_of(seeded, "PA-2026-000002")
    assert reply.delivery == "undeliverable"  # the case has no Zalo id to answer
    page = operator.get("/console/cases/PA-2026-000002").text
    assert 'data-reply="undeliverable"' in page and "data-undeliverable" in page
