"""Verification of Zalo webhook calls (the ``X-ZEvent-Signature`` header).

Zalo signs with a plain SHA-256 of ``app_id + raw_body + timestamp + oa_secret_key``, not an
HMAC. The timestamp is the body's own `timestamp` field, so `verify_body` finds it with a
bounded scan of the raw bytes: the signature is checked before anything parses the body.
The replay window (how old a signed timestamp may be) is the webhook's: Zalo re-sends a
failed delivery with the same body and timestamp for up to about two hours.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from zalo_client.errors import InvalidSignature

__all__ = ["SIGNATURE_HEADER", "SignatureVerifier"]

SIGNATURE_HEADER = "X-ZEvent-Signature"

_HEADER_FORMAT = re.compile(r"mac=([0-9a-f]{64})")
# `"timestamp": "1543908534740"` or `"timestamp": 1543908534740`. A nested object may hold a
# "timestamp" too, so each of the first few is tried; the caller then checks that the one
# that verified is the top-level field.
_TIMESTAMP_FIELD = re.compile(rb'"timestamp"\s*+:\s*+(?:"([^"\\]{0,40})"|(-?[0-9]{1,40}))')
_MAX_TIMESTAMP_CANDIDATES = 4


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
        mac = self._mac_in(header)
        if not hmac.compare_digest(mac, self.expected_mac(raw_body, timestamp)):
            raise InvalidSignature("signature does not match")

    def verify_body(self, raw_body: bytes, header: str | None) -> str:
        """Verify `raw_body` without parsing it; returns the timestamp text it was signed with
        ("" when the body has none). Raises InvalidSignature as `verify` does."""
        mac = self._mac_in(header)
        candidates: list[str] = []
        for found in _TIMESTAMP_FIELD.finditer(raw_body):
            quoted, number = found.group(1), found.group(2)
            text = (quoted if quoted is not None else number).decode("utf-8", "replace")
            if text not in candidates:
                candidates.append(text)
            if len(candidates) == _MAX_TIMESTAMP_CANDIDATES:
                break
        candidates.append("")
        for timestamp in candidates:
            if hmac.compare_digest(mac, self.expected_mac(raw_body, timestamp)):
                return timestamp
        raise InvalidSignature("signature does not match")

    def _mac_in(self, header: str | None) -> str:
        """The hex digest a header carries; fails closed when this verifier has no secret."""
        if not self._app_id or not self._oa_secret_key:
            raise InvalidSignature("verifier has no app id or OA secret key")
        if header is None:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
        match = _HEADER_FORMAT.fullmatch(header)
        if match is None:
            raise InvalidSignature("signature header is not of the form mac=<64 lowercase hex>")
        return match.group(1)
