"""Delivers the outbox to Zalo: in order per user, with backoff for what may pass.

A message is leased before it is sent and marked after, so a sender killed between the two
sends that message again once the lease lapses: at most one duplicate, never a loss. Zalo
offers no idempotency key, so exactly-once delivery cannot be had; this is the guarantee.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import user_tag
from bot.tokens import TokenStore
from storage import repositories as repo
from storage.models import OutboxMessage
from zalo_client import QueryButton, ZaloAuthError, ZaloClient, ZaloError, ZaloRateLimited

log = logging.getLogger("sipas_bot.sender")

Deliver = Callable[[str, dict[str, Any]], str | None]
ZALO_WINDOW = timedelta(days=7)


class RateLimiter:
    """At most `per_minute` calls in any 60 s, shared by the sender's threads (Zalo allows an
    app 4,000 requests a minute; past that every call fails with -32)."""

    def __init__(
        self,
        per_minute: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.monotonic = monotonic
        self.sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self.monotonic()
                while self._calls and now - self._calls[0] >= 60.0:
                    self._calls.popleft()
                if len(self._calls) < self.per_minute:
                    self._calls.append(now)
                    return
                wait = 60.0 - (now - self._calls[0])
            self.sleep(max(wait, 0.001))


def zalo_delivery(client: ZaloClient, tokens: TokenStore | None = None) -> Deliver:
    """Send through Zalo; on a refused token, renew it (once, across processes), retry once."""

    def send(user_id: str, body: dict[str, Any]) -> str | None:
        buttons = [QueryButton(b["title"], b["payload"]) for b in body.get("buttons", [])]
        return client.send_text(user_id, body["text"], buttons=buttons).message_id

    def deliver(user_id: str, body: dict[str, Any]) -> str | None:
        used = tokens.access_token() if tokens is not None else None
        try:
            return send(user_id, body)
        except ZaloAuthError:
            if tokens is None:
                raise
            tokens.refresh(failed_token=used)
            return send(user_id, body)

    return deliver


def sandbox_delivery(user_id: str, body: dict[str, Any]) -> str | None:
    """Sandbox mode: show the message instead of sending it."""
    buttons = " | ".join(f"[{b['title']}]" for b in body.get("buttons", []))
    log.warning(
        "SANDBOX (not sent to Zalo) to user=%s:\n%s%s",
        user_tag(user_id),
        body["text"],
        f"\n{buttons}" if buttons else "",
    )
    return None


@dataclass(frozen=True)
class _Result:
    message_id: int
    zalo_message_id: str | None = None
    error: Exception | None = None


class OutboxSender:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        deliver: Deliver,
        *,
        clock: Callable[[], datetime],
        max_age: timedelta = timedelta(hours=24),
        batch: int = 50,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        rng: Callable[[], float] = random.random,
        limiter: RateLimiter | None = None,
        rate_limit_pause: timedelta = timedelta(seconds=30),
    ) -> None:
        self.session_factory = session_factory
        self.deliver = deliver
        self.clock = clock
        self.max_age = max_age
        self.batch = batch
        self.lease = lease
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng
        self.limiter = limiter
        self.rate_limit_pause = rate_limit_pause
        self._paused_until: datetime | None = None
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="outbox")

    def run_once(self) -> int:
        """Try every message whose turn has come, one per user; returns how many were tried."""
        now = self.clock()
        if self._paused_until is not None and now < self._paused_until:
            return 0
        with self.session_factory.begin() as session:
            messages = repo.claim_due_messages(
                session, now=now, lease_until=now + self.lease, limit=self.batch
            )
            if not messages:
                return 0
            last_seen = repo.last_interactions(session, {m.user_id for m in messages})
            claimed = []
            for message in messages:
                seen = last_seen.get(message.user_id)
                if seen is not None and now - seen > ZALO_WINDOW:
                    self._window_closed(message)
                else:
                    claimed.append((message.id, message.user_id, message.body))
        results = list(self._pool.map(lambda m: self._send(*m), claimed))
        done = self.clock()
        if any(isinstance(result.error, ZaloRateLimited) for result in results):
            self._paused_until = done + self.rate_limit_pause
            log.warning("event=sender_paused reason=rate_limited")
        with self.session_factory.begin() as session:
            for result in results:
                stored = session.get(OutboxMessage, result.message_id)
                if stored is not None:
                    self._record(stored, result, done)
        return len(messages)

    def drain(self, *, max_rounds: int = 1000) -> int:
        """Send until nothing is due (for the CLI and tests); returns how many were tried."""
        total = 0
        for _ in range(max_rounds):
            tried = self.run_once()
            if not tried:
                break
            total += tried
        return total

    def run_forever(
        self, stop: threading.Event, wake: threading.Event, *, idle_seconds: float = 1.0
    ) -> None:
        log.info("event=sender_started")
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a database hiccup must not kill the sender thread
                log.exception("event=sender_error")
                busy = 0
            if not busy:
                wake.wait(idle_seconds)
                wake.clear()
        self._pool.shutdown(wait=True)
        log.info("event=sender_stopped")

    def _send(self, message_id: int, user_id: str, body: dict[str, Any]) -> _Result:
        try:
            if self.limiter is not None:
                self.limiter.acquire()
            return _Result(message_id, zalo_message_id=self.deliver(user_id, body))
        except Exception as exc:  # recorded per message below; one failure must not stop others
            return _Result(message_id, error=exc)

    @staticmethod
    def _window_closed(message: OutboxMessage) -> None:
        """Zalo would refuse it (-230): record why instead of trying, or retrying."""
        message.attempts += 1
        message.locked_until = None
        message.status = "dead"
        message.last_error = "window closed: the user has not interacted with the OA for 7 days"
        log.warning(
            "event=message_dead outbox_id=%d user=%s reason=window_closed",
            message.id,
            user_tag(message.user_id),
        )

    def _record(self, message: OutboxMessage, result: _Result, now: datetime) -> None:
        message.attempts += 1
        message.locked_until = None
        error = result.error
        if error is None:
            message.status = "sent"
            message.sent_at = now
            message.zalo_message_id = result.zalo_message_id
            message.last_error = None
            log.info(
                "event=message_sent outbox_id=%d user=%s", message.id, user_tag(message.user_id)
            )
            return
        message.last_error = f"{type(error).__name__}: {error}"[:1000]
        transient = (
            not isinstance(error, ZaloError)
            or error.should_retry
            or isinstance(error, ZaloAuthError)
        )
        too_old = now - message.created_at >= self.max_age
        if transient and not too_old:
            delay = min(self.max_delay, self.base_delay * 2 ** (message.attempts - 1))
            message.next_attempt_at = now + timedelta(seconds=delay * (0.5 + self.rng() / 2))
            log.warning(
                "event=message_retry outbox_id=%d user=%s attempts=%d error=%s",
                message.id,
                user_tag(message.user_id),
                message.attempts,
                message.last_error,
            )
        else:
            message.status = "dead"
            log.error(
                "event=message_dead outbox_id=%d user=%s reason=%s",
                message.id,
                user_tag(message.user_id),
                "too old" if transient else message.last_error,
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
