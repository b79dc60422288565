"""A local fake of Zalo's OA API, for runs where the bot is a real process.

A threaded HTTP server on 127.0.0.1 (a free port) that answers like Zalo:

- `POST /v3.0/oa/message/cs` records the JSON body and answers Zalo's success shape, unless a
  fault is due. Faults are scripted (`Fault(error=-32)`: HTTP 200 with that error code, as Zalo
  reports failures; `Fault(status=502)`: that HTTP status; `delay=` seconds before answering)
  and consumed in order, or drawn at random with `failure_rate` (seeded).
- `POST /v4/oa/access_token` answers a fresh token pair, so a token refresh has somewhere to go.

Several apps (many OAs on one deployment): `apps={app_id: app_secret}` makes the token
endpoint check the `secret_key` header against the app named in the form and name the new
access token after the app (`<app_id>-access-<n>`); a `Fault(token=...)` is consumed only by
a message sent with that access token (one OA's outage), and `Call.access_token` / `by_token`
tell which OA's token each message carried.

    with FakeZalo(faults=[Fault(status=502)]) as zalo:
        ... point ZALO_API_BASE and ZALO_OAUTH_BASE at zalo.url ...
        zalo.wait_for_delivered(3)
        assert zalo.received[0]["recipient"]["user_id"] == "..."
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MESSAGE_PATH = "/v3.0/oa/message/cs"
TOKEN_PATH = "/v4/oa/access_token"
PROFILE_PATH = "/v2.0/oa/getoa"


HOLD_LIMIT = 30.0  # a held answer is given anyway after this, so no test can hang


@dataclass(frozen=True)
class Fault:
    """One answer other than success: a Zalo error code (with HTTP 200), or an HTTP status;
    `delay` seconds pass before answering (a delay alone still answers success); with
    `hold`, the answer waits until the test sets that event (at most HOLD_LIMIT seconds)."""

    error: int | None = None
    status: int | None = None
    delay: float = 0.0
    hold: threading.Event | None = None
    token: str | None = None  # only for a message sent with this access token


@dataclass(frozen=True)
class Call:
    """One request as the fake saw and answered it."""

    path: str
    headers: dict[str, str]
    body: Any
    status: int
    error: int | None  # Zalo's `error` field in the answer; None when the answer is not JSON

    @property
    def succeeded(self) -> bool:
        return self.status == 200 and self.error == 0

    @property
    def access_token(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "access_token"), None)


class FakeZalo:
    def __init__(
        self,
        *,
        faults: Iterable[Fault] = (),
        failure_rate: float = 0.0,
        failure: Fault = Fault(status=502),
        seed: int | None = None,
        apps: dict[str, str] | None = None,
    ) -> None:
        self._apps = dict(apps or {})
        self._faults = list(faults)
        self._failure_rate = failure_rate
        self._failure = failure
        self._random = random.Random(seed)
        self._calls: list[Call] = []
        self._arrived = 0
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serial = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeZalo:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = fake._answer(self.path.split("?")[0], dict(self.headers), raw)
                self._reply(status, answer)

            def do_GET(self) -> None:
                if self.path.split("?")[0] == PROFILE_PATH:
                    token = self.headers.get("access_token") or ""
                    self._reply(200, {"data": {"name": f"OA of {token}"}, "error": 0})
                    return
                self._reply(404, {"error": 404, "message": "not faked"})

            def _reply(self, status: int, answer: Any) -> None:
                if isinstance(answer, bytes):
                    data, kind = answer, "text/html"
                else:
                    data, kind = json.dumps(answer).encode("utf-8"), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads `calls`, not a log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-zalo", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeZalo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- what was received ----------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._changed:
            return list(self._calls)

    @property
    def arrived(self) -> int:
        """Requests to the message endpoint that arrived, answered or still being answered
        (a delayed one is in `calls` only once answered)."""
        with self._changed:
            return self._arrived

    @property
    def received(self) -> list[Any]:
        """Every message body sent to the message endpoint, failed attempts included."""
        return [call.body for call in self.calls if call.path == MESSAGE_PATH]

    @property
    def delivered(self) -> list[Any]:
        """The message bodies answered with success, in the order they arrived."""
        return [call.body for call in self.calls if call.path == MESSAGE_PATH and call.succeeded]

    def by_token(self, *, delivered: bool = True) -> dict[str, list[Any]]:
        """The message bodies by the access token they were sent with."""
        found: dict[str, list[Any]] = {}
        for call in self.calls:
            if call.path == MESSAGE_PATH and (call.succeeded or not delivered):
                found.setdefault(call.access_token or "", []).append(call.body)
        return found

    @property
    def refreshed_apps(self) -> list[str]:
        """The app named by each token refresh, in order."""
        return [
            str(call.body.get("app_id", ""))
            for call in self.calls
            if call.path == TOKEN_PATH and isinstance(call.body, dict)
        ]

    def add_faults(self, *faults: Fault) -> None:
        with self._changed:
            self._faults.extend(faults)

    def wait_until(
        self, condition: Callable[[FakeZalo], bool], *, timeout: float = 10.0, what: str = ""
    ) -> None:
        """Block until `condition(self)` holds after some request, or fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"fake Zalo: timed out after {timeout} s waiting for {what or condition}; "
                        f"{len(self._calls)} request(s) received"
                    )
                self._changed.wait(left)

    def wait_for_delivered(self, count: int, *, timeout: float = 10.0) -> list[Any]:
        """Wait until at least `count` messages were delivered; returns the delivered bodies."""
        self.wait_until(
            lambda fake: len(fake.delivered) >= count,
            timeout=timeout,
            what=f"{count} delivered message(s)",
        )
        return self.delivered

    # --- answering ------------------------------------------------------------------------

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if path == TOKEN_PATH and isinstance(body, str):
            body = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        token = next((v for k, v in headers.items() if k.lower() == "access_token"), None)
        fault = self._next_fault(token) if path == MESSAGE_PATH else None
        if path == MESSAGE_PATH:
            with self._changed:
                self._arrived += 1
                self._changed.notify_all()
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.hold is not None:
            fault.hold.wait(HOLD_LIMIT)
        status, answer = self._respond(path, body, fault, headers)
        error = answer.get("error") if isinstance(answer, dict) else None
        with self._changed:
            self._calls.append(Call(path, headers, body, status, error))
            self._changed.notify_all()
        return status, answer

    def _next_fault(self, token: str | None = None) -> Fault | None:
        with self._changed:
            for index, fault in enumerate(self._faults):
                if fault.token is None or fault.token == token:
                    return self._faults.pop(index)
        if self._failure_rate and self._random.random() < self._failure_rate:
            return self._failure
        return None

    def _respond(
        self, path: str, body: Any, fault: Fault | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        with self._changed:
            self._serial += 1
            serial = self._serial
        if path == TOKEN_PATH and self._apps:
            app = body.get("app_id") if isinstance(body, dict) else None
            secret = next((v for k, v in headers.items() if k.lower() == "secret_key"), None)
            if app not in self._apps or self._apps[app] != secret:
                return 200, {"error_name": "invalid_client", "error_description": "bad secret"}
            return 200, {
                "access_token": f"{app}-access-{serial}",
                "refresh_token": f"{app}-refresh-{serial}",
                "expires_in": "90000",
            }
        if path == TOKEN_PATH:
            return 200, {
                "access_token": f"fake-access-{serial}",
                "refresh_token": f"fake-refresh-{serial}",
                "expires_in": "90000",
            }
        if path != MESSAGE_PATH:
            return 404, {"error": 404, "message": "not faked"}
        if fault is not None and fault.status is not None:
            return fault.status, f"<html>{fault.status}</html>".encode()
        if fault is not None and fault.error is not None:
            return 200, {"error": fault.error, "message": f"fake error {fault.error}"}
        user_id = body.get("recipient", {}).get("user_id") if isinstance(body, dict) else None
        return 200, {
            "data": {
                "message_id": f"fake-msg-{serial}",
                "user_id": user_id,
                "sent_time": str(int(time.time() * 1000)),
            },
            "error": 0,
            "message": "Success",
        }
