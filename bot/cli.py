"""The `sipas-bot` command, built on Flask's CLI (so `flask --app bot ...` works as well).

Every expected failure ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot import create_app, runtime_of
from bot.cli_flows import flows as flows_group
from bot.cli_leaders import COMMANDS as LEADER_COMMANDS
from bot.cli_reports import COMMANDS as REPORT_COMMANDS
from bot.config import ConfigError, Settings
from bot.conversations import user_tag
from bot.digests import schedules
from bot.mailer import Mailer
from bot.runtime import Runtime
from bot.tokens import TokenStore
from storage import migrate
from storage import repositories as repo
from survey_flow.sourcefile import FileProblems
from zalo_client import ZaloAuthError, ZaloError, ZaloOAuthError

log = logging.getLogger("sipas_bot")


def _make_app() -> Flask:
    return create_app()


class _Group(FlaskGroup):
    """Flask's group, listing only our own commands: `--help` then works even when the
    settings are broken (Flask would build the app to look for plugin commands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)


@click.group(cls=_Group, create_app=_make_app, add_version_option=False)
def cli() -> None:
    """sipas-bot: citizen satisfaction (SIPAS) surveys over a Zalo Official Account.

    Settings come from the environment and from a .env file in the current folder
    (see config.example.env). Start with `sipas-bot init-env`, `sipas-bot db upgrade`,
    `sipas-bot units import FILE`, then `sipas-bot serve`.
    """


def _runtime() -> Runtime:
    return runtime_of(current_app)


def _database(runtime: Runtime) -> str:
    return runtime.engine.url.render_as_string(hide_password=True)


def _require_schema(runtime: Runtime) -> None:
    if not migrate.is_up_to_date(runtime.engine):
        raise ConfigError(
            f"the database {_database(runtime)} is not at the current schema: "
            "run `sipas-bot db upgrade`"
        )


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


# --- init-env ------------------------------------------------------------------------------


@cli.command("init-env", with_appcontext=False)
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
    """Write a .env for a first try: sandbox mode and a fresh random webhook secret."""
    if out.exists() and not force:
        raise ConfigError(f"{out} exists already (use --force to replace it)")
    try:
        lines = example.read_text("utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {example}: {exc.strerror}") from None
    fill = {
        "ZALO_OA_SECRET_KEY": secrets.token_urlsafe(24),
        "ZALO_SANDBOX": "1",
        "ZALO_APP_ID": "sandbox-app",
    }
    written = []
    for line in lines:
        name = line.split("=", 1)[0].strip()
        if name in fill and "=" in line and not line.lstrip().startswith("#"):
            line = f"{name}={fill[name]}"
        written.append(line)
    _write_atomically(out, "\n".join(written) + "\n")
    os.chmod(out, 0o600)
    click.echo(
        f"wrote {out}: sandbox mode with a random ZALO_OA_SECRET_KEY; "
        "fill in the ZALO_* values from the Zalo developer console to go live"
    )


# --- db ------------------------------------------------------------------------------------


