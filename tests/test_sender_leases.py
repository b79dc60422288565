"""Leases with an owner and a heartbeat, and sends that may have reached a slow Zalo
(issue 12): a dead sender's messages do not wait out the lease, and a Zalo slower than the
client's timeout gets each message at most twice."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.delivery.sender import OutboxSender, known_dead, lease_owner_id, zalo_delivery
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import OutboxMessage
from tests.conftest import FakeClock
from tests.fake_zalo import FakeZalo, Fault
from zalo_client import RequestsTransport, ZaloClient

HOST = socket.gethostname()[:70]


def outbox(runtime: Runtime) -> list[OutboxMessage]:
    with runtime.session_factory() as session:
        return list(session.query(OutboxMessage).order_by(OutboxMessage.id))


def enqueue(runtime: Runtime, now: datetime, users: int = 1, each: int = 1) -> None:
    with runtime.session_factory.begin() as session:
        for u in range(users):
            user = f"75000000000000{u:04d}"
            bodies = [{"text": f"{user} message {n}"} for n in range(each)]
            repo.enqueue_replies(session, user, bodies, now=now)


def lease_as(runtime: Runtime, owner: str, now: datetime) -> None:
    """What a sender does before it dies: lease every due message for 60 s."""
    with runtime.session_factory.begin() as session:
        claimed = repo.claim_due_messages(
            session, now=now, lease_until=now + timedelta(seconds=60), limit=100, owner=owner
        )
    assert claimed


def a_dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- who is known dead ---------------------------------------------------------------------


def test_owner_ids_name_host_and_process() -> None:
    owner = lease_owner_id()
    assert owner.startswith(f"{HOST}/{os.getpid()}/") and len(owner) <= 100
    assert lease_owner_id() != owner


@pytest.mark.parametrize(
    ("owner", "dead"),
    [
        (f"{HOST}/{os.getppid()}/abcd", False),  # alive: our parent
        ("another-host/1/abcd", False),  # another machine: not known here, the lease lapses
        (f"{HOST}/{os.getpid()}/not-made-here", True),  # our pid, an earlier process's owner
        (f"{HOST}/not-a-pid/x", False),
        ("garbage", False),
    ],
    # Ids without the pids, which differ between the test processes of `pytest -n 2`.
    ids=["parent-alive", "other-host", "own-pid-not-ours", "not-a-pid", "garbage"],
)
def test_known_dead(owner: str, dead: bool) -> None:
    assert known_dead(owner) is dead


def test_a_process_that_exited_is_known_dead() -> None:
    assert known_dead(f"{HOST}/{a_dead_pid()}/abcd")


def test_an_owner_this_process_made_is_alive() -> None:
    assert not known_dead(lease_owner_id())


# --- what a sender does with leases --------------------------------------------------------


def test_a_starting_sender_frees_a_dead_owners_lease_at_once(
    runtime: Runtime, clock: FakeClock
) -> None:
    enqueue(runtime, clock(), users=2)
    lease_as(runtime, f"{HOST}/{a_dead_pid()}/dead", clock())
    sent: list[str] = []
    sender = OutboxSender(
        runtime.session_factory,
        pseudonyms=runtime.pseudonyms,
        deliver=lambda u, b: sent.append(u) or "id",
        clock=clock,
    )
    assert sender.run_once() == 2  # no wait for the 60 s lease
    assert [m.status for m in outbox(runtime)] == ["sent", "sent"]
    assert all(m.lease_owner is None and m.locked_until is None for m in outbox(runtime))
    sender.close()


def test_a_live_owners_lease_on_another_host_is_left_until_it_lapses(
    runtime: Runtime, clock: FakeClock
) -> None:
    enqueue(runtime, clock())
    lease_as(runtime, "another-host/1/alive", clock())
    sender = OutboxSender(
        runtime.session_factory,
        pseudonyms=runtime.pseudonyms,
        deliver=lambda u, b: "id",
        clock=clock,
    )
    assert sender.run_once() == 0
    clock.advance(seconds=61)
    assert sender.run_once() == 1
    sender.close()


def test_a_sender_renews_its_leases_while_a_send_is_in_progress(
    runtime: Runtime, clock: FakeClock
) -> None:
    """The heartbeat: a send that outlasts the lease keeps it, and nobody else takes it."""
    enqueue(runtime, clock())
    in_send, release = threading.Event(), threading.Event()

    def slow(user_id: str, body: dict[str, Any]) -> str:
        in_send.set()
        release.wait(10)
        return "id"

    sender = OutboxSender(
        runtime.session_factory,
        pseudonyms=runtime.pseudonyms,
        deliver=slow,
        clock=clock,
        lease=timedelta(seconds=0.3),
    )
    other = OutboxSender(
        runtime.session_factory,
        pseudonyms=runtime.pseudonyms,
        deliver=lambda u, b: "other",
        clock=clock,
    )
    worker = threading.Thread(target=sender.run_once)
    worker.start()
    assert in_send.wait(10)
    (leased,) = outbox(runtime)
    first_lease = leased.locked_until
    assert first_lease is not None and leased.lease_owner == sender.owner
    clock.advance(seconds=5)  # far past the first lease: only renewals keep it
    deadline = time.monotonic() + 10
    while outbox(runtime)[0].locked_until == first_lease:
        assert time.monotonic() < deadline, "the lease was not renewed"
        time.sleep(0.05)
    assert other.run_once() == 0, "a renewed lease is not taken over"
    release.set()
    worker.join(10)
    (message,) = outbox(runtime)
    assert (message.status, message.zalo_message_id, message.lease_owner) == ("sent", "id", None)
    sender.close()
    other.close()


# --- a Zalo slower than the client's timeout -----------------------------------------------


def slow_zalo_sender(runtime: Runtime, zalo: FakeZalo, *, read_timeout: float) -> OutboxSender:
    client = ZaloClient(
        RequestsTransport(timeout=(1.0, read_timeout)),
        api_base=zalo.url,
        oauth_base=zalo.url,
        access_token=lambda: "token",
    )
    return OutboxSender(
        runtime.session_factory,
        zalo_delivery(client),
        pseudonyms=runtime.pseudonyms,
        clock=lambda: datetime.now(UTC),
        concurrency=4,
        base_delay=0.01,
        max_delay=0.05,
        uncertain_delay=timedelta(seconds=0.4),
    )


def run_until_settled(runtime: Runtime, sender: OutboxSender, timeout: float = 30) -> None:
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=sender.run_forever, args=(stop, wake), kwargs={})
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while any(m.status == "pending" for m in outbox(runtime)):
            assert time.monotonic() < deadline, [(m.status, m.attempts) for m in outbox(runtime)]
            time.sleep(0.05)
    finally:
        stop.set()
        wake.set()
        thread.join(20)


@pytest.mark.parametrize("slow_calls", [12, 1000], ids=["slow-for-a-while", "always-slow"])
def test_a_zalo_slower_than_the_timeout_gets_each_message_at_most_twice(
    runtime: Runtime, slow_calls: int
) -> None:
    """Each timed-out call was delivered all the same (Zalo was only slow): before, each
    timeout produced another copy (5 of 40 messages came three times)."""
    with FakeZalo(faults=[Fault(delay=0.6)] * slow_calls) as zalo:
        enqueue(runtime, datetime.now(UTC), users=8)
        run_until_settled(runtime, slow_zalo_sender(runtime, zalo, read_timeout=0.2))
        zalo.wait_until(lambda z: len(z.calls) == z.arrived, timeout=10, what="slow answers")
        copies = Counter(body["message"]["text"] for body in zalo.delivered)
    messages = outbox(runtime)
    assert len(copies) == 8, "every message reached Zalo"
    assert max(copies.values()) <= 2, copies
    statuses = Counter(m.status for m in messages)
    if slow_calls == 1000:
        # Twice without an answer: given up, with the reason, not sent a third time.
        assert statuses == {"dead": 8}
        assert all("maybe delivered" in (m.last_error or "") for m in messages)
        assert all(m.uncertain_sends == 2 for m in messages)
    else:
        assert statuses["sent"] >= 1
