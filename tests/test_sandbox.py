"""Sandbox mode: the /sandbox chat box plays a citizen through the real webhook (signed, in
process), one thread per simulated user; the endpoints answer only in sandbox mode and only
to this machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.web import create_app, runtime_of
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
        sent = repo.user_outbox(session, "sandbox-an")
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
