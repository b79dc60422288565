"""Sandbox mode: the /sandbox chat box plays a citizen through the real webhook (signed, in
process), one thread per simulated user; the endpoints answer only in sandbox mode and only
to this machine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
import responses
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.cli import cli
from bot.errors import NotReady
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from bot.web.sandbox.citizen import user_id_for
from storage import migrate
from storage import repositories as repo
from storage.models import ProcessedEvent, SurveyResponse
from tests.conftest import EXAMPLE_UNITS, FakeClock, make_settings


@pytest.fixture
def sandbox_app(database_url: str, clock: FakeClock) -> Iterator[Flask]:
    from bot.units import read_units_file

    app = create_app(make_settings(database_url, zalo_sandbox=True), clock=clock)
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    with runtime.session_factory.begin() as session:
        repo.upsert_units(session, read_units_file(EXAMPLE_UNITS), now=clock())
    yield app
    runtime.engine.dispose()


def say(client: FlaskClient, user: str, text: str) -> None:
    response = client.post("/sandbox/say", data={"user": user, "text": text})
    assert response.status_code == 303, response.get_data(as_text=True)


def thread_of(html: str, name: str) -> str:
    """The HTML of one user's thread on the page."""
    start = html.index(f'<a href="?user={name}#chat">{name}</a>')
    end = html.find('<section class="card thread', start)
    return html[start : end if end != -1 else len(html)]


def test_the_chat_box_goes_through_the_webhook_and_starts_a_survey(
    sandbox_app: Flask, clock: FakeClock
) -> None:
    client = sandbox_app.test_client()
    runtime: Runtime = runtime_of(sandbox_app)
    say(client, "an", "#hvt01")
    clock.advance(seconds=5)
    say(client, "an", "5")
    with runtime.session_factory() as session:
        # Each line was a webhook delivery, recorded like Zalo's, and the survey is open.
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 2
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
        sent = repo.user_outbox(session, user_id_for("an"))
    texts = [m.body["text"] for m in sent]
    assert "Câu 2/6" in texts[-1] and any("Câu 1/6" in t for t in texts[:-1])
    html = client.get("/sandbox?user=an").get_data(as_text=True)
    thread = thread_of(html, "an")
    # The conversation in order: what was typed, then the bot's answer.
    assert thread.index("#hvt01") < thread.index("Câu 1/6") < thread.index(">5<")
    assert thread.index(">5<") < thread.index("Câu 2/6")
    assert '<button class="chip" name="text" value=' in thread  # buttons can be tapped


def test_each_simulated_user_has_a_thread_of_their_own(sandbox_app: Flask) -> None:
    client = sandbox_app.test_client()
    say(client, "an", "#HVT01")
    say(client, "binh", "#HVT02")
    html = client.get("/sandbox").get_data(as_text=True)
    an, binh = thread_of(html, "an"), thread_of(html, "binh")
    assert "Quầy 1 – Tư pháp, hộ tịch" in an and "Quầy 2" not in an
    assert "Quầy 2 – Địa chính, xây dựng" in binh and "Quầy 1" not in binh


def test_the_messages_json_lists_one_users_replies_after_an_id(sandbox_app: Flask) -> None:
    client = sandbox_app.test_client()
    say(client, "an", "#HVT01")
    first = client.get("/sandbox/messages.json?user=an").get_json()
    assert first["user"] == "an"
    assert first["messages"] and "Câu 1/6" in first["messages"][-1]["text"]
    last = first["messages"][-1]["id"]
    say(client, "binh", "#HVT02")
    assert client.get(f"/sandbox/messages.json?user=an&after={last}").get_json()["messages"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/sandbox"), ("POST", "/sandbox/say"), ("GET", "/sandbox/messages.json")],
)
def test_the_sandbox_answers_only_this_machine(sandbox_app: Flask, method: str, path: str) -> None:
    client = sandbox_app.test_client()
    remote = client.open(path, method=method, environ_base={"REMOTE_ADDR": "192.168.1.20"})
    assert remote.status_code == 403
    local6 = client.open(path, method=method, environ_base={"REMOTE_ADDR": "::1"})
    assert local6.status_code in (200, 303)


@pytest.mark.parametrize("path", ["/sandbox", "/sandbox/messages.json"])
def test_the_sandbox_is_forbidden_outside_sandbox_mode(app: Flask, path: str) -> None:
    assert app.test_client().get(path).status_code == 403
    response = app.test_client().post("/sandbox/say", data={"user": "an", "text": "#HVT01"})
    assert response.status_code == 403
    with runtime_of(app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0


def test_a_name_is_cleaned_to_a_safe_user_id(sandbox_app: Flask) -> None:
    client = sandbox_app.test_client()
    say(client, "  Chị <b>Lan</b>!! ", "#HVT01")
    data = client.get("/sandbox/messages.json?user=chi-b-lan-b").get_json()
    assert data["user"] == "chi-b-lan-b" and data["messages"]


# --- sipas-bot simulate: over HTTP to a running server (here: the app, through `responses`) ---

BASE = "https://sipas.example.vn"


def route_to(mock: responses.RequestsMock, app: Flask) -> None:
    """Every request to BASE is answered by `app` in-process, as its server would."""
    client = app.test_client()

    def forward(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(request.url or "")
        response = client.open(
            url.path,
            method=request.method or "GET",
            query_string=url.query,
            data=request.body,
            headers=dict(request.headers),
        )
        return response.status_code, {"Content-Type": response.content_type}, response.data

    for method in ("GET", "POST"):
        mock.add_callback(method, re.compile(re.escape(BASE) + r"/.*"), callback=forward)


def simulate(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(cli, ["simulate", "--url", BASE, *args], input=input)


def test_simulate_plays_a_scripted_citizen_through_the_webhook(sandbox_app: Flask) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        route_to(mock, sandbox_app)
        result = simulate(sandbox_app, "--counter", "hvt01", "--user", "An", "--say", "5")
        webhook_calls = [c for c in mock.calls if c.request.url == f"{BASE}/zalo/webhook"]
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("an> #HVT01") < out.index("Câu 1/6") < out.index("an> 5")
    assert out.index("an> 5") < out.index("Câu 2/6")
    assert "[Rất hài lòng]" in out
    assert len(webhook_calls) == 2
    with runtime_of(sandbox_app).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_simulate_reads_lines_until_quit_and_shows_only_this_conversation(
    sandbox_app: Flask,
) -> None:
    say(sandbox_app.test_client(), "an", "#HVT02")  # an earlier conversation of the same user
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        route_to(mock, sandbox_app)
        result = simulate(sandbox_app, "--counter", "HVT01", "--user", "an", input="5\n/quit\n4\n")
    assert result.exit_code == 0, result.output
    assert "Quầy 2" not in result.stdout
    assert "Câu 2/6" in result.stdout and "Câu 3/6" not in result.stdout


def test_simulate_against_a_server_not_in_sandbox_mode_is_one_line(app: Flask) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        route_to(mock, app)
        result = simulate(app, "--counter", "HVT01", "--say", "5")
    assert isinstance(result.exception, NotReady)
    assert "ZALO_SANDBOX=1" in str(result.exception)


def test_simulate_without_a_server_says_so(sandbox_app: Flask) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(re.compile(".*"), body=requests.ConnectionError("refused"))
        result = sandbox_app.test_cli_runner().invoke(
            cli, ["simulate", "--counter", "HVT01"], env={"PORT": "8999"}
        )
    assert isinstance(result.exception, NotReady)
    assert "cannot reach http://127.0.0.1:8999" in str(result.exception)  # PORT by default
    assert "sipas-bot serve" in str(result.exception)
