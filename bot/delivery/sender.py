"""Delivers the outbox to Zalo: in order per user, with backoff for what may pass.

A message is leased before it is sent and recorded after, so a sender killed between the two
sends that message again once the lease is gone: at most one duplicate, never a loss. Zalo
offers no idempotency key, so exactly-once delivery cannot be had; this is the guarantee.

Leases carry their owner (`lease_owner_id()`: host, pid and a random part) and the owner
renews them every third of OUTBOX_LEASE_SECONDS while it lives, so a lease only lapses when
its owner stopped. A sender that starts, and every renewal after, frees at once the leases
of owners on its own host whose process is gone: a server killed with SIGKILL and restarted
resumes delivery within a second or two, not a lease later; a sender on another machine
takes a dead owner's messages once the lease lapses (docs/deploy.md, "Several processes").

A send that timed out may have reached Zalo: it is retried only after UNCERTAIN_RETRY_DELAY,
and a second uncertain send is the last, so even a Zalo slower than the client's timeout
delivers a message at most twice.

`run_forever` does not work in rounds: it keeps up to `3 x concurrency` messages leased,
`concurrency` being sent and the rest waiting for a free sending thread, and whenever
`concurrency` have finished, one transaction records them and leases as many again. So no
thread waits for the slowest send of a batch, nor for the database: a step has the time of
a whole send to finish before the threads run out of work (docs/benchmarks.md, 2).
The sender thread leases and records. A sending thread touches the database only through
`TokenStore`: to read the access token when its 30-second cache has lapsed, or to refresh a
refused token (one thread at a time, under the token row's lock).

Many OAs (docs/deploy.md): each message carries its OA, and `lanes` gives the OA's way out
(its token's `deliver`, its app's rate limiter). A -32 pauses that app only: its OAs'
messages are not leased while it lasts, and the others go on. Leasing takes the due
messages round-robin over the OAs, so one OA's backlog never holds up another's citizens.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.delivery.tokens import TokenStore
from bot.delivery.window import window_closed
from bot.privacy import Pseudonymizer
from bot.privacy.scrub import redact_ids
from storage import repositories as repo
from storage.models import ENVIRONMENT_OA, DeadReason, OutboxMessage, OutboxStatus
from storage.repositories import OutboxOutcome, OutcomeKind
from zalo_client import (
    QueryButton,
    UrlButton,
    ZaloAuthError,
    ZaloClient,
    ZaloConnectionError,
    ZaloError,
    ZaloRateLimited,
    ZaloWindowClosed,
)

log = logging.getLogger("sipas_bot.sender")

Deliver = Callable[[str, dict[str, Any]], str | None]


def dead_reason(error: Exception, *, transient: bool) -> DeadReason:
    """Why a message that will not be retried died: the e-mail fallback to leaders reads
    this code, never the error's text or class name."""
    if isinstance(error, ZaloWindowClosed):
        return DeadReason.WINDOW_CLOSED
    return DeadReason.TOO_OLD if transient else DeadReason.REFUSED


# After a send that may have reached Zalo (a timeout), wait this long before the one more
# try: a Zalo that is slow now is given time, and never gets a copy per client timeout.
UNCERTAIN_RETRY_DELAY = timedelta(minutes=5)
MAX_UNCERTAIN_SENDS = 2

# The lease owners this process has made: a lease whose owner names this host and pid but
# is not among these was left by an earlier process with the same pid (a container's pid 1).
_OWNERS_HERE: set[str] = set()


def lease_owner_id() -> str:
    """A new owner id for this process's sender: "host/pid/random" (at most 100 chars)."""
    owner = f"{socket.gethostname()[:70]}/{os.getpid()}/{secrets.token_hex(4)}"
    _OWNERS_HERE.add(owner)
    return owner


def known_dead(owner: str) -> bool:
    """Whether a lease owner is certainly gone: it ran on this host, and its process does not
    exist any more (or its pid is this process's, which did not make it). Owners on other
    hosts are never known dead here; their leases lapse instead."""
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname()[:70] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _OWNERS_HERE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, as another user's process
        return False
    return False


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

    def full(self) -> bool:
        """Whether a call now would have to wait (the minute's calls are all taken)."""
        with self._lock:
            now = self.monotonic()
            while self._calls and now - self._calls[0] >= 60.0:
                self._calls.popleft()
            return len(self._calls) >= self.per_minute

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
        buttons = [
            UrlButton(b["title"], b["url"]) if "url" in b else QueryButton(b["title"], b["payload"])
            for b in body.get("buttons", [])
        ]
        return client.send_text(user_id, body["text"], buttons=buttons).message_id

    def deliver(user_id: str, body: dict[str, Any]) -> str | None:
        # Read before the client reads it for the header: the store's token only ever moves
        # on, so `used` is never newer than the token Zalo refused, and a refresh is never
        # spent because of a token that was already replaced.
        used = tokens.access_token() if tokens is not None else None
        try:
            return send(user_id, body)
        except ZaloAuthError:
            if tokens is None:
                raise
            tokens.refresh(failed_token=used)
            return send(user_id, body)

    return deliver


