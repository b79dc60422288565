"""The Runtime an app was built with. Its own module, so that the pages and the webhook can
reach it without importing the app factory that registers them (no import cycle)."""

from __future__ import annotations

from flask import Flask

from bot.runtime import Runtime

EXTENSION = "sipas_bot"


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions[EXTENSION]
    return runtime
