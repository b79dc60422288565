"""Delivery under faults: nothing lost, each user's messages in order, dead letters visible."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.cli import ScriptInfo

from bot.cli import cli
from bot.delivery.sender import RateLimiter
from bot.runtime import Runtime
from bot.units import read_units_file
from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from storage.models import Conversation, OutboxMessage
from tests.conftest import (
    API_BASE,
    APP_ID,
    EXAMPLE_UNITS,
    OA_SECRET,
    OAUTH_BASE,
    FakeClock,
    make_settings,
    text_event,
)
from tests.fake_zalo import FakeZalo, Fault

SIPAS_BOT = Path(sys.executable).with_name("sipas-bot")


def outbox(runtime: Runtime) -> list[OutboxMessage]:
    with runtime.session_factory() as session:
        return list(session.query(OutboxMessage).order_by(OutboxMessage.id))


def delivered_by_user(zalo: FakeZalo) -> dict[str, list[str]]:
    """What each user received, in the order Zalo accepted it."""
    seen: dict[str, list[str]] = defaultdict(list)
    for body in zalo.delivered:
        seen[body["recipient"]["user_id"]].append(body["message"]["text"])
    return seen


def expected_by_user(runtime: Runtime) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = defaultdict(list)
    for message in outbox(runtime):
        expected[message.user_id].append(message.body["text"])
    return expected


def test_thirty_percent_failures_lose_nothing_and_keep_each_users_order(
    database_url: str, clock: FakeClock
) -> None:
    with FakeZalo(failure_rate=0.3, failure=Fault(status=502), seed=7) as zalo:
        app = create_app(
            make_settings(database_url, zalo_api_base=zalo.url, zalo_oauth_base=zalo.url),
            clock=clock,
        )
        runtime = runtime_of(app)
        migrate.upgrade(runtime.engine)
        with runtime.session_factory.begin() as session:
            repo.upsert_units(session, read_units_file(EXAMPLE_UNITS), now=clock())
        client = app.test_client()
        from zalo_client import SIGNATURE_HEADER, SignatureVerifier

        verifier = SignatureVerifier(APP_ID, OA_SECRET)
        users = [f"30000000000000{n:04d}" for n in range(12)]
        script = ["#HVT01", "5", "4", "3", "4", "5", "bỏ qua"]
        sender = runtime.sender(rng=lambda: 0.5)
        # Users' turns interleave, and the sender runs between them.
        for step in range(len(script)):
            for user in users:
                event = text_event(script[step], user_id=user)
                import json

                body = json.dumps(event, ensure_ascii=False).encode()
                response = client.post(
                    "/zalo/webhook",
                    data=body,
                    headers={SIGNATURE_HEADER: verifier.sign(body, event["timestamp"])},
                )
                assert response.status_code == 200
            sender.run_once()
        for _ in range(200):
            if all(m.status == "sent" for m in outbox(runtime)):
                break
            clock.advance(minutes=11)  # past any backoff (capped at 10 min)
            sender.drain()
        messages = outbox(runtime)
        assert {m.status for m in messages} == {"sent"}
        failures = [c for c in zalo.calls if not c.succeeded]
        assert len(failures) > len(messages) * 0.2, "the faults were really injected"
        assert delivered_by_user(zalo) == expected_by_user(runtime)
        assert len(zalo.delivered) == len(messages)  # none twice
        runtime.engine.dispose()


def test_a_user_outside_the_seven_day_window_is_not_sent_to(
    runtime: Runtime, signed_post: Any, clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01", user_id="41"))
    with runtime.session_factory.begin() as session:
        conversation = session.get(Conversation, ("41", ""))
        assert conversation is not None
        conversation.last_interaction_at = clock() - __import__("datetime").timedelta(days=8)
    with responses.RequestsMock() as mock:  # any request to Zalo would fail this test
        assert runtime.sender().drain() >= 1
        assert len(mock.calls) == 0
    messages = outbox(runtime)
    assert {m.status for m in messages} == {"dead"}
    assert all("window closed" in (m.last_error or "") for m in messages)


def test_the_rate_limiter_spreads_calls_over_the_minute() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.acquire()
    assert slept == []
    now[0] = 10.0
    limiter.acquire()  # the fourth call within 60 s waits until the first leaves the window
    assert slept == [50.0]
    assert now[0] == 60.0


# --- operator commands ---------------------------------------------------------------------


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app))


def test_dead_letters_are_listed_and_can_be_sent_again(
    app: Flask, runtime: Runtime, signed_post: Any
) -> None:
    signed_post(text_event("#HVT02", user_id="42"))
    with responses.RequestsMock() as mock:
        mock.post(f"{API_BASE}/v3.0/oa/message/cs", json={"error": -201, "message": "invalid"})
        runtime.sender().drain()
    dead = [m for m in outbox(runtime) if m.status == "dead"]
    assert dead, "a permanent error dead-letters at once"
    listed = invoke(app, "outbox", "list", "--dead")
    assert listed.exit_code == 0
    assert f"{dead[0].id}" in listed.output and "ZaloInvalidRequest" in listed.output
    retried = invoke(app, "outbox", "retry", *(str(m.id) for m in dead))
    assert retried.exit_code == 0, retried.output
    with responses.RequestsMock() as mock:
        mock.post(
            f"{API_BASE}/v3.0/oa/message/cs",
            json={"data": {"message_id": "x"}, "error": 0, "message": "Success"},
        )
        runtime.sender().drain()
        assert len(mock.calls) == len(dead)
    assert {m.status for m in outbox(runtime)} == {"sent"}
    assert invoke(app, "outbox", "retry", "999999").exit_code != 0


def test_check_says_ok_when_zalo_accepts_the_token(app: Flask) -> None:
    with responses.RequestsMock() as mock:
        mock.get(
            f"{API_BASE}/v2.0/oa/getoa",
            json={"data": {"oa_id": "1", "name": "UBND phường HVT"}, "error": 0},
        )
        result = invoke(app, "check")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "UBND phường HVT" in result.output


def test_check_fails_loudly_and_says_what_to_do_when_the_token_is_dead(app: Flask) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{API_BASE}/v2.0/oa/getoa", json={"error": -216, "message": "invalid token"})
        mock.post(
            f"{OAUTH_BASE}/v4/oa/access_token",
            json={"error_name": "invalid_grant", "error_description": "revoked"},
        )
        result = invoke(app, "check")
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "tokens set" in result.output


def test_check_names_a_bad_digest_schedule_and_half_set_smtp(
    database_url: str, clock: FakeClock
) -> None:
    settings = make_settings(
        database_url, digest_weekly_at="sun 25:00", smtp_host="mail.example.vn", smtp_from="x"
    )
    app = create_app(settings, clock=clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API_BASE}/v2.0/oa/getoa", json={"data": {"oa_id": "1"}, "error": 0})
        result = invoke(app, "check")
    assert result.exit_code == 1, result.output
    assert "FAIL  digest schedules" in result.output
    assert "DIGEST_WEEKLY_AT 'sun 25:00'" in result.output
    assert "FAIL  e-mail settings" in result.output and "SMTP_FROM" in result.output


# --- a real sender process killed mid-delivery ---------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="uses POSIX signals")
def test_a_worker_killed_mid_delivery_loses_nothing_and_duplicates_at_most_once(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'kill.db'}"
    with FakeZalo(faults=[Fault(delay=0.4)] * 400) as zalo:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ZALO_", "DATABASE"))},
            "FLASK_SKIP_DOTENV": "1",
            "DATABASE_URL": database_url,
            "ZALO_APP_ID": APP_ID,
            "ZALO_APP_SECRET": "secret",
            "ZALO_OA_ID": "1",
            "ZALO_OA_SECRET_KEY": OA_SECRET,
            "PRIVACY_PEPPER": "faults-privacy-pepper-01",
            "ZALO_ACCESS_TOKEN": "access-1",
            "ZALO_REFRESH_TOKEN": "refresh-1",
            "ZALO_API_BASE": zalo.url,
            "ZALO_OAUTH_BASE": zalo.url,
            "OUTBOX_LEASE_SECONDS": "2",
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run([SIPAS_BOT, "db", "upgrade"], env=env, check=True, capture_output=True)
        app = create_app(make_settings(database_url))
        runtime = runtime_of(app)
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        users = [f"5000{n}" for n in range(3)]
        with runtime.session_factory.begin() as session:
            for user, n in itertools.product(users, range(6)):
                repo.enqueue_replies(
                    session, user, [{"text": f"{user} message {n}", "buttons": []}], now=now
                )
        expected = expected_by_user(runtime)

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [SIPAS_BOT, "worker"],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        worker = start()
        try:
            zalo.wait_for_delivered(4, timeout=30)
            os.killpg(worker.pid, signal.SIGKILL)  # some sends are in flight right now
            worker.wait(timeout=10)
            killed_at = len(zalo.delivered)
            assert killed_at < len(users) * 6, "killed before the end"
            worker = start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if all(m.status == "sent" for m in outbox(runtime)):
                    break
                time.sleep(0.2)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        assert {m.status for m in outbox(runtime)} == {"sent"}
        received = delivered_by_user(zalo)
        for user in users:
            sequence = received[user]
            # Collapse a message sent twice in a row: the one in flight when the worker died.
            collapsed = [text for text, _ in itertools.groupby(sequence)]
            assert collapsed == expected[user], "nothing lost, order kept"
            assert len(sequence) - len(collapsed) <= 1, "at most one duplicate per user"
        runtime.engine.dispose()
