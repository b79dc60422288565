"""`sipas-bot privacy purge|erase|report`: personal data (docs/privacy.md)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from bot.cli.context import current_runtime, require_schema
from bot.errors import BadArguments
from bot.privacy.retention import Retention, erase_person, purge_personal_data
from bot.runtime import Runtime
from storage import repositories as repo


@click.group("privacy", cls=AppGroup)
def privacy() -> None:
    """Personal data: purge what is past its retention, erase a person, report what is kept."""


def _runtime() -> Runtime:
    runtime = current_runtime()
    require_schema(runtime)
    return runtime


@privacy.command("purge")
def privacy_purge() -> None:
    """Run the daily purge now: drop citizens' Zalo ids 7 days after their last message and
    delivered messages after OUTBOX_RETENTION_DAYS."""
    runtime = _runtime()
    with runtime.session_factory.begin() as session:
        purged = purge_personal_data(
            session,
            now=runtime.clock(),
            retention=Retention.from_settings(runtime.settings),
            pseudonyms=runtime.pseudonyms,
        )
    click.echo(
        f"conversations dropped: {purged.conversations} (with {purged.messages_to_them} "
        f"message(s) to them); delivered messages deleted: {purged.delivered_messages}; "
        f"surveys re-keyed from the old unkeyed hash: {purged.surveys_rekeyed}"
    )


@privacy.command("erase")
@click.option("--zalo-user", "zalo_user", help="The person's Zalo user id.")
@click.option("--pseudonym", help="The pseudonym shown in logs and listings (12 hex digits).")
def privacy_erase(zalo_user: str | None, pseudonym: str | None) -> None:
    """Erase a person on request: their conversation, messages and comments are deleted,
    their surveys' ratings are kept linked to nobody; prints what was done."""
    if (zalo_user is None) == (pseudonym is None):
        raise BadArguments("give either --zalo-user ID or --pseudonym TAG")
    if pseudonym is not None and not _is_tag(pseudonym):
        raise BadArguments(f"--pseudonym {pseudonym!r}: expected the 12 hex digits of a pseudonym")
    if zalo_user is not None and not zalo_user.strip():
        raise BadArguments("--zalo-user is empty")
    runtime = _runtime()
    with runtime.session_factory.begin() as session:
        erased = erase_person(
            session,
            pseudonyms=runtime.pseudonyms,
            zalo_user_id=zalo_user.strip() if zalo_user is not None else None,
            pseudonym=pseudonym,
        )
    for line in erased.lines():
        click.echo(line)
    if not erased.user_ids and not erased.surveys_unlinked:
        click.echo("nothing is stored about this person")


def _is_tag(value: str) -> bool:
    value = value.strip().lower()
    return len(value) == 12 and all(c in "0123456789abcdef" for c in value)


@privacy.command("report")
def privacy_report() -> None:
    """What personal data is stored, how much of it, and how long it is kept."""
    runtime = _runtime()
    retention = Retention.from_settings(runtime.settings)
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        counts = repo.row_counts(session)
        oldest = repo.oldest_conversation(session)
    window = _days(retention.raw_user_id)
    kept = _days(retention.delivered_message)
    oldest_text = f", the oldest last seen {oldest.astimezone(zone):%Y-%m-%d}" if oldest else ""
    rows = [
        (
            "conversations (raw Zalo id, language, open survey)",
            counts["conversations"],
            f"citizens: {window} after their last message; leaders: while registered" + oldest_text,
        ),
        (
            "outbox messages (raw Zalo id, message text)",
            counts["outbox_messages"],
            f"{kept} after delivery or giving up ({counts['outbox_pending']} waiting)",
        ),
        (
            "surveys (keyed respondent hash, counter, times, ratings)",
            counts["survey_responses"],
            "kept for the index; unlinked from the person on erasure",
        ),
        (
            "comments (scrubbed of phone, ID numbers, e-mail)",
            counts["comments"],
            "kept with their survey; deleted on erasure",
        ),
        ("leaders (raw Zalo id, name, e-mail)", counts["leaders"], "while registered"),
        (
            "leader messages (digests and alerts, quoting comments)",
            counts["leader_messages"],
            "kept as the record of what leaders were sent",
        ),
        (
            "wrong registration codes (raw Zalo id)",
            counts["registration_failures"],
            "1 day",
        ),
        (
            f"officers (staff's code and name; {counts['shifts']} shift(s) at counters)",
            counts["officers"],
            "while the units file lists them; then kept, inactive, with their surveys",
        ),
    ]
    for what, count, how_long in rows:
        click.echo(f"{what}: {count} row(s); kept {how_long}")
    click.echo(
        "pseudonyms: HMAC-SHA256 under PRIVACY_PEPPER "
        + ("(set)" if runtime.settings.privacy_pepper else "(NOT SET)")
    )


def _days(span: timedelta) -> str:
    return f"{span.days} day{'s' if span.days != 1 else ''}"


COMMANDS: list[click.Command] = [privacy]
