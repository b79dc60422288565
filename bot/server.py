"""Running the service: the background work (outbox sender and scheduled jobs), the one-process
server for a ward (waitress), and several web processes (gunicorn) for larger set-ups.

Background work is safe to run in several processes at once: the sender leases each message
(FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has a single writer), and every scheduled job is
idempotent or claims its work in the database.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from types import FrameType
from typing import Any

from flask import Flask

from bot.conversation.inbox import inbox_threads
from bot.jobs import start_scheduler
from bot.runtime import Runtime
from storage.wakeups import INBOX_CHANNEL, OUTBOX_CHANNEL, Listener

log = logging.getLogger("sipas_bot.server")
INLINE_INBOX_POLL_SECONDS = 30.0


class Background:
    """The outbox sender thread and the job scheduler of one process, its inbox threads
    (they run the turns the webhook stored with WEBHOOK_INTAKE=queued; with inline, one
    runs what was left waiting), and on
    PostgreSQL the listener that wakes both when another process queues a message or stores
    an event (storage/wakeups)."""

    def __init__(self, runtime: Runtime, *, concurrency: int = 4) -> None:
        self.runtime = runtime
        self.stop_event = threading.Event()
        self.sender = runtime.sender(concurrency=concurrency)
        self.thread = threading.Thread(
            target=self.sender.run_forever,
            args=(self.stop_event, runtime.sender_wakeup),
            name="outbox-sender",
            daemon=True,
        )
        settings = runtime.settings
        self.inbox_threads = inbox_threads(
            runtime.inbox,
            self.stop_event,
            runtime.inbox_wakeup,
            replies=runtime.sender_wakeup,
            # inline: one thread, looking seldom, runs what a queued intake left behind
            # (the setting changed with events waiting, or a web process not yet restarted)
            count=settings.webhook_inbox_threads if settings.queued_intake else 1,
            poll_seconds=(
                settings.webhook_inbox_poll_ms / 1000
                if settings.queued_intake
                else max(settings.webhook_inbox_poll_ms / 1000, INLINE_INBOX_POLL_SECONDS)
            ),
        )
        channels = {OUTBOX_CHANNEL: runtime.sender_wakeup, INBOX_CHANNEL: runtime.inbox_wakeup}
        self.listener = (
            Listener(runtime.engine.url, channels)
            if runtime.engine.dialect.name == "postgresql"
            else None
        )
        self.scheduler: Any = None

    def start(self) -> None:
        if self.listener is not None:
            self.listener.start()
        self.thread.start()
        for thread in self.inbox_threads:
            thread.start()
        self.scheduler = start_scheduler(self.runtime)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.listener is not None:
            self.listener.stop()
        self.stop_event.set()
        self.runtime.sender_wakeup.set()
        self.runtime.inbox_wakeup.set()
        for thread in self.inbox_threads:  # a turn is short; one cut off rolls back
            thread.join(timeout=5)
        self.thread.join(timeout=15)


def freeze_startup_objects() -> None:
    """Leave what start-up built (the app, its templates, SQLAlchemy's and pygal's modules and
    tables: hundreds of thousands of objects that live as long as the process) out of
    Python's garbage collection from now on (`gc.freeze`).

    A console page allocates enough to start a full collection about once a request, and a
    full collection walks every live object: on the province view that was a third of the
    page's time (docs/benchmarks.md, 7). Frozen, a collection walks only what requests made.
    """
    gc.collect()
    gc.freeze()


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_one_process(app: Flask, runtime: Runtime, *, host: str, port: int, threads: int) -> None:
    """The ward set-up: web, sender and jobs in one process, until SIGINT or SIGTERM."""
    import waitress

    background = Background(runtime)
    background.start()
    freeze_startup_objects()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="sipas-bot")
    except KeyboardInterrupt:
        pass
    finally:
        log.info("event=shutdown")
        background.stop()


def serve_gunicorn(
    *, host: str, port: int, workers: int, threads: int, runtime: Runtime | None
) -> None:
    """Several web processes under gunicorn; each builds its own app after the fork.

    With `runtime` given, this (the master) process also runs the background work;
    pass None when `sipas-bot worker` processes do it.
    """
    from gunicorn.app.base import BaseApplication

    from bot import create_app

    class _App(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("proc_name", "sipas-bot")
            self.cfg.set("graceful_timeout", 20)

        def load(self) -> Flask:
            app = create_app()
            freeze_startup_objects()
            return app

    background = Background(runtime) if runtime is not None else None
    if background is not None:
        background.start()
    try:
        _App().run()
    finally:
        if background is not None:
            background.stop()


def run_worker(runtime: Runtime, *, concurrency: int) -> None:
    """Background work only, until SIGINT or SIGTERM."""
    background = Background(runtime, concurrency=concurrency)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    background.start()
    freeze_startup_objects()
    log.info("event=worker_started")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("event=worker_stopping")
        background.stop()
