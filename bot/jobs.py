"""Scheduled work (APScheduler): close idle surveys, forget old deliveries, renew the token.

The scheduler is built and started by `sipas-bot serve`, never at import, so each server
process that runs it is a deliberate choice (see docs/deploy.md for several processes).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from bot.runtime import Runtime
from storage import repositories as repo

log = logging.getLogger("sipas_bot.jobs")


def expire_idle_surveys(runtime: Runtime) -> int:
    """Close surveys untouched for SURVEY_IDLE_MINUTES as partial; returns how many."""
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        closed = repo.expire_idle_responses(
            session, idle_before=now - runtime.settings.policy.idle, now=now
        )
    if closed:
        log.info("event=surveys_expired count=%d", closed)
    return closed


def forget_old_deliveries(runtime: Runtime) -> None:
    """Dedupe records are needed only while Zalo may still re-send (about 2 h)."""
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        repo.forget_processed_events(session, before=now - timedelta(days=3))


def refresh_token_if_due(runtime: Runtime) -> None:
    if runtime.tokens is None:
        return
    try:
        runtime.tokens.refresh()
    except Exception:  # logged loudly by the store; /healthz shows it; retried next run
        log.exception("event=token_refresh_job_failed")


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=runtime.settings.tz)
    scheduler.add_job(
        refresh_token_if_due,
        "interval",
        args=[runtime],
        minutes=10,
        id="refresh_token",
        coalesce=True,
    )
    scheduler.add_job(
        expire_idle_surveys, "interval", args=[runtime], minutes=1, id="expire_idle", coalesce=True
    )
    scheduler.add_job(
        forget_old_deliveries,
        "interval",
        args=[runtime],
        hours=6,
        id="forget_deliveries",
        coalesce=True,
    )
    return scheduler


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = build_scheduler(runtime)
    scheduler.start()
    return scheduler
