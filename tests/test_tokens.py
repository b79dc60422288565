"""The OA token pair: kept in the database, refreshed once at a time, never lost."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
import responses
from sqlalchemy import event

from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage import migrate
from storage.models import OutboxMessage, ZaloToken
from tests.conftest import API_BASE, OAUTH_BASE, make_settings, text_event, zalo_success
from zalo_client import ZaloOAuthError

REFRESH_URL = f"{OAUTH_BASE}/v4/oa/access_token"
SEND_URL = f"{API_BASE}/v3.0/oa/message/cs"


def stored_pair(runtime: Runtime) -> tuple[str, str]:
    with runtime.session_factory() as session:
        row = session.get(ZaloToken, 1)
        assert row is not None
        return row.access_token, row.refresh_token


def test_the_env_pair_seeds_the_database_once(runtime: Runtime) -> None:
    assert runtime.tokens is not None
    assert runtime.tokens.access_token() == "access-token-1"
    runtime.tokens.set_pair("access-2", "refresh-2", expires_in=90000)
    # The env still says access-token-1, but the database now rules.
    assert runtime.tokens.access_token() == "access-2"
    assert stored_pair(runtime) == ("access-2", "refresh-2")


def test_a_refresh_stores_the_new_pair_and_its_expiry(runtime: Runtime, clock: Any) -> None:
    assert runtime.tokens is not None
    with responses.RequestsMock() as mock:
        mock.post(
            REFRESH_URL,
            json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": "90000"},
        )
        assert runtime.tokens.refresh(force=True) == "access-2"
        sent = parse_qs(mock.calls[0].request.body)
        assert sent["refresh_token"] == ["refresh-token-1"]
        assert mock.calls[0].request.headers["secret_key"] == "test-app-secret"
    assert stored_pair(runtime) == ("access-2", "refresh-2")
    status = runtime.tokens.status()
    assert status.access_expires_at is not None
    assert (status.access_expires_at - clock()).total_seconds() == 90000
    assert not status.failing


def test_an_oauth_error_with_http_200_never_overwrites_the_pair(
    runtime: Runtime, client: Any
) -> None:
    assert runtime.tokens is not None
    with responses.RequestsMock() as mock:
        mock.post(
            REFRESH_URL,
            json={"error_name": "invalid_grant", "error_description": "refresh token expired"},
        )
        with pytest.raises(ZaloOAuthError):
            runtime.tokens.refresh(force=True)
    assert stored_pair(runtime) == ("access-token-1", "refresh-token-1")
    assert runtime.tokens.status().failing
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded"
    assert "refresh failed" in health["problems"][0]


def test_proactive_refresh_waits_until_the_token_is_due(runtime: Runtime, clock: Any) -> None:
    assert runtime.tokens is not None
    runtime.tokens.set_pair("access-2", "refresh-2", expires_in=25 * 3600)
    with responses.RequestsMock() as mock:
        mock.post(
            REFRESH_URL,
            json={"access_token": "access-3", "refresh_token": "refresh-3", "expires_in": "90000"},
        )
        clock.advance(hours=19)
        assert runtime.tokens.refresh() == "access-2"
        assert len(mock.calls) == 0
        clock.advance(hours=1, minutes=1)
        assert runtime.tokens.refresh() == "access-3"
        assert len(mock.calls) == 1


def test_a_token_expired_mid_survey_is_refreshed_once_and_the_survey_completes(
    runtime: Runtime, signed_post: Any
) -> None:
    """-216 on a send: one refresh, the same message is sent again with the new token."""
    sender = runtime.sender()
    with responses.RequestsMock() as mock:
        tokens_seen: list[str] = []

        def send(request: Any) -> tuple[int, dict[str, str], str]:
            tokens_seen.append(request.headers["access_token"])
            if request.headers["access_token"] == "access-token-1" and len(tokens_seen) > 2:
                return 200, {}, json.dumps({"error": -216, "message": "Access token is invalid"})
            return 200, {}, json.dumps(zalo_success())

        mock.add_callback(responses.POST, SEND_URL, callback=send)
        mock.post(
            REFRESH_URL,
            json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": "90000"},
        )
        for text in ["#HVT01", "5", "4", "5", "4", "5", "bỏ qua"]:
            assert signed_post(text_event(text)).status_code == 200
            sender.drain()
        refreshes = [c for c in mock.calls if c.request.url == REFRESH_URL]
    assert len(refreshes) == 1
    assert tokens_seen[:2] == ["access-token-1", "access-token-1"]
    assert set(tokens_seen[3:]) == {"access-2"}
    from storage.models import SurveyResponse

    with runtime.session_factory() as session:
        assert {m.status for m in session.query(OutboxMessage)} == {"sent"}
        assert session.query(SurveyResponse).one().status == "completed"


class _SlowOAuth(BaseHTTPRequestHandler):
    """An OAuth endpoint that takes its time, so that racing refreshes overlap."""

    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = parse_qs(self.rfile.read(length).decode())
        type(self).calls.append(form["refresh_token"][0])
        time.sleep(0.5)
        n = len(type(self).calls)
        body = json.dumps(
            {
                "access_token": f"access-new-{n}",
                "refresh_token": f"refresh-new-{n}",
                "expires_in": "90000",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_oauth() -> Iterator[tuple[str, list[str]]]:
    _SlowOAuth.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowOAuth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _SlowOAuth.calls
    server.shutdown()


def _refresh_in_a_process(database_url: str, oauth_base: str, queue: Any) -> None:
    runtime = runtime_of(create_app(make_settings(database_url, zalo_oauth_base=oauth_base)))
    assert runtime.tokens is not None
    queue.put(runtime.tokens.refresh(failed_token="access-token-1"))


def test_two_processes_racing_spend_the_refresh_token_once(
    database_url: str, slow_oauth: tuple[str, list[str]]
) -> None:
    oauth_base, calls = slow_oauth
    app = create_app(make_settings(database_url, zalo_oauth_base=oauth_base))
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    assert runtime.tokens is not None and runtime.tokens.access_token() == "access-token-1"
    runtime.engine.dispose()

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_refresh_in_a_process, args=(database_url, oauth_base, queue))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    results = sorted(queue.get(timeout=5) for _ in processes)
    assert calls == ["refresh-token-1"]  # one call reached the OAuth server
    assert results == ["access-new-1", "access-new-1"]  # both go on with the new token
    assert stored_pair(runtime) == ("access-new-1", "refresh-new-1")


def test_two_threads_racing_spend_the_refresh_token_once(
    runtime: Runtime, slow_oauth: tuple[str, list[str]]
) -> None:
    oauth_base, calls = slow_oauth
    assert runtime.tokens is not None
    runtime.tokens.client._oauth_base = oauth_base  # the same store, pointed at the slow server
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(runtime.tokens.refresh(failed_token="access-token-1"))
        )  # type: ignore[union-attr]
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert calls == ["refresh-token-1"]
    assert results == ["access-new-1"] * 3


# --- the token as the sender's threads read it -----------------------------------------------


def test_the_access_token_is_read_from_the_database_at_most_every_thirty_seconds(
    runtime: Runtime,
) -> None:
    assert runtime.tokens is not None
    now = [1000.0]
    runtime.tokens.monotonic = lambda: now[0]
    assert runtime.tokens.access_token() == "access-token-1"
    with runtime.session_factory.begin() as session:  # another process renews the pair
        row = session.get(ZaloToken, 1)
        assert row is not None
        row.access_token = "access-from-elsewhere"
    now[0] += 29
    assert runtime.tokens.access_token() == "access-token-1"  # kept, not read per message
    now[0] += 2
    assert runtime.tokens.access_token() == "access-from-elsewhere"


def test_a_burst_of_refused_tokens_costs_one_refresh_and_every_message_goes_out(
    runtime: Runtime, signed_post: Any
) -> None:
    """Eight threads get -216 at once: one OAuth call, one database transaction at a time,
    and every retry carries the new token (the refused one is not served from the cache)."""
    users = [f"81000000000000{n:04d}" for n in range(8)]
    for user in users:
        signed_post(text_event("#HVT01", user_id=user))
    in_use, most = [0], [0]

    def checkout(*_args: Any) -> None:
        in_use[0] += 1
        most[0] = max(most[0], in_use[0])

    def checkin(*_args: Any) -> None:
        in_use[0] -= 1

    sender = runtime.sender(concurrency=8)
    with responses.RequestsMock() as mock:
        tokens_seen: list[str] = []

        def send(request: Any) -> tuple[int, dict[str, str], str]:
            tokens_seen.append(request.headers["access_token"])
            if request.headers["access_token"] == "access-token-1":
                return 200, {}, json.dumps({"error": -216, "message": "Access token is invalid"})
            return 200, {}, json.dumps(zalo_success())

        mock.add_callback(responses.POST, SEND_URL, callback=send)
        mock.post(
            REFRESH_URL,
            json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": "90000"},
        )
        event.listen(runtime.engine, "checkout", checkout)
        event.listen(runtime.engine, "checkin", checkin)
        assert sender.run_once() == len(users)  # each user's first message
        event.remove(runtime.engine, "checkout", checkout)
        event.remove(runtime.engine, "checkin", checkin)
        refreshes = [c for c in mock.calls if c.request.url == REFRESH_URL]
    sender.close()
    assert len(refreshes) == 1
    with runtime.session_factory() as session:
        sent = session.query(OutboxMessage).filter(OutboxMessage.status == "sent").count()
    assert sent == len(users)
    # the sending threads share one connection for the token, in turn, and never while the
    # sender's own transactions run
    assert most[0] == 1
    assert tokens_seen.count("access-2") == len(users)
    assert stored_pair(runtime) == ("access-2", "refresh-2")


def test_a_pair_renewed_by_another_process_is_used_without_spending_the_refresh_token(
    runtime: Runtime, signed_post: Any
) -> None:
    assert runtime.tokens is not None
    signed_post(text_event("#HVT01"))
    assert runtime.tokens.access_token() == "access-token-1"  # now in this process's cache
    with runtime.session_factory.begin() as session:  # another process renewed the pair
        row = session.get(ZaloToken, 1)
        assert row is not None
        row.access_token, row.refresh_token = "access-elsewhere", "refresh-elsewhere"
    with responses.RequestsMock() as mock:  # no OAuth URL: a refresh would fail the send
        tokens_seen: list[str] = []

        def send(request: Any) -> tuple[int, dict[str, str], str]:
            tokens_seen.append(request.headers["access_token"])
            if request.headers["access_token"] != "access-elsewhere":
                return 200, {}, json.dumps({"error": -220, "message": "Access token expired"})
            return 200, {}, json.dumps(zalo_success())

        mock.add_callback(responses.POST, SEND_URL, callback=send)
        runtime.sender(concurrency=1).drain()
    assert tokens_seen[:2] == ["access-token-1", "access-elsewhere"]
    assert stored_pair(runtime) == ("access-elsewhere", "refresh-elsewhere")
    with runtime.session_factory() as session:
        assert {m.status for m in session.query(OutboxMessage)} == {"sent"}
