"""`sipas-bot flows ...`: check and show questionnaires."""

from __future__ import annotations

import click


@click.group("flows")
def flows() -> None:
    """Questionnaires: check a file, show a conversation as a citizen sees it."""
