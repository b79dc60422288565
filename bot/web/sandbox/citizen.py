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

# A simulated user's id must pass the webhook's check like a real one (digits only), and
# name its user for the sandbox page: "00" (no real Zalo id starts with 0), then two digits
# per letter of the name.
USER_PREFIX = "00"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
_NAME = re.compile(r"[^a-z0-9-]+")
NAME_MAX = 15  # 2 + 2 x 15 = 32 digits, the longest id the webhook takes
DEFAULT_NAME = "citizen"
MAX_TEXT = 2000  # what a Zalo text message holds
SANDBOX_OA_ID = "0"  # when ZALO_OA_ID is empty


def clean_name(raw: str | None) -> str:
    """A simulated user's name as typed, reduced to 1–15 of a-z, 0-9 and '-' (accents
    dropped: "Chị Lan" is chi-lan)."""
    plain = unicodedata.normalize("NFKD", (raw or "").lower().replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    name = _NAME.sub("-", plain).strip("-")[:NAME_MAX].strip("-")
    return name or DEFAULT_NAME


def user_id_for(name: str) -> str:
    return USER_PREFIX + "".join(f"{_ALPHABET.index(c):02d}" for c in clean_name(name))


def name_of(user_id: str) -> str | None:
    """The simulated user's name, or None for a real Zalo user."""
    digits = user_id[len(USER_PREFIX) :]
    if not user_id.startswith(USER_PREFIX) or not digits or len(digits) % 2:
        return None
    codes = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    if not all(code < len(_ALPHABET) for code in codes):
        return None
    return "".join(_ALPHABET[code] for code in codes)


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
        "recipient": {"id": oa_id or SANDBOX_OA_ID},
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
