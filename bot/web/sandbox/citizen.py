"""A simulated citizen: the user id a sandbox name stands for, and a text message from them
as Zalo would deliver it to the webhook (the same JSON shape, signed the same way).

Used by the /sandbox chat box (in-process) and `sipas-bot simulate` (over HTTP), so both go
through the real webhook: signature check, deduplication, the conversation, the outbox.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from datetime import datetime

from zalo_client import SIGNATURE_HEADER, SignatureVerifier

USER_PREFIX = "sandbox-"
_NAME = re.compile(r"[^a-z0-9-]+")
DEFAULT_NAME = "citizen"
MAX_TEXT = 2000  # what a Zalo text message holds


def clean_name(raw: str | None) -> str:
    """A simulated user's name as typed, reduced to 1–24 of a-z, 0-9 and '-' (accents
    dropped: "Chị Lan" is chi-lan)."""
    plain = unicodedata.normalize("NFKD", (raw or "").lower().replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    name = _NAME.sub("-", plain).strip("-")[:24].strip("-")
    return name or DEFAULT_NAME


def user_id_for(name: str) -> str:
    return USER_PREFIX + clean_name(name)


def name_of(user_id: str) -> str | None:
    """The simulated user's name, or None for a real Zalo user."""
    return user_id[len(USER_PREFIX) :] if user_id.startswith(USER_PREFIX) else None


def signed_text_event(
    verifier: SignatureVerifier,
    *,
    app_id: str,
    oa_id: str,
    user_id: str,
    text: str,
    now: datetime,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a `user_send_text` webhook call from `user_id`."""
    timestamp = str(int(now.timestamp() * 1000))
    event = {
        "app_id": app_id,
        "sender": {"id": user_id},
        "recipient": {"id": oa_id or "sandbox-oa"},
        "event_name": "user_send_text",
        "message": {"text": text[:MAX_TEXT], "msg_id": f"sandbox{secrets.token_hex(8)}"},
        "timestamp": timestamp,
    }
    body = json.dumps(event, ensure_ascii=False).encode("utf-8")
    headers = {
        SIGNATURE_HEADER: verifier.sign(body, timestamp),
        "Content-Type": "application/json",
    }
    return body, headers
