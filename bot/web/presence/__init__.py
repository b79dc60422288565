"""Proof of presence on the web: pairing a device to a counter, the counter's display of its
rotating code, and the visit-code API a one-stop case system calls.

- `GET /devices/pair/<secret>`: the link `sipas-bot devices add` prints; sets the device
  cookie (the secret itself; only its hash is stored) and goes to the device's page.
- `paired_device`: the device a request's cookie names (the kiosk uses it too).
- `GET /counter/<code>/display`: for a paired display device only, the counter's rotating
  code as a QR (server-rendered SVG) and as text; the page reloads itself when it changes.
- `POST /api/visits`: `Authorization: Bearer <unit API key>`, JSON `{"counter": "HVT01",
  "count": 1}` → 201 `{"codes": [...], "expires_at": ...}`.
- `POST /api/shifts`: the same key, JSON `{"counter": "HVT01", "officer": "CB01"}` → 201: the
  officer's shift at the counter starts (ending the counter's open one); `{"counter":
  "HVT01", "officer": null}` → 200: the open shift ends (docs/channels.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import qrcode
import qrcode.image.svg
from flask import Blueprint, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy.orm import Session

from bot.conversation.presence import issue_visit_codes, secret_hash
from bot.conversation.shifts import end_shift, sign_in
from bot.web.current import runtime_of
from storage import repositories as repo
from storage.models import Counter, Device, DeviceKind, ShiftSource, Unit

log = logging.getLogger("sipas_bot.presence")

blueprint = Blueprint("presence", __name__)

DEVICE_COOKIE = "sipas_device"
DEVICE_COOKIE_DAYS = 400  # browsers cap cookie lifetimes at about 400 days
MAX_VISIT_CODES = 100
SECRET_CHARS = 100


def clean_secret(raw: str | None) -> str | None:
    """A secret from a URL, a cookie or a header, or None when it cannot be one."""
    if not raw or len(raw) > SECRET_CHARS or not raw.isascii() or not raw.isprintable():
        return None
    return raw


@blueprint.get("/devices/pair/<secret>")
def pair(secret: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    cleaned = clean_secret(secret)
    with runtime.session_factory.begin() as session:
        device = repo.find_device(session, secret_hash(cleaned)) if cleaned else None
        if device is None or cleaned is None:
            return render_template("device_unknown.html"), 404
        device.paired_at = device.paired_at or runtime.clock()
        target = (
            f"/kiosk/{device.counter.code}"
            if device.kind == DeviceKind.KIOSK
            else f"/counter/{device.counter.code}/{device.kind}"
        )
        log.info("event=device_paired device=%d counter=%s", device.id, device.counter.code)
    response = redirect(target, code=303)
    response.set_cookie(
        DEVICE_COOKIE,
        cleaned,
        max_age=int(timedelta(days=DEVICE_COOKIE_DAYS).total_seconds()),
        httponly=True,
        secure=runtime.settings.secure_cookies,
        samesite="Strict",
    )
    return response


def paired_device(session: Session, kind: DeviceKind, counter_code: str) -> Device | None:
    """The live device of this kind at this counter whose cookie the request carries (its
    `last_seen_at` set), or None."""
    cleaned = clean_secret(request.cookies.get(DEVICE_COOKIE))
    device = repo.find_device(session, secret_hash(cleaned)) if cleaned else None
    if device is None or device.kind != kind or device.counter.code != counter_code.upper():
        return None
    device.last_seen_at = runtime_of(current_app).clock()
    return device


@blueprint.get("/counter/<code>/display")
def display(code: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        device = paired_device(session, DeviceKind.DISPLAY, code)
        if device is None:
            return render_template("device_unknown.html"), 403
        counter, unit = device.counter.name, device.counter.unit.name
        counter_code = device.counter.code
    if not runtime.rotating.enabled:
        return render_template("device_unknown.html", no_secret=True), 503
    rotating = runtime.rotating.code(counter_code, now)
    svg = qrcode.make(
        runtime.settings.qr_url(rotating),
        image_factory=qrcode.image.svg.SvgPathImage,
        box_size=10,
    ).to_string(encoding="unicode")
    page = render_template(
        "display.html",
        unit=unit,
        counter=counter,
        code=rotating,
        qr=Markup(svg),
        refresh=runtime.rotating.seconds_left(now) + 1,
    )
    return page, 200, {"Cache-Control": "no-store"}


UNAUTHORIZED = {"error": "unauthorized", "message": "a unit API key is needed"}, 401


def _api_unit(session: Session) -> Unit | None:
    """The unit whose API key the request's `Authorization: Bearer` header carries."""
    header = request.headers.get("Authorization", "")
    key = (
        clean_secret(header.removeprefix("Bearer ").strip())
        if header.startswith("Bearer ")
        else None
    )
    return repo.find_unit_by_api_key(session, secret_hash(key)) if key else None


