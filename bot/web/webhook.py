"""`POST /zalo/webhook`: verify, deduplicate, advance the conversation (or, with
WEBHOOK_INTAKE=queued, store the event for a worker), answer 200 fast.

Every request gets a defined answer and one log line (docs/security.md):

    413  body over 64 KiB
    401  no signature, or one that does not sign these bytes (checked on the raw body, with
         the `timestamp` found by a bounded scan, before anything parses it; with many OAs,
         with the secret of the app the body names, or the URL names: /zalo/webhook/<app_id>)
    403  signed by a served app, but for an OA this deployment does not serve (many OAs:
         import the OA in the units file; Zalo re-sends it for about 2 hours)
    400  signed, but not a JSON object with a string event_name (not UTF-8, not JSON,
         nested deeper than MAX_DEPTH): no Zalo event looks like that
    200  handled (WEBHOOK_INTAKE=queued: queued, i.e. stored for a worker), a duplicate,
         or ignored: a signed event that is not the citizen speaking,
         that Zalo cannot have sent (an id of the wrong shape, an over-long event name), or
         whose timestamp is outside the replay window. Zalo re-sends any non-2xx answer and
         disables the webhook after its last retry, so a signed event is never refused with
         an error it would keep re-sending.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DataError
from werkzeug.exceptions import RequestEntityTooLarge

from bot.conversation.service import TurnStatus
from bot.runtime import Runtime
from bot.web.current import runtime_of
from zalo_client import (
    SIGNATURE_HEADER,
    InboundEvent,
    InvalidSignature,
    MalformedEvent,
    UnusableEvent,
    parse_event,
    read_payload,
)
from zalo_client.text import for_log

log = logging.getLogger("sipas_bot.webhook")
# The answer's outcome when the event was stored for a worker (WEBHOOK_INTAKE=queued).
QUEUED = "queued"
blueprint = Blueprint("webhook", __name__)


def _refused(status: int, reason: str, detail: str = "") -> ResponseReturnValue:
    log.warning(
        "event=webhook outcome=rejected status=%d reason=%s%s",
        status,
        reason,
        f" detail={for_log(detail)}" if detail else "",
    )
    return {"error": reason}, status


def _ignored(reason: str, detail: str = "") -> ResponseReturnValue:
    log.warning(
        "event=webhook outcome=ignored status=200 reason=%s%s",
        reason,
        f" detail={for_log(detail)}" if detail else "",
    )
    return {"ok": True, "outcome": "ignored"}, 200


@blueprint.post("/zalo/webhook")
@blueprint.post("/zalo/webhook/<int:app>")  # digits only: any other path stays a 404
def receive(app: int | None = None) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    app_id = None if app is None else str(app)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _refused(413, "body_too_large")
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        return _refused(401, "no_signature")
    try:
        signed = runtime.accounts.verify_body(raw, header, app_id=app_id)
    except InvalidSignature as exc:
        return _refused(401, "bad_signature", exc.reason)
    signed_timestamp = signed.timestamp
    try:
        payload = read_payload(raw)
    except MalformedEvent as exc:
        return _refused(400, "malformed_body", str(exc))
    if _timestamp_text(payload) != signed_timestamp:
        # A "timestamp" deeper in the body signed it, not the event's own: not Zalo's way.
        return _refused(401, "bad_signature", "signed with another timestamp than the event's")
    try:
        event = parse_event(payload)
    except UnusableEvent as exc:
        return _ignored("unusable_event", f"field={exc.reason}")
    except MalformedEvent as exc:
        return _refused(400, "malformed_event", str(exc))
    oa = runtime.accounts.route(event, signed)  # many OAs: the event's OA must be the app's
    if oa is None:
        return _refused(403, "unknown_oa", f"oa={event.oa_id} app={event.app_id}")
    now = runtime.clock()
    if not within_window(event, now=now, window=runtime.settings.replay_window):
        return _ignored("outside_replay_window", f"event={event.name}")

    if runtime.settings.queued_intake:
        return _queue(runtime, event, raw, now=now, oa=oa.key)
    try:
        with runtime.session_factory.begin() as session:
            outcome = runtime.service.handle(session, event, raw, now=now, oa=oa.key)
    except DataError as exc:
        return _data_error(exc)
    if outcome.replies:
        runtime.sender_wakeup.set()
    return {"ok": True, "outcome": outcome.status}, 200


def _queue(
    runtime: Runtime, event: InboundEvent, raw: bytes, *, now: datetime, oa: str
) -> ResponseReturnValue:
    """WEBHOOK_INTAKE=queued: store the checked event (one INSERT) and answer; a worker runs
    its turn (bot/conversation/inbox.py). A re-delivery is stored once: "duplicate"."""
    if not runtime.service.acts_on(event):
        return {"ok": True, "outcome": TurnStatus.IGNORED}, 200
    try:
        with runtime.session_factory.begin() as session:
            stored = runtime.inbox.store(session, event, raw, oa=oa, now=now)
    except DataError as exc:
        return _data_error(exc)
    outcome = QUEUED if stored else TurnStatus.DUPLICATE
    assert event.user_id is not None  # acts_on
    log.info(
        "event=%s user=%s outcome=%s",
        event.name,
        runtime.pseudonyms.user_tag(event.user_id),
        outcome,
    )
    if stored:
        runtime.inbox_wakeup.set()
    return {"ok": True, "outcome": outcome}, 200


def _data_error(exc: DataError) -> ResponseReturnValue:
    # The database refused a value (a fence: the checks above should leave none). Zalo
    # would re-send the same value forever, so it is acknowledged and logged.
    log.error(
        "event=webhook outcome=ignored status=200 reason=data_error error=%s",
        type(exc.orig).__name__,
    )
    return {"ok": True, "outcome": "ignored"}, 200


def within_window(event: InboundEvent, *, now: datetime, window: timedelta) -> bool:
    """Whether the event's signed timestamp is within `window` of `now`, either way. Zalo
    re-sends a failed delivery with its first timestamp for about 2 hours; a captured request
    replayed later is refused here, and one replayed sooner is a duplicate (dedupe)."""
    if event.timestamp_ms is None:
        return False
    now_ms = int(now.timestamp() * 1000)
    return abs(now_ms - event.timestamp_ms) <= window // timedelta(milliseconds=1)


def _timestamp_text(payload: Mapping[str, object]) -> str:
    """The body's `timestamp` as Zalo puts it in the signature ("" when absent)."""
    value = payload.get("timestamp")
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)
