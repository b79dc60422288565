"""`sipas-bot check`: each setting and dependency, with what to fix.

The command is a list of small checks, each a function of the Runtime returning its results.
A check that needs another one (the Zalo API needs a stored token pair, which needs the
database) is skipped, saying why, when that one did not pass: every line printed is true.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.cli.context import current_runtime, database_label, dotenv_read
from bot.config import ConfigError
from bot.conversation.inbox import INBOX_LAG_LIMIT
from bot.delivery.accounts import ServedOA
from bot.reporting.digests import schedules
from bot.runtime import Runtime
from bot.units import unit_zone
from storage import migrate
from storage import repositories as repo
from zalo_client import ZaloAuthError, ZaloConnectionError, ZaloError, ZaloOAuthError


class Outcome(Enum):
    OK = "OK"
    WARN = "WARN"  # works, but not as the operator probably wants: does not fail the command
    FAIL = "FAIL"
    SKIP = "SKIP"  # not checked, because a check it needs did not pass


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    what: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.outcome.value:<4}  {self.what}"
        if self.fix and self.outcome in (Outcome.FAIL, Outcome.WARN, Outcome.SKIP):
            text += f"\n      -> {self.fix}"
        return text


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Runtime], list[Result]]
    needs: tuple[str, ...] = ()
    """Checks that must have passed (no FAIL, SKIP) for this one to mean anything."""


# --- the checks ------------------------------------------------------------------------------


def settings_source(_runtime: Runtime) -> list[Result]:
    read = dotenv_read()
    if read.skipped:
        what = "settings read from the environment only (.env not read: FLASK_SKIP_DOTENV is set)"
    elif read.path is not None:
        what = f"settings read from {read.path} and the environment (the environment wins)"
    else:
        what = f"settings read from the environment only: no .env in {Path.cwd()} or above"
    return [Result(Outcome.OK, what)]


def public_addresses(runtime: Runtime) -> list[Result]:
    warnings = runtime.settings.address_warnings()
    if not warnings:
        return [Result(Outcome.OK, f"public address {runtime.settings.public_base_url}")]
    return [Result(Outcome.WARN, warning) for warning in warnings]


def serving_settings(runtime: Runtime) -> list[Result]:
    try:
        runtime.settings.require_for_serving(oas_in_units_file=runtime.accounts.multiple)
    except ConfigError as exc:
        return [Result(Outcome.FAIL, "webhook secret and app settings", str(exc))]
    return [Result(Outcome.OK, "webhook secret and app settings present")]


def digest_schedules(runtime: Runtime) -> list[Result]:
    try:
        schedules(runtime.settings, runtime.settings.tz)
    except ConfigError as exc:
        return [Result(Outcome.FAIL, "digest schedules", str(exc))]
    return [
        Result(
            Outcome.OK, "digest schedules (DIGEST_DAILY_AT, DIGEST_WEEKLY_AT, DIGEST_MONTHLY_AT)"
        )
    ]


def console_session_key(runtime: Runtime) -> list[Result]:
    try:
        runtime.settings.require_for_console()
    except ConfigError as exc:
        return [Result(Outcome.FAIL, "console session key", str(exc))]
    return [Result(Outcome.OK, "console session key (CONSOLE_SECRET_KEY)")]


def email_settings(runtime: Runtime) -> list[Result]:
    mailer = runtime.mailer
    if runtime.mail_problem:
        return [Result(Outcome.FAIL, "e-mail settings (SMTP_*)", runtime.mail_problem)]
    if mailer is None:
        return [Result(Outcome.OK, "e-mail fallback not set (SMTP_HOST empty)")]
    return [Result(Outcome.OK, f"e-mail fallback via {mailer.host}:{mailer.port}")]


def database_schema(runtime: Runtime) -> list[Result]:
    label = database_label(runtime)
    try:
        up_to_date = migrate.is_up_to_date(runtime.engine)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        return [Result(Outcome.FAIL, f"database {label} reachable", reason)]
    if not up_to_date:
        fix = "run `sipas-bot db upgrade`"
        return [Result(Outcome.FAIL, f"database {label} at the current schema", fix)]
    return [Result(Outcome.OK, f"database {label} at the current schema")]


def rollup_zones(runtime: Runtime) -> list[Result]:
    """Units whose reports cannot read the roll-up of counts: it is kept in another time
    zone than theirs, or they have none (docs/reports.md)."""
    with runtime.session_factory() as session:
        kept = repo.rollup_zones(session)
        units = {u.id: u for u in repo.list_units(session)}
        wrong = sorted(
            units[unit_id].code
            for unit_id, zone in kept.items()
            if zone != unit_zone(units[unit_id], runtime.settings.tz).key
        )
    if wrong:
        shown = ", ".join(wrong[:10]) + (" …" if len(wrong) > 10 else "")
        return [
            Result(
                Outcome.WARN,
                f"roll-up of counts: {len(wrong)} unit(s) read from the raw rows ({shown}): "
                "slower reports",
                "run `sipas-bot rollup rebuild` (after a change of TIMEZONE or of a unit's "
                "time zone)",
            )
        ]
    return [Result(Outcome.OK, "roll-up of counts kept in every unit's time zone")]


def zalo_mode(runtime: Runtime) -> list[Result]:
    if runtime.settings.zalo_sandbox:
        return [
            Result(
                Outcome.OK,
                "sandbox mode: Zalo is not called, so its tokens and API are not checked "
                "(set ZALO_SANDBOX=0 to go live)",
            )
        ]
    return []


def oa_secrets(runtime: Runtime) -> list[Result]:
    """Many OAs: each OA's secrets can be read from where the units file says."""
    if not runtime.accounts.multiple:
        return []
    results = []
    for oa in runtime.accounts.all():
        label = _label(runtime, oa)
        if oa.problem is None:
            results.append(Result(Outcome.OK, f"{label}its secrets are readable"))
        else:
            results.append(
                Result(
                    Outcome.FAIL,
                    f"{label}its secrets are readable",
                    f"{oa.problem} (set it, or correct the OA's entry in the units file)",
                )
            )
    return results


