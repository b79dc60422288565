"""`sipas-bot report`: the SIPAS index for officials."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
