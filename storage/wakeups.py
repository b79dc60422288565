"""Waking the workers of other processes when work arrives: PostgreSQL's LISTEN/NOTIFY.

A web process that queues a reply wakes its own sender at once (`Runtime.sender_wakeup`);
a worker process (`sipas-bot worker`, docs/deploy.md "Several processes") used to find it at
its next poll, up to a second later. On PostgreSQL, a statement-level trigger on the table
(migration 0019) sends `NOTIFY <channel>` with every INSERT, delivered when the inserting
transaction commits, and each worker keeps one connection listening (`Listener`): the
sender wakes within a round trip of the commit. A lost connection is opened again, and the
events are set once then (what was notified meanwhile is found by the poll, which stays as
the safety net). SQLite has one process: nothing to listen to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from sqlalchemy.engine import URL

log = logging.getLogger("sipas_bot.wakeups")

# The channel that the trigger on `outbox_messages` notifies (migration 0019).
OUTBOX_CHANNEL = "sipas_outbox"


def libpq_conninfo(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (options kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """One thread with one connection that LISTENs to `channels` and sets each channel's
    event when it is notified, until `stop()`."""

    def __init__(
        self,
        url: URL,
        channels: Mapping[str, threading.Event],
        *,
        reconnect_seconds: float = 5.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.conninfo = libpq_conninfo(url)
        self.channels = dict(channels)
        self.reconnect_seconds = reconnect_seconds
        self.poll_seconds = poll_seconds
        self.listening = threading.Event()  # set while a connection listens (tests wait on it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll_seconds + 5)

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    for channel in self.channels:
                        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.listening.set()
                    log.info("event=listening channels=%s", ",".join(self.channels))
                    for event in self.channels.values():
                        event.set()  # whatever was notified while no one listened
                    while not self._stop.is_set():
                        for notify in connection.notifies(timeout=self.poll_seconds):
                            woken = self.channels.get(notify.channel)
                            if woken is not None:
                                woken.set()
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning(
                    "event=listen_failed error=%s retry_in=%.0fs",
                    type(exc).__name__,
                    self.reconnect_seconds,
                )
                self._stop.wait(self.reconnect_seconds)
        self.listening.clear()