def _for_each_oa(
    runtime: Runtime, check: Callable[[Runtime, ServedOA], list[Result]]
) -> list[Result]:
    """A check's lines for every OA served (one OA: its lines as before many were possible)."""
    return [result for oa in runtime.accounts.all() for result in check(runtime, oa)]


def _label(runtime: Runtime, oa: ServedOA) -> str:
    """ "" with one OA (the lines read as before); "OA <id> (<name>): " with several."""
    if not runtime.accounts.multiple:
        return ""
    return f"OA {oa.oa_id or '(environment)'} ({oa.name or '-'}): "


def _oa_option(runtime: Runtime, oa: ServedOA) -> str:
    return f" --oa {oa.oa_id}" if runtime.accounts.multiple and oa.key else ""


def token_pair(runtime: Runtime) -> list[Result]:
    return _for_each_oa(runtime, _token_pair)


def _token_pair(runtime: Runtime, oa: ServedOA) -> list[Result]:
    tokens, label = oa.tokens, _label(runtime, oa)
    if tokens is None:  # sandbox mode, said by zalo_mode
        return []
    if not tokens.status().stored:
        where = (
            "set ZALO_ACCESS_TOKEN/ZALO_REFRESH_TOKEN in .env"
            if not oa.key
            else "name access_token/refresh_token in its `oas` entry"
        )
        return [
            Result(
                Outcome.FAIL,
                f"{label}a Zalo token pair is stored",
                f"{where} or run `sipas-bot tokens set{_oa_option(runtime, oa)}`",
            )
        ]
    return [Result(Outcome.OK, f"{label}a Zalo token pair is stored")]


def last_token_refresh(runtime: Runtime) -> list[Result]:
    return _for_each_oa(runtime, _last_token_refresh)


def _last_token_refresh(runtime: Runtime, oa: ServedOA) -> list[Result]:
    tokens, label = oa.tokens, _label(runtime, oa)
    if tokens is None:
        return []
    status = tokens.status()
    if status.failing:
        return [
            Result(
                Outcome.FAIL,
                f"{label}the last token refresh succeeded",
                f"{status.refresh_error}: re-authorise the app, then "
                f"`sipas-bot tokens set{_oa_option(runtime, oa)}`",
            )
        ]
    return [Result(Outcome.OK, f"{label}no token refresh has failed since the pair was stored")]


def zalo_api(runtime: Runtime) -> list[Result]:
    return _for_each_oa(runtime, _zalo_api)


