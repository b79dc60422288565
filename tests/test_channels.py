"""The kiosk and the web link through Flask's test client: pairing, one-time survey tokens,
idempotent resubmission, the channel recorded, and the index counting every channel."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.cli.main import cli
from bot.errors import NoReplyChannel
from bot.runtime import Runtime
from storage.models import Answer, Case, CaseContact, CaseReply, SurveyResponse
from tests.conftest import FakeClock
from tests.integrity_support import index


def cli_ok(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def pair_kiosk(app: Flask, client: FlaskClient, counter: str = "HVT01") -> None:
    output = cli_ok(app, "devices", "add", "--counter", counter, "--kind", "kiosk")
    link = re.search(r"https://\S+/devices/pair/(\S+)", output)
    assert link is not None and "kiosk at counter" in output
    paired = client.get(f"/devices/pair/{link.group(1)}")
    assert paired.status_code == 303 and paired.headers["Location"] == f"/kiosk/{counter}"


def all_fives(form: dict[str, Any]) -> dict[str, Any]:
    """An answer to every item of the form: 5 for a level, the first option, a comment."""
    answers: dict[str, Any] = {}
    for item in form["items"]:
        if item["kind"] == "scale":
            answers[item["id"]] = {"value": 5}
        elif item["kind"] == "choice":
            answers[item["id"]] = {"value": 1}
        elif item["kind"] == "text":
            answers[item["id"]] = {"text": "Cán bộ nhiệt tình, gọi 0912345678"}
    return answers


def stored(runtime: Runtime) -> list[SurveyResponse]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(SurveyResponse).order_by(SurveyResponse.id)).all())


def test_the_kiosk_needs_a_paired_tablet(app: Flask, client: FlaskClient) -> None:
    page = client.get("/kiosk/HVT01")
    assert page.status_code == 403 and "devices add" in page.get_data(as_text=True)
    assert client.post("/kiosk/HVT01/open").status_code == 403
    pair_kiosk(app, client)
    page = client.get("/kiosk/HVT01")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Mời đánh giá" in html and "manifest.webmanifest" in html
    assert "http://" not in html.replace("http://127", "") and "https://" not in html
    # A display's cookie is not a kiosk's, nor is another counter's page open to it.
    assert client.get("/kiosk/HVT02").status_code == 403
    cli_ok(app, "devices", "revoke", "1")
    assert client.get("/kiosk/HVT01").status_code == 403


def test_a_kiosk_survey_is_stored_once_with_its_channel_and_counted(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    pair_kiosk(app, client)
    opened = client.post("/kiosk/HVT01/open")
    assert opened.status_code == 201
    form = opened.get_json()
    # A second tap before any answer hands out the same survey, not a second one.
    assert client.post("/kiosk/HVT01/open").get_json()["token"] == form["token"]
    body = {"token": form["token"], "answers": all_fives(form)}
    first = client.post("/kiosk/HVT01/surveys", json=body)
    assert first.status_code == 201 and first.get_json()["completed"] is True
    again = client.post("/kiosk/HVT01/surveys", json=body)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    surveys = stored(runtime)
    assert len(surveys) == 1
    survey = surveys[0]
    assert (survey.channel, survey.start_method, survey.status) == ("kiosk", "device", "completed")
    assert survey.counted and survey.device_id == 1
    with runtime.session_factory() as session:
        texts = session.scalars(select(Answer.text).where(Answer.text.is_not(None))).all()
    assert texts and all("0912345678" not in t for t in texts)
    report = index(runtime, clock)
    assert report.responses == 1 and report.overall.share == 100.0
    assert report.verified_responses == 1
    assert report.channels["kiosk"].responses == 1


def test_each_tap_opens_a_new_survey_with_its_own_respondent_and_the_tablet_is_limited(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    runtime.forms.kiosk_per_hour = 3
    pair_kiosk(app, client)
    for _ in range(3):
        form = client.post("/kiosk/HVT01/open").get_json()
        posted = client.post(
            "/kiosk/HVT01/surveys", json={"token": form["token"], "answers": all_fives(form)}
        )
        assert posted.status_code == 201
        clock.advance(seconds=30)
    refused = client.post("/kiosk/HVT01/open")
    assert refused.status_code == 429
    surveys = stored(runtime)
    assert len(surveys) == 3 and len({s.respondent_hash for s in surveys}) == 3
    assert all(s.counted for s in surveys)  # three visits, three citizens
    assert index(runtime, clock).responses == 3
    clock.advance(hours=1)
    assert client.post("/kiosk/HVT01/open").status_code == 201


def test_answers_sent_late_by_a_tablet_that_was_offline_are_kept(
    app: Flask, client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    pair_kiosk(app, client)
    form = client.post("/kiosk/HVT01/open").get_json()
    clock.advance(hours=2)  # the idle-survey job may have closed it meanwhile
    body = {"token": form["token"], "answers": all_fives(form)}
    assert client.post("/kiosk/HVT01/surveys", json=body).status_code == 201
    survey = stored(runtime)[0]
    assert survey.status == "completed" and survey.counted
    # After FORM_SUBMIT_HOURS an unknown or stale token stores nothing.
    other = client.post("/kiosk/HVT01/open").get_json()
    clock.advance(hours=25)
    late = {"token": other["token"], "answers": all_fives(other)}
    assert client.post("/kiosk/HVT01/surveys", json=late).status_code == 410
    forged = {"token": "not-a-token", "answers": {}}
    assert client.post("/kiosk/HVT01/surveys", json=forged).status_code == 404
    assert client.post("/kiosk/HVT01/surveys", data="x").status_code == 400


def test_answers_the_engine_refuses_end_the_survey_as_partial(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    pair_kiosk(app, client)
    form = client.post("/kiosk/HVT01/open").get_json()
    first, second = [item["id"] for item in form["items"] if item["kind"] == "scale"][:2]
    body = {"token": form["token"], "answers": {first: {"value": 4}, second: {"value": 9}}}
    assert client.post("/kiosk/HVT01/surveys", json=body).get_json()["completed"] is False
    survey = stored(runtime)[0]
    with runtime.session_factory() as session:
        kept = session.scalars(select(Answer.item_id).where(Answer.response_id == survey.id))
        assert list(kept) == [first]
    assert survey.status == "partial"


def test_the_web_link_stores_a_web_survey_and_follows_the_presence_rules(
    client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    landing = client.get("/s/HVT01")
    assert landing.status_code == 200 and "Bắt đầu đánh giá" in landing.get_data(as_text=True)
    assert client.get("/s/NOPE").status_code == 404
    started = client.post("/s/HVT01")
    assert started.status_code == 200
    config = re.search(
        r'<script id="web-config" type="application/json">(.*?)</script>',
        started.get_data(as_text=True),
        re.S,
    )
    assert config is not None
    form = json.loads(config.group(1))["form"]
    body = {"token": form["token"], "answers": all_fives(form)}
    assert client.post("/s/surveys", json=body).status_code == 201
    assert client.post("/s/surveys", json=body).status_code == 200
    survey = stored(runtime)[0]
    assert (survey.channel, survey.start_method, survey.counted) == ("web", "static", True)
    # Another browser cannot submit this browser's survey.
    other = runtime  # noqa: F841 - same app, fresh cookie jar below
    with client.application.test_client() as stranger:
        assert stranger.post("/s/surveys", json=body).status_code == 404
    # A unit that requires a verified start refuses a static code on the web too.
    from storage.models import Unit

    with runtime.session_factory.begin() as session:
        unit = session.scalars(select(Unit).where(Unit.code == "HVT")).one()
        # As every write to a unit does (upsert_units): a new `updated_at` tells the server
        # processes' caches of units and counters (bot/directory.py) to read it again.
        unit.require_verified, unit.updated_at = True, unit.updated_at + timedelta(seconds=1)
    refused = client.post("/s/HVT01")
    assert refused.status_code == 403
    assert index(runtime, clock).channels["web"].responses == 1


def form_cases(runtime: Runtime) -> list[Case]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(Case).order_by(Case.id)).all())


def test_kiosk_and_web_surveys_open_their_cases_once_and_answer_with_the_reference(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    pair_kiosk(app, client)
    # A kiosk survey with a comment: one case, its reference in the answer, every time.
    form = client.post("/kiosk/HVT01/open").get_json()
    body = {"token": form["token"], "answers": all_fives(form)}
    first = client.post("/kiosk/HVT01/surveys", json=body)
    reference = first.get_json()["reference"]
    assert first.status_code == 201 and re.fullmatch(r"PA-\d{4}-\d{6}", reference)
    again = client.post("/kiosk/HVT01/surveys", json=body)
    assert again.status_code == 200 and again.get_json()["reference"] == reference
    (case,) = form_cases(runtime)
    survey = stored(runtime)[0]
    assert (case.reference, case.source, case.response_id) == (reference, "comment", survey.id)
    assert (case.unit_id, case.counter_id) == (survey.unit_id, survey.counter_id)
    assert case.respondent_hash == survey.respondent_hash
    assert "0912345678" not in case.text and case.scores and set(case.scores.values()) == {5}
    with runtime.session_factory() as session:
        contact = session.get(CaseContact, case.id)
        assert contact is not None and contact.user_id is None  # no Zalo id to answer to
    # No comment and nothing rated low: no case, no reference.
    form = client.post("/kiosk/HVT01/open").get_json()
    quiet = {k: v for k, v in all_fives(form).items() if "text" not in v}
    plain = client.post("/kiosk/HVT01/surveys", json={"token": form["token"], "answers": quiet})
    assert plain.status_code == 201 and plain.get_json()["reference"] is None
    assert len(form_cases(runtime)) == 1

    # The web link: a counted low rating without a comment is a complaint of its own.
    started = client.post("/s/HVT01")
    config = re.search(
        r'<script id="web-config" type="application/json">(.*?)</script>', started.text, re.S
    )
    assert config is not None
    web = json.loads(config.group(1))["form"]
    answers = {k: v for k, v in all_fives(web).items() if "text" not in v}
    first_scale = next(item["id"] for item in web["items"] if item["kind"] == "scale")
    answers[first_scale] = {"value": 1}
    posted = client.post("/s/surveys", json={"token": web["token"], "answers": answers})
    web_reference = posted.get_json()["reference"]
    assert posted.status_code == 201 and web_reference not in (None, reference)
    resent = client.post("/s/surveys", json={"token": web["token"], "answers": answers})
    assert resent.status_code == 200 and resent.get_json()["reference"] == web_reference
    cases = form_cases(runtime)
    assert [c.reference for c in cases] == [reference, web_reference]
    low = cases[1]
    assert (low.source, low.kind) == ("low_rating", "phan_anh")
    assert low.scores is not None and low.scores[first_scale] == 1
    assert f"{first_scale} = 1" in low.text
    # Their citizens have no Zalo conversation: a reply is refused in one line.
    result = app.test_cli_runner().invoke(
        cli, ["cases", "reply", web_reference, "--text", "Cảm ơn Ông/Bà"]
    )
    assert isinstance(result.exception, NoReplyChannel)  # one line from main(), no traceback
    line = str(result.exception)
    assert "\n" not in line
    assert line.startswith(f"case {web_reference} came from the web link: no channel to reply")
    with runtime.session_factory() as session:
        assert session.scalars(select(CaseReply)).all() == []
