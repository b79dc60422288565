"""Outbox across many OAs (issue 17): one OA with a backlog (10,000 messages to as many
citizens), and 99 quiet OAs with one message each, queued after the backlog. Each OA is its
own app with its own rate limiter (ZALO_RATE_PER_MINUTE, 4,000). The in-process sender
(`OutboxSender.run_forever`, C sending threads) delivers to a stand-in for Zalo that takes
`--delay` seconds per call. Measured: how long each quiet OA's message waited from the
sender's start, and messages/s over the run, with the leasing the service uses (round-robin
over the OAs) and with one lease order over all OAs (FIFO, as before many OAs).

    python -m bench.outbox_oas [--backend sqlite|postgresql] [--backlog 10000] [--quiet 99]
                               [--concurrency 8] [--delay 0.05] [--seconds 10]

The run stops when every quiet OA's message is delivered and `--seconds` have passed (the
backlog is not drained: at 4,000 a minute it would take minutes, and says nothing more).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import threading
import time
from typing import Any

from bench.common import BenchDatabase, load_average, log, machine_info, write_result

BUSY_OA = "1000000000000000000"


def quiet_oa(n: int) -> str:
    return f"{1000000000000000000 + n}"


def run(backend: str, *, fair: bool, args: argparse.Namespace) -> dict[str, Any]:
    from bot.delivery import sender as sender_module
    from bot.delivery.sender import OutboxSender, RateLimiter, SendingLane
    from bot.privacy import Pseudonymizer
    from storage import repositories as repo
    from storage.db import make_session_factory

    with BenchDatabase(backend) as db:
        engine = db.engine()
        session_factory = make_session_factory(engine)
        now = dt.datetime.now(dt.UTC)
        with session_factory.begin() as session:
            for n in range(args.backlog):
                repo.enqueue_replies(session, f"9{n:017d}", [{"text": "busy"}], now=now, oa=BUSY_OA)
            for n in range(1, args.quiet + 1):
                repo.enqueue_replies(
                    session, f"8{n:017d}", [{"text": "quiet"}], now=now, oa=quiet_oa(n)
                )
        delivered: dict[str, float] = {}
        busy_sent = [0]
        lock = threading.Lock()
        start = [0.0]

        def deliver_for(oa: str) -> Any:
            def deliver(user_id: str, body: dict[str, Any]) -> str:
                time.sleep(args.delay)
                with lock:
                    if oa == BUSY_OA:
                        busy_sent[0] += 1
                    else:
                        delivered[oa] = time.monotonic() - start[0]
                return "id"

            return deliver

        lanes = {
            oa: SendingLane(deliver_for(oa), RateLimiter(args.rate_per_minute), oa)
            for oa in [BUSY_OA, *(quiet_oa(n) for n in range(1, args.quiet + 1))]
        }
        sender = OutboxSender(
            session_factory,
            deliver_for(""),
            pseudonyms=Pseudonymizer("bench-pepper-0123456789"),
            clock=lambda: dt.datetime.now(dt.UTC),
            concurrency=args.concurrency,
            lanes=lanes.get,
        )
        claim = repo.claim_due_messages
        if not fair:  # one lease order over every OA, as before many OAs
            sender_module.repo.claim_due_messages = lambda session, **kw: claim(
                session, **{**kw, "fair": False}
            )
        stop, wake = threading.Event(), threading.Event()
        thread = threading.Thread(target=sender.run_forever, args=(stop, wake))
        start[0] = time.monotonic()
        thread.start()
        try:
            while True:
                time.sleep(0.05)
                elapsed = time.monotonic() - start[0]
                with lock:
                    done = len(delivered) == args.quiet
                if (done and elapsed >= args.seconds) or elapsed > args.timeout:
                    break
        finally:
            stop.set()
            thread.join()
            sender_module.repo.claim_due_messages = claim
            engine.dispose()
        elapsed = time.monotonic() - start[0]
        waits = sorted(delivered.values())
        return {
            "leasing": "round-robin over OAs" if fair else "FIFO over all OAs",
            "quiet_delivered": len(waits),
            "quiet_wait_p50_s": round(statistics.median(waits), 3) if waits else None,
            "quiet_wait_max_s": round(waits[-1], 3) if waits else None,
            "busy_delivered": busy_sent[0],
            "messages_per_s": round((busy_sent[0] + len(waits)) / elapsed, 1),
            "seconds": round(elapsed, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--quiet", type=int, default=99)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--rate-per-minute", type=int, default=4000)
    args = parser.parse_args()
    results = []
    for fair in (True, False):
        log(f"outbox across OAs: {args.backend}, {'round-robin' if fair else 'FIFO'} leasing")
        result = run(args.backend, fair=fair, args=args)
        log(str(result))
        results.append(result)
    path = write_result(
        "outbox_oas",
        {
            "machine": machine_info(),
            "load_average": load_average(),
            "arguments": vars(args),
            "runs": results,
        },
    )
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
