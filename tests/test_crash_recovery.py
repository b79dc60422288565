"""A sender killed with SIGKILL while it holds a lease mid-send: the next process resumes
delivery within seconds, not after the lease (issue 12). Real processes (`sipas-bot worker`),
a local fake Zalo, SQLite and (with TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from storage.models import OutboxMessage
from tests.conftest import ENV_PREFIXES, make_settings
from tests.fake_zalo import FakeZalo, Fault

SIPAS_BOT = Path(sys.executable).with_name("sipas-bot")
USER = "7400000000000000001"
RESTART_BUDGET = 5.0  # seconds from the new sender's start to the next delivered message


@pytest.fixture
def fake_zalo() -> Iterator[FakeZalo]:
    # The first send hangs far longer than the lease: the worker is killed in the middle.
    with FakeZalo(faults=[Fault(delay=120)]) as zalo:
        yield zalo


def worker_env(database_url: str, zalo: FakeZalo) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    return {
        **inherited,
        "ZALO_APP_ID": "360846524940903967",
        "ZALO_APP_SECRET": "crash-app-secret",
        "ZALO_OA_SECRET_KEY": "crash-oa-secret",
        "ZALO_OA_ID": "388613280878808645",
        "ZALO_ACCESS_TOKEN": "crash-access-token",
        "ZALO_REFRESH_TOKEN": "crash-refresh-token",
        "ZALO_API_BASE": zalo.url,
        "ZALO_OAUTH_BASE": zalo.url,
        "DATABASE_URL": database_url,
        # A long lease: only freeing a dead owner's lease can resume delivery in time.
        "OUTBOX_LEASE_SECONDS": "60",
        "PRIVACY_PEPPER": "crash-privacy-pepper-012",
        "FLASK_SKIP_DOTENV": "1",
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [str(SIPAS_BOT), "worker", "--concurrency", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def test_a_worker_killed_mid_send_is_resumed_within_seconds_by_the_next(
    database_url: str, fake_zalo: FakeZalo, tmp_path: Path
) -> None:
    app = create_app(make_settings(database_url))
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    with runtime.session_factory.begin() as session:
        repo.enqueue_replies(
            session, USER, [{"text": "câu 1"}, {"text": "câu 2"}], now=datetime.now(UTC)
        )
    env = worker_env(database_url, fake_zalo)
    log = tmp_path / "worker.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        first = start_worker(env, log)
        processes.append(first)
        fake_zalo.wait_until(lambda z: z.arrived >= 1, timeout=30, what="the first send")
        with runtime.session_factory() as session:
            owner = session.scalar(select(OutboxMessage.lease_owner).order_by(OutboxMessage.id))
        assert owner and f"/{first.pid}/" in owner, "the message is leased by the first worker"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        log.write_bytes(b"")

        restarted = time.monotonic()
        second = start_worker(env, log)
        processes.append(second)
        fake_zalo.wait_until(
            lambda z: len(z.delivered) >= 1, timeout=30, what="a delivery after the restart"
        )
        resumed_after = time.monotonic() - restarted
        fake_zalo.wait_until(lambda z: len(z.delivered) >= 2, timeout=30, what="both messages")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        runtime.engine.dispose()
    ready_after = _seconds_from_ready_to_sent(log.read_text("utf-8", "replace"))
    print(  # the figure docs/security.md quotes (shown with -s)
        f"\nnext message delivered {resumed_after:.2f} s after the restart "
        f"({ready_after:.2f} s after the new sender started)"
    )
    texts = [body["message"]["text"] for body in fake_zalo.delivered]
    assert texts[:2] == ["câu 1", "câu 2"], "in order, the interrupted one first"
    # Measured from the new sender's start: the interpreter's own start-up before it (2 s or
    # more on a loaded machine) is not the lease logic's to answer for. Measured from the
    # launch, it must still be far below the 60-second lease a dead owner's message would
    # otherwise wait out.
    assert ready_after <= RESTART_BUDGET, (ready_after, log.read_text("utf-8", "replace"))
    assert resumed_after < 30, (resumed_after, log.read_text("utf-8", "replace"))


def _seconds_from_ready_to_sent(log: str) -> float:
    """From the new worker's `sender_started` line to its first `message_sent` (log times)."""
    times: dict[str, datetime] = {}
    for line in log.splitlines():
        for event in ("event=sender_started", "event=message_sent"):
            if event in line and event not in times:
                times[event] = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return (times["event=message_sent"] - times["event=sender_started"]).total_seconds()
