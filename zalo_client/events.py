"""Turning a parsed Zalo webhook payload into a plain event, and keying it for deduplication."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["InboundEvent", "MalformedEvent", "dedupe_key", "parse_event"]

# Events the OA originates or that report on OA messages: here sender is the OA and
# recipient is the user, the reverse of user -> OA events.
_OA_SIDE_EVENTS = frozenset({"user_received_message", "user_seen_message"})
_FOLLOW_EVENTS = frozenset({"follow", "unfollow"})
_CHATNOW_EVENT = "user_click_chatnow"


class MalformedEvent(ValueError):
    """The webhook payload is not a JSON object with a string ``event_name``."""


@dataclass(frozen=True)
class InboundEvent:
    """One webhook event, reduced to what the bot acts on. Ids stay strings."""

    name: str
    user_id: str | None
    text: str | None
    msg_id: str | None
    timestamp_ms: int | None
    app_id: str | None
    oa_id: str | None


def parse_event(payload: object) -> InboundEvent:
    """Read an event from a parsed webhook body; optional parts that are missing become None."""
    if not isinstance(payload, Mapping):
        raise MalformedEvent("payload is not a JSON object")
    name = payload.get("event_name")
    if not isinstance(name, str) or not name:
        raise MalformedEvent("payload has no string event_name")

    raw_message = payload.get("message")
    message: Mapping[str, object] = raw_message if isinstance(raw_message, Mapping) else {}
    sender = _nested_id(payload, "sender")
    recipient = _nested_id(payload, "recipient")
    top_level_oa = _as_id(payload.get("oa_id"))

    if name.startswith("oa_send_") or name in _OA_SIDE_EVENTS:
        user_id, oa_id = recipient, sender or top_level_oa
    elif name in _FOLLOW_EVENTS:
        user_id, oa_id = _nested_id(payload, "follower"), top_level_oa or recipient
    elif name == _CHATNOW_EVENT:
        # The shape of this event is uncertain; production code reads it either way.
        user_id = _as_id(payload.get("user_id")) or _nested_id(payload, "follower") or sender
        oa_id = recipient or top_level_oa
    else:
        user_id, oa_id = sender, recipient or top_level_oa

    # Only a user's own text is an answer: oa_send_text echoes our messages back to us.
    text = message.get("text") if name == "user_send_text" else None
    return InboundEvent(
        name=name,
        user_id=user_id,
        text=text if isinstance(text, str) else None,
        msg_id=_as_id(message.get("msg_id")),
        timestamp_ms=_as_int(payload.get("timestamp")),
        app_id=_as_id(payload.get("app_id")),
        oa_id=oa_id,
    )


def dedupe_key(event: InboundEvent, raw_body: bytes) -> str:
    """A key that stays the same when Zalo re-sends the same event.

    Re-sends carry the same body, timestamp and msg_id, while two different events can
    share a timestamp, so the key is the msg_id, or the body's hash when there is none.
    """
    if event.msg_id:
        return f"msg:{event.msg_id}"
    return f"body:{hashlib.sha256(raw_body).hexdigest()}"


def _nested_id(payload: Mapping[str, object], key: str) -> str | None:
    part = payload.get(key)
    return _as_id(part.get("id")) if isinstance(part, Mapping) else None


def _as_id(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None
