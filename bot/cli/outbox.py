"""`sipas-bot outbox`: messages waiting for, or given up by, the sender."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cli.context import (
    current_runtime,
    require_schema,
)
from bot.errors import UnknownCode
from bot.privacy.scrub import redact_ids
from storage import repositories as repo
from storage.models import OutboxStatus

# --- outbox --------------------------------------------------------------------------------


@click.group("outbox", cls=AppGroup)
def outbox_group() -> None:
    """Messages waiting for, or given up by, the sender."""


@outbox_group.command("list")
@click.option("--dead", is_flag=True, help="Only messages given up (dead letters).")
@click.option("--pending", is_flag=True, help="Only messages waiting to be sent.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def outbox_list(dead: bool, pending: bool, limit: int) -> None:
    """List outbox messages, newest first."""
    runtime = current_runtime()
    require_schema(runtime)
    status = "dead" if dead else "pending" if pending else None
    zone = runtime.settings.tz
    tag = runtime.pseudonyms.user_tag
    with runtime.session_factory() as session:
        messages = repo.list_outbox(session, status=status, limit=limit)
        for m in messages:
            created = m.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            first_line = str(m.body.get("text", "")).splitlines()[0][:50] if m.body else ""
            click.echo(
                f"{m.id:>7}  {m.status:<8} {created}  user {tag(m.user_id)}  "
                f"tries {m.attempts}  {first_line}"
            )
            if m.last_error and m.status != OutboxStatus.SENT:
                # Rows stored before ids were redacted may still quote one.
                click.echo(f"         reason: {redact_ids(m.last_error)}")
    if not messages:
        click.echo("no messages")


@outbox_group.command("retry")
@click.argument("message_ids", nargs=-1, required=True, type=int)
def outbox_retry(message_ids: tuple[int, ...]) -> None:
    """Put dead messages back in line to be sent again."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory.begin() as session:
        for message_id in message_ids:
            message = repo.retry_message(session, message_id, now=runtime.clock())
            if message is None:
                raise UnknownCode(f"no outbox message has the id {message_id}")
    click.echo(f"{len(message_ids)} message(s) queued again")


COMMANDS: list[click.Command] = [outbox_group]
