"""Proof of presence through signed webhooks: rotating codes from a paired display, one-time
visit codes from the API and the CLI, a unit that requires a verified start; and the pairing
of devices (generic, by kind)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.cli.main import cli
from bot.config import Settings
from bot.runtime import Runtime
from storage.models import Device, SurveyResponse, Unit, VisitCode
from tests.conftest import FakeClock, make_settings
from tests.integrity_support import FIVE, Post, index, public_month, publish, say, surveys
from tests.test_integrity_limits import outbox


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, presence_secret="test-presence-secret")


def require_verified(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        session.scalars(select(Unit).where(Unit.code == "HVT")).one().require_verified = True


def cli_ok(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def pair_display(app: Flask, client: FlaskClient, counter: str = "HVT01") -> str:
    """Pair this test client as the counter's display; returns the page's code."""
    output = cli_ok(app, "devices", "add", "--counter", counter, "--kind", "display")
    link = re.search(r"https://\S+/devices/pair/(\S+)", output)
    assert link is not None
    paired = client.get(f"/devices/pair/{link.group(1)}")
    assert paired.status_code == 303 and paired.headers["Location"] == f"/counter/{counter}/display"
    return shown_code(client, counter)


def shown_code(client: FlaskClient, counter: str = "HVT01") -> str:
    page = client.get(f"/counter/{counter}/display")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and 'http-equiv="refresh"' in html
    found = re.search(r'<div class="code">#([A-Z0-9-]+)</div>', html)
    assert found is not None
    return found.group(1)


def api_key(app: Flask) -> str:
    return cli_ok(app, "units", "api-key", "HVT").strip()


def test_a_paired_display_shows_a_code_that_starts_a_verified_survey(
    app: Flask, client: FlaskClient, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    publish(runtime)
    require_verified(runtime)
    code = pair_display(app, client)
    assert code.startswith("HVT01-") and len(code) == len("HVT01-") + 5
    with runtime.session_factory() as session:
        device = session.scalars(select(Device)).one()
        assert device.kind == "display" and device.paired_at is not None
        assert code not in device.secret_hash
    say(signed_post, clock, "301", f"#{code.lower()}", *FIVE, "xong")
    (survey,) = surveys(runtime)
    assert (survey.start_method, survey.counted) == ("rotating", True)
    report = index(runtime, clock)
    assert (report.responses, report.verified_responses) == (1, 1)
    assert public_month(client).surveys == 1


def test_a_static_code_at_a_unit_that_requires_verified_presence_is_explained(
    signed_post: Post, runtime: Runtime, clock: FakeClock, client: FlaskClient
) -> None:
    publish(runtime)
    require_verified(runtime)
    # Guessing or copying the printed code, from anywhere, with several accounts.
    for user in ("401", "402", "403"):
        say(signed_post, clock, user, "#HVT02", *FIVE)
        assert "chỉ nhận đánh giá bằng mã" in outbox(runtime, user)[0]["text"]
    assert surveys(runtime) == []
    assert index(runtime, clock, include_repeats=True).responses == 0
    assert public_month(client).surveys == 0


def test_an_expired_or_guessed_rotating_code_starts_nothing(
    app: Flask, client: FlaskClient, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    require_verified(runtime)
    code = pair_display(app, client)
    clock.advance(minutes=6)  # valid for PRESENCE_CODE_VALID_STEPS (5) one-minute steps
    say(signed_post, clock, "501", f"#{code}")
    assert "hết hạn" in outbox(runtime, "501")[-1]["text"]
    guessed = code[:-4] + ("AAAA" if code[-4:] != "AAAA" else "BBBB")
    say(signed_post, clock, "502", f"#{guessed}")
    assert "Không tìm thấy" in outbox(runtime, "502")[-1]["text"]
    assert surveys(runtime) == []
    fresh = shown_code(client)
    assert fresh != code
    say(signed_post, clock, "501", f"#{fresh}")
    assert [s.start_method for s in surveys(runtime)] == ["rotating"]


def test_a_display_page_needs_its_paired_cookie(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    assert client.get("/counter/HVT01/display").status_code == 403
    pair_display(app, client)
    assert client.get("/counter/HVT02/display").status_code == 403  # another counter
    cli_ok(app, "devices", "revoke", "1")
    assert client.get("/counter/HVT01/display").status_code == 403
    assert "revoked" in cli_ok(app, "devices", "list")
    assert client.get("/devices/pair/not-a-secret").status_code == 404


def test_a_visit_code_from_the_api_starts_exactly_one_survey(
    app: Flask, client: FlaskClient, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    publish(runtime)
    require_verified(runtime)
    key = api_key(app)
    denied = client.post("/api/visits", json={"counter": "HVT01"})
    assert denied.status_code == 401
    wrong = client.post(
        "/api/visits", json={"counter": "HVT01"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    issued = client.post(
        "/api/visits",
        json={"counter": "HVT02", "count": 2},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert issued.status_code == 201
    first, second = (c["code"] for c in issued.get_json()["codes"])
    with runtime.session_factory() as session:
        stored = session.scalars(select(VisitCode.code_hash)).all()
        assert len(stored) == 2 and first not in stored
    say(signed_post, clock, "601", f"#{first}", *FIVE, "xong")
    # The same code again, from the same and from another account: used.
    say(signed_post, clock, "601", f"#{first}")
    say(signed_post, clock, "602", f"#{first}")
    assert "đã được dùng" in outbox(runtime, "602")[-1]["text"]
    say(signed_post, clock, "602", f"#{second.lower().replace('-', ' - ')}", *FIVE)
    assert [(s.start_method, s.counter_id) for s in surveys(runtime)] == [
        ("visit", surveys(runtime)[0].counter_id)
    ] * 2
    report = index(runtime, clock)
    assert report.verified_responses == report.responses == 1  # the second is still open


def test_visits_issue_prints_a_sheet_of_codes_that_work_once(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    output = cli_ok(app, "visits", "issue", "--counter", "HVT03", "--count", "3", "--format", "csv")
    rows = [line.split(",") for line in output.strip().splitlines()]
    assert rows[0] == ["counter", "code", "message", "expires"]
    codes = [row[1] for row in rows[1:]]
    assert len(set(codes)) == 3
    say(signed_post, clock, "701", f"#{codes[0]}")
    say(signed_post, clock, "702", f"#{codes[0]}")
    with runtime.session_factory() as session:
        methods = session.scalars(select(SurveyResponse.start_method)).all()
    assert methods == ["visit"]
    text = cli_ok(app, "visits", "issue", "--counter", "HVT03")
    assert "#" in text and "HVT03" not in text.split("#")[1][:3]


def test_an_unknown_counter_is_one_line_for_the_device_and_visit_commands(app: Flask) -> None:
    for args in (["devices", "add", "--counter", "NOPE"], ["visits", "issue", "--counter", "NOPE"]):
        result: Any = app.test_cli_runner().invoke(cli, args)
        assert result.exit_code != 0 and "NOPE" in str(result.exception)
