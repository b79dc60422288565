"""The `sipas-bot` group: every command module's commands, and the entry point that turns
an expected failure into one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.cli import (
    cases,
    chat,
    check,
    export,
    flows,
    leaders,
    outbox,
    presence,
    privacy,
    qr,
    reports,
    serve,
    setup,
    tokens,
)
from bot.config import ConfigError
from bot.errors import OperatorError
from bot.web import create_app
from survey_flow.sourcefile import FileProblems


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


for _module in (
    setup,
    serve,
    chat,
    export,
    qr,
    tokens,
    outbox,
    check,
    flows,
    reports,
    leaders,
    presence,
    privacy,
    cases,
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
