"""The web side: the app factory, the Zalo webhook, and the pages citizens and officials open.

Only bot.web and bot.cli know Flask. `create_app` builds the Runtime (every long-lived
resource) once and hangs it on the app; importing starts nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from flask import Flask

from bot.config import Settings
from bot.delivery.sender import Deliver
from bot.runtime import Runtime, utc_now
from bot.web.current import EXTENSION, runtime_of

__all__ = ["create_app", "runtime_of"]

MAX_BODY_BYTES = 64 * 1024


def create_app(
    config: Settings | Mapping[str, str] | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    deliver: Deliver | None = None,
) -> Flask:
    """Build the app. `config` is Settings, a mapping of env-style names, or None (the env)."""
    settings = config if isinstance(config, Settings) else Settings.from_env(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    runtime = Runtime.build(settings, clock=clock, deliver=deliver)
    app.extensions[EXTENSION] = runtime

    from bot.web import (
        hardening,
        kiosk,
        pages,
        presence,
        privacy_notice,
        results_page,
        sandbox,
        survey_form,
        webhook,
        weblink,
    )
    from bot.web.console import init_console

    hardening.install(app)
    app.register_blueprint(webhook.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(results_page.blueprint)
    app.register_blueprint(presence.blueprint)
    app.register_blueprint(privacy_notice.blueprint)
    app.register_blueprint(sandbox.blueprint)
    app.register_blueprint(survey_form.blueprint)
    app.register_blueprint(kiosk.blueprint)
    app.register_blueprint(weblink.blueprint)
    init_console(app, runtime)
    return app
