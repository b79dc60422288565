"""What one outbox claim costs PostgreSQL as the backlog grows (issue 17's province day).

    python -m bench.claim_cost [--backlogs 1000,10000,50000] [--oas 100] [--history 200000]
                               [--limit 16] [--runs 15]

A schema of its own (dropped afterwards) holds `--history` sent messages and a backlog of
pending ones spread over `--oas` OAs, one to three per citizen (a citizen waiting for the
next question has one or two queued). Each run leases `--limit` messages as a worker's
sender does (`repo.claim_due_messages`, round-robin over the OAs when there are several,
and the one-OA form) in a transaction rolled back afterwards, so every run sees the same
backlog. Reports the median and min–max milliseconds per claim for each backlog.

The province day (docs/benchmarks.md, 9) met this: once the morning peak queued ~50,000
messages, each claim ranked every pending row, PostgreSQL's CPU went to the claims and
delivery fell behind further (a claim grew with the backlog it was meant to drain).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    BenchDatabase,
    fmt_spread,
    log,
    machine_info,
    postgres_available,
    spread,
    write_result,
)

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def fill(url: str, *, backlog: int, oas: int, history: int, seed: int) -> None:
    """`history` sent messages, then `backlog` pending ones (1–3 per citizen), in id order
    as the service writes them."""
    from sqlalchemy import insert

    from storage.db import make_engine
    from storage.models import OutboxMessage, OutboxStatus
    from storage.repositories.outbox import pending_messages

    rng = random.Random(seed)
    engine = make_engine(url)
    body = {"text": "Câu 2/5"}
    try:
        rows: list[dict[str, Any]] = [
            {**message, "status": OutboxStatus.SENT.value}
            for n in range(history)
            for message in pending_messages(f"9{n:017d}", [body], now=NOW, oa=f"oa{n % oas:03d}")
        ]
        citizen = 0
        while len(rows) < history + backlog:
            citizen += 1
            bodies = [body] * rng.choice((1, 1, 2, 3))
            oa = f"oa{rng.randrange(oas):03d}"
            rows += pending_messages(f"1{citizen:017d}", bodies, now=NOW, oa=oa)
        rows = rows[: history + backlog]
        with engine.begin() as connection:
            for start in range(0, len(rows), 5000):
                connection.execute(insert(OutboxMessage), rows[start : start + 5000])
            connection.exec_driver_sql("ANALYZE outbox_messages")
    finally:
        engine.dispose()


def time_claims(url: str, *, limit: int, runs: int, fair: bool) -> dict[str, float]:
    from storage import repositories as repo
    from storage.db import make_engine, make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    timings = []
    try:
        for _ in range(runs + 1):
            with sessions() as session:
                t0 = time.perf_counter()
                leased = repo.claim_due_messages(
                    session,
                    now=NOW + timedelta(seconds=1),
                    lease_until=NOW + timedelta(minutes=5),
                    limit=limit,
                    fair=fair,
                )
                timings.append((time.perf_counter() - t0) * 1000)
                assert len(leased) == limit, len(leased)
                session.rollback()
    finally:
        engine.dispose()
    return spread(timings[1:])  # the first warms the plan and the cache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backlogs", default="1000,10000,50000", help="comma-separated")
    parser.add_argument("--oas", type=int, default=100)
    parser.add_argument("--history", type=int, default=200_000, help="sent messages before")
    parser.add_argument("--limit", type=int, default=16, help="messages per claim")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if not postgres_available():
        log("PostgreSQL does not answer on BENCH_PG_URL: skipped")
        return 0
    result: dict[str, Any] = {"machine": machine_info(), "args": vars(args), "claims": {}}
    for backlog in (int(b) for b in args.backlogs.split(",")):
        with BenchDatabase("postgresql") as db:
            fill(db.url, backlog=backlog, oas=args.oas, history=args.history, seed=backlog)
            for fair in (True, False):
                name = f"{backlog} pending, {'round-robin over OAs' if fair else 'one queue'}"
                timed = time_claims(db.url, limit=args.limit, runs=args.runs, fair=fair)
                result["claims"][name] = timed
                log(f"{name}: {fmt_spread(timed, ' ms', 1)} per claim of {args.limit}")
    log(f"wrote {write_result('claim-cost', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
