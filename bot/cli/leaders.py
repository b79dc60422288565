"""`sipas-bot leaders ...` and `sipas-bot digest ...`: what ward leaders receive."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup

from bot.cli.context import current_runtime, require_schema
from bot.delivery.window import window_closes_at
from bot.directory import require_unit
from bot.errors import BadArguments, NotReady, UnknownCode
from bot.privacy import Pseudonymizer
from bot.reporting.digests import DIGEST_PERIOD_NAMES, DigestResult
from bot.reporting.periods import PERIOD_NAMES, coverage_text
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import Leader

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _runtime() -> Runtime:
    runtime = current_runtime()
    require_schema(runtime)
    return runtime


def window_status(last: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """Zalo's 7-day window of one user: open (and when it closes), or closed since when."""
    if last is None:
        return "unknown (no interaction recorded)"
    closes = window_closes_at(last)
    if now >= closes:
        return f"closed since {closes.astimezone(zone):%Y-%m-%d %H:%M}"
    left = closes - now
    if left >= timedelta(days=1):
        return f"open, closes in {left.days} day{'s' if left.days > 1 else ''}"
    return f"open, closes in {math.ceil(left.total_seconds() / 3600)} h"


def _find_leader(leaders: list[Leader], given: str, pseudonyms: Pseudonymizer) -> Leader:
    """A leader by number (from `leaders list`), pseudonym, or Zalo user id."""
    value = given.strip()
    found = [
        leader
        for leader in leaders
        if value in (str(leader.id), leader.user_id)
        or pseudonyms.user_tag(leader.user_id) == value.lower()
    ]
    if not found:
        raise UnknownCode(f"no leader {value!r} (see `sipas-bot leaders list`)")
    if len(found) > 1:
        raise BadArguments(f"{value!r} names several leaders: use the pseudonym instead")
    return found[0]


# --- leaders -------------------------------------------------------------------------------


@click.group("leaders", cls=AppGroup)
def leaders() -> None:
    """Unit leaders who receive digests and alerts (they register in the chat with DANGKY)."""


@leaders.command("list")
def leaders_list() -> None:
    """Each leader: pseudonym, name, units, e-mail, and Zalo's 7-day window."""
    runtime = _runtime()
    tag = runtime.pseudonyms.user_tag
    now = runtime.clock()
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        found = repo.list_leaders(session)
        # A leader talks to their units' OA (DANGKY takes only the OA's own units).
        oa_of = {
            leader.id: leader.subscriptions[0].unit.oa_key if leader.subscriptions else ""
            for leader in found
        }
        seen = repo.last_interactions_by_oa(
            session, {(oa_of[leader.id], leader.user_id) for leader in found}
        )
        for leader in found:
            units = (
                ",".join(
                    f"{s.unit.code}{' (pending approval)' if s.pending else ''}"
                    for s in leader.subscriptions
                )
                or "(none)"
            )
            click.echo(
                f"{leader.id:>4}  {tag(leader.user_id)}  {leader.display_name or '-'}  "
                f"units {units}  e-mail {leader.email or '-'}  "
                f"window {window_status(seen.get((oa_of[leader.id], leader.user_id)), now, zone)}"
            )
        lockouts = repo.active_lockouts(session, now=now)
        for lockout in lockouts:
            click.echo(
                f"registration locked for {lockout.unit.code if lockout.unit else 'every unit'} "
                f"until {lockout.locked_until.astimezone(zone):%Y-%m-%d %H:%M} after "
                f"{lockout.failures} wrong codes from all accounts"
            )
    if not found:
        click.echo("no leaders: they send DANGKY <registration code> to the OA in Zalo")


@leaders.command("approve")
@click.option("--leader", "leader_ref", required=True, help="Number or pseudonym (leaders list).")
def leaders_approve(leader_ref: str) -> None:
    """Approve a leader's pending registrations (units with `leader_approval: true`)."""
    runtime = _runtime()
    tag = runtime.pseudonyms.user_tag
    with runtime.session_factory.begin() as session:
        leader = _find_leader(list(repo.list_leaders(session)), leader_ref, runtime.pseudonyms)
        approved = repo.approve_subscriptions(session, leader, now=runtime.clock())
        codes = ", ".join(u.code for u in approved) or "nothing was pending"
        click.echo(f"leader {leader.id} ({tag(leader.user_id)}) approved for {codes}")


@leaders.command("email")
@click.option("--leader", "leader_ref", required=True, help="Number or pseudonym (leaders list).")
@click.option("--email", help="The address digests go to when Zalo's window is closed.")
@click.option("--clear", is_flag=True, help="Remove the leader's e-mail address.")
def leaders_email(leader_ref: str, email: str | None, clear: bool) -> None:
    """Set (or --clear) the e-mail address of a leader."""
    if clear == (email is not None):
        raise BadArguments("give either --email ADDRESS or --clear")
    if email is not None and not _EMAIL.match(email.strip()):
        raise BadArguments(f"--email {email!r} is not an e-mail address")
    runtime = _runtime()
    tag = runtime.pseudonyms.user_tag
    with runtime.session_factory.begin() as session:
        leader = _find_leader(list(repo.list_leaders(session)), leader_ref, runtime.pseudonyms)
        leader.email = None if clear else (email or "").strip()
        leader.updated_at = runtime.clock()
        click.echo(f"leader {leader.id} ({tag(leader.user_id)}): e-mail {leader.email or '-'}")