def sandbox_delivery(pseudonyms: Pseudonymizer) -> Deliver:
    """Sandbox mode: show the message instead of sending it."""

    def deliver(user_id: str, body: dict[str, Any]) -> str | None:
        buttons = " | ".join(
            f"[{b['title']}]" + (f" {b['url']}" if "url" in b else "")
            for b in body.get("buttons", [])
        )
        log.warning(
            "SANDBOX (not sent to Zalo) to user=%s:\n%s%s",
            pseudonyms.user_tag(user_id),
            body["text"],
            f"\n{buttons}" if buttons else "",
        )
        return None

    return deliver


@dataclass(frozen=True)
class SendingLane:
    """How one OA's messages go out: with its token (`deliver`), within its app's rate
    (`limiter`, shared by the OAs of one app); `app` names the app a -32 pauses."""

    deliver: Deliver
    limiter: RateLimiter | None
    app: str


Lanes = Callable[[str], SendingLane | None]
"""The lane of an OA key; None for an OA the deployment does not serve (any more)."""


class UnknownOA(Exception):
    """A queued message names an OA the deployment does not serve (removed from the file)."""


@dataclass(frozen=True)
class _Leased:
    """A leased message as the sending threads see it: no ORM object crosses threads."""

    id: int
    user_id: str
    body: dict[str, Any]
    created_at: datetime
    attempts: int
    lease_until: datetime
    uncertain_sends: int = 0
    oa_id: str = ENVIRONMENT_OA


@dataclass(frozen=True)
class _Result:
    message: _Leased
    zalo_message_id: str | None = None
    error: Exception | None = None
    # Not tried: "paused" (Zalo said -32 meanwhile; the lease is given back) or "lease" (too
    # little of the lease left to finish the send; the message is left to whoever takes it).
    not_sent: str | None = None