@cli.group("db")
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create the database, or migrate it to the current schema."""
    runtime = _runtime()
    migrate.upgrade(runtime.engine)
    click.echo(
        f"database {_database(runtime)} is at revision {migrate.current_revision(runtime.engine)}"
    )


# --- units ---------------------------------------------------------------------------------


@cli.group("units")
def units() -> None:
    """Units (wards, departments) and their counters."""


@units.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def units_import(file: Path) -> None:
    """Create or update the units and counters listed in FILE (YAML); all or nothing."""
    runtime = _runtime()
    _require_schema(runtime)
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
    runtime = _runtime()
    _require_schema(runtime)
    with runtime.session_factory() as session:
        for unit in repo.list_units(session):
            click.echo(f"{unit.code}  {unit.name}")
            for counter in unit.counters:
                click.echo(
                    f"  #{counter.code}  {counter.name}  {runtime.settings.qr_url(counter.code)}"
                )


# --- serve ---------------------------------------------------------------------------------


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Request threads (per web process).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web processes. 1: waitress, everything in this process. More: gunicorn.",
)
@click.option(
    "--no-background",
    is_flag=True,
    help="Do not send messages or run jobs here (run `sipas-bot worker` for that).",
)
def serve(host: str, port: int, threads: int, workers: int, no_background: bool) -> None:
    """Serve the webhook and pages, and (unless --no-background) deliver the outbox and run
    the scheduled jobs."""
    from bot.server import serve_gunicorn, serve_one_process

    runtime = _runtime()
    _prepare_to_run(runtime)
    _banner(runtime, host, port)
    if no_background:
        click.echo("  background work is off here: run `sipas-bot worker` as well")
    if workers == 1 and not no_background:
        serve_one_process(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            runtime,
            host=host,
            port=port,
            threads=threads,
        )
        return
    serve_gunicorn(
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        runtime=None if no_background else runtime,
    )


@cli.command("worker")
@click.option(
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Messages sent at once (to different users).",
)
def worker(concurrency: int) -> None:
    """Background work only: deliver the outbox and run the scheduled jobs. Several may run
    at once, on several machines."""
    from bot.server import run_worker

    runtime = _runtime()
    _prepare_to_run(runtime)
    click.echo(f"sipas-bot worker  database {_database(runtime)}")
    if runtime.settings.zalo_sandbox:
        click.secho(
            "  SANDBOX MODE (ZALO_SANDBOX=1): messages are NOT sent to Zalo", fg="yellow", bold=True
        )
    run_worker(runtime, concurrency=concurrency)


def _prepare_to_run(runtime: Runtime) -> None:
    """Everything a serving process checks before it accepts work."""
    settings = runtime.settings
    settings.require_for_serving()
    _require_schema(runtime)
    _configure_logging(settings)
    if runtime.tokens is not None and not runtime.tokens.status().stored:
        raise ConfigError(
            "no Zalo token pair: set ZALO_ACCESS_TOKEN and ZALO_REFRESH_TOKEN in .env, "
            "or run `sipas-bot tokens set`"
        )
    with runtime.session_factory.begin() as session:
        runtime.flows.for_default(session, now=runtime.clock())
        for unit in repo.list_units(session):
            for counter in unit.counters:
                runtime.flows.for_counter(session, counter, now=runtime.clock())


def _banner(runtime: Runtime, host: str, port: int) -> None:
    settings = runtime.settings
    click.echo(f"sipas-bot on http://{host}:{port}  database {_database(runtime)}")
    click.echo(f"  webhook: POST {settings.public_base_url.rstrip('/')}/zalo/webhook")
    if settings.zalo_sandbox:
        click.secho(
            "  SANDBOX MODE (ZALO_SANDBOX=1): messages are NOT sent to Zalo; they are shown\n"
            f"  in this log and at http://{host}:{port}/sandbox.\n"
            "  To go live, set in .env: ZALO_APP_ID, ZALO_APP_SECRET, ZALO_OA_ID,\n"
            "  ZALO_OA_SECRET_KEY, ZALO_ACCESS_TOKEN, ZALO_REFRESH_TOKEN, PUBLIC_BASE_URL,\n"
            "  then ZALO_SANDBOX=0.",
            fg="yellow",
            bold=True,
        )


# --- chat ----------------------------------------------------------------------------------


@cli.command("chat")
@click.option("--counter", "counter_code", required=True, help="The counter code, e.g. HVT01.")
def chat(counter_code: str) -> None:
    """Try a counter's survey in the terminal, with no Zalo account (nothing is stored)."""
    from bot.chat import run_chat

    runtime = _runtime()
    _require_schema(runtime)

    def read(prompt: str) -> str:
        return input(prompt)

    run_chat(runtime, counter_code, read=read, write=click.echo)


# --- export --------------------------------------------------------------------------------


