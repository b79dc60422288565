"""`sipas-bot devices …`, `sipas-bot visits issue` and `sipas-bot units api-key`: the
operator's side of proof of presence (docs/integrity.md)."""

from __future__ import annotations

import csv
import io
import sys
from datetime import datetime, timedelta

import click
import qrcode
from flask.cli import AppGroup, with_appcontext

from bot.cli.context import current_runtime, require_schema
from bot.conversation.presence import issue_visit_codes, new_secret, secret_hash
from bot.errors import UnknownCode
from storage import repositories as repo
from storage.models import DeviceKind

DEVICE_KINDS = tuple(kind.value for kind in DeviceKind)


@click.group("devices", cls=AppGroup)
def devices() -> None:
    """Screens and tablets paired to a counter by a secret link."""


@devices.command("add")
@click.option("--counter", "counter_code", required=True, help="The counter the device is at.")
@click.option("--kind", type=click.Choice(DEVICE_KINDS), default="display", show_default=True)
def devices_add(counter_code: str, kind: str) -> None:
    """Create a device and print its pairing link (and the link as a QR code).

    Open the link once on the device (scan the QR with the tablet): it keeps a cookie and shows
    the counter's page from then on: the rotating code (display) or the survey form (kiosk,
    /kiosk/COUNTER). The link is shown only now; only its hash is stored. `devices revoke`
    ends it.
    """
    runtime = current_runtime()
    require_schema(runtime)
    secret = new_secret()
    with runtime.session_factory.begin() as session:
        counter = repo.find_counter(session, counter_code)
        if counter is None:
            raise UnknownCode(f"no counter has the code {counter_code.upper()}")
        device = repo.add_device(
            session,
            counter_id=counter.id,
            kind=kind,
            secret_hash=secret_hash(secret),
            now=runtime.clock(),
        )
        device_id, code = device.id, counter.code
    link = f"{runtime.settings.public_base_url.rstrip('/')}/devices/pair/{secret}"
    click.echo(f"device {device_id}: {kind} at counter {code}")
    click.echo(link)
    qr = qrcode.QRCode(border=1)
    qr.add_data(link)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    click.echo(out.getvalue())
    if kind == DeviceKind.DISPLAY and not runtime.settings.presence_secret:
        click.echo("note: PRESENCE_SECRET is not set: the display cannot show codes yet", err=True)


@devices.command("list")
def devices_list() -> None:
    """Every device: id, kind, counter, paired, last seen, revoked."""
    runtime = current_runtime()
    require_schema(runtime)
    zone = runtime.settings.tz

    def when(moment: datetime | None) -> str:
        return "-" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    with runtime.session_factory() as session:
        for d in repo.list_devices(session):
            state = "revoked " + when(d.revoked_at) if d.revoked_at else "live"
            click.echo(
                f"{d.id}  {d.kind}  {d.counter.code}  paired {when(d.paired_at)}  "
                f"seen {when(d.last_seen_at)}  {state}"
            )


@devices.command("revoke")
@click.argument("device_ids", nargs=-1, type=int, required=True)
def devices_revoke(device_ids: tuple[int, ...]) -> None:
    """Revoke devices by id: their link and cookie stop working at once."""
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory.begin() as session:
        revoked = repo.revoke_devices(session, device_ids, now=runtime.clock())
    for device_id in device_ids:
        click.echo(f"device {device_id}: {'revoked' if device_id in revoked else 'not live'}")


@click.group("visits", cls=AppGroup)
def visits() -> None:
    """One-time visit codes (each starts one survey)."""


@visits.command("issue")
@click.option("--counter", "counter_code", required=True, help="The counter the codes are for.")
@click.option("--count", type=click.IntRange(1, 10_000), default=1, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "csv"]), default="text")
def visits_issue(counter_code: str, count: int, fmt: str) -> None:
    """Issue COUNT codes for a counter and print them as a sheet to cut (or CSV).

    Each code starts exactly one survey, within PRESENCE_VISIT_CODE_DAYS; the codes are shown
    only now (only their hashes are stored).
    """
    runtime = current_runtime()
    require_schema(runtime)
    with runtime.session_factory.begin() as session:
        counter = repo.find_counter(session, counter_code)
        if counter is None:
            raise UnknownCode(f"no counter has the code {counter_code.upper()}")
        codes, expires_at = issue_visit_codes(
            session,
            counter.id,
            count,
            now=runtime.clock(),
            valid_for=timedelta(days=runtime.settings.presence_visit_code_days),
        )
        name, unit = counter.name, counter.unit.name
        code = counter.code
    until = f"{expires_at.astimezone(runtime.settings.tz):%d/%m/%Y}"
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["counter", "code", "message", "expires"])
        for visit in codes:
            writer.writerow([code, visit, f"#{visit}", until])
        return
    for visit in codes:
        click.echo(f"{unit} – {name}")
        click.echo(f"Đánh giá sự hài lòng: gửi #{visit} đến Zalo OA của đơn vị (hạn {until})")
        click.echo("-" * 60)


@click.command("api-key")
@with_appcontext
@click.argument("unit_code")
def units_api_key(unit_code: str) -> None:
    """Make a new API key for UNIT (for POST /api/visits) and print it once; the old key
    stops working. Only its hash is stored."""
    runtime = current_runtime()
    require_schema(runtime)
    key = new_secret()
    with runtime.session_factory.begin() as session:
        unit = repo.find_unit(session, unit_code)
        if unit is None:
            raise UnknownCode(f"no unit has the code {unit_code.upper()}")
        repo.set_unit_api_key(session, unit.id, secret_hash(key), now=runtime.clock())
    click.echo(key)


COMMANDS: list[click.Command] = [devices, visits]
