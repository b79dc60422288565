"""What every command needs: the Runtime of the app Flask's CLI built, the schema check,
and logging set up for a long-running process."""

from __future__ import annotations

import logging
import sys

from flask import current_app

from bot.config import Settings
from bot.errors import NotReady
from bot.runtime import Runtime
from bot.web import runtime_of
from storage import migrate


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