@cli.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output; required for xlsx).",
)
@click.option("--unit", "unit_code", help="Only this unit's surveys.")
@click.option("--counter", "counter_code", help="Only this counter's surveys.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="Started on or after this day.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Started on or before this day.")
def export(
    fmt: str,
    out: Path | None,
    unit_code: str | None,
    counter_code: str | None,
    date_from: str | None,
    date_to: str | None,
) -> None:
    """Export completed and partial surveys, one row per survey, streamed.

    Days are in the unit's time zone (with --unit), else in TIMEZONE. A large export says
    how far it is on standard error every 100,000 surveys.
    """
    from datetime import datetime, time, timedelta

    from bot.export import ExportFilter, export_records, export_rows, write_csv, write_xlsx
    from bot.reports import parse_day, unit_zone

    runtime = _runtime()
    _require_schema(runtime)
    if fmt == "xlsx" and out is None:
        raise ConfigError("--format xlsx needs --out FILE")
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        if unit_code:
            unit = repo.find_unit(session, unit_code)
            if unit is None:
                raise ConfigError(f"no unit has the code {unit_code.upper()}")
            zone = unit_zone(unit, zone)
        if counter_code:
            counter = repo.find_counter(session, counter_code)
            if counter is None:
                raise ConfigError(f"no counter has the code {counter_code.upper()}")
            if unit_code and counter.unit.code != unit_code.upper():
                raise ConfigError(
                    f"counter {counter.code} belongs to unit {counter.unit.code}, "
                    f"not {unit_code.upper()}"
                )
            zone = unit_zone(counter.unit, zone)
        first = parse_day(date_from, "--from") if date_from else None
        last = parse_day(date_to, "--to") if date_to else None
        if first and last and first > last:
            raise ConfigError(f"--from {first} is after --to {last}")
        where = ExportFilter(
            unit_code=unit_code,
            counter_code=counter_code,
            start=datetime.combine(first, time(), zone) if first else None,
            end=datetime.combine(last + timedelta(days=1), time(), zone) if last else None,
        )
        if fmt == "xlsx":
            assert out is not None
            records = export_records(session, runtime.flows, zone=zone, where=where)
            count = write_xlsx(_export_progress(records), out)
        else:
            rows = _export_progress(export_rows(session, runtime.flows, zone=zone, where=where))
            if out is None:
                write_csv(rows, sys.stdout)
                return
            with _atomic_text(out) as handle:
                count = write_csv(rows, handle)
    click.echo(f"wrote {count} survey(s) to {out}", err=True)


def _export_progress(rows: Iterator[list[Any]], *, every: int = 100_000) -> Iterator[list[Any]]:
    """The rows as they are (the header first), with a line on stderr every `every` surveys:
    a million surveys take minutes."""
    for index, row in enumerate(rows):
        if index and index % every == 0:
            click.echo(f"exported {index:,} surveys so far…", err=True)
        yield row


# --- qr ------------------------------------------------------------------------------------


@cli.command("qr")
@click.option("--unit", "unit_code", required=True, help="The unit whose counters get codes.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the PNG and SVG files.",
)
def qr(unit_code: str, out: Path) -> None:
    """Write a QR code (PNG with the counter code under it, and SVG) for each counter."""
    from bot.qr import write_counter_codes

    runtime = _runtime()
    _require_schema(runtime)
    with runtime.session_factory() as session:
        unit = repo.find_unit(session, unit_code)
        if unit is None:
            raise ConfigError(
                f"no unit has the code {unit_code.upper()} (see `sipas-bot units list`)"
            )
        for counter in unit.counters:
            url = runtime.settings.qr_url(counter.code)
            paths = write_counter_codes(url, counter.code, out)
            click.echo(f"#{counter.code}  {url}  -> {', '.join(str(p) for p in paths)}")


cli.add_command(flows_group)
for _command in (*REPORT_COMMANDS, *LEADER_COMMANDS):
    cli.add_command(_command)


# --- tokens --------------------------------------------------------------------------------


@cli.group("tokens")
def tokens_group() -> None:
    """The OA's access and refresh tokens (kept in the database)."""


def _token_store(runtime: Runtime) -> TokenStore:
    _require_schema(runtime)
    if runtime.tokens is None:
        raise ConfigError("ZALO_SANDBOX=1: sandbox mode uses no Zalo tokens")
    return runtime.tokens


@tokens_group.command("set")
@click.option("--access-token", required=True, help="The new access token.")
@click.option("--refresh-token", required=True, help="The new refresh token.")
@click.option(
    "--expires-in",
    type=click.IntRange(1),
    default=None,
    help="Seconds the access token lives (Zalo says 90000); unknown: refreshed soon.",
)
def tokens_set(access_token: str, refresh_token: str, expires_in: int | None) -> None:
    """Replace the stored pair after re-authorising the app in the Zalo console."""
    _token_store(_runtime()).set_pair(
        access_token.strip(), refresh_token.strip(), expires_in=expires_in
    )
    click.echo("stored the new token pair")


@tokens_group.command("status")
def tokens_status() -> None:
    """Show when the access token expires and whether the last refresh failed."""
    runtime = _runtime()
    status = _token_store(runtime).status()
    if not status.stored:
        raise ConfigError("no token pair is stored: run `sipas-bot tokens set`")
    zone = runtime.settings.tz
    expires = (
        status.access_expires_at.astimezone(zone).isoformat(timespec="minutes")
        if status.access_expires_at
        else "unknown (refreshed at the next check)"
    )
    click.echo(f"access token expires: {expires}")
    if status.failing:
        click.echo(f"LAST REFRESH FAILED: {status.refresh_error}")
        sys.exit(1)


@tokens_group.command("refresh")
def tokens_refresh() -> None:
    """Renew the token pair now."""
    runtime = _runtime()
    store = _token_store(runtime)
    try:
        store.refresh(force=True)
    except ZaloError as exc:
        raise ConfigError(
            f"the refresh failed ({exc}): re-authorise the app in the Zalo "
            "console, then `sipas-bot tokens set`"
        ) from None
    click.echo("token pair renewed")


# --- outbox --------------------------------------------------------------------------------


@cli.group("outbox")
def outbox_group() -> None:
    """Messages waiting for, or given up by, the sender."""


@outbox_group.command("list")
@click.option("--dead", is_flag=True, help="Only messages given up (dead letters).")
@click.option("--pending", is_flag=True, help="Only messages waiting to be sent.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def outbox_list(dead: bool, pending: bool, limit: int) -> None:
    """List outbox messages, newest first."""
    runtime = _runtime()
    _require_schema(runtime)
    status = "dead" if dead else "pending" if pending else None
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        messages = repo.list_outbox(session, status=status, limit=limit)
        for m in messages:
            created = m.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            first_line = str(m.body.get("text", "")).splitlines()[0][:50] if m.body else ""
            click.echo(
                f"{m.id:>7}  {m.status:<8} {created}  user {user_tag(m.user_id)}  "
                f"tries {m.attempts}  {first_line}"
            )
            if m.last_error and m.status != "sent":
                click.echo(f"         reason: {m.last_error}")
    if not messages:
        click.echo("no messages")


@outbox_group.command("retry")
@click.argument("message_ids", nargs=-1, required=True, type=int)
def outbox_retry(message_ids: tuple[int, ...]) -> None:
    """Put dead messages back in line to be sent again."""
    runtime = _runtime()
    _require_schema(runtime)
    with runtime.session_factory.begin() as session:
        for message_id in message_ids:
            message = repo.retry_message(session, message_id, now=runtime.clock())
            if message is None:
                raise ConfigError(f"no outbox message has the id {message_id}")
    click.echo(f"{len(message_ids)} message(s) queued again")


# --- check ---------------------------------------------------------------------------------


@cli.command("check")
def check() -> None:
    """Check the settings (digest schedules, SMTP), the database and Zalo access; say what
    to fix."""
    runtime = _runtime()
    settings = runtime.settings
    results: list[tuple[bool, str, str]] = []

    def record(ok: bool, what: str, fix: str = "") -> None:
        results.append((ok, what, fix))
        click.echo(
            f"{'OK  ' if ok else 'FAIL'}  {what}" + (f"\n      -> {fix}" if fix and not ok else "")
        )

    record(True, "settings read (.env and environment)")
    try:
        settings.require_for_serving()
        record(True, "webhook secret and app settings present")
    except ConfigError as exc:
        record(False, "webhook secret and app settings", str(exc))
    try:
        schedules(settings, settings.tz)
        record(True, "digest schedules (DIGEST_DAILY_AT, DIGEST_WEEKLY_AT, DIGEST_MONTHLY_AT)")
    except ConfigError as exc:
        record(False, "digest schedules", str(exc))
    try:
        mailer = Mailer.from_settings(settings)
        record(
            True,
            "e-mail fallback "
            + (
                "not set (SMTP_HOST empty)"
                if mailer is None
                else f"via {mailer.host}:{mailer.port}"
            ),
        )
    except ConfigError as exc:
        record(False, "e-mail settings (SMTP_*)", str(exc))
    try:
        up_to_date = migrate.is_up_to_date(runtime.engine)
        record(
            up_to_date,
            f"database {_database(runtime)} at the current schema",
            "run `sipas-bot db upgrade`",
        )
    except (OperationalError, ProgrammingError) as exc:
        up_to_date = False
        record(False, f"database {_database(runtime)} reachable", str(exc.orig).splitlines()[0])
    if settings.zalo_sandbox:
        record(True, "sandbox mode: Zalo is not called (set ZALO_SANDBOX=0 to go live)")
    elif up_to_date and runtime.tokens is not None:
        status = runtime.tokens.status()
        record(
            status.stored,
            "a Zalo token pair is stored",
            "set ZALO_ACCESS_TOKEN/ZALO_REFRESH_TOKEN in .env or run `sipas-bot tokens set`",
        )
        record(
            not status.failing,
            "the last token refresh succeeded",
            f"{status.refresh_error}: re-authorise the app, then `sipas-bot tokens set`",
        )
        if status.stored:
            record(*_check_zalo_api(runtime))
    if not all(ok for ok, _, _ in results):
        sys.exit(1)


def _check_zalo_api(runtime: Runtime) -> tuple[bool, str, str]:
    assert runtime.tokens is not None
    tokens = runtime.tokens
    client = tokens.client  # the service's own client, reading the stored token
    what = f"Zalo API at {runtime.settings.zalo_api_base} accepts the access token"
    try:
        try:
            profile = client.get_oa_profile()
        except ZaloAuthError:
            tokens.refresh(failed_token=tokens.access_token())
            profile = client.get_oa_profile()
    except ZaloOAuthError as exc:
        return (
            False,
            what,
            (
                f"the token was refused and could not be renewed ({exc}): re-authorise the app "
                "in the Zalo console, then `sipas-bot tokens set`"
            ),
        )
    except ZaloError as exc:
        return False, what, f"{exc}: check ZALO_APP_ID, ZALO_APP_SECRET and ZALO_OA_ID"
    name = profile.get("name") or profile.get("oa_id") or "?"
    return True, f"{what} (OA: {name})", ""


# --- helpers -------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    with _atomic_text(path) as handle:
        handle.write(text)


@contextmanager
def _atomic_text(path: Path) -> Iterator[Any]:
    """A file that appears whole at `path` or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    """Console entry point: expected failures become one line and exit status 2."""
    try:
        cli.main(prog_name="sipas-bot")
    except ConfigError as exc:
        click.echo(f"sipas-bot: error: {exc}", err=True)
        sys.exit(2)
    except FileProblems as exc:
        for problem in exc.problems:
            click.echo(f"sipas-bot: error: {problem}", err=True)
        click.echo("sipas-bot: nothing was changed", err=True)
        sys.exit(2)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        click.echo(f"sipas-bot: error: database: {reason}", err=True)
        sys.exit(2)
    except OSError as exc:  # a file or folder named on the command line
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"sipas-bot: error:{where}: {exc.strerror or exc}", err=True)
        sys.exit(2)
