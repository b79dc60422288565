"""`sipas-bot users add|list|remove|totp`: accounts of the officials' console (operators and
viewers; leaders sign in from the chat with DANGNHAP instead, docs/console.md)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from bot.cli.context import current_runtime, require_schema
from bot.directory import require_unit
from bot.errors import BadArguments, UnknownCode
from bot.web.console.accounts import (
    ConsoleRole,
    clean_email,
    hash_password,
    new_totp_secret,
    totp_uri,
)
from storage import repositories as repo
from storage.models import ConsoleUser


@click.group("users", cls=AppGroup)
def users() -> None:
    """Console accounts for operators and viewers."""


@users.command("add")
@click.option("--email", required=True, help="The address the user signs in with.")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in ConsoleRole]),
    help="operator: sees and acts (acknowledges alerts); viewer: only sees.",
)
@click.option(
    "--unit",
    "unit_codes",
    multiple=True,
    help="A unit the user may see (repeat for several); none: every unit.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
@click.option("--totp", "with_totp", is_flag=True, help="Also require a TOTP code; prints its URI.")
def users_add(
    email: str, role: str, unit_codes: tuple[str, ...], password_stdin: bool, with_totp: bool
) -> None:
    """Create a console account (the password is asked for, or read with --password-stdin)."""
    runtime = current_runtime()
    require_schema(runtime)
    address = clean_email(email)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    password_hash = hash_password(password)
    with runtime.session_factory.begin() as session:
        if repo.find_console_user(session, address) is not None:
            raise BadArguments(f"a console user {address} exists already")
        units = {unit.id: unit for unit in (require_unit(session, c) for c in unit_codes)}
        user = repo.add_console_user(
            session,
            email=address,
            role=role,
            password_hash=password_hash,
            units=list(units.values()),
            now=runtime.clock(),
        )
        if with_totp:
            user.totp_secret = new_totp_secret()
        uri = totp_uri(user.totp_secret, address) if user.totp_secret else None
    scope = ", ".join(sorted(c.upper() for c in unit_codes)) or "every unit"
    click.echo(f"added {address} ({role}; {scope})")
    if uri:
        click.echo(f"TOTP: add this to an authenticator app: {uri}")


@users.command("list")
def users_list() -> None:
    """List console accounts with their role and units."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as session:
        for user in repo.list_console_users(session):
            units = ", ".join(u.unit.code for u in user.units) or "every unit"
            totp = "  totp" if user.totp_secret else ""
            click.echo(f"{user.email}  {user.role}  {units}{totp}")


@users.command("remove")
@click.option("--email", required=True)
def users_remove(email: str) -> None:
    """Delete a console account (their acknowledgements stay, under their address)."""
    runtime = current_runtime()
    require_schema(runtime)
    address = clean_email(email)
    with runtime.session_factory.begin() as session:
        user = _require_user(session, address)
        repo.remove_console_user(session, user)
    click.echo(f"removed {address}")


@users.command("totp")
@click.option("--email", required=True)
@click.option("--off", is_flag=True, help="Turn TOTP off for this user.")
def users_totp(email: str, off: bool) -> None:
    """Turn TOTP on (a new secret; prints the otpauth:// URI for an authenticator app) or off."""
    runtime = current_runtime()
    require_schema(runtime)
    address = clean_email(email)
    with runtime.session_factory.begin() as session:
        user = _require_user(session, address)
        user.totp_secret = None if off else new_totp_secret()
        user.updated_at = runtime.clock()
        secret = user.totp_secret
    if secret is None:
        click.echo(f"TOTP turned off for {address}")
    else:
        click.echo(totp_uri(secret, address))


def _require_user(session: Session, address: str) -> ConsoleUser:
    user = repo.find_console_user(session, address)
    if user is None:
        raise UnknownCode(f"no console user {address} (see `sipas-bot users list`)")
    return user


COMMANDS: list[click.Command] = [users]