def _unit_counter(unit: Unit, raw: str) -> Counter | tuple[dict[str, str], int]:
    """The unit's counter a request names, or the 404 answer when it has none by that code."""
    wanted = raw.strip().upper()[:40]
    counter = next((c for c in unit.counters if c.code == wanted), None)
    if counter is None:
        return {"error": "unknown_counter", "message": f"no counter {wanted} in {unit.code}"}, 404
    return counter


@blueprint.post("/api/visits")
def visits() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    body: Any = request.get_json(silent=True)
    with runtime.session_factory.begin() as session:
        unit = _api_unit(session)
        if unit is None:
            return UNAUTHORIZED
        if not isinstance(body, dict) or not isinstance(body.get("counter"), str):
            return {"error": "bad_request", "message": 'send JSON {"counter": CODE}'}, 400
        count = body.get("count", 1)
        if (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 1 <= count <= MAX_VISIT_CODES
        ):
            return {"error": "bad_request", "message": f"count must be 1–{MAX_VISIT_CODES}"}, 400
        counter = _unit_counter(unit, body["counter"])
        if not isinstance(counter, Counter):
            return counter
        codes, expires_at = issue_visit_codes(
            session,
            counter.id,
            count,
            now=runtime.clock(),
            valid_for=timedelta(days=runtime.settings.presence_visit_code_days),
        )
        log.info(
            "event=visit_codes_issued unit=%s counter=%s count=%d", unit.code, counter.code, count
        )
    return {
        "counter": counter.code,
        "codes": [{"code": code, "message": f"#{code}"} for code in codes],
        "expires_at": expires_at.isoformat(timespec="seconds"),
    }, 201


@blueprint.post("/api/shifts")
def shifts() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    body: Any = request.get_json(silent=True)
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        unit = _api_unit(session)
        if unit is None:
            return UNAUTHORIZED
        wanted_officer = body.get("officer") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("counter"), str)
            or not isinstance(wanted_officer, str | None)
        ):
            return {
                "error": "bad_request",
                "message": 'send JSON {"counter": CODE, "officer": CODE or null}',
            }, 400
        counter = _unit_counter(unit, body["counter"])
        if not isinstance(counter, Counter):
            return counter
        if wanted_officer is None:
            ended = end_shift(session, counter, now=now)
            return {"counter": counter.code, "officer": None, "ended": ended}, 200
        shift = sign_in(
            session,
            counter,
            wanted_officer,
            via=ShiftSource.API,
            now=now,
            default_zone=runtime.settings.tz,
        )
        if shift is None:
            return {
                "error": "unknown_officer",
                "message": f"no officer {wanted_officer.strip().upper()[:40]} in {unit.code}",
            }, 404
        return {
            "counter": counter.code,
            "officer": shift.officer.code,
            "started_at": shift.started_at.isoformat(timespec="seconds"),
            "ends_at": shift.ended_at.isoformat(timespec="seconds"),
        }, 201
