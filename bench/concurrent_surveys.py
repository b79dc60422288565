"""The issue's done-when run: 1,000 concurrent surveys on the production set-up.

    python -m bench.concurrent_surveys [--users 1000] [--threads 16] [--rate-per-minute 2000]

On PostgreSQL (a schema of its own, dropped afterwards): a three-process web server
(`sipas-bot serve --workers 3 --no-background`) and two `sipas-bot worker` processes in live
mode, delivering to bench/fake_zalo_server.py (50 ms per call). Each user sends the short
form, `#HVT01`, five answers (1–5, typed) and `bỏ qua`, one event after the other; the users
are interleaved at random and sent from several threads at once. Then the outbox is
drained and the run is checked:

- every webhook answered 200 and was handled (none a duplicate);
- the fake Zalo received, per user, exactly the expected messages (computed by running the
  same script through the app in this process; the closing words carry a case's code when
  the survey opened one, bench/expected.py), once each and in order;
- every SurveyResponse is completed, with the five answers that were sent;
- every outbox message is sent (none dead or pending).

Prints a summary and exits 1 if any check fails. ZALO_RATE_PER_MINUTE defaults to 2,000 per
worker: docs/deploy.md's advice (Zalo's 4,000 a minute for the app, shared by two workers).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import expected as expect
from bench.common import (
    PEPPER,
    QUICK,
    RESULTS,
    SIPAS_BOT,
    BenchDatabase,
    CpuMeter,
    Processes,
    count_rows,
    free_port,
    load_average,
    log,
    machine_info,
    pids_named,
    postgres_available,
    process_tree,
    wait_http,
    write_result,
)
from bench.events import Signed, Signer, post_signed, user_ids
from bench.outbox import OUTBOX_COUNTS, fake_get, live_env, start_fake
from bot.privacy import Pseudonymizer

COUNTER = "HVT01"


def script_for(rng: random.Random) -> tuple[list[str], tuple[int, ...]]:
    values = tuple(rng.randint(1, 5) for _ in range(expect.ANSWERS))
    return expect.survey_script(COUNTER, values), values


# --- what each user should receive ----------------------------------------------------------


def counter_steps() -> expect.Steps:
    """`expected_steps` at COUNTER, checked with very different answers."""
    expectations = expect.Expectations()
    try:
        samples = [(COUNTER, v) for v in [(1, 2, 3, 4, 5), (2, 5, 1, 4, 3), (5, 5, 5, 5, 2)]]
        return expect.expected_steps(expectations, COUNTER, samples=samples)
    finally:
        expectations.close()


# --- the citizens ---------------------------------------------------------------------------


class Citizens:
    """Users whose next event may be sent: one event per user in flight at a time, the
    next user picked at random."""

    def __init__(self, events: dict[str, list[Signed]], seed: int) -> None:
        self.events = events
        self.position = dict.fromkeys(events, 0)
        self.available = list(events)
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self.remaining = sum(len(e) for e in events.values())

    def take(self) -> tuple[str, Signed] | None:
        with self.lock:
            if not self.available:
                return None
            i = self.rng.randrange(len(self.available))
            self.available[i], self.available[-1] = self.available[-1], self.available[i]
            user = self.available.pop()
            return user, self.events[user][self.position[user]]

    def give_back(self, user: str, outcome: str, latency: float) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            self.latencies.append(latency)
            self.remaining -= 1
            self.position[user] += 1
            if self.position[user] < len(self.events[user]):
                self.available.append(user)

    def busy_waiting(self) -> bool:
        with self.lock:
            return self.remaining > 0


def send_all(port: int, citizens: Citizens, *, threads: int, deadline: float) -> None:
    def loop() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < deadline:
                taken = citizens.take()
                if taken is None:
                    if not citizens.busy_waiting():
                        return
                    time.sleep(0.002)  # the others' users are in flight
                    continue
                user, event = taken
                start = time.perf_counter()
                try:
                    status, body = post_signed(connection, event)
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    with citizens.lock:
                        citizens.failures.append(f"{type(exc).__name__}: {exc}")
                    # the same event again (as Zalo would re-send), after a pause
                    _retry(citizens, user)
                    time.sleep(0.1)
                    continue
                outcome = "?"
                if status == 200:
                    outcome = json.loads(body).get("outcome", "?")
                else:
                    with citizens.lock:
                        citizens.failures.append(f"HTTP {status}: {body[:200]!r}")
                    outcome = f"http_{status}"
                citizens.give_back(user, outcome, time.perf_counter() - start)
        finally:
            connection.close()

    workers = [threading.Thread(target=loop, name=f"citizen-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _retry(citizens: Citizens, user: str) -> None:
    with citizens.lock:
        citizens.available.append(user)


# --- the service under test ------------------------------------------------------------------


@dataclass
class Service:
    """`sipas-bot serve --workers N --no-background` and the `sipas-bot worker` processes."""

    web: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    port: int

    def cpu_groups(self, fake: subprocess.Popen[bytes]) -> dict[str, Callable[[], list[int]]]:
        """Process groups for CpuMeter: the web server, the workers, the fake Zalo, every
        PostgreSQL backend on the machine (other people's too) and this process."""
        return {
            "web": lambda: process_tree(self.web.pid),
            "workers": lambda: [p for w in self.workers for p in process_tree(w.pid)],
            "fake_zalo": lambda: [fake.pid],
            "postgres_all": lambda: pids_named("postgres"),
            "load_generator": lambda: [os.getpid()],
        }

    def stop(self, procs: Processes) -> dict[str, int | None]:
        """Stop them all; returns those that had exited before (name: exit code)."""
        named = [("web", self.web), *((f"worker{i}", w) for i, w in enumerate(self.workers))]
        exited = {name: p.returncode for name, p in named if p.poll() is not None}
        for worker in self.workers:
            procs.stop(worker)
        procs.stop(self.web)
        return exited


def start_service(
    procs: Processes,
    env: dict[str, str],
    logdir: Path,
    *,
    web_workers: int,
    workers: int,
    concurrency: int,
) -> Service:
    # `serve` refuses to start without a console key (it signs the console's cookies).
    env = {"CONSOLE_SECRET_KEY": secrets.token_urlsafe(32), **env}
    port = free_port()
    web_log = logdir / "web.log"
    command = [SIPAS_BOT, "serve", "--workers", str(web_workers), "--no-background"]
    web = procs.spawn("web", [*command, "--port", str(port)], env=env, cwd=logdir, log_path=web_log)
    wait_http(f"http://127.0.0.1:{port}/healthz", process=web, log_path=web_log)
    spawned = [
        procs.spawn(
            f"worker{i}",
            [SIPAS_BOT, "worker", "--concurrency", str(concurrency)],
            env=env,
            cwd=logdir,
            log_path=logdir / f"worker-{i}.log",
        )
        for i in range(workers)
    ]
    return Service(web, spawned, port)


def wait_outbox_empty(database_url: str, deadline: float) -> int | None:
    """Wait until no outbox message is pending or `deadline` passes; the last count."""
    pending = None
    while time.monotonic() < deadline:
        pending = count_rows(database_url, {"p": OUTBOX_COUNTS["pending"]})["p"]
        if pending == 0:
            break
        time.sleep(0.5)
    return pending


# --- the checks -----------------------------------------------------------------------------


def check_deliveries(
    calls: Sequence[Sequence[Any]], expected: dict[str, list[str]]
) -> tuple[list[str], dict[str, int]]:
    got: dict[str, list[str]] = defaultdict(list)
    for user_id, text, _t in calls:
        got[user_id].append(text)
    problems: list[str] = []
    tally = Counter[str]()
    for user, texts in expected.items():
        received = got.get(user, [])
        if received == texts:
            tally["exact"] += 1
            continue
        if len(received) > len(texts):
            tally["duplicates"] += 1
        elif len(received) < len(texts):
            tally["missing"] += 1
        else:
            tally["wrong_order_or_text"] += 1
        if len(problems) < 10:
            first = next(
                (i for i, (a, b) in enumerate(zip(received, texts, strict=False)) if a != b),
                min(len(received), len(texts)),
            )
            problems.append(
                f"user …{user[-6:]}: received {len(received)}, expected {len(texts)}; "
                f"first difference at message {first + 1}: "
                f"got {received[first][:50] if first < len(received) else None!r}, "
                f"expected {texts[first][:50] if first < len(texts) else None!r}"
            )
    strangers = set(got) - set(expected)
    if strangers:
        tally["unexpected_recipients"] = len(strangers)
        problems.append(f"{len(strangers)} recipient(s) who sent nothing")
    return problems, dict(tally)


def check_responses(
    database_url: str, scripts: dict[str, tuple[list[str], tuple[int, ...]]]
) -> tuple[list[str], dict[str, int]]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from storage.db import make_engine, make_session_factory
    from storage.models import SurveyResponse

    engine = make_engine(database_url)
    problems: list[str] = []
    tally = Counter[str]()
    try:
        with make_session_factory(engine)() as session:
            responses = session.scalars(
                select(SurveyResponse).options(selectinload(SurveyResponse.answers))
            ).all()
    finally:
        engine.dispose()
    by_hash: dict[str, list[SurveyResponse]] = defaultdict(list)
    for response in responses:
        by_hash[response.respondent_hash].append(response)
    for user, (_script, values) in scripts.items():
        found = by_hash.get(Pseudonymizer(PEPPER).respondent_hash(user), [])
        if len(found) != 1:
            tally["not_exactly_one_response"] += 1
            if len(problems) < 10:
                problems.append(f"user …{user[-6:]}: {len(found)} survey responses")
            continue
        response = found[0]
        if response.status != "completed":
            tally[f"status_{response.status}"] += 1
            if len(problems) < 10:
                problems.append(f"user …{user[-6:]}: survey {response.status}")
            continue
        stored = tuple(
            a.value for a in sorted(response.answers, key=lambda a: a.id) if a.value is not None
        )
        if stored != values:
            tally["answers_differ"] += 1
            if len(problems) < 10:
                problems.append(f"user …{user[-6:]}: answers stored {stored}, sent {values}")
            continue
        tally["completed_with_answers_sent"] += 1
    return problems, dict(tally)


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=200 if QUICK else 1000)
    parser.add_argument("--threads", type=int, default=16, help="sending threads")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="sipas-bot worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="per worker (its default)")
    parser.add_argument("--rate-per-minute", type=int, default=2000, help="per worker")
    parser.add_argument("--delay", type=float, default=0.05, help="fake Zalo, s per call")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900.0, help="for the whole run")
    args = parser.parse_args(argv)
    if not postgres_available():
        print("concurrent_surveys: PostgreSQL does not answer on BENCH_PG_URL", file=sys.stderr)
        return 2
    started_at = time.monotonic()
    deadline = started_at + args.timeout
    logdir = RESULTS / "logs" / f"surveys-{time.strftime('%Y%m%d-%H%M%S')}"
    logdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    command = "python -m bench.concurrent_surveys " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )

    rng = random.Random(args.seed)
    users = user_ids(args.users, base=5_000_000_000_000_000_000)
    scripts = {user: script_for(rng) for user in users}
    signer = Signer()
    events = {
        user: [signer.text_event(user, text, "survey") for text in script]
        for user, (script, _values) in scripts.items()
    }
    log(f"computing the expected messages for {len(users)} users")
    steps = counter_steps()
    total_events = sum(len(e) for e in events.values())
    total_messages = sum(
        len(texts) for _s, values in scripts.values() for texts in steps(COUNTER, values)
    )
    log(
        f"{len(users)} users, {total_events} events, {total_messages} messages expected; "
        f"web {args.web_workers} processes, {args.workers} worker(s) x concurrency "
        f"{args.concurrency}, ZALO_RATE_PER_MINUTE={args.rate_per_minute} per worker"
    )

    result: dict[str, Any] = {"machine": machine, "command": command}
    checks: dict[str, bool] = {}
    with (
        Processes() as procs,
        BenchDatabase("postgresql", on_exit=procs.stop_all) as database,
    ):
        fake, fake_base = start_fake(procs, logdir, delay=args.delay)
        env = live_env(database.url, fake_base, rate_per_minute=args.rate_per_minute)
        service = start_service(
            procs,
            env,
            logdir,
            web_workers=args.web_workers,
            workers=args.workers,
            concurrency=args.concurrency,
        )
        port = service.port
        meter = CpuMeter(service.cpu_groups(fake))
        citizens = Citizens(events, seed=args.seed)
        meter.start()
        t_send = time.monotonic()
        send_all(port, citizens, threads=args.threads, deadline=deadline)
        send_seconds = time.monotonic() - t_send
        log(
            f"sent {sum(citizens.outcomes.values())} events in {send_seconds:.1f} s: "
            f"{dict(citizens.outcomes)}; failures {len(citizens.failures)}"
        )
        pending = wait_outbox_empty(database.url, deadline)
        drain_seconds = time.monotonic() - t_send
        cpu = meter.stop()
        log(f"outbox empty after {drain_seconds:.1f} s (pending {pending})")
        exited = service.stop(procs)
        stats = fake_get(fake_base, "/_stats")
        calls = fake_get(fake_base, "/_calls")
        outbox = count_rows(database.url, OUTBOX_COUNTS)
        processed = count_rows(database.url, {"n": "SELECT count(*) FROM processed_events"})["n"]
        response_problems, response_tally = check_responses(database.url, scripts)
        with_case = expect.respondents_with_a_case(database.url)
    hashes = Pseudonymizer(PEPPER)
    expected = {
        user: [
            text
            for step in steps(COUNTER, values, hashes.respondent_hash(user) in with_case)
            for text in step
        ]
        for user, (_script, values) in scripts.items()
    }
    delivery_problems, delivery_tally = check_deliveries(
        [(user_id, expect.normalise(text), t) for user_id, text, t in calls], expected
    )

    latencies = sorted(citizens.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    checks["web server and workers stayed up"] = not exited
    checks["every webhook answered 200 and was handled"] = (
        citizens.outcomes.get("handled", 0) == total_events
        and not citizens.failures
        and citizens.remaining == 0
    )
    checks["every event recorded once"] = processed == total_events
    checks["outbox: every message sent, none dead or pending"] = (
        outbox["sent"] == total_messages and outbox["dead"] == 0 and outbox["pending"] == 0
    )
    checks["fake Zalo: per user exactly the expected messages, once, in order"] = (
        not delivery_problems and delivery_tally.get("exact", 0) == len(users)
    )
    checks["every survey completed with the answers sent"] = (
        not response_problems and response_tally.get("completed_with_answers_sent") == len(users)
    )
    window = (stats["last"] - stats["first"]) if stats["calls"] > 1 else 0.0
    result.update(
        {
            "users": len(users),
            "events": total_events,
            "messages_expected": total_messages,
            "outcomes": dict(citizens.outcomes),
            "failures": citizens.failures[:20],
            "send_seconds": round(send_seconds, 2),
            "events_per_s": round(total_events / send_seconds, 1) if send_seconds else 0,
            "webhook_latency_ms": {
                "p50": round(pct(50), 1),
                "p99": round(pct(99), 1),
                "max": round(latencies[-1] * 1000, 1),
            }
            if latencies
            else {},
            "drain_seconds": round(drain_seconds, 2),
            "fake_calls": stats["calls"],
            "delivery_rate": round((stats["calls"] - 1) / window, 1) if window else 0,
            "max_in_flight": stats["max_in_flight"],
            "outbox": outbox,
            "processed_events": processed,
            "delivery_tally": delivery_tally,
            "delivery_problems": delivery_problems,
            "response_tally": response_tally,
            "response_problems": response_problems,
            "cpu": cpu,
            "exited": exited,
            "loadavg_after": load_average(),
            "checks": checks,
            "passed": all(checks.values()),
        }
    )
    path = write_result("concurrent-surveys", result)

    print()
    print(f"concurrent surveys: {len(users)} users, {total_events} events, web x3, workers x2")
    print(
        f"  ingest   {total_events} events in {send_seconds:.1f} s "
        f"({result['events_per_s']} events/s from {args.threads} threads), "
        f"latency p50 {result['webhook_latency_ms'].get('p50')} ms, "
        f"p99 {result['webhook_latency_ms'].get('p99')} ms"
    )
    print(
        f"  delivery {stats['calls']} calls to the fake Zalo, outbox empty "
        f"{drain_seconds:.1f} s after the first event ({result['delivery_rate']} messages/s "
        f"between first and last call; ZALO_RATE_PER_MINUTE={args.rate_per_minute} per worker)"
    )
    print(f"  outbox   {outbox}; deliveries per user {delivery_tally}")
    print(f"  surveys  {response_tally}")
    return print_verdict(
        checks, citizens.failures[:5] + delivery_problems + response_problems, path, logdir
    )


def print_verdict(checks: dict[str, bool], problems: list[str], path: Path, logdir: Path) -> int:
    """Each check's PASS/FAIL, the first problems, the verdict; the exit status."""
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    for problem in problems[:15]:
        print(f"         {problem}")
    passed = all(checks.values())
    print(f"  {'PASSED' if passed else 'FAILED'} (raw results: {path}; logs: {logdir})")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
