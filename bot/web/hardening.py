"""What every response shares: security headers, and a defined answer with one log line for
every request the app refuses or fails.

A refused request (404 for an odd path, 405, 413…) is logged as one line with its path's
control characters escaped (`zalo_client.text.for_log`), so `GET /q/%00%0A<text>` cannot
forge a second log line; an unexpected error is one line naming the exception and where it
was raised, never a traceback per request (the traceback is logged at DEBUG).
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError

from zalo_client.text import for_log

log = logging.getLogger("sipas_bot.web")

SECURITY_HEADERS = {
    # Pages use only their own style sheet and script (bot/web/static): nothing inline,
    # nothing from another address, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def install(app: Flask) -> None:
    """Register the headers and the error answers on `app`."""
    app.after_request(_add_security_headers)
    app.register_error_handler(HTTPException, _refused)
    app.register_error_handler(Exception, _failed)


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _request_line() -> str:
    return f"method={for_log(request.method, max_chars=10)} path={for_log(request.path)}"


def _refused(error: HTTPException) -> ResponseReturnValue:
    log.info("event=http_refused status=%s %s", error.code, _request_line())
    return error


def _failed(error: Exception) -> ResponseReturnValue:
    if isinstance(error, HTTPException):  # routed here only if no handler took it above
        return _refused(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else "?"
    log.error(
        "event=request_failed status=500 %s error=%s at=%s",
        _request_line(),
        type(error).__name__,
        where,
    )
    log.debug("event=request_failed traceback", exc_info=error)
    return InternalServerError()
