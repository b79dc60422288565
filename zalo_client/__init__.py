"""Zalo Official Account client: webhook verification and parsing, messages, token refresh.

Knows HTTP and Zalo only; nothing here knows surveys, Flask or SQL.
"""

from __future__ import annotations

from zalo_client.api import (
    QueryButton,
    SentMessage,
    TokenPair,
    UrlButton,
    ZaloClient,
    render_message,
)
from zalo_client.errors import (
    InvalidSignature,
    ZaloAuthError,
    ZaloConnectionError,
    ZaloError,
    ZaloInvalidRequest,
    ZaloNotAuthorised,
    ZaloOAuthError,
    ZaloQuotaExceeded,
    ZaloRateLimited,
    ZaloServerError,
    ZaloUserUnreachable,
    ZaloWindowClosed,
    error_from_response,
)
from zalo_client.events import (
    InboundEvent,
    MalformedEvent,
    UnusableEvent,
    dedupe_key,
    parse_event,
    read_payload,
)
from zalo_client.signature import SIGNATURE_HEADER, SignatureVerifier
from zalo_client.transport import RequestsTransport, Transport, TransportResponse

__all__ = [
    "SIGNATURE_HEADER",
    "InboundEvent",
    "InvalidSignature",
    "MalformedEvent",
    "QueryButton",
    "RequestsTransport",
    "SentMessage",
    "SignatureVerifier",
    "TokenPair",
    "Transport",
    "TransportResponse",
    "UnusableEvent",
    "UrlButton",
    "ZaloAuthError",
    "ZaloClient",
    "ZaloConnectionError",
    "ZaloError",
    "ZaloInvalidRequest",
    "ZaloNotAuthorised",
    "ZaloOAuthError",
    "ZaloQuotaExceeded",
    "ZaloRateLimited",
    "ZaloServerError",
    "ZaloUserUnreachable",
    "ZaloWindowClosed",
    "dedupe_key",
    "error_from_response",
    "parse_event",
    "read_payload",
    "render_message",
]
