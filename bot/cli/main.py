"""The `sipas-bot` group: every command module's commands, and the entry point that turns
an expected failure into one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.cli import (
    cases,
    chat,
    check,
    export,
    flows,
    integrity,
    leaders,
    outbox,
    paper,
    presence,
    printing,
    privacy,
    qr,
    reports,
    rollup,
    serve,
    setup,
    simulate,
    tokens,
    users,
)
from bot.cli.context import load_dotenv_file
from bot.config import ConfigError
from bot.errors import OperatorError
from bot.web import create_app
from survey_flow.sourcefile import FileProblems


def _make_app() -> Flask:
    return create_app()


class _Group(AppGroup):
    """Our commands only, with the app built on first use from the environment and `.env`.

    Not Flask's FlaskGroup: its `run`, `shell`, `routes`, `--app`, `--debug` and `--env-file`
    are not this tool's. The `.env` of the current folder (or the nearest parent) is read
    before anything else, its values never overriding the process environment, unless
    FLASK_SKIP_DOTENV=1. A caller (a test) may pass its own ScriptInfo as `obj`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        dotenv = load_dotenv_file()
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo(create_app=_make_app)
        if isinstance(extra.get("obj"), ScriptInfo):
            extra["obj"].data["dotenv"] = dotenv
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=_Group)
def cli() -> None:
    """sipas-bot: citizen satisfaction (SIPAS) surveys over a Zalo Official Account.

    Settings come from the environment and from a .env file in the current folder
    (see config.example.env). Start with `sipas-bot init-env`, `sipas-bot db upgrade`,
    `sipas-bot units import FILE`, then `sipas-bot serve`.
    """


for _module in (
    setup,
    serve,
    chat,
    simulate,
    export,
    qr,
    printing,
    tokens,
    outbox,
    check,
    flows,
    reports,
    leaders,
    presence,
    privacy,
    users,
    integrity,
    cases,
    paper,
    rollup,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
setup.units.add_command(presence.units_api_key)  # `sipas-bot units api-key UNIT`


def main() -> None:
    """Console entry point: expected failures become one line and exit status 2."""
    try:
        cli.main(prog_name="sipas-bot")
    except (ConfigError, OperatorError) as exc:
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
