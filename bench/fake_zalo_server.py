"""A stand-in for Zalo's OpenAPI on 127.0.0.1, for the outbox and concurrent-survey benchmarks.

Each call to `POST /v3.0/oa/message/cs` is recorded as (user_id, text) in the order the calls
arrive, then answered with Zalo's success JSON after a fixed delay (50 ms by default: a
realistic round trip to Zalo). It also answers the token refresh (`POST /v4/oa/access_token`)
and `GET /v2.0/oa/getoa`, so no process under test ever reaches out.

    python -m bench.fake_zalo_server --port 9100 [--delay 0.05]

Read what it received with `GET /_calls` (JSON: [[user_id, text, t], ...], t in seconds on
this server's monotonic clock; `?since=N` for the calls after the first N), `GET /_tokens`
(the `access_token` header of each call, in the same order), `GET /_stats`, and clear it
with `POST /_reset`. A refreshed access token is named after the refresh token it was
refreshed with, so a benchmark with several OAs can tell whose token a call carried.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class Record:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, float]] = []
        self.tokens: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.refreshes = 0
        self.ids = itertools.count(1)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.tokens.clear()
            self.max_in_flight = 0
            self.refreshes = 0

    def stats(self) -> dict[str, Any]:
        with self.lock:
            calls = len(self.calls)
            first = self.calls[0][2] if calls else None
            last = self.calls[-1][2] if calls else None
            return {
                "calls": calls,
                "first": first,
                "last": last,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "refreshes": self.refreshes,
                "now": time.monotonic(),
            }


class FakeZaloServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], delay: float) -> None:
        super().__init__(address, Handler)
        self.delay = delay
        self.record = Record()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session pool expects
    server: FakeZaloServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        raw = self._body()
        record = self.server.record
        if path == "/v3.0/oa/message/cs":
            try:
                payload = json.loads(raw)
                user_id = str(payload["recipient"]["user_id"])
                text = str(payload["message"].get("text", ""))
            except (ValueError, KeyError, TypeError, AttributeError):
                self._answer(200, {"error": -201, "message": "Parameters are invalid"})
                return
            with record.lock:
                record.calls.append((user_id, text, time.monotonic()))
                record.tokens.append(self.headers.get("access_token") or "")
                record.in_flight += 1
                record.max_in_flight = max(record.max_in_flight, record.in_flight)
                message_id = f"{next(record.ids):020x}"
            try:
                time.sleep(self.server.delay)
                self._answer(
                    200,
                    {
                        "data": {
                            "message_id": message_id,
                            "user_id": user_id,
                            "sent_time": str(int(time.time() * 1000)),
                        },
                        "error": 0,
                        "message": "Success",
                    },
                )
            finally:
                with record.lock:
                    record.in_flight -= 1
        elif path == "/v4/oa/access_token":
            with record.lock:
                record.refreshes += 1
                n = record.refreshes
            form = parse_qs(raw.decode("utf-8", errors="replace"))
            old = form.get("refresh_token", ["bench-refresh"])[0]
            self._answer(
                200,
                {
                    "access_token": f"{old}.access-{n}",
                    "refresh_token": f"{old}.refresh-{n}",
                    "expires_in": "90000",
                },
            )
        elif path == "/_reset":
            record.reset()
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"error": 404, "message": "not found"})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        record = self.server.record
        query = parse_qs(self.path.partition("?")[2])
        since = int(query.get("since", ["0"])[0])
        if path == "/_calls":
            with record.lock:
                calls = record.calls[since:]
            self._answer(200, calls)
        elif path == "/_tokens":
            with record.lock:
                tokens = record.tokens[since:]
            self._answer(200, tokens)
        elif path == "/_stats":
            self._answer(200, record.stats())
        elif path == "/v2.0/oa/getoa":
            self._answer(
                200, {"error": 0, "message": "Success", "data": {"oa_id": "bench", "name": "Bench"}}
            )
        elif path == "/healthz":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": 404, "message": "not found"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per message call")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the fake listens on loopback only")
    server = FakeZaloServer((args.host, args.port), args.delay)
    print(f"fake Zalo on http://{args.host}:{args.port} delay={args.delay}s", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