def _zalo_api(runtime: Runtime, oa: ServedOA) -> list[Result]:
    if oa.tokens is None:
        return []
    tokens, label, option = oa.tokens, _label(runtime, oa), _oa_option(runtime, oa)
    client = tokens.client  # the service's own client, reading the stored token
    base = runtime.settings.zalo_api_base
    what = f"{label}Zalo API at {base} accepts the access token"
    try:
        try:
            profile = client.get_oa_profile()
        except ZaloAuthError:
            tokens.refresh(failed_token=tokens.access_token())
            profile = client.get_oa_profile()
    except ZaloConnectionError as exc:
        return [
            Result(
                Outcome.FAIL,
                f"{label}cannot reach Zalo at {base}",
                f"{exc}: check this machine's network, DNS, proxy and firewall "
                "(the credentials were not tried)",
            )
        ]
    except ZaloOAuthError as exc:
        return [
            Result(
                Outcome.FAIL,
                what,
                f"the token was refused and could not be renewed ({exc}): re-authorise the app "
                f"in the Zalo console, then `sipas-bot tokens set{option}`",
            )
        ]
    except ZaloError as exc:
        return [
            Result(
                Outcome.FAIL,
                what,
                f"{exc}: check ZALO_APP_ID, ZALO_APP_SECRET and ZALO_OA_ID"
                if not oa.key
                else f"{exc}: check the OA's app_id and secrets in the units file",
            )
        ]
    name = profile.get("name") or profile.get("oa_id") or "?"
    return [Result(Outcome.OK, f"{what} (OA: {name})")]


def inbox_backlog(runtime: Runtime) -> list[Result]:
    """The events stored and waiting for a worker's turn: WEBHOOK_INTAKE=queued's, or with
    inline those a queued intake left (said only when there are some)."""
    now = runtime.clock()
    with runtime.session_factory() as session:
        backlog = repo.inbox_backlog(session)
    if not runtime.settings.queued_intake and not backlog.pending:
        return []
    waited = int((now - backlog.oldest).total_seconds()) if backlog.oldest else 0
    intake = "queued" if runtime.settings.queued_intake else "inline, left from queued"
    what = f"inbox (WEBHOOK_INTAKE={intake}): {backlog.pending} event(s) waiting"
    if backlog.oldest is not None and now - backlog.oldest > INBOX_LAG_LIMIT:
        fix = "run `sipas-bot worker` (or `sipas-bot serve` without --no-background)"
        return [Result(Outcome.WARN, f"{what}, the oldest for {waited} s", fix)]
    return [Result(Outcome.OK, what + (f", the oldest for {waited} s" if waited else ""))]


CHECKS: list[Check] = [
    Check("settings", settings_source),
    Check("addresses", public_addresses),
    Check("serving", serving_settings),
    Check("console", console_session_key),
    Check("digests", digest_schedules),
    Check("email", email_settings),
    Check("database", database_schema),
    Check("rollup", rollup_zones, needs=("database",)),
    Check("inbox", inbox_backlog, needs=("database",)),
    Check("mode", zalo_mode),
    Check("oa_secrets", oa_secrets, needs=("database",)),
    Check("token_pair", token_pair, needs=("database",)),
    Check("token_refresh", last_token_refresh, needs=("token_pair",)),
    Check("zalo_api", zalo_api, needs=("token_pair",)),
]


def run_checks(runtime: Runtime, checks: list[Check]) -> list[Result]:
    """Every check in order; one whose needs did not pass is a SKIP naming the first of them."""
    results: list[Result] = []
    passed: dict[str, bool] = {}
    for check in checks:
        failed_need = next((n for n in check.needs if not passed.get(n, False)), None)
        if failed_need is not None:
            results.append(
                Result(
                    Outcome.SKIP,
                    f"{check.name.replace('_', ' ')} not checked",
                    f"it needs the {failed_need.replace('_', ' ')} check to pass first",
                )
            )
            passed[check.name] = False
            continue
        found = check.run(runtime)
        # No result: not applicable here (sandbox mode), which blocks nothing.
        passed[check.name] = all(r.outcome in (Outcome.OK, Outcome.WARN) for r in found)
        results.extend(found)
    return results


@click.command("check")
@with_appcontext
def check() -> None:
    """Check the settings (address, digest schedules, SMTP), the database and Zalo access;
    say what to fix. Exit status 1 when something FAILs (a WARN does not)."""
    results = run_checks(current_runtime(), CHECKS)
    for result in results:
        click.echo(result.line())
    if any(r.outcome is Outcome.FAIL for r in results):
        sys.exit(1)


COMMANDS: list[click.Command] = [check]
