"""Verification of Zalo webhook calls (the ``X-ZEvent-Signature`` header).

Zalo signs with a plain SHA-256 of ``app_id + raw_body + timestamp + oa_secret_key``, not an
HMAC. There is no timestamp window: Zalo re-sends a failed delivery with the same body and
timestamp for up to about two hours, so replays are handled by deduplication instead.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from zalo_client.errors import InvalidSignature

__all__ = ["SIGNATURE_HEADER", "SignatureVerifier"]

SIGNATURE_HEADER = "X-ZEvent-Signature"

_HEADER_FORMAT = re.compile(r"mac=([0-9a-f]{64})")


class SignatureVerifier:
    """Checks that a webhook body was signed by Zalo for this app and OA secret key."""

    def __init__(self, app_id: str, oa_secret_key: str) -> None:
        self._app_id = app_id
        self._oa_secret_key = oa_secret_key

    def expected_mac(self, raw_body: bytes, timestamp: str) -> str:
        """The hex digest Zalo sends for these exact body bytes and body timestamp."""
        digest = hashlib.sha256()
        digest.update(self._app_id.encode("utf-8"))
        digest.update(raw_body)
        digest.update(timestamp.encode("utf-8"))
        digest.update(self._oa_secret_key.encode("utf-8"))
        return digest.hexdigest()

    def sign(self, raw_body: bytes, timestamp: str) -> str:
        """The header value Zalo would send; lets tests sign their own payloads."""
        return f"mac={self.expected_mac(raw_body, timestamp)}"

    def verify(self, raw_body: bytes, timestamp: str, header: str | None) -> None:
        """Raise InvalidSignature unless ``header`` signs ``raw_body``; fails closed if unset."""
        if not self._app_id or not self._oa_secret_key:
            raise InvalidSignature("verifier has no app id or OA secret key")
        if header is None:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
        match = _HEADER_FORMAT.fullmatch(header)
        if match is None:
            raise InvalidSignature("signature header is not of the form mac=<64 lowercase hex>")
        expected = self.expected_mac(raw_body, timestamp)
        if not hmac.compare_digest(match.group(1), expected):
            raise InvalidSignature("signature does not match")
