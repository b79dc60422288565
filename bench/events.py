"""Webhook events as Zalo sends them, signed in advance, in a realistic mix.

Each user goes through surveys again and again: `#HVT01`/`#HVT02`/`#HVT03`, five answers
typed as numbers 1–5, then `bỏ qua` for the optional comment; now and then a junk message
(which the bot answers with "not understood") and now and then a re-delivery of an event
already sent (same msg_id, same body and signature: Zalo's retry), which must be recognised
as a duplicate. Users are interleaved so that one user's events are far apart in the stream
(hundreds of events): with thousands of users, row locks rarely collide.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import APP_ID, OA_ID, OA_SECRET

COUNTERS = ("HVT01", "HVT02", "HVT03")
JUNK = (
    "xin chào",
    "ok",
    "???",
    "cho hỏi giờ làm việc buổi chiều?",
    "👍",
    "abc",
    "Cảm ơn",
    "mình muốn hỏi về thủ tục đăng ký khai sinh",
)
SURVEY_ANSWERS = 5


@dataclass(frozen=True)
class Signed:
    user_id: str
    kind: str  # start | answer | skip | junk | duplicate
    text: str
    body: bytes
    signature: str


def post_signed(connection: http.client.HTTPConnection, event: Signed) -> tuple[int, bytes]:
    """POST one pre-signed event to /zalo/webhook over a kept-alive connection: (status,
    body). Raises what http.client raises (OSError, HTTPException) for the caller to count."""
    from zalo_client import SIGNATURE_HEADER

    connection.request(
        "POST",
        "/zalo/webhook",
        body=event.body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: event.signature},
    )
    response = connection.getresponse()
    return response.status, response.read()


def user_ids(n: int, *, base: int = 7_000_000_000_000_000_000) -> list[str]:
    """Zalo-like numeric user ids (19 digits), distinct per `base`."""
    return [str(base + i * 7919) for i in range(n)]


# One numbering for every Signer of a process: msg_ids stay unique with one Signer per OA.
_EVENT_NUMBERS = itertools.count(1)


class Signer:
    def __init__(self, app_id: str = APP_ID, secret: str = OA_SECRET, oa_id: str = OA_ID) -> None:
        from zalo_client import SignatureVerifier

        self._verifier = SignatureVerifier(app_id, secret)
        self.app_id, self.oa_id = app_id, oa_id
        self._n = 0
        # Now, in Zalo's epoch milliseconds: the webhook ignores events outside its replay
        # window (WEBHOOK_REPLAY_WINDOW_HOURS), so a fixed date would measure nothing.
        self._base_timestamp = int(time.time() * 1000)

    def text_event(self, user_id: str, text: str, kind: str) -> Signed:
        """A `user_send_text` event shaped like Zalo's, with a fresh msg_id and timestamp."""
        self._n = next(_EVENT_NUMBERS)
        timestamp = str(self._base_timestamp + self._n)
        event: dict[str, Any] = {
            "app_id": self.app_id,
            "sender": {"id": user_id},
            "user_id_by_app": "552177279717587730",
            "recipient": {"id": self.oa_id},
            "event_name": "user_send_text",
            "message": {"text": text, "msg_id": f"bench{self._n:012d}{user_id[-6:]}"},
            "timestamp": timestamp,
        }
        body = json.dumps(event, ensure_ascii=False).encode("utf-8")
        return Signed(user_id, kind, text, body, self._verifier.sign(body, timestamp))


def survey_script(rng: random.Random, counters: Sequence[str] = COUNTERS) -> list[tuple[str, str]]:
    """One survey as (kind, text): start at one of `counters`, five answers, skip the
    comment."""
    script = [("start", f"#{rng.choice(counters)}")]
    script += [("answer", str(rng.randint(1, 5))) for _ in range(SURVEY_ANSWERS)]
    script.append(("skip", "bỏ qua"))
    return script


def ingest_mix(
    n_events: int,
    n_users: int,
    *,
    seed: int = 6,
    junk_rate: float = 0.08,
    duplicate_rate: float = 0.05,
    id_base: int = 7_000_000_000_000_000_000,
    active: int = 400,
    accounts: Sequence[tuple[Signer, Sequence[str]]] = (),
) -> list[Signed]:
    """`n_events` signed events of `n_users` users.

    At any time `active` users are in a survey; the stream takes one event from each in turn
    (in a fresh random order each time round), so one user's events are about `active`
    events apart, and a user who finishes is replaced by the next one (all users used, they
    come back for another survey). Any prefix of the stream has the same mix as the whole,
    so a run cut short by its time limit still measures the realistic mix.

    `accounts`: (the OA's signer, its counters) for many OAs; user i writes to account
    i % len(accounts), at its counters, signed with its secret (default: the environment's
    OA and COUNTERS).
    """
    rng = random.Random(seed)
    users = user_ids(n_users, base=id_base)
    accounts = accounts or [(Signer(), COUNTERS)]
    account = {user: accounts[i % len(accounts)] for i, user in enumerate(users)}
    originals = max(1, round(n_events / (1 + duplicate_rate)))
    waiting = list(reversed(users))

    def one_survey(user: str) -> list[tuple[str, str]]:
        script: list[tuple[str, str]] = []
        for kind, text in survey_script(rng, account[user][1]):
            if kind == "answer" and rng.random() < junk_rate:
                script.append(("junk", rng.choice(JUNK)))
            script.append((kind, text))
        return script

    pool: list[tuple[str, list[tuple[str, str]]]] = [
        (user, one_survey(user)) for user in (waiting.pop() for _ in range(min(active, n_users)))
    ]
    stream: list[Signed] = []
    while len(stream) < originals:
        rng.shuffle(pool)
        next_pool = []
        for user, script in pool:
            kind, text = script.pop(0)
            stream.append(account[user][0].text_event(user, text, kind))
            if script:
                next_pool.append((user, script))
            else:
                waiting.insert(0, user)  # back of the line, for another survey later
                following = waiting.pop()
                next_pool.append((following, one_survey(following)))
        pool = next_pool
    stream = stream[:originals]
    # Re-deliveries: the same signed body again, a little later in the stream.
    with_duplicates: list[Signed] = []
    pending: list[tuple[int, Signed]] = []
    for index, event in enumerate(stream):
        with_duplicates.append(event)
        if rng.random() < duplicate_rate:
            pending.append((index + rng.randint(1, 40), event))
        due = [e for at, e in pending if at <= index]
        pending = [(at, e) for at, e in pending if at > index]
        with_duplicates += [_again(original) for original in due]
    with_duplicates += [_again(original) for _, original in pending]
    return with_duplicates[:n_events]


def _again(event: Signed) -> Signed:
    return Signed(event.user_id, "duplicate", event.text, event.body, event.signature)


def mix_counts(events: Iterable[Signed]) -> dict[str, int]:
    return dict(Counter(e.kind for e in events))


def write_wrk_file(events: Sequence[Signed], path: Path, *, threads: int) -> list[int]:
    """One line per request, `thread<TAB>signature<TAB>body`; a user's events all go to one
    wrk thread. Returns how many lines each thread got."""
    per_thread = [0] * threads
    slot: dict[str, int] = {}
    with open(path, "wb") as handle:
        for event in events:
            t = slot.setdefault(event.user_id, len(slot) % threads)
            per_thread[t] += 1
            handle.write(f"{t}\t{event.signature}\t".encode() + event.body + b"\n")
    return per_thread
