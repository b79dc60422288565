"""`sipas-bot init-env`, `db upgrade` and `units import|list`: setting a deployment up."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask.cli import AppGroup

from bot.cli.context import (
    current_runtime,
    database_label,
    require_schema,
)
from bot.config import ConfigError
from bot.errors import BadArguments
from bot.files import write_text_atomically
from bot.runtime import Runtime
from storage import migrate
from storage import repositories as repo

if TYPE_CHECKING:
    from bot.units import UnitsFile

# --- init-env ------------------------------------------------------------------------------


@click.command("init-env")
@click.option(
    "--example",
    default="config.example.env",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to start from.",
)
@click.option(
    "--out",
    default=".env",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--host", help="HOST for `serve` (written to the file).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="PORT for `serve`; PUBLIC_BASE_URL is set to http://127.0.0.1:PORT to match.",
)
def init_env(example: Path, out: Path, force: bool, host: str | None, port: int | None) -> None:
    """Write a .env for a first try: sandbox mode, a fresh random webhook secret, a random
    privacy pepper (keep that one when going live) and a random key for the console's
    session cookies."""
    if out.exists() and not force:
        raise BadArguments(f"{out} exists already (use --force to replace it)")
    try:
        lines = example.read_text("utf-8").splitlines()
    except OSError as exc:
        raise BadArguments(f"cannot read {example}: {exc.strerror}") from None
    fill = {
        "ZALO_OA_SECRET_KEY": secrets.token_urlsafe(24),
        "ZALO_SANDBOX": "1",
        "ZALO_APP_ID": "sandbox-app",
        "PRIVACY_PEPPER": secrets.token_urlsafe(32),
        "CONSOLE_SECRET_KEY": secrets.token_urlsafe(32),
    }
    if host:
        fill["HOST"] = host
    if port:
        fill["PORT"] = str(port)
        # What this machine's browser opens; a phone needs the public address instead.
        shown_host = host if host and host not in ("0.0.0.0", "::") else "127.0.0.1"
        fill["PUBLIC_BASE_URL"] = f"http://{shown_host}:{port}"
    written = []
    for line in lines:
        name = line.split("=", 1)[0].strip()
        if name in fill and "=" in line and not line.lstrip().startswith("#"):
            line = f"{name}={fill[name]}"
        written.append(line)
    write_text_atomically(out, "\n".join(written) + "\n")
    os.chmod(out, 0o600)
    click.echo(
        f"wrote {out}: sandbox mode with a random ZALO_OA_SECRET_KEY, PRIVACY_PEPPER and "
        "CONSOLE_SECRET_KEY; fill in the ZALO_* values from the Zalo developer console to go "
        "live (keep PRIVACY_PEPPER: it cannot change once surveys are stored)"
    )


# --- db ------------------------------------------------------------------------------------


@click.group("db", cls=AppGroup)
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create the database, or migrate it to the current schema."""
    runtime = current_runtime()
    migrate.upgrade(runtime.engine)
    revision = migrate.current_revision(runtime.engine)
    click.echo(f"database {database_label(runtime)} is at revision {revision}")


# --- units ---------------------------------------------------------------------------------


@click.group("units", cls=AppGroup)
def units() -> None:
    """Units (wards, departments) and their counters."""


@units.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def units_import(file: Path) -> None:
    """Create or update the OAs, units, counters and officers listed in FILE (YAML); all or
    nothing. An officer no longer listed is kept for past surveys but cannot sign in; an OA
    whose secrets cannot be read yet is imported with a warning (`check` tests it)."""
    runtime = current_runtime()
    require_schema(runtime)
    source = _units_from(file, runtime)
    specs = source.units
    with runtime.session_factory.begin() as session:
        changes = repo.upsert_oas(session, source.oas, now=runtime.clock())
        changes += repo.upsert_units(session, specs, now=runtime.clock())
    runtime.accounts.forget()
    for change in changes:
        click.echo(change)
    for oa in runtime.accounts.all() if source.oas else []:
        if oa.problem is not None:  # imported all the same: the secret may be set later
            click.echo(f"warning: {oa.problem}", err=True)
    counters = sum(len(spec.counters) for spec in specs)
    click.echo(
        f"{file}: {len(specs)} unit(s), {counters} counter(s); {len(changes) or 'no'} change(s)"
    )


def _units_from(file: Path, runtime: Runtime) -> UnitsFile:
    from bot.units import read_units_source

    def questionnaire_problem(name: str) -> str | None:
        try:
            runtime.flows.named(name)
        except ConfigError as exc:
            return str(exc)
        return None

    return read_units_source(file, check_questionnaire=questionnaire_problem)


@units.command("list")
def units_list() -> None:
    """List units and counters with their QR links."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as session:
        for unit in repo.list_units(session):
            click.echo(f"{unit.code}  {unit.name}")
            for counter in unit.counters:
                click.echo(
                    f"  #{counter.code}  {counter.name}  {runtime.settings.qr_url(counter.code)}"
                )


@units.command("new-code")
@click.option("--unit", "unit_code", help="Start the code with this unit's code (recommended).")
def units_new_code(unit_code: str | None) -> None:
    """Print a strong random registration code for the units file (nothing is stored).

    A code that starts with its unit's code lets the per-unit lockout count every guess at it
    (docs/leaders.md)."""
    from bot.registration_codes import new_code

    click.echo(new_code(unit_code.strip().upper() if unit_code else None))


COMMANDS: list[click.Command] = [init_env, db, units]
