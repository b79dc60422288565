"""The inbox (WEBHOOK_INTAKE=queued): the webhook stores a checked event and answers 200 at
once; the workers' inbox threads run its turn later (docs/benchmarks.md, 1).

A worker locks the oldest pending event of a user with no older pending one, runs exactly
the turn the webhook runs inline (`SurveyService.handle`, which dedupes on processed_events
and queues the replies), and marks the event done, in one transaction: a worker killed
before the commit leaves the event pending, and the next worker runs it once. An event
whose turn raises is tried again after a backoff (it stays its user's head meanwhile, so
the user's later events wait), and given up after MAX_ATTEMPTS (logged; the user's later
events go on), as the outbox gives up a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation.service import Outcome, SurveyService, TurnStatus
from bot.privacy import Pseudonymizer
from bot.privacy.scrub import redact_ids
from storage import repositories as repo
from storage.models import InboxEvent
from zalo_client import InboundEvent, parse_event, read_payload
from zalo_client.events import dedupe_key

log = logging.getLogger("sipas_bot.inbox")

# A turn that raised is tried again after 2, 4, 8 and 16 s, then given up: a turn fails on
# a bug or a database fault, not on the network, so waiting long helps nothing and holds up
# the user's later events.
MAX_ATTEMPTS = 5
BASE_DELAY = timedelta(seconds=2)
# An event stored this long and still not run means no worker is running its turns (or
# they are far behind): /healthz says "degraded", `sipas-bot check` warns.
INBOX_LAG_LIMIT = timedelta(minutes=1)


@dataclass(frozen=True)
class _Claimed:
    """What a failure is recorded with, read before the turn (no ORM object after it)."""

    id: int
    user_id: str
    attempts: int


class Inbox:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        service: SurveyService,
        *,
        pseudonyms: Pseudonymizer,
        clock: Callable[[], datetime],
    ) -> None:
        self.session_factory = session_factory
        self.service = service
        self.pseudonyms = pseudonyms
        self.clock = clock

    def store(
        self, session: Session, event: InboundEvent, raw_body: bytes, *, oa: str, now: datetime
    ) -> bool:
        """Store a checked event of a citizen for a worker (`service.acts_on`); False for a
        re-delivery of one stored before."""
        assert event.user_id is not None, "the webhook stores only what the service acts on"
        return repo.store_inbox_event(
            session,
            key=dedupe_key(event, raw_body),
            oa=oa,
            user_id=event.user_id,
            body=raw_body,
            now=now,
        )

    def run_once(self) -> Outcome | None:
        """Run the turn of the next due event; None when none is due. A turn that raised is
        recorded for a retry (or given up) and returns its failure as an ignored outcome."""
        claimed: _Claimed | None = None
        try:
            with self.session_factory.begin() as session:
                stored = repo.claim_inbox_event(session, now=self.clock())
                if stored is None:
                    return None
                claimed = _Claimed(stored.id, stored.user_id, stored.attempts)
                outcome = self._turn(session, stored)
                repo.finish_inbox_event(session, stored.id, now=self.clock())
        except Exception as exc:
            if claimed is None:  # the claim itself failed: the caller logs and waits
                raise
            return self._failed(claimed, exc)
        return outcome

    def _turn(self, session: Session, stored: InboxEvent) -> Outcome:
        # The turn happens as of the event's arrival, as it would have inline.
        raw = stored.body
        event = parse_event(read_payload(raw))
        return self.service.handle(session, event, raw, now=stored.received_at, oa=stored.oa_id)

    def _failed(self, claimed: _Claimed, error: Exception) -> Outcome:
        attempts = claimed.attempts + 1
        now = self.clock()
        # The database refused a value (as the inline webhook acknowledges): no retry helps.
        give_up = attempts >= MAX_ATTEMPTS or isinstance(error, DataError)
        retry_at = None if give_up else now + BASE_DELAY * 2 ** (attempts - 1)
        text = redact_ids(f"{type(error).__name__}: {error}")[:1000]
        (log.error if give_up else log.warning)(
            "event=inbox_turn_failed inbox_id=%d user=%s attempts=%d outcome=%s error=%s",
            claimed.id,
            self.pseudonyms.user_tag(claimed.user_id),
            attempts,
            "dead" if give_up else "retry",
            text,
            exc_info=give_up,
        )
        with self.session_factory.begin() as session:
            repo.record_inbox_failure(session, claimed.id, error=text, retry_at=retry_at, now=now)
        return Outcome(TurnStatus.IGNORED)

    def drain(self, *, max_turns: int = 100_000) -> int:
        """Run every due event (for tests and the CLI); returns how many were run."""
        ran = 0
        while ran < max_turns and self.run_once() is not None:
            ran += 1
        return ran

    def run_forever(
        self,
        stop: threading.Event,
        wake: threading.Event | None,
        *,
        replies: threading.Event,
        idle_seconds: float,
        first_wait: float = 0.0,
    ) -> None:
        """Run turns until `stop` is set; when none is due, wait for `wake` (None: nothing
        but `stop` wakes this thread) or `idle_seconds` (`first_wait` before the first
        claim: the helpers of a process poll in turn)."""
        stop.wait(first_wait)
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # before the claim: an event stored after it sets it again
            try:
                outcome = self.run_once()
            except Exception:  # a database hiccup must not kill the thread
                log.exception("event=inbox_error")
                stop.wait(idle_seconds)
                continue
            if outcome is None:
                (wake or stop).wait(idle_seconds)
            elif outcome.replies:
                replies.set()


def inbox_threads(
    inbox: Inbox,
    stop: threading.Event,
    wake: threading.Event,
    *,
    replies: threading.Event,
    count: int,
    poll_seconds: float,
) -> list[threading.Thread]:
    """A process's inbox threads (not started). The first, the lookout, is woken by `wake`
    (set by a webhook of this process) and otherwise looks every `poll_seconds`; the others
    look in turn, each every `count x poll_seconds`, and keep claiming while there is work.
    So an idle process sends about two claims per `poll_seconds` whatever `count` is (every
    thread polling would send `count`: the idle claims cost a worker half a core at 16
    threads, docs/benchmarks.md, 1), and a burst has every thread at work within
    `count x poll_seconds`. `stop` also ends the helpers' waits."""
    threads = []
    for n in range(count):
        threads.append(
            threading.Thread(
                target=inbox.run_forever,
                args=(stop, wake if n == 0 else None),
                kwargs={
                    "replies": replies,
                    "idle_seconds": poll_seconds * (1 if n == 0 else count),
                    "first_wait": poll_seconds * n,
                },
                name=f"inbox-{n}",
                daemon=True,
            )
        )
    return threads
