"""`sipas-bot leaders ...` and `sipas-bot digest ...`: what ward leaders receive."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
