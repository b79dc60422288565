"""`sipas-bot qr`: a QR code file per counter."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from bot.cli.context import (
    current_runtime,
    require_schema,
)
from bot.directory import require_unit

# --- qr ------------------------------------------------------------------------------------


@click.command("qr")
@with_appcontext
@click.option("--unit", "unit_code", required=True, help="The unit whose counters get codes.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the PNG and SVG files.",
)
def qr(unit_code: str, out: Path) -> None:
    """Write a QR code (PNG with the counter code under it, and SVG) for each counter."""
    from bot.printing.qr import write_counter_codes

    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory() as session:
        unit = require_unit(session, unit_code)
        for counter in unit.counters:
            url = runtime.settings.qr_url(counter.code)
            paths = write_counter_codes(url, counter.code, out)
            click.echo(f"#{counter.code}  {url}  -> {', '.join(str(p) for p in paths)}")


COMMANDS: list[click.Command] = [qr]
