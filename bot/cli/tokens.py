"""`sipas-bot tokens`: an OA's token pair (`--oa` names it when the units file lists several)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from bot.cli.context import (
    current_runtime,
    require_schema,
)
from bot.delivery.tokens import TokenStore
from bot.errors import BadArguments, NotReady
from bot.runtime import Runtime
from zalo_client import ZaloError

# --- tokens --------------------------------------------------------------------------------


@click.group("tokens", cls=AppGroup)
def tokens_group() -> None:
    """An OA's access and refresh tokens (kept in the database, one pair per OA)."""


OA_OPTION = click.option(
    "--oa",
    "oa_id",
    default=None,
    help="The OA's id (from the units file's `oas`); not needed when there is one OA.",
)


def _token_store(runtime: Runtime, oa_id: str | None) -> TokenStore:
    require_schema(runtime)
    if runtime.tokens is None:
        raise NotReady("ZALO_SANDBOX=1: sandbox mode uses no Zalo tokens")
    served = runtime.accounts.all()
    if oa_id is None:
        if len(served) > 1:
            ids = ", ".join(oa.oa_id or "(environment)" for oa in served)
            raise BadArguments(f"several OAs are served: name one with --oa ({ids})")
        oa = served[0]
    else:
        found = next((oa for oa in served if oa.oa_id == oa_id.strip()), None)
        if found is None:
            raise BadArguments(f"--oa {oa_id}: no such OA (see the units file's `oas`)")
        oa = found
    if oa.tokens is None:
        raise NotReady("ZALO_SANDBOX=1: sandbox mode uses no Zalo tokens")
    return oa.tokens


@tokens_group.command("set")
@click.option("--access-token", required=True, help="The new access token.")
@click.option("--refresh-token", required=True, help="The new refresh token.")
@click.option(
    "--expires-in",
    type=click.IntRange(1),
    default=None,
    help="Seconds the access token lives (Zalo says 90000); unknown: refreshed soon.",
)
@OA_OPTION
def tokens_set(
    access_token: str, refresh_token: str, expires_in: int | None, oa_id: str | None
) -> None:
    """Replace the stored pair after re-authorising the app in the Zalo console."""
    _token_store(current_runtime(), oa_id).set_pair(
        access_token.strip(), refresh_token.strip(), expires_in=expires_in
    )
    click.echo("stored the new token pair")


@tokens_group.command("status")
@OA_OPTION
def tokens_status(oa_id: str | None) -> None:
    """Show when the access token expires and whether the last refresh failed."""
    runtime = current_runtime()
    status = _token_store(runtime, oa_id).status()
    if not status.stored:
        raise NotReady("no token pair is stored: run `sipas-bot tokens set`")
    zone = runtime.settings.tz
    expires = (
        status.access_expires_at.astimezone(zone).isoformat(timespec="minutes")
        if status.access_expires_at
        else "unknown (refreshed at the next check)"
    )
    click.echo(f"access token expires: {expires}")
    if status.failing:
        click.echo(f"LAST REFRESH FAILED: {status.refresh_error}")
        sys.exit(1)


@tokens_group.command("refresh")
@OA_OPTION
def tokens_refresh(oa_id: str | None) -> None:
    """Renew the token pair now."""
    runtime = current_runtime()
    store = _token_store(runtime, oa_id)
    try:
        store.refresh(force=True)
    except ZaloError as exc:
        raise NotReady(
            f"the refresh failed ({exc}): re-authorise the app in the Zalo "
            "console, then `sipas-bot tokens set`"
        ) from None
    click.echo("token pair renewed")


COMMANDS: list[click.Command] = [tokens_group]
