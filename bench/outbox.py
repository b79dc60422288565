"""Outbox delivery: N users x M messages put in the outbox, then `sipas-bot worker
--concurrency C` (live mode, ZALO_API_BASE pointing at bench/fake_zalo_server.py, which takes
50 ms per call) until the outbox is empty. Measures messages/s and checks, from what the fake
received, that every message arrived once and each user's in order.

    python -m bench.outbox [--users N] [--messages M] [--concurrency 8,64] [--workers 1]
                           [--runs R] [--backend postgresql|sqlite] [--delay 0.05]

The worker limits itself to ZALO_RATE_PER_MINUTE (default 4,000, Zalo's limit for an app):
at that setting no sender can pass 66.7 messages/s. To measure the sender itself, this
benchmark sets it to 1,000,000 unless --rate-per-minute says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    QUICK,
    RESULTS,
    SIPAS_BOT,
    BenchDatabase,
    CpuMeter,
    Processes,
    count_rows,
    fmt_spread,
    free_port,
    load_average,
    log,
    machine_info,
    pg_backend_pids,
    pids_named,
    postgres_available,
    process_tree,
    service_env,
    spread,
    wait_http,
    write_result,
)

NO_LIMIT = 1_000_000


# --- the fake Zalo --------------------------------------------------------------------------


def start_fake(procs: Processes, logdir: Path, *, delay: float) -> tuple[Any, str]:
    port = free_port()
    log_path = logdir / f"fake-zalo-{port}.log"
    process = procs.spawn(
        "fake-zalo",
        [
            sys.executable,
            "-m",
            "bench.fake_zalo_server",
            "--port",
            str(port),
            "--delay",
            str(delay),
        ],
        cwd=Path(__file__).resolve().parent.parent,
        log_path=log_path,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", process=process, log_path=log_path)
    return process, base


def fake_get(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
        return json.loads(response.read())


def fake_reset(base: str) -> None:
    request = urllib.request.Request(f"{base}/_reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def live_env(database_url: str, fake_base: str, *, rate_per_minute: int) -> dict[str, str]:
    """Live mode (ZALO_SANDBOX=0) against the fake: tokens, app secret and OA id set."""
    return service_env(
        database_url,
        ZALO_SANDBOX="0",
        ZALO_API_BASE=fake_base,
        ZALO_OAUTH_BASE=fake_base,
        ZALO_ACCESS_TOKEN="bench-access-0",
        ZALO_REFRESH_TOKEN="bench-refresh-0",
        ZALO_APP_SECRET="bench-app-secret",
        ZALO_OA_ID="388613280878808645",
        ZALO_RATE_PER_MINUTE=str(rate_per_minute),
    )


# --- the outbox -----------------------------------------------------------------------------


def bench_user(u: int) -> str:
    return str(6_000_000_000_000_000_000 + u * 7919)


def message_text(u: int, m: int) -> str:
    return f"bench message {m:04d} for user {u:05d}"


def prefill(database_url: str, users: int, messages: int) -> None:
    """Conversations seen just now (so Zalo's 7-day window is open) and the outbox, message
    by message across users, as the webhook would have written it."""
    from sqlalchemy import insert

    from storage.db import make_engine
    from storage.models import Conversation, OutboxMessage

    now = dt.datetime.now(dt.UTC)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Conversation),
                [
                    {
                        "user_id": bench_user(u),
                        "language": "vi",
                        "last_interaction_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for u in range(users)
                ],
            )
            rows = [
                {
                    "user_id": bench_user(u),
                    "body": {"text": message_text(u, m), "buttons": []},
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for m in range(messages)
                for u in range(users)
            ]
            for start in range(0, len(rows), 5000):
                connection.execute(insert(OutboxMessage), rows[start : start + 5000])
    finally:
        engine.dispose()


OUTBOX_COUNTS = {
    "pending": "SELECT count(*) FROM outbox_messages WHERE status = 'pending'",
    "sent": "SELECT count(*) FROM outbox_messages WHERE status = 'sent'",
    "dead": "SELECT count(*) FROM outbox_messages WHERE status = 'dead'",
    "attempts": "SELECT coalesce(sum(attempts), 0) FROM outbox_messages",
}


def check_order(calls: Sequence[Sequence[Any]], expected: dict[str, list[str]]) -> list[str]:
    """Problems found: a user who got other than exactly the expected texts, in order."""
    got: dict[str, list[str]] = defaultdict(list)
    for user_id, text, _t in calls:
        got[user_id].append(text)
    problems = []
    for user_id, texts in expected.items():
        received = got.get(user_id, [])
        if received != texts:
            dupes = len(received) - len(set(received))
            missing = len(set(texts) - set(received))
            in_order = [t for t in received if t in set(texts)]
            problems.append(
                f"user {user_id[-6:]}: got {len(received)} of {len(texts)} "
                f"(duplicates {dupes}, missing {missing}, "
                f"order {'ok' if _dedup(in_order) == texts else 'WRONG'})"
            )
    unexpected = set(got) - set(expected)
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected recipient(s)")
    return problems


def _dedup(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


# --- one run --------------------------------------------------------------------------------


def wait_for_log(path: Path, text: str, process: Any, timeout: float = 60.0) -> None:
    """Until `text` is in the log (the worker is up), so that the next one starts after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and text in path.read_text("utf-8", errors="replace"):
            return
        time.sleep(0.1)


def wait_until_empty(
    database_url: str, *, expected: int, fake_base: str, timeout: float
) -> tuple[bool, float]:
    """Poll until nothing is pending; (emptied, seconds)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        counts = count_rows(database_url, {"pending": OUTBOX_COUNTS["pending"]})
        if counts["pending"] == 0:
            return True, time.monotonic() - start
        time.sleep(0.25)
    return False, time.monotonic() - start


def one_run(
    procs: Processes,
    *,
    backend: str,
    users: int,
    messages: int,
    concurrency: int,
    workers: int,
    rate_per_minute: int,
    fake_base: str,
    fake_pid: int,
    logdir: Path,
    timeout: float,
    profile_seconds: int = 0,
    simultaneous_start: bool = False,
) -> dict[str, Any]:
    total = users * messages
    loadavg = load_average()
    profile: dict[str, Any] | None = None
    with BenchDatabase(backend) as database:
        prefill(database.url, users, messages)
        fake_reset(fake_base)
        env = live_env(database.url, fake_base, rate_per_minute=rate_per_minute)
        started: list[subprocess.Popen[bytes]] = []
        meter = CpuMeter(
            {
                "workers": lambda: [p for w in started for p in process_tree(w.pid)],
                "fake_zalo": lambda: [fake_pid],
                "postgres_all": lambda: pids_named("postgres"),
            }
        )
        t0 = time.monotonic()
        meter.start()
        for i in range(workers):
            log_path = logdir / f"worker-{backend}-c{concurrency}-{i}-{time.time():.0f}.log"
            started.append(
                procs.spawn(
                    f"worker{i}",
                    [SIPAS_BOT, "worker", "--concurrency", str(concurrency)],
                    env=env,
                    cwd=logdir,
                    log_path=log_path,
                )
            )
            if not simultaneous_start and i < workers - 1:
                wait_for_log(log_path, "event=worker_started", started[-1])
        try:
            if profile_seconds:
                profile = profile_sender(started[0].pid, profile_seconds, logdir, concurrency)
            emptied, _seconds = wait_until_empty(
                database.url, expected=total, fake_base=fake_base, timeout=timeout
            )
            wall = time.monotonic() - t0
            cpu = meter.stop(extra={"postgres_service": pg_backend_pids()})
            # a worker that died (e.g. at start-up) is a finding, not a detail
            exits = [w.returncode for w in started if w.poll() is not None]
        finally:
            for worker in started:
                procs.stop(worker)
        counts = count_rows(database.url, OUTBOX_COUNTS)
    stats = fake_get(fake_base, "/_stats")
    calls = fake_get(fake_base, "/_calls")
    expected = {bench_user(u): [message_text(u, m) for m in range(messages)] for u in range(users)}
    problems = check_order(calls, expected)
    window = (stats["last"] - stats["first"]) if stats["calls"] > 1 else 0.0
    cpu["other"] = round(
        cpu["machine_busy"] - cpu["workers"] - cpu["fake_zalo"] - cpu["postgres_all"], 3
    )
    return {
        "backend": backend,
        "users": users,
        "messages": messages,
        "concurrency": concurrency,
        "workers": workers,
        "emptied": emptied,
        "calls": stats["calls"],
        "expected_calls": total,
        "max_in_flight": stats["max_in_flight"],
        "rate": (stats["calls"] - 1) / window if window else 0.0,
        "rate_wall": total / wall if wall else 0.0,
        "wall_s": round(wall, 2),
        "counts": counts,
        "order_ok": not problems and not exits,
        "problems": problems[:10] + [f"a worker exited early with status {x}" for x in exits],
        "cpu": cpu,
        "loadavg_before": loadavg,
        "profile": profile,
    }


SENDER_PHASES = [
    # (label, marker in a frame of the sender thread); the innermost marker found wins
    ("lease: SELECT ... FOR UPDATE SKIP LOCKED and the lease", "claim_due_messages"),
    ("lease: last interactions", "last_interactions"),
    ("record: the UPDATEs of the finished sends", "record_outbox_outcomes"),
    ("record: outcome and log line per message", "OutboxSender._outcome"),
    ("commit", "SessionTransaction.commit"),
    ("waiting for a send to finish", "concurrent/futures/_base.py"),
    ("idle (nothing due)", "Event.wait"),
]


def profile_sender(pid: int, seconds: int, logdir: Path, concurrency: int) -> dict[str, Any]:
    """py-spy (all threads, idle included) on a worker: where its sender thread's rounds
    spend their time, and how busy the sending threads are."""
    import shutil
    import subprocess
    from collections import Counter

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = logdir / f"pyspy-worker-{pid}.txt"
    time.sleep(1.0)
    subprocess.run(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "100",
            "--idle",
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        check=True,
        capture_output=True,
    )
    phases: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    for line in raw.read_text("utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        if "run_forever (bot/sender.py" in stack:
            frames = stack.split(";")
            label = "other"
            for frame in reversed(frames):
                hit = next((name for name, marker in SENDER_PHASES if marker in frame), None)
                if hit:
                    label = hit
                    break
            phases[label] += count
        elif "OutboxSender._send (bot/sender.py" in stack:
            senders["sending (in a Zalo call)"] += count
        elif "(concurrent/futures/thread.py" in stack:
            senders["idle (no message to send)"] += count
    total = sum(phases.values()) or 1
    sender_total = sum(senders.values()) or 1
    return {
        "sender_thread_pct": {k: round(100 * v / total, 1) for k, v in phases.most_common()},
        "sending_threads_pct": {
            k: round(100 * v / sender_total, 1) for k, v in senders.most_common()
        },
        "concurrency": concurrency,
        "raw": str(raw),
    }


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=200 if QUICK else 500)
    parser.add_argument("--messages", type=int, default=5 if QUICK else 10)
    parser.add_argument("--concurrency", default="8,64", help="comma-separated values")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--rate-per-minute", type=int, default=NO_LIMIT)
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument(
        "--simultaneous-start",
        action="store_true",
        help="start the workers at the same instant (by default each waits for the previous "
        "one to be up: two at once on a new database can race at start-up)",
    )
    parser.add_argument(
        "--profile-seconds",
        type=int,
        default=0,
        help="py-spy the (first) worker of the first run for this long (needs py-spy)",
    )
    args = parser.parse_args(argv)
    if args.backend == "postgresql" and not postgres_available():
        log("PostgreSQL does not answer: nothing to do")
        return 2
    logdir = RESULTS / "logs" / f"outbox-{time.strftime('%Y%m%d-%H%M%S')}"
    logdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    command = "python -m bench.outbox " + " ".join(argv if argv is not None else sys.argv[1:])
    with Processes() as procs:
        fake, fake_base = start_fake(procs, logdir, delay=args.delay)
        concurrencies = [int(c) for c in args.concurrency.split(",")]
        per_c: dict[int, list[dict[str, Any]]] = {c: [] for c in concurrencies}
        log(
            f"outbox: {args.users} users x {args.messages} messages, fake Zalo {args.delay}s "
            f"per call, {args.workers} worker(s), ZALO_RATE_PER_MINUTE={args.rate_per_minute}"
        )
        for run in range(args.runs):
            for c in concurrencies:
                result = one_run(
                    procs,
                    backend=args.backend,
                    users=args.users,
                    messages=args.messages,
                    concurrency=c,
                    workers=args.workers,
                    rate_per_minute=args.rate_per_minute,
                    fake_base=fake_base,
                    fake_pid=fake.pid,
                    logdir=logdir,
                    timeout=args.timeout,
                    profile_seconds=args.profile_seconds if run == 0 else 0,
                    simultaneous_start=args.simultaneous_start,
                )
                per_c[c].append(result)
                if result["profile"]:
                    log(f"  profile of the worker at concurrency {c}: {result['profile']}")
                log(
                    f"  run {run + 1}/{args.runs} concurrency {c}: {result['rate']:.1f} msg/s "
                    f"(wall {result['wall_s']} s, calls {result['calls']}/"
                    f"{result['expected_calls']}, in flight max {result['max_in_flight']}, "
                    f"order {'ok' if result['order_ok'] else 'BROKEN'}) cpu {result['cpu']}"
                )
    summary = {
        c: {
            "rate": spread([r["rate"] for r in results]),
            "wall_s": spread([r["wall_s"] for r in results]),
            "all_ok": all(r["order_ok"] and r["emptied"] for r in results),
            "max_in_flight": max(r["max_in_flight"] for r in results),
            "cpu_median": {
                k: spread([r["cpu"].get(k, 0.0) for r in results])["median"]
                for k in results[0]["cpu"]
            },
        }
        for c, results in per_c.items()
    }
    lines = [
        "| concurrency | workers | messages | messages/s | time to empty s | in flight (max) "
        "| once, in order | CPU (median, cores) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c, s in summary.items():
        cpu = s["cpu_median"]
        lines.append(
            f"| {c} | {args.workers} | {args.users * args.messages:,} | {fmt_spread(s['rate'])} "
            f"| {fmt_spread(s['wall_s'], digits=1)} | {s['max_in_flight']} "
            f"| {'yes' if s['all_ok'] else 'NO'} "
            f"| machine {cpu['machine_busy']:.2f}: worker {cpu['workers']:.2f}, "
            f"fake Zalo {cpu['fake_zalo']:.2f}, PostgreSQL {cpu['postgres_all']:.2f}, "
            f"other {cpu['other']:.2f} |"
        )
    table = "\n".join(lines)
    data = {
        "machine": machine,
        "loadavg_after": load_average(),
        "command": command,
        "runs": {str(c): r for c, r in per_c.items()},
        "summary": {str(c): s for c, s in summary.items()},
        "table": table,
    }
    path = write_result("outbox", data)
    print(table)
    print(f"\n(raw results: {path}; logs: {logdir})")
    return 0 if all(s["all_ok"] for s in summary.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
