"""`sipas-bot init-env`, `db upgrade` and `units import|list`: setting a deployment up."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from flask.cli import AppGroup

from bot.cli.context import (
    current_runtime,
    database_label,
    require_schema,
)
from bot.errors import BadArguments
from bot.files import write_text_atomically
from storage import migrate
from storage import repositories as repo

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
def init_env(example: Path, out: Path, force: bool) -> None:
    """Write a .env for a first try: sandbox mode, a fresh random webhook secret and a
    random key for the console's session cookies."""
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
        "CONSOLE_SECRET_KEY": secrets.token_urlsafe(32),
    }
    written = []
    for line in lines:
        name = line.split("=", 1)[0].strip()
        if name in fill and "=" in line and not line.lstrip().startswith("#"):
            line = f"{name}={fill[name]}"
        written.append(line)
    write_text_atomically(out, "\n".join(written) + "\n")
    os.chmod(out, 0o600)
    click.echo(
        f"wrote {out}: sandbox mode with a random ZALO_OA_SECRET_KEY and CONSOLE_SECRET_KEY; "
        "fill in the ZALO_* values from the Zalo developer console to go live"
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
    """Create or update the units and counters listed in FILE (YAML); all or nothing."""
    runtime = current_runtime()
    require_schema(runtime)
    specs = _units_from(file)
    for spec in specs:
        for name in {spec.questionnaire, *(c.questionnaire for c in spec.counters)} - {None}:
            runtime.flows.named(str(name))
    with runtime.session_factory.begin() as session:
        changes = repo.upsert_units(session, specs, now=runtime.clock())
    for change in changes:
        click.echo(change)
    counters = sum(len(spec.counters) for spec in specs)
    click.echo(
        f"{file}: {len(specs)} unit(s), {counters} counter(s); {len(changes) or 'no'} change(s)"
    )


def _units_from(file: Path) -> list[repo.UnitSpec]:
    from bot.units import read_units_file

    return read_units_file(file)


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


COMMANDS: list[click.Command] = [init_env, db, units]
