"""What a running server logs: our own lines at LOG_LEVEL, not APScheduler's chatter."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from bot.cli.context import configure_logging
from bot.jobs import build_scheduler
from bot.runtime import Runtime


def test_the_scheduler_does_not_log_its_routine_at_info(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    configure_logging(runtime.settings)
    ran = threading.Event()
    scheduler = build_scheduler(runtime)
    scheduler.add_job(ran.set, id="probe")  # runs at once, like the 20-second alerts job
    scheduler.start()
    assert ran.wait(timeout=30)
    # The scheduler's own thread removes the one-off job after it ran: shutting down before
    # it has would make that thread fail (JobLookupError).
    deadline = time.monotonic() + 30
    while scheduler.get_job("probe") is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.shutdown(wait=True)
    logging.getLogger("sipas_bot.jobs").info("event=probe")

    chatter = [r for r in caplog.records if r.name.startswith("apscheduler")]
    assert chatter == [], [r.getMessage() for r in chatter]
    assert any(r.getMessage() == "event=probe" for r in caplog.records)  # ours still shown


def test_the_scheduler_still_logs_its_warnings(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging(runtime.settings)
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    assert [r.getMessage() for r in caplog.records] == ["Run time of job was missed"]
