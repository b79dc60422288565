"""The officials' console (/console, docs/console.md): leaders and console users see their
units' figures, comments and alerts, acknowledge alerts, download and print.

Sessions are Flask's signed cookie managed by Flask-Login (HttpOnly, SameSite=Lax, Secure
when PUBLIC_BASE_URL is https, ended CONSOLE_SESSION_HOURS after signing in); every POST of
the console carries Flask-WTF's CSRF token. Without CONSOLE_SECRET_KEY the console answers
503 to everything (fail closed; `sipas-bot serve` refuses to start without it).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_login import LoginManager

from bot.runtime import Runtime
from bot.web.console.base import blueprint, csrf, load_principal, load_texts


def init_console(app: Flask, runtime: Runtime) -> None:
    """Register the console on the app, with its session, sign-in and CSRF set-up."""
    settings = runtime.settings
    if settings.console_secret_key:
        app.secret_key = settings.console_secret_key
    app.config.update(
        SESSION_COOKIE_NAME="sipas_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console_session_hours),
        # CSRF is checked for the console's POSTs only (the webhook is signed instead), and
        # for as long as the session lives.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.extensions["sipas_console_texts"] = load_texts()
    login = LoginManager()
    login.login_view = "console.login"
    login.login_message = ""
    login.session_protection = "basic"
    login.user_loader(load_principal)
    login.init_app(app)
    csrf.init_app(app)

    from bot.web.console import auth, cases, downloads, pages, paper, printables  # noqa: F401  (routes)

    app.register_blueprint(blueprint)