class OutboxSender:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        deliver: Deliver,
        *,
        pseudonyms: Pseudonymizer,
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
        uncertain_delay: timedelta = UNCERTAIN_RETRY_DELAY,
        owner: str | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.deliver = deliver
        self.pseudonyms = pseudonyms
        self.clock = clock
        self.max_age = max_age
        self.batch = batch
        self.concurrency = concurrency
        # run_forever records and leases in steps of `step` and keeps up to `window` leased.
        self.step = concurrency
        self.window = 3 * concurrency
        self.lease = lease
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng
        self.limiter = limiter
        self.rate_limit_pause = rate_limit_pause
        self.uncertain_delay = uncertain_delay
        self.owner = owner or lease_owner_id()
        # The leases are renewed every third of their length, so they hold 2/3 of it at least.
        self.renew_every = lease.total_seconds() / 3
        # (when, until): the last renewal extended every lease still held at `when`.
        self._renewal: tuple[datetime, datetime] | None = None
        self._renewed_at = float("-inf")
        self._in_flight_ids: set[int] = set()
        # The environment's OA goes out with `deliver` and `limiter`; another OA by its lane.
        self._own_lane = SendingLane(deliver, limiter, ENVIRONMENT_OA)
        self.lanes = lanes
        # Apps told to wait by a -32, until when; the app of each OA seen and each app's
        # limiter (what to skip when leasing).
        self._paused_until: dict[str, datetime] = {}
        self._app_of: dict[str, str] = {ENVIRONMENT_OA: ENVIRONMENT_OA}
        self._limiter_of: dict[str, RateLimiter | None] = {}
        self._pause_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="outbox")

    def run_once(self) -> int:
        """One round: lease up to `batch` messages whose turn has come (one per user), send
        them, wait for all, record them; returns how many were tried. For `drain` and tests:
        the service runs `run_forever`."""
        self._keep_leases()
        tried, leased = self._step((), room=self.batch)
        if tried:
            futures = [self._pool.submit(self._send, message) for message in leased]
            self._in_flight_ids = {message.id for message in leased}
            while not all(f.done() for f in futures):
                wait(futures, timeout=self.renew_every)
                self._keep_leases()
            self._in_flight_ids = set()
            self._step([f.result() for f in futures], room=0)
        return tried

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
        """Send until `stop` is set; then lease nothing more, and record what was in flight."""
        log.info("event=sender_started concurrency=%d owner=%s", self.concurrency, self.owner)
        in_flight: dict[Future[_Result], _Leased] = {}
        finished: list[_Result] = []
        while True:
            stopping = stop.is_set()
            self._keep_leases()
            for future in [f for f in in_flight if f.done()]:
                del in_flight[future]
                finished.append(future.result())
            self._in_flight_ids = {m.id for m in in_flight.values()}
            room = 0 if stopping else self.window - len(in_flight)
            tried = 0
            if room >= self.step or not in_flight:
                try:
                    tried, leased = self._step(finished, room=room)
                except Exception:  # a database hiccup must not kill the sender thread
                    log.exception("event=sender_error")
                    # Unrecorded results stay in `finished` for the next step; if none comes,
                    # their leases lapse and they are sent again (at most one duplicate).
                    stop.wait(idle_seconds)
                    leased = []
                else:
                    finished = []
                for message in leased:
                    in_flight[self._pool.submit(self._send, message)] = message
            if in_flight:
                wait(in_flight, timeout=idle_seconds, return_when=FIRST_COMPLETED)
            elif stopping:
                break
            elif not tried:
                wake.wait(idle_seconds)
                wake.clear()
        self._pool.shutdown(wait=True)
        log.info("event=sender_stopped")

    def _keep_leases(self) -> None:
        """Every `renew_every` seconds: renew this sender's leases (its heartbeat), and free
        those of owners known dead (on the first call too: a restarted server resumes at
        once). A database hiccup is logged; the leases then lapse as they would."""
        if time.monotonic() - self._renewed_at < self.renew_every:
            return
        self._renewed_at = time.monotonic()
        now = self.clock()
        until = now + self.lease
        try:
            with self.session_factory.begin() as session:
                repo.renew_leases(session, owner=self.owner, until=until)
                dead = [o for o in repo.lease_owners(session, now=now) if known_dead(o)]
                freed = repo.release_leases(session, dead)
        except Exception:
            log.exception("event=lease_renewal_failed owner=%s", self.owner)
            return
        self._renewal = (now, until)
        if freed:
            log.warning(
                "event=leases_released owners=%s messages=%d reason=owner_dead",
                ",".join(dead),
                freed,
            )

    def _step(self, results: Sequence[_Result], *, room: int) -> tuple[int, list[_Leased]]:
        """In one transaction: record `results`, then lease up to `room` messages; returns how
        many were leased (window-closed ones included) and those to send."""
        now = self.clock()
        with self.session_factory.begin() as session:
            if results:
                outcomes = [self._outcome(result, now) for result in results]
                repo.record_outbox_outcomes(session, [o for o in outcomes if o is not None])
            if room <= 0:
                return 0, []
            paused_oas = self._paused_oas(now)
            if ENVIRONMENT_OA in paused_oas and self.lanes is None:
                return 0, []
            lease_until = now + self.lease
            messages = repo.claim_due_messages(
                session,
                now=now,
                lease_until=lease_until,
                limit=room,
                owner=self.owner,
                exclude=self._in_flight_ids,
                fair=self.lanes is not None,
                skip_oas=paused_oas,
            )
            if not messages:
                return 0, []
            last_seen = repo.last_interactions_by_oa(
                session, {(m.oa_id, m.user_id) for m in messages}
            )
            leased = []
            for message in messages:
                seen = last_seen.get((message.oa_id, message.user_id))
                if window_closed(seen, now):
                    self._window_closed(message)
                else:
                    leased.append(
                        _Leased(
                            message.id,
                            message.user_id,
                            message.body,
                            message.created_at,
                            message.attempts,
                            lease_until,
                            message.uncertain_sends,
                            message.oa_id,
                        )
                    )
            return len(messages), leased

    def _lane(self, oa: str) -> SendingLane:
        if oa == ENVIRONMENT_OA:
            return self._own_lane
        lane = self.lanes(oa) if self.lanes is not None else None
        if lane is None:
            raise UnknownOA(f"OA {oa} is not served by this deployment (not in the units file)")
        if self._app_of.get(oa) != lane.app:
            with self._pause_lock:
                self._app_of[oa] = lane.app
                self._limiter_of[lane.app] = lane.limiter
        return lane

    def _send(self, message: _Leased) -> _Result:
        try:
            lane = self._lane(message.oa_id)
            if lane.limiter is not None:
                lane.limiter.acquire()
            now = self.clock()
            if self._paused(now, lane.app):
                return _Result(message, not_sent="paused")
            # A send (with a token refresh and its retry) must end while the lease holds, or
            # another worker may lease and send the message too. A renewal made while the
            # lease still held extended it.
            held_until = message.lease_until
            renewal = self._renewal
            if renewal is not None and renewal[0] <= message.lease_until:
                held_until = max(held_until, renewal[1])
            if now > held_until - self.lease / 2:
                return _Result(message, not_sent="lease")
            return _Result(message, zalo_message_id=lane.deliver(message.user_id, message.body))
        except ZaloRateLimited as exc:
            self._pause(self._app_of.get(message.oa_id, message.oa_id))
            return _Result(message, error=exc)
        except Exception as exc:  # recorded per message; one failure must not stop others
            return _Result(message, error=exc)

    def _paused(self, now: datetime, app: str = ENVIRONMENT_OA) -> bool:
        until = self._paused_until.get(app)
        return until is not None and now < until

    def _paused_oas(self, now: datetime) -> set[str]:
        """The OAs whose app is paused (-32), or, with many OAs, has used its minute's
        requests: none of their messages is leased meanwhile, so no sending thread waits
        on one app's limit while another app's citizens wait for a thread."""
        with self._pause_lock:
            held = {app for app, until in self._paused_until.items() if now < until}
            held |= {
                app
                for app, limiter in self._limiter_of.items()
                if limiter is not None and limiter.full()
            }
            return {oa for oa, app in self._app_of.items() if app in held}

    def _pause(self, app: str = ENVIRONMENT_OA) -> None:
        """Zalo said -32 for `app`: send nothing more of its OAs for `rate_limit_pause`, in
        every thread; other apps go on."""
        with self._pause_lock:
            now = self.clock()
            if not self._paused(now, app):
                log.warning("event=sender_paused reason=rate_limited app=%s", app or "-")
            self._paused_until[app] = now + self.rate_limit_pause

    def _window_closed(self, message: OutboxMessage) -> None:
        """Zalo would refuse it (-230): record why instead of trying, or retrying."""
        message.attempts += 1
        message.locked_until = None
        message.lease_owner = None
        message.status = OutboxStatus.DEAD
        message.dead_reason = DeadReason.WINDOW_CLOSED
        message.last_error = "window closed: the user has not interacted with the OA for 7 days"
        log.warning(
            "event=message_dead outbox_id=%d user=%s reason=window_closed",
            message.id,
            self.pseudonyms.user_tag(message.user_id),
        )

    def _outcome(self, result: _Result, now: datetime) -> OutboxOutcome | None:
        """What to record of a result; None when nothing is (its lease is left to lapse)."""
        message = result.message
        user = self.pseudonyms.user_tag(message.user_id)
        if result.not_sent is not None:
            log.warning(
                "event=message_not_sent outbox_id=%d user=%s reason=%s",
                message.id,
                user,
                result.not_sent,
            )
            if result.not_sent == "paused":
                return OutboxOutcome(message.id, self.owner, OutcomeKind.RELEASED)
            return None
        error = result.error
        if error is None:
            log.info("event=message_sent outbox_id=%d user=%s", message.id, user)
            return OutboxOutcome(
                message.id,
                self.owner,
                OutcomeKind.SENT,
                sent_at=now,
                zalo_message_id=result.zalo_message_id,
            )
        # Zalo's texts may quote the recipient (zalo_client takes out the id it knows).
        last_error = redact_ids(f"{type(error).__name__}: {error}")[:1000]
        attempts = message.attempts + 1
        transient = (
            not isinstance(error, ZaloError)
            or error.should_retry
            or isinstance(error, ZaloAuthError)
        )
        too_old = now - message.created_at >= self.max_age
        uncertain = isinstance(error, ZaloConnectionError) and error.may_have_arrived
        if uncertain and message.uncertain_sends + 1 >= MAX_UNCERTAIN_SENDS:
            # Twice Zalo may have taken it without saying so: a third try could be a third copy.
            log.error(
                "event=message_dead outbox_id=%d user=%s reason=uncertain_twice",
                message.id,
                user,
            )
            return OutboxOutcome(
                message.id,
                self.owner,
                OutcomeKind.DEAD,
                error=f"sent twice without an answer (maybe delivered): {last_error}"[:1000],
                reason=DeadReason.MAYBE_DELIVERED,
                uncertain=True,
            )
        if transient and not too_old:
            delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
            if uncertain:
                delay = max(delay, self.uncertain_delay.total_seconds())
            log.warning(
                "event=message_retry outbox_id=%d user=%s attempts=%d error=%s",
                message.id,
                user,
                attempts,
                last_error,
            )
            jitter = 0.5 + self.rng() / 2
            if uncertain:  # no earlier than the delay: only later
                jitter += 0.5
            return OutboxOutcome(
                message.id,
                self.owner,
                OutcomeKind.RETRY,
                next_attempt_at=now + timedelta(seconds=delay * jitter),
                error=last_error,
                uncertain=uncertain,
            )
        reason = dead_reason(error, transient=transient)
        log.error(
            "event=message_dead outbox_id=%d user=%s reason=%s error=%s",
            message.id,
            user,
            reason,
            last_error,
        )
        return OutboxOutcome(
            message.id,
            self.owner,
            OutcomeKind.DEAD,
            error=last_error,
            reason=reason,
            uncertain=uncertain,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
