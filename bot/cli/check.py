"""`sipas-bot check`: each setting and dependency, with what to fix."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.cli.context import (
    current_runtime,
    database_label,
)
from bot.config import ConfigError
from bot.reporting.digests import schedules
from bot.runtime import Runtime
from storage import migrate
from zalo_client import ZaloAuthError, ZaloError, ZaloOAuthError

# --- check ---------------------------------------------------------------------------------


@click.command("check")
@with_appcontext
def check() -> None:
    """Check the settings (digest schedules, SMTP), the database and Zalo access; say what
    to fix."""
    runtime = current_runtime()
    settings = runtime.settings
    results: list[tuple[bool, str, str]] = []

    def record(ok: bool, what: str, fix: str = "") -> None:
        results.append((ok, what, fix))
        click.echo(
            f"{'OK  ' if ok else 'FAIL'}  {what}" + (f"\n      -> {fix}" if fix and not ok else "")
        )

    record(True, "settings read (.env and environment)")
    try:
        settings.require_for_serving()
        record(True, "webhook secret and app settings present")
    except ConfigError as exc:
        record(False, "webhook secret and app settings", str(exc))
    try:
        settings.require_for_console()
        record(True, "console session key (CONSOLE_SECRET_KEY)")
    except ConfigError as exc:
        record(False, "console session key", str(exc))
    try:
        schedules(settings, settings.tz)
        record(True, "digest schedules (DIGEST_DAILY_AT, DIGEST_WEEKLY_AT, DIGEST_MONTHLY_AT)")
    except ConfigError as exc:
        record(False, "digest schedules", str(exc))
    mailer = runtime.mailer
    if runtime.mail_problem:
        record(False, "e-mail settings (SMTP_*)", runtime.mail_problem)
    elif mailer is None:
        record(True, "e-mail fallback not set (SMTP_HOST empty)")
    else:
        record(True, f"e-mail fallback via {mailer.host}:{mailer.port}")
    try:
        up_to_date = migrate.is_up_to_date(runtime.engine)
        record(
            up_to_date,
            f"database {database_label(runtime)} at the current schema",
            "run `sipas-bot db upgrade`",
        )
    except (OperationalError, ProgrammingError) as exc:
        up_to_date = False
        record(
            False, f"database {database_label(runtime)} reachable", str(exc.orig).splitlines()[0]
        )
    if settings.zalo_sandbox:
        record(True, "sandbox mode: Zalo is not called (set ZALO_SANDBOX=0 to go live)")
    elif up_to_date and runtime.tokens is not None:
        status = runtime.tokens.status()
        record(
            status.stored,
            "a Zalo token pair is stored",
            "set ZALO_ACCESS_TOKEN/ZALO_REFRESH_TOKEN in .env or run `sipas-bot tokens set`",
        )
        record(
            not status.failing,
            "the last token refresh succeeded",
            f"{status.refresh_error}: re-authorise the app, then `sipas-bot tokens set`",
        )
        if status.stored:
            record(*_check_zalo_api(runtime))
    if not all(ok for ok, _, _ in results):
        sys.exit(1)


def _check_zalo_api(runtime: Runtime) -> tuple[bool, str, str]:
    assert runtime.tokens is not None
    tokens = runtime.tokens
    client = tokens.client  # the service's own client, reading the stored token
    what = f"Zalo API at {runtime.settings.zalo_api_base} accepts the access token"
    try:
        try:
            profile = client.get_oa_profile()
        except ZaloAuthError:
            tokens.refresh(failed_token=tokens.access_token())
            profile = client.get_oa_profile()
    except ZaloOAuthError as exc:
        return (
            False,
            what,
            (
                f"the token was refused and could not be renewed ({exc}): re-authorise the app "
                "in the Zalo console, then `sipas-bot tokens set`"
            ),
        )
    except ZaloError as exc:
        return False, what, f"{exc}: check ZALO_APP_ID, ZALO_APP_SECRET and ZALO_OA_ID"
    name = profile.get("name") or profile.get("oa_id") or "?"
    return True, f"{what} (OA: {name})", ""


COMMANDS: list[click.Command] = [check]
