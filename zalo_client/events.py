"""Turning a webhook body into a plain event, and keying it for deduplication.

Everything a webhook body carries is checked here, once, before it reaches the bot or the
database: `read_payload` refuses a body that is not a JSON object of sane depth (deep nesting
would otherwise reach `json.loads`'s recursion), and `parse_event` refuses ids that cannot be
Zalo's and cleans the citizen's text (`zalo_client.text.clean_text`).

    MalformedEvent      not a JSON object with a string event_name: not an event at all
    └── UnusableEvent   an event, but one Zalo cannot have sent (an id of the wrong shape,
                        an event name over 64 characters); `reason` says which
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from zalo_client.text import clean_text

__all__ = [
    "MAX_DEPTH",
    "MAX_EVENT_NAME_CHARS",
    "InboundEvent",
    "MalformedEvent",
    "UnusableEvent",
    "dedupe_key",
    "nested_deeper_than",
    "parse_event",
    "read_payload",
]

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted; Zalo's events nest about 4 deep."""
MAX_EVENT_NAME_CHARS = 64

# Zalo's ids are decimal strings of 15-20 digits (users, OAs, apps); message ids are hex of
# about 20. Lenient (longer, letters in message ids) but bounded, and within the columns they
# are stored in (user ids: 64 characters; dedupe keys: "msg:" + 76).
_ACCOUNT_ID = re.compile(r"[0-9]{1,32}")
_MESSAGE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")

# Events the OA originates or that report on OA messages: here sender is the OA and
# recipient is the user, the reverse of user -> OA events.
_OA_SIDE_EVENTS = frozenset({"user_received_message", "user_seen_message"})
_FOLLOW_EVENTS = frozenset({"follow", "unfollow"})
_CHATNOW_EVENT = "user_click_chatnow"


class MalformedEvent(ValueError):
    """The webhook payload is not a JSON object with a string ``event_name``."""


class UnusableEvent(MalformedEvent):
    """A well-formed event with a field Zalo cannot have sent; `reason` names it for a log."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def nested_deeper_than(raw_body: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep in a JSON text, found without
    parsing it (brackets in strings do not count): one pass over the brackets, stopping as
    soon as the limit is passed, never recursive."""
    depth = 0
    for bracket in _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw_body)):
        if bracket in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


# Possessive, and an unterminated string runs to the end: one pass, no backtracking.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]++")
_OPENING = frozenset(b"[{")


def read_payload(raw_body: bytes) -> Mapping[str, object]:
    """The body as a JSON object; MalformedEvent for anything else: not UTF-8, not JSON,
    nested deeper than MAX_DEPTH (checked before parsing), a number too long to read, not
    an object."""
    if nested_deeper_than(raw_body, MAX_DEPTH):
        raise MalformedEvent(f"nested deeper than {MAX_DEPTH}")
    try:
        payload = json.loads(raw_body)
    except UnicodeDecodeError:
        raise MalformedEvent("body is not UTF-8") from None
    except RecursionError:  # not reached after the depth check; kept as a last fence
        raise MalformedEvent("nested too deep") from None
    except ValueError:  # invalid JSON, or an integer past Python's 4,300 digits
        raise MalformedEvent("body is not JSON") from None
    if not isinstance(payload, Mapping):
        raise MalformedEvent("payload is not a JSON object")
    return payload


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
    """Read an event from a parsed webhook body; optional parts that are missing or of another
    type become None. Raises UnusableEvent for an id of the wrong shape or an over-long name,
    and cleans the text (control characters, lone surrogates, length)."""
    if not isinstance(payload, Mapping):
        raise MalformedEvent("payload is not a JSON object")
    name = payload.get("event_name")
    if not isinstance(name, str) or not name:
        raise MalformedEvent("payload has no string event_name")
    if len(name) > MAX_EVENT_NAME_CHARS or not name.isascii() or not name.isprintable():
        raise UnusableEvent("event_name")

    raw_message = payload.get("message")
    message: Mapping[str, object] = raw_message if isinstance(raw_message, Mapping) else {}
    sender = _nested_id(payload, "sender")
    recipient = _nested_id(payload, "recipient")
    top_level_oa = _as_id(payload.get("oa_id"), "oa_id")

    if name.startswith("oa_send_") or name in _OA_SIDE_EVENTS:
        user_id, oa_id = recipient, sender or top_level_oa
    elif name in _FOLLOW_EVENTS:
        user_id, oa_id = _nested_id(payload, "follower"), top_level_oa or recipient
    elif name == _CHATNOW_EVENT:
        # The shape of this event is uncertain; production code reads it either way.
        user_id = (
            _as_id(payload.get("user_id"), "user_id") or _nested_id(payload, "follower") or sender
        )
        oa_id = recipient or top_level_oa
    else:
        user_id, oa_id = sender, recipient or top_level_oa

    # Only a user's own text is an answer: oa_send_text echoes our messages back to us.
    text = message.get("text") if name == "user_send_text" else None
    return InboundEvent(
        name=name,
        user_id=user_id,
        text=clean_text(text) if isinstance(text, str) else None,
        msg_id=_as_id(message.get("msg_id"), "message.msg_id", shape=_MESSAGE_ID),
        timestamp_ms=_as_int(payload.get("timestamp")),
        app_id=_as_id(payload.get("app_id"), "app_id"),
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
    return _as_id(part.get("id"), f"{key}.id") if isinstance(part, Mapping) else None


def _as_id(value: object, field: str, *, shape: re.Pattern[str] = _ACCOUNT_ID) -> str | None:
    """An id as a string; None when absent or not a string or integer; UnusableEvent when it
    is one but cannot be a Zalo id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value) if 0 <= value < 10**64 else "-"
    if not isinstance(value, str) or not value:
        return None
    if shape.fullmatch(value) is None:
        raise UnusableEvent(field)
    return value


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
