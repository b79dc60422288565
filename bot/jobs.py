"""Scheduled work (APScheduler): close idle surveys, forget old deliveries, renew the token,
send leaders their digests and alerts, and e-mail what Zalo cannot deliver.

The scheduler is built and started by `sipas-bot serve`, never at import, so each server
process that runs it is a deliberate choice (see docs/deploy.md for several processes). Every
job is safe to run in several processes at once: digests are claimed by a unique row per
(unit, kind, period), alerts and leader messages by row locks (docs/leaders.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from bot.delivery.leader_messages import deliver_leader_messages
from bot.delivery.mailer import Mailer
from bot.reporting.alerts import dispatch_alerts
from bot.reporting.digests import schedules, send_scheduled_digests
from bot.reporting.periods import unit_zone
from bot.runtime import Runtime
from storage import repositories as repo

log = logging.getLogger("sipas_bot.jobs")


def expire_idle_surveys(runtime: Runtime) -> int:
    """Close surveys untouched for SURVEY_IDLE_MINUTES as partial; returns how many."""
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        closed = repo.expire_idle_responses(session, idle_before=now - runtime.settings.policy.idle)
    if closed:
        log.info("event=surveys_expired count=%d", closed)
    return closed


def forget_old_deliveries(runtime: Runtime) -> None:
    """Dedupe records are kept while the webhook's replay window may still admit a copy
    (Settings.dedupe_retention), then forgotten."""
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        repo.forget_processed_events(session, before=now - runtime.settings.dedupe_retention)
        repo.forget_registration_failures(session, before=now - timedelta(days=1))


def refresh_token_if_due(runtime: Runtime) -> None:
    if runtime.tokens is None:
        return
    try:
        runtime.tokens.refresh()
    except Exception:  # logged loudly by the store; /healthz shows it; retried next run
        log.exception("event=token_refresh_job_failed")


def digest_zones(runtime: Runtime) -> list[str]:
    """The time zones the digest jobs run in: TIMEZONE and every unit's own (read at start-up;
    a unit given a new time zone needs a restart)."""
    zones = {runtime.settings.tz.key}
    with runtime.session_factory() as session:
        zones |= {unit_zone(u, runtime.settings.tz).key for u in repo.list_units(session)}
    return sorted(zones)


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    """Every job, with its trigger from the settings; ConfigError for a bad schedule."""
    settings = runtime.settings
    Mailer.from_settings(settings)  # a half-configured SMTP stops start-up, not the first e-mail
    scheduler = BackgroundScheduler(timezone=settings.tz)
    for zone_key in digest_zones(runtime):
        for kind, trigger in schedules(settings, ZoneInfo(zone_key)).items():
            scheduler.add_job(
                send_scheduled_digests,
                trigger,
                args=[runtime, kind, zone_key],
                id=f"digest_{kind}_{zone_key}",
                coalesce=True,
                # Late is better than never (the claim keeps it to once): a run delayed by
                # busy job threads still sends the period within the hour.
                misfire_grace_time=3600,
            )
    scheduler.add_job(
        dispatch_alerts, "interval", args=[runtime], seconds=20, id="alerts", coalesce=True
    )
    scheduler.add_job(
        deliver_leader_messages,
        "interval",
        args=[runtime],
        minutes=1,
        id="leader_messages",
        coalesce=True,
    )
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
