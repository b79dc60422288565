"""The `sipas-bot` command: one module per command group, gathered by bot.cli.main.

Commands read and check what the operator typed, call domain code, and print; domain code
raises `OperatorError` or `ConfigError`, which `main` prints as one line."""

from __future__ import annotations

from bot.cli.main import cli, main

__all__ = ["cli", "main"]
