"""What every response carries, who sees /sandbox, and what /healthz reports (issue 12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text, update

from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from bot.web.hardening import SECURITY_HEADERS
from storage import migrate
from storage import repositories as repo
from storage.models import OutboxMessage
from tests.conftest import FakeClock, make_settings, text_event

Post = Any


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/q/HVT01", 200),
        ("GET", "/q/ZZ99", 404),
        ("GET", "/q/%00", 404),
        ("GET", "/u/HVT/results", 404),
        ("GET", "/static/site.css", 200),
        ("GET", "/sandbox", 403),
        ("POST", "/zalo/webhook", 401),
        ("GET", "/zalo/webhook", 405),
    ],
)
def test_every_response_carries_the_security_headers(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_pages_need_nothing_inline_the_policy_would_block(client: FlaskClient) -> None:
    """default-src 'self' blocks inline <style>, <script> and style="…": the pages use files."""
    html = client.get("/q/HVT01").get_data(as_text=True)
    assert "<style" not in html and "style=" not in html
    assert "<script>" not in html and '<script src="/static/landing.js">' in html
    assert 'href="/static/site.css"' in html
    assert client.get("/static/landing.js").status_code == 200


def test_no_page_outside_the_console_has_an_inline_style_or_script() -> None:
    """Under hardening's policy (the console sets its own, allowing inline style) an inline
    <style> or <script> is refused by the browser: the sandbox's and the display's looked
    unstyled and the web link's asked nothing until they became files. A JSON data block
    (<script type="application/json">) is not run, and is allowed."""
    web = Path(__file__).resolve().parent.parent / "bot" / "web"
    pages = [p for p in web.rglob("*.html") if "console" not in p.relative_to(web).parts]
    assert len(pages) > 10
    for page in pages:
        html = page.read_text("utf-8")
        scripts = re.findall(r"<script(?![^>]*\b(?:src|type=\"application/json\"))[^>]*>", html)
        assert "<style" not in html and " style=" not in html and not scripts, page


# --- /sandbox ------------------------------------------------------------------------------


def sandbox_app(database_url: str, clock: FakeClock, **settings: Any) -> Flask:
    app = create_app(make_settings(database_url, zalo_sandbox=True, **settings), clock=clock)
    migrate.upgrade(runtime_of(app).engine)
    return app


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for app in made:
        runtime_of(app).engine.dispose()


@pytest.mark.parametrize(
    ("remote", "forwarded", "status"),
    [
        ("127.0.0.1", None, 200),
        ("::1", None, 200),
        ("10.0.0.5", None, 403),
        ("203.0.113.9", None, 403),
        ("127.0.0.1", "203.0.113.9", 403),  # through a local reverse proxy, from outside
        ("127.0.0.1", "127.0.0.1", 200),
    ],
)
def test_sandbox_is_shown_only_to_this_machine(
    database_url: str,
    clock: FakeClock,
    apps: list[Flask],
    remote: str,
    forwarded: str | None,
    status: int,
) -> None:
    app = sandbox_app(database_url, clock)
    apps.append(app)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = app.test_client().get(
        "/sandbox", environ_base={"REMOTE_ADDR": remote}, headers=headers
    )
    assert response.status_code == status


def test_sandbox_hosts_are_a_setting(
    database_url: str, clock: FakeClock, apps: list[Flask]
) -> None:
    app = sandbox_app(database_url, clock, sandbox_allowed_hosts="10.0.0.5, 127.0.0.1")
    apps.append(app)
    get = app.test_client().get
    assert get("/sandbox", environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 200
    assert get("/sandbox", environ_base={"REMOTE_ADDR": "10.0.0.6"}).status_code == 403


def test_sandbox_is_never_shown_outside_sandbox_mode(client: FlaskClient) -> None:
    assert client.get("/sandbox", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403


# --- /healthz ------------------------------------------------------------------------------


def read_only(runtime: Runtime) -> None:
    """Every new connection refuses writes, as a full disk or a read-only replica would."""
    statement = (
        "PRAGMA query_only = ON"
        if runtime.engine.dialect.name == "sqlite"
        else "SET default_transaction_read_only = on"
    )

    @event.listens_for(runtime.engine, "connect")
    def _read_only(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute(statement)
        cursor.close()
        connection.commit()  # a SET rolled back with its transaction would not hold

    runtime.engine.dispose()


def test_healthz_is_503_with_a_reason_when_the_database_takes_no_writes(
    client: FlaskClient, runtime: Runtime, signed_post: Post
) -> None:
    read_only(runtime)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["reason"]
    # and a webhook would indeed fail
    assert signed_post(text_event("#HVT01")).status_code == 500


def test_healthz_leaves_nothing_behind(client: FlaskClient, runtime: Runtime) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200  # the probe's key was not kept
    with runtime.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM processed_events")).scalar() == 0


def test_healthz_reports_an_outbox_backlog(
    client: FlaskClient, runtime: Runtime, clock: FakeClock, signed_post: Post
) -> None:
    assert signed_post(text_event("#HVT01")).status_code == 200
    clock.advance(seconds=30)
    body = client.get("/healthz").get_json()
    assert (body["status"], body["outbox"]["oldest_due_seconds"]) == ("ok", 30)
    clock.advance(minutes=10)
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200  # events are still stored: degraded, not down
    assert body["status"] == "degraded"
    assert body["outbox"]["oldest_due_seconds"] == 630
    assert any("outbox" in problem for problem in body["problems"])


def test_a_message_waiting_for_its_retry_is_not_a_backlog(
    client: FlaskClient, runtime: Runtime, clock: FakeClock
) -> None:
    with runtime.session_factory.begin() as session:
        repo.enqueue_replies(session, "1", [{"text": "x"}], now=clock() - timedelta(hours=1))
        session.execute(
            update(OutboxMessage).values(next_attempt_at=clock() + timedelta(minutes=10))
        )
    body = client.get("/healthz").get_json()
    assert (body["status"], body["outbox"]["pending"], body["outbox"]["oldest_due_seconds"]) == (
        "ok",
        1,
        0,
    )
