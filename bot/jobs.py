"""Scheduled work (APScheduler): close idle surveys, forget old deliveries and sign-in
records, renew the token, send leaders their digests and alerts, e-mail what Zalo cannot
deliver, and purge personal data past its retention.

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

from bot.config import ConfigError
from bot.privacy.retention import Retention, purge_personal_data
from bot.reporting.digests import DigestOutcome, schedules
from bot.reporting.periods import unit_zone
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import LeaderMessageStatus, Unit
from survey_flow.sipas import LOW_RATINGS

log = logging.getLogger("sipas_bot.jobs")


def expire_idle_surveys(runtime: Runtime) -> int:
    """Close surveys untouched for SURVEY_IDLE_MINUTES as partial, and open the cases of
    those a chat survey would have opened had it ended there (a comment, a counted low
    rating); returns how many surveys were closed."""
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        closed = repo.expire_idle_responses(
            session,
            idle_before=now - runtime.settings.policy.idle,
            low_values=LOW_RATINGS,
            now=now,
            rollup_zone=runtime.settings.timezone,
        )
        opened = runtime.case_intake.open_for_expired(session, closed, now=now)
    if closed:
        log.info("event=surveys_expired count=%d cases_opened=%d", len(closed), opened)
    if opened:
        runtime.sender_wakeup.set()
    return len(closed)


def forget_old_deliveries(runtime: Runtime) -> None:
    """Dedupe records, and the inbox's events run or given up, are kept while the webhook's
    replay window may still admit a copy (Settings.dedupe_retention), then forgotten."""
    now = runtime.clock()
    before = now - runtime.settings.dedupe_retention
    with runtime.session_factory.begin() as session:
        repo.forget_processed_events(session, before=before)
        repo.forget_inbox_events(session, before=before)
        repo.forget_registration_failures(session, before=now - timedelta(days=1))


def purge_personal_data_job(runtime: Runtime) -> None:
    """Daily: citizens' Zalo ids past the 7-day window, delivered messages past their
    retention (docs/privacy.md); `sipas-bot privacy purge` runs the same by hand."""
    with runtime.session_factory.begin() as session:
        purge_personal_data(
            session,
            now=runtime.clock(),
            retention=Retention.from_settings(runtime.settings),
            pseudonyms=runtime.pseudonyms,
        )


# Sign-in links and password attempts are kept a week: far past a link's life and the
# sign-in rate limit's window (docs/console.md), long enough to look into a burst of attempts.
SIGN_IN_RECORDS_KEPT = timedelta(days=7)


def forget_old_sign_ins(runtime: Runtime) -> None:
    """Delete sign-in links expired a week ago and password attempts older than a week (an
    unknown link gets the same "used or expired" page as an expired one)."""
    before = runtime.clock() - SIGN_IN_RECORDS_KEPT
    with runtime.session_factory.begin() as session:
        repo.forget_sign_in_links(session, before=before)
        repo.forget_sign_in_attempts(session, before=before)


def refresh_token_if_due(runtime: Runtime) -> None:
    """Each OA's pair when due, on its own: one OA's failure does not stop the others'."""
    for oa in runtime.accounts.all():
        if oa.tokens is None:
            continue
        try:
            oa.tokens.refresh()
        except Exception:  # logged loudly by the store; /healthz shows it; retried next run
            log.exception("event=token_refresh_job_failed oa=%s", oa.oa_id or "-")


def digest_zones(runtime: Runtime) -> list[str]:
    """The time zones the digest jobs run in: TIMEZONE and every unit's own (read at start-up;
    a unit given a new time zone needs a restart)."""
    zones = {runtime.settings.tz.key}
    with runtime.session_factory() as session:
        zones |= {unit_zone(u, runtime.settings.tz).key for u in repo.list_units(session)}
    return sorted(zones)


def dispatch_alerts(runtime: Runtime) -> dict[str, int]:
    """Every 20 s: pending alerts to leader messages, in one transaction for the batch."""
    with runtime.session_factory.begin() as session:
        counts = runtime.alerts.dispatch(session, now=runtime.clock())
    if counts.get("notified") or counts.get("summaries"):
        runtime.sender_wakeup.set()
        runtime.leader_mail.send_pending()
    return counts


def send_scheduled_digests(
    runtime: Runtime, kind: str, zone_key: str | None = None
) -> list[DigestOutcome]:
    """This kind of digest for every unit (in `zone_key`, when given) that has leaders. Each
    unit in its own transaction, so one failure stops no other."""
    service = runtime.digests
    now = runtime.clock()
    with runtime.session_factory() as session:
        units = [
            unit
            for unit in repo.units_with_leaders(session)
            if zone_key is None or service.zone_of(unit).key == zone_key
        ]
    outcomes = []
    for unit in units:
        try:
            with runtime.session_factory.begin() as session:
                fresh = session.get(Unit, unit.id)
                assert fresh is not None
                outcomes.append(service.send(session, fresh, kind, now=now, scheduled=True))
        except Exception:  # the claim rolled back: `sipas-bot digest send` can send it by hand
            log.exception("event=digest outcome=failed unit=%s kind=%s", unit.code, kind)
    if any(o.channels.get(LeaderMessageStatus.QUEUED) for o in outcomes):
        runtime.sender_wakeup.set()
    if any(o.channels.get(LeaderMessageStatus.EMAIL_PENDING) for o in outcomes):
        runtime.leader_mail.send_pending()
    return outcomes


def deliver_leader_messages(runtime: Runtime) -> int:
    """Every minute: settle leader messages the sender finished, e-mail what needs it."""
    return runtime.leader_mail.deliver()


def follow_cases(runtime: Runtime) -> tuple[int, int]:
    """Every minute: settle the replies the sender finished (a reply Zalo's window kept from
    the citizen marks its case undeliverable) and alert leaders of long-overdue cases; safe
    in several processes (rows are locked, skipped when another process holds them)."""
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        settled = runtime.cases.settle_replies(session, now=now)
        alerted = runtime.cases.alert_overdue(session, now=now)
    if settled or alerted:
        log.info("event=cases_followed replies_settled=%d overdue_alerted=%d", settled, alerted)
    return settled, alerted


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    """Every job, with its trigger from the settings; ConfigError for a bad schedule."""
    settings = runtime.settings
    if runtime.mail_problem:  # a half-configured SMTP stops start-up, not the first e-mail
        raise ConfigError(runtime.mail_problem)
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
        follow_cases, "interval", args=[runtime], minutes=1, id="cases", coalesce=True
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
    scheduler.add_job(
        purge_personal_data_job,
        "cron",
        args=[runtime],
        hour=3,
        minute=15,
        id="purge_personal_data",
        coalesce=True,
        misfire_grace_time=6 * 3600,
    )
    scheduler.add_job(
        forget_old_sign_ins,
        "interval",
        args=[runtime],
        hours=6,
        id="forget_sign_ins",
        coalesce=True,
    )
    return scheduler


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = build_scheduler(runtime)
    scheduler.start()
    return scheduler
