"""Officers and their shifts (docs/channels.md, "Who served the citizen"): the units file,
signing in on the tablet, in the console and through the API, and the officer a survey
records on every channel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.runtime import Runtime
from bot.units import read_units_file
from storage import repositories as repo
from storage.models import Officer, Shift, SurveyResponse
from survey_flow.sourcefile import FileProblems
from tests.conftest import FakeClock
from tests.integrity_support import FIVE, Post, say, surveys
from tests.test_channels import all_fives, cli_ok, pair_kiosk


def officer_of(runtime: Runtime, survey: SurveyResponse) -> str | None:
    if survey.officer_id is None:
        return None
    with runtime.session_factory() as session:
        return session.get(Officer, survey.officer_id).code  # type: ignore[union-attr]


def kiosk_survey(client: FlaskClient) -> None:
    form = client.post("/kiosk/HVT01/open").get_json()
    body = {"token": form["token"], "answers": all_fives(form)}
    assert client.post("/kiosk/HVT01/surveys", json=body).status_code == 201


def web_survey(client: FlaskClient, counter: str = "HVT01") -> None:
    started = client.post(f"/s/{counter}")
    assert started.status_code == 200
    config = re.search(
        r'<script id="web-config" type="application/json">(.*?)</script>', started.text, re.S
    )
    assert config is not None
    form = json.loads(config.group(1))["form"]
    body = {"token": form["token"], "answers": all_fives(form)}
    assert client.post("/s/surveys", json=body).status_code == 201


def sign_in_on_kiosk(client: FlaskClient, officer: str) -> None:
    response = client.post("/kiosk/HVT01/officer", data={"officer": officer})
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk/HVT01"


def api_key(app: Flask) -> str:
    return cli_ok(app, "units", "api-key", "HVT").strip()


# --- the units file ------------------------------------------------------------------------


def write_units(tmp_path: Path, officers: str) -> Path:
    path = tmp_path / "units.yaml"
    path.write_text(
        "units:\n  - code: HVT\n    name: Phường\n    counters:\n"
        "      - code: HVT01\n        name: Quầy 1\n" + officers,
        "utf-8",
    )
    return path


def test_the_units_file_lists_officers_and_refuses_mistakes(tmp_path: Path) -> None:
    good = write_units(
        tmp_path, "    officers:\n      - code: cb01\n        name: ' Nguyễn Văn An '\n"
    )
    (unit,) = read_units_file(good)
    assert [(o.code, o.name) for o in unit.officers] == [("CB01", "Nguyễn Văn An")]
    bad = write_units(
        tmp_path,
        "    officers:\n      - code: CB01\n        nmae: A\n"
        "      - code: CB01\n        name: B\n      - code: 'x y'\n        name: C\n",
    )
    try:
        read_units_file(bad)
    except FileProblems as exc:
        problems = str(exc)
    else:
        raise AssertionError("a bad officers list was accepted")
    assert "unit HVT: officer CB01: unknown key `nmae` (did you mean `name`?)" in problems
    assert "unit HVT: officer CB01: name is missing" in problems
    assert "officer code CB01 is used twice" in problems
    assert "officer code x y: use 1–32 letters" in problems


def test_units_import_stores_officers_and_retires_those_no_longer_listed(
    app: Flask, runtime: Runtime, tmp_path: Path
) -> None:
    with runtime.session_factory() as session:
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        assert [o.code for o in repo.unit_officers(session, unit.id)] == ["CB01", "CB02"]
    changed = write_units(
        tmp_path, "    officers:\n      - code: CB01\n        name: Nguyễn Văn An (mới)\n"
    )
    output = cli_ok(app, "units", "import", str(changed))
    assert "officer HVT/CB01: updated" in output
    assert "officer HVT/CB02: no longer listed" in output
    with runtime.session_factory() as session:
        officers = repo.unit_officers(session, unit.id, active_only=False)
        assert [(o.code, o.name, o.active) for o in officers] == [
            ("CB01", "Nguyễn Văn An (mới)", True),
            ("CB02", "Trần Thị Bình", False),
        ]
    assert "; no change(s)" in cli_ok(app, "units", "import", str(changed))
    report = cli_ok(app, "privacy", "report")
    assert "officers (staff's code and name; 0 shift(s) at counters): 2 row(s)" in report


# --- shifts and the officer on every channel -----------------------------------------------


def test_a_survey_on_each_channel_during_a_shift_records_the_officer(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock, signed_post: Post
) -> None:
    pair_kiosk(app, client)
    page = client.get("/kiosk/HVT01")
    assert 'id="kiosk-officer-select"' in page.text and "Trần Thị Bình" in page.text
    sign_in_on_kiosk(client, "CB02")
    assert 'value="CB02" selected' in client.get("/kiosk/HVT01").text
    kiosk_survey(client)
    web_survey(app.test_client())
    say(signed_post, clock, "246845883529197922", "#HVT01", *FIVE)
    # Another counter of the unit has no shift: its survey names nobody.
    say(signed_post, clock, "246845883529197923", "#HVT02", *FIVE)
    stored = surveys(runtime)
    assert [(s.channel, s.counter_id, officer_of(runtime, s)) for s in stored] == [
        ("kiosk", 1, "CB02"),
        ("web", 1, "CB02"),
        ("zalo", 1, "CB02"),
        ("zalo", 2, None),
    ]


def test_after_the_shift_ends_surveys_record_no_officer(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock, signed_post: Post
) -> None:
    pair_kiosk(app, client)
    sign_in_on_kiosk(client, "CB01")
    sign_in_on_kiosk(client, "")  # "— chưa vào ca —": the shift ends
    kiosk_survey(client)
    sign_in_on_kiosk(client, "CB01")
    clock.advance(hours=1)
    # At the end of the unit's day (midnight in Asia/Ho_Chi_Minh, 17:00 UTC) it ends anyway.
    clock.now = clock.now.replace(hour=17, minute=0, second=1)
    say(signed_post, clock, "246845883529197922", "#HVT01", *FIVE)
    assert [officer_of(runtime, s) for s in surveys(runtime)] == [None, None]
    assert client.post("/kiosk/HVT01/officer", data={"officer": "NOPE"}).status_code == 404
    with app.test_client() as unpaired:
        assert unpaired.post("/kiosk/HVT01/officer", data={"officer": "CB01"}).status_code == 403


def test_the_one_stop_system_starts_and_ends_shifts_through_the_api(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock, signed_post: Post
) -> None:
    key = api_key(app)
    auth = {"Authorization": f"Bearer {key}"}
    assert (
        client.post("/api/shifts", json={"counter": "HVT01", "officer": "CB01"}).status_code == 401
    )
    started = client.post("/api/shifts", json={"counter": "HVT01", "officer": "cb01"}, headers=auth)
    assert started.status_code == 201 and started.get_json()["officer"] == "CB01"
    assert started.get_json()["ends_at"] == "2026-03-15T00:00:00+07:00"
    # A new shift at the counter ends the one before.
    clock.advance(minutes=30)
    assert (
        client.post(
            "/api/shifts", json={"counter": "HVT01", "officer": "CB02"}, headers=auth
        ).status_code
        == 201
    )
    say(signed_post, clock, "246845883529197922", "#HVT01", *FIVE)
    ended = client.post("/api/shifts", json={"counter": "HVT01", "officer": None}, headers=auth)
    assert ended.status_code == 200 and ended.get_json()["ended"] is True
    say(signed_post, clock, "246845883529197923", "#HVT01", *FIVE)
    assert [officer_of(runtime, s) for s in surveys(runtime)] == ["CB02", None]
    with runtime.session_factory() as session:
        shifts = session.scalars(select(Shift).order_by(Shift.id)).all()
        assert [(s.opened_via, s.ended_at is not None) for s in shifts] == [
            ("api", True),
            ("api", True),
        ]
        assert shifts[0].ended_at == shifts[1].started_at
    for body, status in (
        ({"counter": "HVT01", "officer": "NOPE"}, 404),
        ({"counter": "NOPE", "officer": "CB01"}, 404),
        ({"counter": "HVT01", "officer": 7}, 400),
        ({"officer": "CB01"}, 400),
    ):
        assert client.post("/api/shifts", json=body, headers=auth).status_code == status


def test_a_unit_without_officers_has_no_officer_control_on_its_tablet(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    from tests.test_leaders import add_unit

    add_unit(runtime, clock, "BDH", "7000-BDH-KQ2M-X9TP")
    pair_kiosk(app, client, "BDH01")
    page = client.get("/kiosk/BDH01")
    assert page.status_code == 200 and "kiosk-officer" not in page.text
    # HVT's officers cannot sign in at another unit's counter.
    assert client.post("/kiosk/BDH01/officer", data={"officer": "CB01"}).status_code == 404


def test_signing_in_at_another_counter_ends_the_shift_at_the_first(
    runtime: Runtime, clock: FakeClock
) -> None:
    """One person serves at one counter at a time: CB01 moving from HVT01 to HVT02 leaves
    HVT01 with no one on shift (its surveys must not record CB01), and CB02 taking HVT02
    over ends CB01's shift there."""
    from bot.conversation.shifts import sign_in
    from storage.models import ShiftSource

    def on_shift(code: str) -> str | None:
        with runtime.session_factory() as session:
            counter = repo.find_counter(session, code)
            assert counter is not None
            shift = repo.current_shift(session, counter.id, now=clock.now)
            return None if shift is None else shift.officer.code

    def start(counter_code: str, officer: str) -> None:
        with runtime.session_factory.begin() as session:
            counter = repo.find_counter(session, counter_code)
            assert counter is not None
            started = sign_in(
                session,
                counter,
                officer,
                via=ShiftSource.CONSOLE,
                now=clock.now,
                default_zone=runtime.settings.tz,
            )
            assert started is not None
        clock.advance(minutes=5)

    start("HVT01", "CB01")
    assert (on_shift("HVT01"), on_shift("HVT02")) == ("CB01", None)
    start("HVT02", "CB01")
    assert (on_shift("HVT01"), on_shift("HVT02")) == (None, "CB01")
    start("HVT02", "CB02")
    assert (on_shift("HVT01"), on_shift("HVT02")) == (None, "CB02")
    with runtime.session_factory() as session:
        shifts = session.scalars(select(Shift).order_by(Shift.started_at)).all()
        assert [(s.officer.code, s.ended_at > s.started_at) for s in shifts] == [
            ("CB01", True),
            ("CB01", True),
            ("CB02", True),
        ]
