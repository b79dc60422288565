"""Proposed changes to bot/sender.py, tried in a benchmark process only (bench/outbox.py
--sender-experiment), so that their effect can be measured before anyone edits the product.

`TunedSender` keeps the product's rounds (claim a batch, send it, record it) and changes the
costs around them:
- records a round's successes with one executemany UPDATE by primary key, instead of a
  SELECT (`session.get`) and an UPDATE per message;
- reads the access token once per round instead of twice per message (`zalo_delivery` reads
  it for the retry, the client's header reads it again: two SELECTs per message);
- gives the HTTP session as many pooled connections as there are sending threads (requests'
  default keeps 10: past that every call opens a new connection, a TLS handshake to Zalo).

`PipelinedSender` also stops waiting for the slowest message of a batch: it keeps up to
`concurrency` messages in flight, claiming more as soon as some are done, and records what
has finished in one transaction. Per-user order is kept by the same claim query (only a
user's oldest pending message is eligible, and an in-flight one is leased).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime
from typing import Any

from sqlalchemy import update

from bot.runtime import Runtime
from bot.sender import ZALO_WINDOW, OutboxSender, _Result
from storage import repositories as repo
from storage.models import OutboxMessage


def tune_runtime(runtime: Runtime, *, concurrency: int, token_ttl: float = 5.0) -> None:
    """Connection pool sized for `concurrency`; the access token cached for `token_ttl` s."""
    import requests.adapters

    tokens = runtime.tokens
    if tokens is None:
        return
    session = tokens.client._transport._session  # type: ignore[attr-defined]
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    read = tokens.access_token
    cache: dict[str, Any] = {"value": None, "at": 0.0}
    lock = threading.Lock()

    def access_token() -> str:
        with lock:
            if cache["value"] is None or time.monotonic() - cache["at"] > token_ttl:
                cache["value"], cache["at"] = read(), time.monotonic()
            value: str = cache["value"]
            return value

    tokens.access_token = access_token  # type: ignore[method-assign]


class TunedSender(OutboxSender):
    def _claim(self, now: datetime, limit: int) -> tuple[int, list[tuple[int, str, Any, int]]]:
        with self.session_factory.begin() as session:
            messages = repo.claim_due_messages(
                session, now=now, lease_until=now + self.lease, limit=limit
            )
            if not messages:
                return 0, []
            last_seen = repo.last_interactions(session, {m.user_id for m in messages})
            claimed = []
            for message in messages:
                seen = last_seen.get(message.user_id)
                if seen is not None and now - seen > ZALO_WINDOW:
                    self._window_closed(message)
                else:
                    claimed.append((message.id, message.user_id, message.body, message.attempts))
            return len(messages), claimed

    def _record_all(self, results: list[tuple[_Result, int]], done: datetime) -> None:
        sent = [
            {
                "id": r.message_id,
                "status": "sent",
                "sent_at": done,
                "zalo_message_id": r.zalo_message_id,
                "attempts": attempts + 1,
                "locked_until": None,
                "last_error": None,
            }
            for r, attempts in results
            if r.error is None
        ]
        failed = [r for r, _ in results if r.error is not None]
        with self.session_factory.begin() as session:
            if sent:
                session.execute(update(OutboxMessage), sent)
            for result in failed:
                stored = session.get(OutboxMessage, result.message_id)
                if stored is not None:
                    self._record(stored, result, done)

    def run_once(self) -> int:
        now = self.clock()
        if self._paused_until is not None and now < self._paused_until:
            return 0
        tried, claimed = self._claim(now, self.batch)
        if not tried:
            return 0
        futures = [self._pool.submit(self._send, i, u, b) for i, u, b, _ in claimed]
        results = [
            (f.result(), attempts) for f, (_, _, _, attempts) in zip(futures, claimed, strict=True)
        ]
        self._record_all(results, self.clock())
        return tried


class PipelinedSender(TunedSender):
    """Up to `concurrency` messages in flight at all times (its pool has that many threads)."""

    def __init__(self, *args: Any, concurrency: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, concurrency=concurrency, **kwargs)
        self.in_flight_target = concurrency

    def drain_pipelined(self, *, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        in_flight: dict[Future[_Result], int] = {}
        total = 0
        while time.monotonic() < deadline:
            room = self.in_flight_target - len(in_flight)
            # claim in chunks (a quarter of the target at least): each claim is a transaction
            if room >= max(1, self.in_flight_target // 4) or not in_flight:
                tried, claimed = self._claim(self.clock(), room)
                total += tried
                for message_id, user_id, body, attempts in claimed:
                    future = self._pool.submit(self._send, message_id, user_id, body)
                    in_flight[future] = attempts
            if not in_flight:
                break
            wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
            time.sleep(0.005)  # let neighbours finish too: one transaction records them all
            finished = [f for f in in_flight if f.done()]
            results = [(f.result(), in_flight.pop(f)) for f in finished]
            if results:
                self._record_all(results, self.clock())
        return total
