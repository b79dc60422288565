"""The officials' console through Flask's test client: signing in (a leader's one-time link
from DANGNHAP, a console user's password, TOTP and the rate limit), what each may see, the
pages and downloads, acknowledging an alert, CSRF, and sessions that end."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pyotp
import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.delivery.sign_in_links import token_hash
from bot.jobs import build_scheduler, dispatch_alerts, forget_old_sign_ins
from bot.runtime import Runtime
from bot.web.console.base import links_to
from storage import repositories as repo
from storage.models import (
    AlertAcknowledgement,
    ConsoleUser,
    LeaderMessage,
    SignInAttempt,
    SignInLink,
)
from tests.conftest import FakeClock
from tests.console_support import (
    PASSWORD,
    Post,
    add_user,
    csrf_token,
    follow_link,
    leader_signed_in,
    password_sign_in,
    seed,
    sign_in_link,
)
from tests.test_leaders import register, replies, say

PAGES = [
    "/console/",
    "/console/province",
    "/console/units/HVT",
    "/console/units/HVT/counters/HVT01",
    "/console/units/HVT/comments",
    "/console/units/HVT/alerts",
    "/console/units/HVT/report.xlsx",
    "/console/units/HVT/export.csv",
    "/console/units/HVT/export.xlsx",
    "/console/units/HVT/print/report",
    "/console/units/HVT/print/posters",
]


@pytest.fixture
def seeded(runtime: Runtime, signed_post: Post, clock: FakeClock) -> Runtime:
    seed(runtime, signed_post, clock)
    return runtime


# --- a leader's one-time link ---------------------------------------------------------------


def test_dangnhap_answers_a_registered_leader_with_a_link_that_signs_in_once(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    register(signed_post)
    url = sign_in_link(signed_post, seeded)
    assert url.startswith("https://sipas.example.vn/console/login/link?t=")
    with seeded.session_factory() as session:
        (link,) = session.scalars(select(SignInLink))
        # only the hash is stored, never the token itself
        assert link.token_hash == token_hash(url.split("t=", 1)[1])
        assert url.split("t=", 1)[1] not in link.token_hash

    response = follow_link(client, url)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"
    assert client.get("/console/").headers["Location"] == "/console/units/HVT"
    page = client.get("/console/units/HVT")
    assert page.status_code == 200
    assert "UBND phường Hoàng Văn Thụ" in page.text

    # the same link again, in another browser: refused
    assert _status_in_another_browser(client.application, url) == 410


def _status_in_another_browser(app: Flask, url: str) -> int:
    """Open the link and press "Tiếp tục" with a client of its own (no cookies)."""
    client = app.test_client()
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    page = client.get(path)
    if page.status_code != 200:
        return page.status_code
    return client.post(
        "/console/login/link",
        data={"t": path.split("t=", 1)[1], "csrf_token": csrf_token(page.text)},
    ).status_code


def test_a_link_used_between_opening_and_pressing_continue_fails(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    register(signed_post)
    url = sign_in_link(signed_post, seeded)
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    page = client.get(path)
    with seeded.session_factory.begin() as session:
        assert repo.consume_sign_in_link(
            session, token_hash(path.split("t=", 1)[1]), now=seeded.clock()
        )
    response = client.post(
        "/console/login/link",
        data={"t": path.split("t=", 1)[1], "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 410
    assert client.get("/console/units/HVT").status_code == 302  # not signed in


def test_an_expired_link_fails(
    client: FlaskClient, signed_post: Post, seeded: Runtime, clock: FakeClock
) -> None:
    register(signed_post)
    url = sign_in_link(signed_post, seeded)
    clock.advance(minutes=11)  # CONSOLE_LINK_MINUTES is 10
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert client.get(path).status_code == 410


def test_a_link_is_consumed_by_one_update_only(
    signed_post: Post, seeded: Runtime, clock: FakeClock
) -> None:
    register(signed_post)
    token = sign_in_link(signed_post, seeded).split("t=", 1)[1]
    with seeded.session_factory.begin() as session:
        first = repo.consume_sign_in_link(session, token_hash(token), now=clock())
    with seeded.session_factory.begin() as session:
        second = repo.consume_sign_in_link(session, token_hash(token), now=clock())
    assert first is not None and first[1] == "/console/"
    assert second is None


def test_dangnhap_from_someone_not_registered_gets_no_link(
    signed_post: Post, seeded: Runtime
) -> None:
    say(signed_post, "DANGNHAP")
    assert replies(seeded)[-1] == "Ông/Bà chưa đăng ký nhận báo cáo của đơn vị nào."
    with seeded.session_factory() as session:
        assert session.scalars(select(SignInLink)).all() == []


def test_the_alert_button_signs_the_leader_in_on_the_alerts_page(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    register(signed_post)
    complete_survey_low(signed_post)
    dispatch_alerts(seeded)
    with seeded.session_factory() as session:
        message = session.scalars(select(LeaderMessage)).first()
        assert message is not None and message.outbox_message is not None
        (detail,) = [b for b in message.outbox_message.body["buttons"] if "url" in b]
    response = follow_link(client, detail["url"])
    assert response.headers["Location"] == "/console/units/HVT/alerts"
    assert "Chờ quá lâu" in client.get("/console/units/HVT/alerts").text


def complete_survey_low(signed_post: Post) -> None:
    from tests.test_alerts import complete_survey

    complete_survey(signed_post, "800000000000000098", (2, 5, 5, 5, 5), comment="Thiếu ghế")


# --- what a leader may see ------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_no_console_page_works_without_a_session(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")


@pytest.mark.parametrize(
    "path",
    [
        "/console/units/BDH",
        "/console/units/BDH/counters/BDH01",
        "/console/units/BDH/comments",
        "/console/units/BDH/alerts",
        "/console/units/BDH/report.xlsx",
        "/console/units/BDH/export.csv",
        "/console/units/BDH/export.xlsx",
        "/console/units/HVT/counters/BDH01",
        "/console/units/HVT/export.csv?counter=BDH01",
    ],
)
def test_a_leader_cannot_see_another_units_pages_or_exports(
    client: FlaskClient, signed_post: Post, seeded: Runtime, path: str
) -> None:
    leader_signed_in(client, signed_post, seeded)
    assert client.get(path).status_code == 404


def test_a_leader_cannot_acknowledge_another_units_alert(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    page = client.get("/console/units/HVT/alerts")
    with seeded.session_factory() as session:
        alert_id = session.scalars(select(AlertAcknowledgement.id)).first()
    response = client.post(
        f"/console/units/BDH/alerts/{alert_id or 1}/ack",
        data={"note": "x", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 404


# --- pages -----------------------------------------------------------------------------------


def test_the_overview_shows_the_index_factors_trend_ranking_and_low_ratings(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    page = client.get("/console/units/HVT?period=month&date=2026-03-14").text
    assert "tháng 03/2026" in page
    assert 'data-chart="factors"' in page and 'data-chart="trend"' in page
    assert page.count("<svg") == 2
    assert "<script" not in page  # pygal's inline script is dropped
    assert "#HVT01 Quầy 1" in page
    assert "Chờ quá lâu" in page  # the low-rated survey of the period
    assert "Hoàn thành" in page
    # English on request
    english = client.get("/console/lang/en?next=/console/units/HVT", follow_redirects=True).text
    assert "Satisfaction index" in english


def test_the_counter_page_and_a_thin_counter_is_not_ranked(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    page = client.get("/console/units/HVT/counters/HVT02?period=month&date=2026-03-14")
    assert page.status_code == 200
    assert "#HVT02 Quầy 2" in page.text
    overview = client.get("/console/units/HVT?period=day&date=2026-03-14")
    assert overview.status_code == 400  # a period kind the console does not offer


def test_comments_filter_by_low_counter_and_search(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    base = "/console/units/HVT/comments?period=month&date=2026-03-14"
    everything = client.get(base).text
    assert "Phải chờ lâu" in everything and "Nên có thêm ghế" in everything
    low = client.get(base + "&low=1").text
    assert "Chờ quá lâu" in low and "Nên có thêm ghế" not in low
    assert "I: 1" in low and "II: 2" in low  # the scores beside the comment
    counter = client.get(base + "&counter=HVT03").text
    assert "Nên có thêm ghế" in counter and "Phải chờ lâu" not in counter
    found = client.get(base + "&q=GHẾ").text
    assert "Nên có thêm ghế" in found and "Mọi thứ đều tốt" not in found


def test_acknowledging_an_alert_with_a_note_as_the_leader(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    dispatch_alerts(seeded)
    page = client.get("/console/units/HVT/alerts?period=month&date=2026-03-14")
    with seeded.session_factory() as session:
        (message,) = session.scalars(select(LeaderMessage).where(LeaderMessage.kind == "alert"))
        alert_id = message.alert_id
    response = client.post(
        f"/console/units/HVT/alerts/{alert_id}/ack?period=month&date=2026-03-14",
        data={"note": "Đã gọi lại cho công dân", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302
    with seeded.session_factory() as session:
        (ack,) = session.scalars(select(AlertAcknowledgement))
        assert (ack.alert_id, ack.note) == (alert_id, "Đã gọi lại cho công dân")
        stored = session.get(LeaderMessage, message.id)
        assert stored is not None and stored.acknowledged_at is not None  # as "Đã nhận"
    shown = client.get("/console/units/HVT/alerts?period=month&date=2026-03-14").text
    assert "Đã gọi lại cho công dân" in shown


def test_a_post_without_the_csrf_token_fails(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    dispatch_alerts(seeded)
    with seeded.session_factory() as session:
        alert_id = session.scalars(select(LeaderMessage.alert_id)).first()
    response = client.post(f"/console/units/HVT/alerts/{alert_id}/ack", data={"note": "x"})
    assert response.status_code == 400
    assert client.post("/console/logout").status_code == 400
    with seeded.session_factory() as session:
        assert session.scalars(select(AlertAcknowledgement)).all() == []


def test_the_exports_hold_the_units_surveys_of_the_period(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    leader_signed_in(client, signed_post, seeded)
    response = client.get("/console/units/HVT/export.csv?period=month&date=2026-03-14")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["response_id", "unit_code", "counter_code"]
    assert len(rows) - 1 == 9 + 12 + 1 + 4 + 6 + 1  # March's surveys, not February's
    assert {row[1] for row in rows[1:]} == {"HVT"}
    only = client.get("/console/units/HVT/export.csv?period=month&date=2026-03-14&counter=HVT03")
    assert {row[2] for row in csv.reader(io.StringIO(only.text.lstrip("\ufeff")))} - {
        "counter_code"
    } == {"HVT03"}
    report = client.get("/console/units/HVT/report.xlsx?period=month&date=2026-03-14")
    assert report.status_code == 200 and report.data[:2] == b"PK"
    assert "sipas-HVT-2026-03-01.xlsx" in report.headers["Content-Disposition"]


def test_a_session_ends_after_console_session_hours(
    client: FlaskClient, signed_post: Post, seeded: Runtime, clock: FakeClock
) -> None:
    leader_signed_in(client, signed_post, seeded)
    assert client.get("/console/units/HVT").status_code == 200
    clock.advance(hours=8, minutes=1)
    response = client.get("/console/units/HVT")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]


def test_sign_out_ends_the_session(client: FlaskClient, signed_post: Post, seeded: Runtime) -> None:
    leader_signed_in(client, signed_post, seeded)
    page = client.get("/console/units/HVT")
    assert client.post("/console/logout", data={"csrf_token": csrf_token(page.text)}).status_code
    assert client.get("/console/units/HVT").status_code == 302


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(
    client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    register(signed_post)
    response = follow_link(client, sign_in_link(signed_post, seeded))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Path=/console" in cookie


# --- console users ---------------------------------------------------------------------------


def test_an_operator_signs_in_with_a_password_and_sees_the_province(
    app: Flask, client: FlaskClient, seeded: Runtime
) -> None:
    result = add_user(app, "Ops@Tinh.gov.vn", "operator")
    assert result.exit_code == 0, result.output
    with seeded.session_factory() as session:
        (user,) = session.scalars(select(ConsoleUser))
        assert user.email == "ops@tinh.gov.vn"
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    response = password_sign_in(client, "ops@tinh.gov.vn")
    assert response.status_code == 302
    assert client.get("/console/").headers["Location"] == "/console/province"
    page = client.get("/console/province?period=month&date=2026-03-14").text
    assert "UBND phường Hoàng Văn Thụ" in page and "UBND phường BDH" in page
    assert client.get("/console/units/BDH").status_code == 200


@pytest.mark.parametrize("code", ["HVT", "BDH-2", "Phường Ư/1", "a b?c&d=e#f", "%41"])
def test_links_built_once_are_the_addresses_url_for_builds(app: Flask, code: str) -> None:
    with app.test_request_context("/console/province"):
        link = links_to("console.overview", "code", period="month", date="2026-03-14")
        assert link(code) == url_for(
            "console.overview", code=code, period="month", date="2026-03-14"
        )


def test_a_wrong_password_fails_and_the_sixth_try_is_refused_even_when_right(
    app: Flask, client: FlaskClient, seeded: Runtime
) -> None:
    add_user(app, "ops@tinh.gov.vn", "operator")
    for _ in range(5):
        assert password_sign_in(client, "ops@tinh.gov.vn", "wrong password!").status_code == 401
    assert password_sign_in(client, "ops@tinh.gov.vn").status_code == 429
    with seeded.session_factory() as session:
        assert (
            repo.failed_sign_ins_since(
                session, since=seeded.clock() - timedelta(hours=1), email="ops@tinh.gov.vn"
            )
            == 5
        )


def test_totp_is_required_when_turned_on(
    app: Flask, client: FlaskClient, seeded: Runtime, clock: FakeClock
) -> None:
    result = add_user(app, "ops@tinh.gov.vn", "operator", totp=True)
    assert "otpauth://totp/" in result.output
    assert password_sign_in(client, "ops@tinh.gov.vn").status_code == 401
    with seeded.session_factory() as session:
        secret = repo.find_console_user(session, "ops@tinh.gov.vn").totp_secret  # type: ignore[union-attr]
    code = pyotp.TOTP(secret).at(clock())
    assert password_sign_in(client, "ops@tinh.gov.vn", totp=code).status_code == 302


def test_a_viewer_of_one_unit_sees_it_only_and_cannot_acknowledge(
    app: Flask, client: FlaskClient, signed_post: Post, seeded: Runtime
) -> None:
    add_user(app, "xem@phuong.gov.vn", "viewer", "HVT")
    register(signed_post)
    dispatch_alerts(seeded)
    password_sign_in(client, "xem@phuong.gov.vn")
    assert client.get("/console/units/BDH").status_code == 404
    page = client.get("/console/units/HVT/alerts?period=month&date=2026-03-14")
    assert "Chờ quá lâu" in page.text and 'class="ack"' not in page.text
    with seeded.session_factory() as session:
        alert_id = session.scalars(select(LeaderMessage.alert_id)).first()
    response = client.post(
        f"/console/units/HVT/alerts/{alert_id}/ack",
        data={"note": "x", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 403


def test_users_list_and_remove(app: Flask, seeded: Runtime) -> None:
    from bot.cli import cli

    add_user(app, "xem@phuong.gov.vn", "viewer", "HVT")
    runner = app.test_cli_runner()
    assert runner.invoke(cli, ["users", "list"]).output == "xem@phuong.gov.vn  viewer  HVT\n"
    assert runner.invoke(cli, ["users", "remove", "--email", "xem@phuong.gov.vn"]).exit_code == 0
    assert runner.invoke(cli, ["users", "list"]).output == ""
    short = app.test_cli_runner().invoke(
        cli,
        ["users", "add", "--email", "a@b.vn", "--role", "viewer", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code != 0 and "at least 12 characters" in str(short.exception)


def test_without_a_secret_key_the_console_is_closed(database_url: str, clock: FakeClock) -> None:
    from bot.web import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, console_secret_key=""), clock=clock)
    assert app.test_client().get("/console/login").status_code == 503


def test_old_sign_in_links_and_attempts_are_forgotten_by_the_job(
    client: FlaskClient, signed_post: Post, seeded: Runtime, clock: FakeClock
) -> None:
    register(signed_post)
    url = sign_in_link(signed_post, seeded)
    password_sign_in(client, "nobody@example.vn", "wrong password")
    clock.advance(days=6)
    fresh = sign_in_link(signed_post, seeded)
    forget_old_sign_ins(seeded)  # nothing is a week past yet
    with seeded.session_factory() as session:
        assert len(session.scalars(select(SignInLink)).all()) == 2
        assert len(session.scalars(select(SignInAttempt)).all()) == 1
    clock.advance(days=1, minutes=11)
    forget_old_sign_ins(seeded)
    with seeded.session_factory() as session:
        hashes = set(session.scalars(select(SignInLink.token_hash)))
        assert hashes == {token_hash(fresh.rsplit("t=", 1)[1])}
        assert session.scalars(select(SignInAttempt)).all() == []
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert client.get(path).status_code == 410  # a forgotten link: the same page as expired
    jobs = {job.id: job for job in build_scheduler(seeded).get_jobs()}
    assert jobs["forget_sign_ins"].func is forget_old_sign_ins
