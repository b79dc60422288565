"""sipas-bot's service: everything between Zalo, the database and the officials.

The layout (docs/architecture.md), from the top:

- bot.cli       the `sipas-bot` command, one module per command group
- bot.server    serving the web app and the background work in processes
- bot.web       the app factory, the webhook, the pages
- bot.jobs      the scheduled work (digests, alerts, expiry)
- bot.runtime   every long-lived collaborator, built once
- bot.reporting periods, the index, renderings, exports, digests, alerts
- bot.conversation  a webhook event's turn: survey service, leader commands
- bot.delivery  the outbox sender, tokens, e-mail, messages to leaders
- bot.config, bot.units, bot.privacy, bot.errors, bot.files: shared by all

Importing this package starts nothing and imports nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """`flask --app bot` finds the factory here; it lives in bot.web."""
    from bot.web import create_app as factory

    return factory(*args, **kwargs)
