"""What every command needs: the Runtime of the app Flask's CLI built, the schema check,
and logging set up for a long-running process."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import dotenv
from flask import current_app
from flask.cli import ScriptInfo

from bot.config import Settings
from bot.errors import NotReady
from bot.runtime import Runtime
from bot.web import runtime_of
from storage import migrate


@dataclass(frozen=True)
class DotenvSource:
    """Which .env this command read: `path`, or none found, or none looked for (`skipped`,
    FLASK_SKIP_DOTENV=1)."""

    path: Path | None = None
    skipped: bool = False


def load_dotenv_file() -> DotenvSource:
    """Read `.env` (the current folder's or the nearest parent's) into the environment
    without overriding what is set already, unless FLASK_SKIP_DOTENV=1."""
    if os.environ.get("FLASK_SKIP_DOTENV", "").lower() not in ("", "0", "false", "no"):
        return DotenvSource(skipped=True)
    found = dotenv.find_dotenv(".env", usecwd=True)
    if not found:
        return DotenvSource()
    dotenv.load_dotenv(found, override=False, encoding="utf-8")
    return DotenvSource(Path(found))


def dotenv_read() -> DotenvSource:
    """What `load_dotenv_file` found for this command; none when the caller (a test) built
    the command's ScriptInfo itself."""
    info = click.get_current_context().find_object(ScriptInfo)
    source = info.data.get("dotenv") if info else None
    return source if isinstance(source, DotenvSource) else DotenvSource()


def warn_about_addresses(settings: Settings, *, listening_port: int | None = None) -> None:
    """Each address problem (see Settings.address_warnings) as one loud line on stderr."""
    for warning in settings.address_warnings(listening_port=listening_port):
        click.secho(f"sipas-bot: warning: {warning}", fg="yellow", bold=True, err=True)


def current_runtime() -> Runtime:
    return runtime_of(current_app)


def database_label(runtime: Runtime) -> str:
    """The database URL without its password, for messages."""
    return runtime.engine.url.render_as_string(hide_password=True)


def require_schema(runtime: Runtime) -> None:
    if not migrate.is_up_to_date(runtime.engine):
        raise NotReady(
            f"the database {database_label(runtime)} is not at the current schema: "
            "run `sipas-bot db upgrade`"
        )


# Libraries whose INFO lines are chatter for an operator: APScheduler logs every run of every
# job ("Running job … executed successfully" every 20 s for the alerts) and each job it adds.
QUIET_LIBRARIES = ("apscheduler",)


def configure_logging(settings: Settings) -> None:
    """Our own lines (each survey, message, error) at LOG_LEVEL; libraries' at WARNING."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
