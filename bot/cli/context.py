"""What every command needs: the Runtime of the app Flask's CLI built, the schema check,
and logging set up for a long-running process."""

from __future__ import annotations

import logging
import os
import sys
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

DOTENV_SKIPPED = "skipped"


def load_dotenv_file() -> Path | str | None:
    """Read `.env` (the current folder's or the nearest parent's) into the environment
    without overriding what is set already; its path, None when there is none, or
    DOTENV_SKIPPED when FLASK_SKIP_DOTENV=1 says not to look."""
    if os.environ.get("FLASK_SKIP_DOTENV", "").lower() not in ("", "0", "false", "no"):
        return DOTENV_SKIPPED
    found = dotenv.find_dotenv(".env", usecwd=True)
    if not found:
        return None
    dotenv.load_dotenv(found, override=False, encoding="utf-8")
    return Path(found)


def dotenv_read() -> Path | str | None:
    """What `load_dotenv_file` found for this command (see there)."""
    info = click.get_current_context().find_object(ScriptInfo)
    result: Path | str | None = info.data.get("dotenv_path") if info else None
    return result


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
