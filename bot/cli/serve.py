"""`sipas-bot serve` and `sipas-bot worker`: the long-running processes."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from bot.cli.context import (
    configure_logging,
    current_runtime,
    database_label,
    require_schema,
    warn_about_addresses,
)
from bot.config import ConfigError
from bot.runtime import Runtime
from storage import repositories as repo

# --- serve ---------------------------------------------------------------------------------


@click.command("serve")
@with_appcontext
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="HOST",
    help="Address to listen on (or HOST in the environment or .env).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    envvar="PORT",
    type=click.IntRange(1, 65535),
    help="Port to listen on (or PORT in the environment or .env).",
)
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

    runtime = current_runtime()
    _prepare_to_run(runtime)
    runtime.settings.require_for_console()
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


@click.command("worker")
@with_appcontext
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

    runtime = current_runtime()
    _prepare_to_run(runtime)
    click.echo(f"sipas-bot worker  database {database_label(runtime)}")
    if runtime.settings.zalo_sandbox:
        click.secho(
            "  SANDBOX MODE (ZALO_SANDBOX=1): messages are NOT sent to Zalo", fg="yellow", bold=True
        )
    run_worker(runtime, concurrency=concurrency)


def _prepare_to_run(runtime: Runtime) -> None:
    """Everything a serving process checks before it accepts work."""
    settings = runtime.settings
    settings.require_for_serving(oas_in_units_file=runtime.accounts.multiple)
    require_schema(runtime)
    configure_logging(settings)
    if not runtime.accounts.multiple:
        if runtime.tokens is not None and not runtime.tokens.status().stored:
            raise ConfigError(
                "no Zalo token pair: set ZALO_ACCESS_TOKEN and ZALO_REFRESH_TOKEN in .env, "
                "or run `sipas-bot tokens set`"
            )
    else:
        # Many OAs: one OA without a pair (or its secrets) waits alone; the others are served.
        for oa in runtime.accounts.all():
            if oa.problem is not None:
                click.secho(f"  OA {oa.oa_id}: {oa.problem}", fg="yellow", err=True)
            elif oa.tokens is not None and not oa.tokens.status().stored:
                click.secho(
                    f"  OA {oa.oa_id}: no token pair (`sipas-bot tokens set --oa {oa.oa_id}`);"
                    " its messages wait",
                    fg="yellow",
                    err=True,
                )
    with runtime.session_factory.begin() as session:
        runtime.flows.for_default(session, now=runtime.clock())
        for unit in repo.list_units(session):
            for counter in unit.counters:
                runtime.flows.for_counter(session, counter, now=runtime.clock())


def _banner(runtime: Runtime, host: str, port: int) -> None:
    settings = runtime.settings
    base = settings.public_base_url.rstrip("/")
    click.echo(f"sipas-bot on {base}  (listening on {host}:{port})")
    click.echo(f"  database {database_label(runtime)}")
    click.echo(f"  webhook: POST {base}/zalo/webhook")
    warn_about_addresses(settings, listening_port=port)
    if settings.zalo_sandbox:
        click.secho(
            "  SANDBOX MODE (ZALO_SANDBOX=1): messages are NOT sent to Zalo; they are shown\n"
            # The sandbox answers only on this machine: its loopback address, whatever
            # PUBLIC_BASE_URL says.
            f"  in this log and at http://127.0.0.1:{port}/sandbox, where you can play a\n"
            "  citizen (or: sipas-bot simulate --counter CODE).\n"
            "  To go live, set in .env: ZALO_APP_ID, ZALO_APP_SECRET, ZALO_OA_ID,\n"
            "  ZALO_OA_SECRET_KEY, ZALO_ACCESS_TOKEN, ZALO_REFRESH_TOKEN, PUBLIC_BASE_URL,\n"
            "  then ZALO_SANDBOX=0.",
            fg="yellow",
            bold=True,
        )


COMMANDS: list[click.Command] = [serve, worker]
