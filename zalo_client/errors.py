"""Errors raised at the Zalo boundary, and the one function that maps a response to them.

Zalo reports most failures with HTTP 200 and a negative ``error`` code, so a response is
judged by its body first and by its HTTP status second.

An error's text (what gets logged, and stored beside an outbox message) never holds the
recipient's Zalo id, which is personal data: the id is the ``user_id`` attribute, and where
Zalo's own message quotes it, it is replaced by ``<user>``.

    ZaloError                  code, http_status, user_id, should_retry
    ├── ZaloAuthError          -216, -220, -124: refresh the access token, retry once
    ├── ZaloRateLimited        -32 (or HTTP 429)                       should_retry
    ├── ZaloQuotaExceeded      -211                                    should_retry
    ├── ZaloWindowClosed       -230, -232: outside the 7-day interaction window
    ├── ZaloUserUnreachable    -213 not a follower, -227 banned or inactive
    ├── ZaloInvalidRequest     -201 and any code not listed here
    ├── ZaloNotAuthorised      -223, -224: an operator must act
    ├── ZaloServerError        HTTP 5xx                                should_retry
    ├── ZaloConnectionError    timeout, connection error, non-JSON body should_retry;
    │                          may_have_arrived after a read timeout
    └── ZaloOAuthError         token refresh refused; carries error_name

    InvalidSignature           a webhook call failed verification (separate boundary)
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "InvalidSignature",
    "ZaloAuthError",
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
    "error_from_response",
]


class ZaloError(Exception):
    """A call to Zalo failed; carries what a person needs to tell why and for whom."""

    should_retry: bool = False

    def __init__(
        self,
        detail: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        user_id: str | None = None,
    ) -> None:
        # Zalo's messages sometimes quote the recipient ("user 2468… has not interacted…").
        self.detail = detail.replace(user_id, "<user>") if user_id else detail
        self.code = code
        self.http_status = http_status
        self.user_id = user_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (("code", self.code), ("http_status", self.http_status))
            if value is not None
        ]
        return f"{self.detail} ({', '.join(context)})" if context else self.detail


class ZaloAuthError(ZaloError):
    """The access token is invalid or expired; callers refresh it and retry once."""


class ZaloRateLimited(ZaloError):
    """Over the per-app request rate; back off and retry later."""

    should_retry = True


class ZaloQuotaExceeded(ZaloError):
    """The OA is out of message quota; retry later and tell an operator."""

    should_retry = True


class ZaloWindowClosed(ZaloError):
    """The user last interacted more than 7 days ago; this message cannot be sent."""


class ZaloUserUnreachable(ZaloError):
    """The user does not follow the OA, or is banned or inactive."""


class ZaloInvalidRequest(ZaloError):
    """Zalo rejected the request itself, or answered with a code we do not know."""


class ZaloNotAuthorised(ZaloError):
    """The OA may not use this API (or its package must be upgraded); an operator must act."""


class ZaloServerError(ZaloError):
    """Zalo answered with HTTP 5xx."""

    should_retry = True


class ZaloConnectionError(ZaloError):
    """No usable answer: timeout, connection failure, or a body that is not JSON.

    `may_have_arrived`: after a read timeout, a broken-off answer or a 2xx answer that is not
    JSON, Zalo may well have sent the message, and a quick resend would deliver it twice.
    False when the connection failed (refused, reset, never made).
    """

    should_retry = True

    def __init__(
        self,
        detail: str,
        *,
        may_have_arrived: bool = True,
        code: int | None = None,
        http_status: int | None = None,
        user_id: str | None = None,
    ) -> None:
        self.may_have_arrived = may_have_arrived
        super().__init__(detail, code=code, http_status=http_status, user_id=user_id)


class ZaloOAuthError(ZaloError):
    """Refreshing the access token failed; the stored pair may need a human to re-authorise."""

    def __init__(
        self,
        detail: str,
        *,
        error_name: str | None = None,
        code: int | None = None,
        http_status: int | None = None,
        user_id: str | None = None,
    ) -> None:
        self.error_name = error_name
        super().__init__(detail, code=code, http_status=http_status, user_id=user_id)


class InvalidSignature(Exception):
    """A webhook call did not carry a valid ``X-ZEvent-Signature``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


_CODE_ERRORS: dict[int, type[ZaloError]] = {
    -32: ZaloRateLimited,
    -124: ZaloAuthError,
    -201: ZaloInvalidRequest,
    -211: ZaloQuotaExceeded,
    -213: ZaloUserUnreachable,
    -216: ZaloAuthError,
    -220: ZaloAuthError,
    -223: ZaloNotAuthorised,
    -224: ZaloNotAuthorised,
    -227: ZaloUserUnreachable,
    -230: ZaloWindowClosed,
    -232: ZaloWindowClosed,
}


def error_from_response(
    *, http_status: int, body: object, user_id: str | None = None
) -> ZaloError | None:
    """Map one Zalo response to the exception it stands for, or None on success.

    Success is HTTP 2xx with ``error`` equal to 0. An absent ``error`` also counts as 0
    because the OAuth endpoint omits it; callers still check the payload they need.
    """
    ok_status = 200 <= http_status < 300
    if http_status >= 500:
        return ZaloServerError("Zalo server error", http_status=http_status, user_id=user_id)
    if not isinstance(body, Mapping):
        if http_status == 429:
            return ZaloRateLimited("rate limited", http_status=http_status, user_id=user_id)
        if ok_status:
            return ZaloConnectionError(
                "response body is not a JSON object", http_status=http_status, user_id=user_id
            )
        return ZaloInvalidRequest("request rejected", http_status=http_status, user_id=user_id)

    code = _error_code(body.get("error"))
    error_name = body.get("error_name")
    if isinstance(error_name, str) and error_name:
        description = body.get("error_description")
        detail = f"{error_name}: {description}" if isinstance(description, str) else error_name
        return ZaloOAuthError(
            detail, error_name=error_name, code=code, http_status=http_status, user_id=user_id
        )

    message = body.get("message")
    detail = message if isinstance(message, str) and message else "Zalo error"
    if "error" in body and code is None:
        return ZaloInvalidRequest(
            "unreadable error field", http_status=http_status, user_id=user_id
        )
    if code:
        error_class = _CODE_ERRORS.get(code, ZaloInvalidRequest)
        return error_class(detail, code=code, http_status=http_status, user_id=user_id)
    if ok_status:
        return None
    error_class = ZaloRateLimited if http_status == 429 else ZaloInvalidRequest
    return error_class(detail, http_status=http_status, user_id=user_id)


def _error_code(value: object) -> int | None:
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
