"""Workers of other processes woken when a message is queued (storage/wakeups.py, migration
0019): on PostgreSQL an INSERT into the outbox notifies at commit, the listener sets the
sender's event; a listener whose connection was cut listens again. SQLite has nothing to
listen to (one process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from bot.runtime import Runtime
from storage import repositories as repo
from storage.wakeups import OUTBOX_CHANNEL, Listener

# An upper bound for what takes milliseconds: a wait that ends as soon as the event is set.
WITHIN = 15.0


@pytest.fixture
def pg_runtime(runtime: Runtime) -> Runtime:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite serves one process, woken in memory")
    return runtime


@pytest.fixture
def woken(pg_runtime: Runtime) -> Iterator[tuple[Listener, threading.Event]]:
    event = threading.Event()
    listener = Listener(pg_runtime.engine.url, {OUTBOX_CHANNEL: event}, reconnect_seconds=0.1)
    listener.start()
    try:
        assert listener.listening.wait(WITHIN)
        assert event.wait(WITHIN)  # set once on listening: what came while no one listened
        yield listener, event
    finally:
        listener.stop()


def queue_message(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        repo.enqueue_message(session, "246845883529197922", {"text": "x"}, now=runtime.clock())


def test_a_message_queued_by_another_process_wakes_the_sender(
    pg_runtime: Runtime, woken: tuple[Listener, threading.Event]
) -> None:
    _listener, event = woken
    event.clear()
    queue_message(pg_runtime)  # another connection, as another process's would be
    assert event.wait(WITHIN)


def test_a_listener_whose_connection_was_cut_listens_again(
    pg_runtime: Runtime, woken: tuple[Listener, threading.Event]
) -> None:
    listener, event = woken
    admin = create_engine(pg_runtime.engine.url)
    try:
        with admin.begin() as connection:
            cut = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                    " AND application_name = current_setting('application_name')"
                )
            ).all()
        assert cut
    finally:
        admin.dispose()
    event.clear()
    # It notices, opens a new connection, listens, and sets the event once for the gap.
    assert event.wait(WITHIN)
    assert listener.listening.wait(WITHIN)
    event.clear()
    queue_message(pg_runtime)
    assert event.wait(WITHIN)


def test_the_worker_listens_on_postgresql_only(runtime: Runtime) -> None:
    from bot.server import Background

    background = Background(runtime)
    listening = background.listener is not None
    assert listening == (runtime.engine.dialect.name == "postgresql")
