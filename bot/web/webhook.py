"""`POST /zalo/webhook`: verify, deduplicate, advance the conversation, answer 200 fast."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from bot.web import runtime_of
from zalo_client import SIGNATURE_HEADER, InvalidSignature, MalformedEvent, parse_event

log = logging.getLogger("sipas_bot.webhook")
blueprint = Blueprint("webhook", __name__)


@blueprint.post("/zalo/webhook")
def receive() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return {"error": "body too large"}, 413
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        log.warning("event=webhook outcome=rejected reason=no_signature")
        return {"error": "missing signature"}, 401
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        log.warning("event=webhook outcome=rejected reason=malformed_json")
        return {"error": "malformed JSON"}, 400
    timestamp = payload.get("timestamp") if isinstance(payload, dict) else None
    try:
        runtime.verifier.verify(raw, "" if timestamp is None else str(timestamp), header)
    except InvalidSignature as exc:
        log.warning("event=webhook outcome=rejected reason=bad_signature detail=%s", exc)
        return {"error": "invalid signature"}, 401
    try:
        event = parse_event(payload)
    except MalformedEvent as exc:
        log.warning("event=webhook outcome=rejected reason=malformed_event detail=%s", exc)
        return {"error": "malformed event"}, 400

    with runtime.session_factory.begin() as session:
        outcome = runtime.service.handle(session, event, raw, now=runtime.clock())
    if outcome.replies:
        runtime.sender_wakeup.set()
    return {"ok": True, "outcome": outcome.status}, 200
