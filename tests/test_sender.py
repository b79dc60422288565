"""The outbox sender against Zalo's message endpoint faked with `responses`: the requests that
reach Zalo, per-user order, retries with backoff, dead letters and leases."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import responses

from bot.delivery.sender import OutboxSender
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from storage.models import OutboxMessage
from tests.conftest import (
    API_BASE,
    FakeClock,
    follow_event,
    make_settings,
    sent_bodies,
    text_event,
    zalo_success,
)
from tests.fake_zalo import FakeZalo, Fault
from zalo_client import ZaloInvalidRequest

SEND_URL = f"{API_BASE}/v3.0/oa/message/cs"
USER = "246845883529197922"
Post = Callable[..., Any]


@pytest.fixture
def sender(runtime: Runtime) -> Iterator[OutboxSender]:
    """The sender as `serve` and `worker` start it: after `_prepare_to_run` has checked (and
    so stored) the token pair from the settings."""
    if runtime.tokens is not None:
        assert runtime.tokens.status().stored
    outbox_sender = runtime.sender()
    yield outbox_sender
    outbox_sender.close()


def outbox(runtime: Runtime, user_id: str | None = None) -> list[OutboxMessage]:
    with runtime.session_factory() as session:
        query = session.query(OutboxMessage).order_by(OutboxMessage.id)
        if user_id is not None:
            query = query.filter(OutboxMessage.user_id == user_id)
        return list(query)


def queued_texts(runtime: Runtime, user_id: str) -> list[str]:
    return [message.body["text"] for message in outbox(runtime, user_id)]


class RecordingZalo:
    """A `responses` callback: fails on demand per user, records what was delivered."""

    def __init__(self, failures: dict[str, list[int]]) -> None:
        self.failures = failures  # user id -> HTTP statuses to answer first, in order
        self.delivered: list[tuple[str, str]] = []  # (user id, text), in delivery order
        self.failed = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        user = body["recipient"]["user_id"]
        with self._lock:
            pending = self.failures.get(user)
            if pending:
                self.failed += 1
                return pending.pop(0), {}, "<html>Bad Gateway</html>"
            self.delivered.append((user, body["message"]["text"]))
        return 200, {"Content-Type": "application/json"}, json.dumps(zalo_success(user_id=user))

    def texts_for(self, user_id: str) -> list[str]:
        return [text for user, text in self.delivered if user == user_id]


# --- what reaches Zalo ---------------------------------------------------------------------


def test_a_question_reaches_zalo_as_a_consultation_message_with_its_buttons(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success("zalo-msg-1"))
    signed_post(text_event("#HVT01"))
    intro_row, question_row = outbox(runtime)

    assert sender.drain() == 2

    assert [call.request.url for call in zalo_api.calls] == [SEND_URL, SEND_URL]
    assert {call.request.headers["access_token"] for call in zalo_api.calls} == {"access-token-1"}
    intro, question = sent_bodies(zalo_api)
    assert intro == {"recipient": {"user_id": USER}, "message": {"text": intro_row.body["text"]}}
    assert question["recipient"] == {"user_id": USER}
    assert question["message"]["text"] == question_row.body["text"]
    assert question["message"]["text"].startswith("Câu 1/6")
    attachment = question["message"]["attachment"]
    assert attachment["type"] == "template"
    assert attachment["payload"]["buttons"] == [
        {"title": button["title"], "type": "oa.query.hide", "payload": button["payload"]}
        for button in question_row.body["buttons"]
    ]
    assert len(attachment["payload"]["buttons"]) == 5
    assert [(m.status, m.attempts, m.zalo_message_id) for m in outbox(runtime)] == [
        ("sent", 1, "zalo-msg-1"),
        ("sent", 1, "zalo-msg-1"),
    ]


def test_each_users_messages_reach_zalo_in_the_order_they_were_queued(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    users = ["9000000000000000001", "9000000000000000002", "9000000000000000003"]
    for text in ["#HVT01", "5", "4"]:  # interleaved: the outbox ids of the users alternate
        for user in users:
            signed_post(text_event(text, user_id=user))

    assert sender.drain() == 12

    sent = sent_bodies(zalo_api)
    assert len(sent) == 12
    for user in users:
        sent_to_user = [b["message"]["text"] for b in sent if b["recipient"]["user_id"] == user]
        assert sent_to_user == queued_texts(runtime, user)
        assert [t.split("\n")[0] for t in sent_to_user[1:]] == ["Câu 1/6", "Câu 2/6", "Câu 3/6"]


# --- retries -------------------------------------------------------------------------------


def test_a_rate_limit_error_is_retried_after_backoff_and_delivered_once(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json={"error": -32, "message": "rate limit"})
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    signed_post(follow_event())

    assert sender.run_once() == 1
    (waiting,) = outbox(runtime)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert "-32" in (waiting.last_error or "")
    assert waiting.next_attempt_at > clock()

    assert sender.run_once() == 0  # not before the backoff has passed
    assert len(zalo_api.calls) == 1

    clock.advance(seconds=61)
    sender.drain()
    (sent,) = outbox(runtime)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert len(zalo_api.calls) == 2


def test_a_server_error_is_retried_only_once_its_backoff_has_passed(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, status=502, body="Bad Gateway")
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    signed_post(follow_event())

    assert sender.run_once() == 1
    (waiting,) = outbox(runtime)
    assert waiting.status == "pending"
    clock.advance(seconds=0.5)  # the first backoff is 1–2 s (base 2 s, jitter 50–100 %)
    assert sender.run_once() == 0
    clock.advance(seconds=1.6)
    assert sender.run_once() == 1
    (sent,) = outbox(runtime)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert len(zalo_api.calls) == 2


def test_a_502_storm_delays_only_that_user_and_keeps_their_order(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    stormy, calm = "9100000000000000001", "9100000000000000002"
    zalo = RecordingZalo({stormy: [502, 502, 502, 502]})
    zalo_api.add_callback(responses.POST, SEND_URL, callback=zalo)
    signed_post(text_event("#HVT01", user_id=stormy))
    signed_post(text_event("#HVT01", user_id=calm))
    signed_post(text_event("5", user_id=stormy))

    for _ in range(20):
        sender.run_once()
        if len(zalo.delivered) == 5:
            break
        clock.advance(seconds=20)  # beyond the longest backoff this storm reaches

    assert zalo.failed == 4
    assert zalo.texts_for(stormy) == queued_texts(runtime, stormy)
    assert zalo.texts_for(calm) == queued_texts(runtime, calm)
    users_in_delivery_order = [user for user, _ in zalo.delivered]
    assert users_in_delivery_order[:2] == [calm, calm]  # nobody waited for the stormy user
    assert {m.status for m in outbox(runtime)} == {"sent"}


def test_outside_the_interaction_window_a_message_is_dead_at_once(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json={"error": -230, "message": "User not interact"})
    signed_post(follow_event())

    assert sender.run_once() == 1
    (dead,) = outbox(runtime)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert "-230" in (dead.last_error or "")

    clock.advance(hours=1)
    assert sender.drain() == 0
    assert len(zalo_api.calls) == 1


@pytest.mark.parametrize(("age_hours", "status"), [(23, "pending"), (25, "dead")])
def test_a_transient_failure_kills_only_messages_older_than_the_max_age(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
    age_hours: int,
    status: str,
) -> None:
    assert runtime.settings.outbox_max_age_hours == 24
    zalo_api.add(responses.POST, SEND_URL, status=502, body="Bad Gateway")
    signed_post(follow_event())
    clock.advance(hours=age_hours)

    assert sender.run_once() == 1
    (message,) = outbox(runtime)
    assert (message.status, message.attempts) == (status, 1)


# --- leases --------------------------------------------------------------------------------


def test_a_message_claimed_by_a_sender_that_died_is_sent_once_the_lease_lapses(
    signed_post: Post,
    runtime: Runtime,
    sender: OutboxSender,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    signed_post(follow_event())
    claimed_at = clock()
    with runtime.session_factory.begin() as session:  # a sender that claims, then dies
        claimed = repo.claim_due_messages(
            session, now=claimed_at, lease_until=claimed_at + sender.lease, limit=10
        )
    assert len(claimed) == 1

    clock.advance(seconds=59)
    assert sender.run_once() == 0
    assert len(zalo_api.calls) == 0

    clock.advance(seconds=2)  # 61 s after the claim
    assert sender.run_once() == 1
    (message,) = outbox(runtime)
    assert (message.status, message.attempts) == ("sent", 1)
    assert len(zalo_api.calls) == 1


# --- the service's sender: run_forever, no batch barrier ------------------------------------


def _enqueue(runtime: Runtime, users: list[str], messages: int, now: datetime) -> None:
    with runtime.session_factory.begin() as session:
        for n in range(messages):
            for user in users:
                repo.enqueue_replies(
                    session, user, [{"text": f"{user} message {n}", "buttons": []}], now=now
                )


def _run_until_sent(runtime: Runtime, sender: OutboxSender, *, timeout: float = 30.0) -> None:
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=sender.run_forever, args=(stop, wake))
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(m.status == "sent" for m in outbox(runtime)):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        wake.set()
        thread.join(timeout=20)
    assert not thread.is_alive(), "the sender stops when told to"


@pytest.fixture
def fake_zalo_runtime(database_url: str) -> Iterator[tuple[Runtime, FakeZalo]]:
    """A runtime sending to a local fake Zalo over real HTTP, on the real clock."""
    with FakeZalo(failure_rate=0.0, seed=3) as zalo:
        app = create_app(
            make_settings(database_url, zalo_api_base=zalo.url, zalo_oauth_base=zalo.url)
        )
        runtime = runtime_of(app)
        migrate.upgrade(runtime.engine)
        yield runtime, zalo
        runtime.engine.dispose()


def test_a_slow_send_holds_up_only_its_own_user(
    fake_zalo_runtime: tuple[Runtime, FakeZalo],
) -> None:
    """The service's sender keeps sending while one call hangs: no round waits for its
    slowest message. The first call is held until every other user's two messages are
    through; with a batch barrier they never would be, and the wait below fails."""
    runtime, zalo = fake_zalo_runtime
    release = threading.Event()
    zalo.add_faults(Fault(hold=release))  # the first call to arrive
    users = [f"71000000000000{n:04d}" for n in range(30)]
    _enqueue(runtime, users, 2, datetime.now(UTC))
    sender = runtime.sender(concurrency=4)

    others_through_while_held: list[bool] = []

    def release_when_the_others_are_through() -> None:
        try:
            zalo.wait_for_delivered(58, timeout=8)  # within the client's read timeout
            others_through_while_held.append(True)
        finally:
            release.set()

    releaser = threading.Thread(target=release_when_the_others_are_through)
    releaser.start()
    _run_until_sent(runtime, sender)
    releaser.join()

    assert others_through_while_held, "the other users waited for the held call"

    delivered = [(b["recipient"]["user_id"], b["message"]["text"]) for b in zalo.delivered]
    assert len(delivered) == 60
    # The slow call was answered last of its user's first round; everyone else's second
    # message went out meanwhile, the slow user's only after it.
    slow_user = delivered[-2][0]
    assert delivered[-2:] == [
        (slow_user, f"{slow_user} message 0"),
        (slow_user, f"{slow_user} message 1"),
    ]


def test_each_sending_thread_keeps_its_http_connection(
    fake_zalo_runtime: tuple[Runtime, FakeZalo], caplog: pytest.LogCaptureFixture
) -> None:
    """requests keeps 10 connections per host unless told otherwise: with 16 threads, calls
    past 10 would open a connection and drop it (against Zalo, a TLS handshake each)."""
    runtime, zalo = fake_zalo_runtime
    zalo.add_faults(*[Fault(delay=0.05)] * 200)  # so that the 16 threads overlap
    _enqueue(runtime, [f"73000000000000{n:04d}" for n in range(40)], 4, datetime.now(UTC))

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        _run_until_sent(runtime, runtime.sender(concurrency=16))

    assert len(zalo.delivered) == 160
    assert "Connection pool is full" not in caplog.text


def test_the_service_sender_loses_nothing_and_keeps_order_under_thirty_percent_failures(
    database_url: str,
) -> None:
    with FakeZalo(failure_rate=0.3, failure=Fault(status=502), seed=11) as zalo:
        app = create_app(
            make_settings(database_url, zalo_api_base=zalo.url, zalo_oauth_base=zalo.url)
        )
        runtime = runtime_of(app)
        migrate.upgrade(runtime.engine)
        users = [f"72000000000000{n:04d}" for n in range(12)]
        _enqueue(runtime, users, 5, datetime.now(UTC))
        sender = OutboxSender(
            runtime.session_factory,
            runtime.deliver,
            clock=lambda: datetime.now(UTC),
            concurrency=8,
            base_delay=0.02,
            max_delay=0.1,
        )

        _run_until_sent(runtime, sender)

        assert {m.status for m in outbox(runtime)} == {"sent"}
        assert len([c for c in zalo.calls if not c.succeeded]) > 10, "faults were injected"
        delivered = [(b["recipient"]["user_id"], b["message"]["text"]) for b in zalo.delivered]
        assert len(delivered) == len(set(delivered)) == 60  # each once
        for user in users:
            assert [t for u, t in delivered if u == user] == queued_texts(runtime, user)
        runtime.engine.dispose()


# --- what a sender does when its situation changes mid-batch --------------------------------


def test_after_a_rate_limit_error_the_messages_waiting_for_a_thread_are_not_sent(
    signed_post: Post,
    runtime: Runtime,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    zalo_api.add(responses.POST, SEND_URL, json={"error": -32, "message": "rate limit"})
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success())
    first, second = "9200000000000000001", "9200000000000000002"
    signed_post(follow_event(user_id=first))
    signed_post(follow_event(user_id=second))
    sender = runtime.sender(concurrency=1)  # the second waits while the first gets -32

    assert sender.run_once() == 2

    assert len(zalo_api.calls) == 1
    limited, waiting = outbox(runtime)
    assert (limited.user_id, limited.status, limited.attempts) == (first, "pending", 1)
    # not tried: no attempt counted, and its lease given back
    assert (waiting.status, waiting.attempts, waiting.locked_until) == ("pending", 0, None)
    clock.advance(seconds=31)  # past the pause
    assert sender.drain() == 2
    assert [m.status for m in outbox(runtime)] == ["sent", "sent"]
    sender.close()


def test_a_message_whose_lease_is_nearly_over_is_left_unsent(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    """A send started late in its lease could end after another worker took the message
    over and sent it too."""
    sent: list[str] = []

    def slow_delivery(user_id: str, body: dict[str, Any]) -> str:
        sent.append(user_id)
        clock.advance(seconds=31)  # more than half the 60 s lease
        return "zalo-id"

    first, second = "9300000000000000001", "9300000000000000002"
    signed_post(follow_event(user_id=first))
    signed_post(follow_event(user_id=second))
    sender = OutboxSender(runtime.session_factory, slow_delivery, clock=clock, concurrency=1)

    assert sender.run_once() == 2

    assert sent == [first]
    done, left = outbox(runtime)
    assert (done.status, left.status, left.attempts) == ("sent", "pending", 0)
    assert left.locked_until is not None, "still leased: whoever holds it now records it"
    assert sender.run_once() == 0
    clock.advance(seconds=30)  # the lease lapses
    assert sender.run_once() == 1
    assert sent == [first, second]
    sender.close()


def test_a_late_result_does_not_overwrite_a_message_another_sender_took_over(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    """Sender A hangs past its lease; B leases the message and sends it; then A's call
    fails for good. The message stays sent: A's lease is gone, so is its say."""
    signed_post(follow_event())
    other = OutboxSender(runtime.session_factory, lambda u, b: "sent-by-b", clock=clock)

    def hanging_then_refused(user_id: str, body: dict[str, Any]) -> str:
        clock.advance(seconds=61)
        assert other.run_once() == 1
        raise ZaloInvalidRequest("invalid parameter", code=-201)

    sender = OutboxSender(runtime.session_factory, hanging_then_refused, clock=clock)
    assert sender.run_once() == 1

    (message,) = outbox(runtime)
    assert (message.status, message.attempts, message.zalo_message_id) == ("sent", 1, "sent-by-b")
    assert message.last_error is None
    sender.close()
    other.close()