@leaders.command("name")
@click.option("--leader", "leader_ref", required=True, help="Number or pseudonym (leaders list).")
@click.option("--name", required=True, help="How the leader is shown in `leaders list`.")
def leaders_name(leader_ref: str, name: str) -> None:
    """Set the display name of a leader."""
    runtime = _runtime()
    tag = runtime.pseudonyms.user_tag
    with runtime.session_factory.begin() as session:
        leader = _find_leader(list(repo.list_leaders(session)), leader_ref, runtime.pseudonyms)
        leader.display_name = name.strip()[:200] or None
        leader.updated_at = runtime.clock()
        click.echo(f"leader {leader.id} ({tag(leader.user_id)}): {leader.display_name}")


@leaders.command("remove")
@click.option("--leader", "leader_ref", required=True, help="Number or pseudonym (leaders list).")
@click.option("--unit", "unit_code", help="Only from this unit (default: from every unit).")
def leaders_remove(leader_ref: str, unit_code: str | None) -> None:
    """Stop sending a leader digests and alerts (as HUYDANGKY does in the chat)."""
    runtime = _runtime()
    tag = runtime.pseudonyms.user_tag
    with runtime.session_factory.begin() as session:
        leader = _find_leader(list(repo.list_leaders(session)), leader_ref, runtime.pseudonyms)
        unit_ids = None
        if unit_code is not None:
            unit_ids = [require_unit(session, unit_code).id]
        dropped = repo.unsubscribe(session, leader, unit_ids, now=runtime.clock())
        codes = ", ".join(u.code for u in dropped) or "no unit (nothing to remove)"
        click.echo(f"leader {leader.id} ({tag(leader.user_id)}) removed from {codes}")


# --- digest --------------------------------------------------------------------------------


@click.group("digest", cls=AppGroup)
def digest() -> None:
    """Digests of a unit's surveys for its leaders (sent on the DIGEST_* schedules)."""


@digest.command("send")
@click.option("--unit", "unit_code", required=True, help="The unit, e.g. HVT.")
@click.option(
    "--period",
    "name",
    required=True,
    type=click.Choice(DIGEST_PERIOD_NAMES),
    help="day, week, month: the current one so far; yesterday, last-week, last-month: the "
    "whole one before (what the scheduled daily digest covers is day, the weekly last-week, "
    "the monthly last-month).",
)
@click.option("--dry-run", is_flag=True, help="Print the digest; store and send nothing.")
def digest_send(unit_code: str, name: str, dry_run: bool) -> None:
    """Send a unit's digest to its leaders now (also when the period had no responses).

    It goes into the outbox, which the running server delivers; leaders outside Zalo's
    7-day window get it by e-mail (SMTP_*) right away. A manual digest does not stop the
    scheduled one of the same period.
    """
    runtime = _runtime()
    service = runtime.digests
    now = runtime.clock()
    kind = PERIOD_NAMES[name][0]
    if dry_run:
        with runtime.session_factory() as session:
            unit = require_unit(session, unit_code)
            report = service.report(session, unit, kind, now=now, name=name)
            text = service.render(report, unit, kind, now=now, language="vi")
            leaders_count = len(repo.subscribed_leaders(session, unit.id))
        click.echo(text.zalo_text)
        click.echo(f"[{runtime.texts.of(None)('leader_ack_button')}]")
        click.echo(
            f"(dry run for {name}: {coverage_text(report.period, now)}; nothing stored or "
            f"sent; {len(text.zalo_text)} characters; "
            f"{leaders_count} leader(s) registered)",
            err=True,
        )
        return
    with runtime.session_factory.begin() as session:
        unit = require_unit(session, unit_code)
        outcome = service.send(
            session, unit, kind, now=now, scheduled=False, send_empty=True, name=name
        )
    if outcome.status is DigestResult.NO_LEADERS:
        raise NotReady(
            f"unit {unit_code.upper()} has no leaders: a leader registers by sending "
            "DANGKY <registration code> to the OA"
        )
    if outcome.channels.get("email_pending"):
        runtime.leader_mail.send_pending()
    assert outcome.period is not None
    click.echo(
        f"digest {outcome.digest_id} of {outcome.unit_code} for {name}, "
        f"{coverage_text(outcome.period, now)}: "
        f"{outcome.channels.get('queued', 0)} leader(s) by Zalo (outbox), "
        f"{outcome.channels.get('email_pending', 0)} by e-mail, "
        f"{outcome.channels.get('undelivered', 0)} unreachable (window closed, no e-mail)"
    )


@digest.command("list")
@click.option("--unit", "unit_code", help="Only this unit's digests.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def digest_list(unit_code: str | None, limit: int) -> None:
    """Recent digests, and for each leader how it went and whether they tapped "Đã nhận"."""
    runtime = _runtime()
    tag = runtime.pseudonyms.user_tag
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        unit_id = require_unit(session, unit_code).id if unit_code else None
        found = repo.recent_digests(session, unit_id=unit_id, limit=limit)
        for d in found:
            made = d.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            first = d.period_start.astimezone(zone).date()
            last = (d.period_end.astimezone(zone) - timedelta(seconds=1)).date()
            click.echo(
                f"{d.id:>6}  {made}  {d.unit.code}  {d.kind:<5}  {first}..{last}  "
                f"{d.status}{'' if d.claim_key else ' (manual)'}  {d.responses} response(s)"
            )
            for m in repo.digest_messages(session, d.id):
                ack = (
                    m.acknowledged_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                    if m.acknowledged_at
                    else "-"
                )
                click.echo(
                    f"        leader {m.leader_id} {tag(m.leader.user_id)}  {m.status:<13}  "
                    f"acknowledged {ack}"
                )
    if not found:
        click.echo("no digests yet")


COMMANDS: list[click.Command] = [leaders, digest]
