"""Inline against queued intake (WEBHOOK_INTAKE), with the turns run: the webhook's answer,
how soon the reply is queued, and how fast a burst is taken in and worked off.

    python -m bench.intake [--events N] [--users U] [--connections C] [--runs R]
                           [--intakes inline,queued] [--workers W] [--worker-threads T]
                           [--worker-nice N] [--rate R] [--label L]

On PostgreSQL, per run and intake: a fresh schema, `sipas-bot serve --workers 2 --threads 8
--no-background` (the web) and W (2) `sipas-bot worker` processes (the outbox sender, sandbox
mode; with queued intake also their WEBHOOK_INBOX_THREADS inbox threads), warmed up with
300 events of other users (run to the end before the measurement). Then N events of the
ingest mix are sent over C keep-alive connections as fast as they are answered (the Python
load generator; a user's events share a connection, so they arrive in order), or with
`--rate R` at R events a second whatever the answers take (open loop: the reply's delay at a
load the service keeps up with).

Reported per intake: the answers' rate and p50/p99/max (the intake); when the last turn was
done, counted from the first request ("all done"); the reply's delay, from the event's
arrival to its turn's commit (inline: within the answer's latency; queued:
inbox_events.handled_at - received_at, p50/p99), the turns per second the worker sustained
(queued: done / the span of handled_at), and the CPU of the web, the worker and PostgreSQL.
The load average is written before and after every run: the machine is shared.
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
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
    fmt_spread,
    load_average,
    log,
    machine_info,
    pg_backend_pids,
    pids_named,
    postgres_available,
    process_tree,
    service_env,
    spread,
    write_result,
)
from bench.events import Signed, ingest_mix, mix_counts, post_signed
from bench.ingest import WARMUP_EVENTS, WARMUP_ID_BASE, Config, start_server, warm_up
from bench.outbox import wait_for_log

DRAIN_TIMEOUT = 900.0


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _pending(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM inbox_events WHERE status = 'pending'")
            ).scalar_one()
        )


def _wait_drained(engine: Any, workers: Sequence[Any]) -> float:
    """Until no inbox event is pending (the workers ran every turn); the seconds waited."""
    start = time.monotonic()
    while _pending(engine):
        if any(worker.poll() is not None for worker in workers):
            raise RuntimeError("a worker exited")
        if time.monotonic() - start > DRAIN_TIMEOUT:
            raise RuntimeError(f"the inbox did not drain in {DRAIN_TIMEOUT:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - start


def _turns(engine: Any, after_id: int) -> dict[str, Any]:
    """The measured events' turns (queued intake): reply delay and the worker's rate."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT received_at, handled_at, status FROM inbox_events WHERE id > :after "
                "ORDER BY id"
            ),
            {"after": after_id},
        ).all()
    done = [(r, h) for r, h, status in rows if status == "done"]
    delays = [(h - r).total_seconds() * 1000 for r, h in done]
    first_in = min(r for r, _ in done)
    first_done, last_done = min(h for _, h in done), max(h for _, h in done)
    span = (last_done - first_done).total_seconds()
    return {
        "stored": len(rows),
        "done": len(done),
        "not_done": len(rows) - len(done),
        "reply_delay_ms": {
            "p50": _percentile(delays, 50),
            "p99": _percentile(delays, 99),
            "max": max(delays),
        },
        "turns_per_s": len(done) / span if span else float("nan"),
        "all_done_s": (last_done - first_in).total_seconds(),
    }


def paced(port: int, events: Sequence[Signed], *, rate: float, connections: int) -> dict[str, Any]:
    """Send the events at `rate` a second (open loop: event i is due i/rate s after the
    start, whatever the answers take), a user's events on one of `connections` kept-alive
    connections, in order. The same result keys as bench.loadgen.run."""
    shares: list[list[tuple[int, Signed]]] = [[] for _ in range(connections)]
    slot: dict[str, int] = {}
    for index, event in enumerate(events):
        shares[slot.setdefault(event.user_id, len(slot) % connections)].append((index, event))
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def send(share: list[tuple[int, Signed]]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for index, event in share:
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
            began = time.perf_counter()
            status, _ = post_signed(connection, event)
            with lock:
                latencies.append(time.perf_counter() - began)
                failures[0] += status != 200
        connection.close()

    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    window = time.monotonic() - start
    ms = [x * 1000 for x in latencies]
    return {
        "responses": len(ms),
        "non200": failures[0],
        "errors": {},
        "window_s": window,
        "latency_ms": {
            "p50": _percentile(ms, 50),
            "p99": _percentile(ms, 99),
            "max": max(ms),
        },
        "children_cpu_s": 0.0,  # sent from this process: its CPU is not counted
    }


def _max_inbox_id(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as connection:
        statement = text("SELECT coalesce(max(id), 0) FROM inbox_events")
        return int(connection.execute(statement).scalar_one())


def one_run(
    procs: Processes,
    intake: str,
    events: Sequence[Signed],
    warmup: Sequence[Signed],
    *,
    connections: int,
    worker_processes: int,
    worker_threads: int,
    worker_nice: int,
    rate: float,
    logdir: Path,
) -> dict[str, Any]:
    from bench import loadgen

    config = Config(events=len(events), users=0, connections=connections, intake=intake)
    loadavg_before = load_average()
    with BenchDatabase("postgresql") as database:
        engine = database.engine()
        server, port, _ = start_server(procs, f"postgresql-{intake}", database.url, config, logdir)
        env = service_env(
            database.url, WEBHOOK_INTAKE=intake, WEBHOOK_INBOX_THREADS=str(worker_threads)
        )
        workers = []
        nice = ["nice", "-n", str(worker_nice)] if worker_nice else []
        for n in range(worker_processes):
            worker_log = logdir / f"worker-{intake}-{port}-{n}.log"
            workers.append(
                procs.spawn(
                    f"worker{n}",
                    [*nice, SIPAS_BOT, "worker", "--concurrency", "4"],
                    env=env,
                    cwd=logdir,
                    log_path=worker_log,
                )
            )
            wait_for_log(worker_log, "event=worker_started", workers[-1])
        try:
            warm_up(port, warmup)
            if intake == "queued":
                _wait_drained(engine, workers)
            after_id = _max_inbox_id(engine)
            meter = CpuMeter(
                {
                    "web": lambda: process_tree(server.pid),
                    "worker": lambda: [p for w in workers for p in process_tree(w.pid)],
                    "postgres_all": lambda: pids_named("postgres"),
                }
            )
            meter.start()
            if rate:
                sent = paced(port, events, rate=rate, connections=connections)
            else:
                sent = loadgen.run(port, events, connections=connections, max_seconds=600)
            drain_s = _wait_drained(engine, workers) if intake == "queued" else 0.0
            cpu = meter.stop(extra={"postgres_service": pg_backend_pids()})
            # the load generator's processes have exited: the CPU they reported
            cpu["loadgen"] = round(sent["children_cpu_s"] / cpu["wall_s"], 3)
            turns = _turns(engine, after_id) if intake == "queued" else None
        finally:
            procs.stop(server)
            for worker in workers:
                procs.stop(worker)
            engine.dispose()
    window = sent["window_s"]
    result: dict[str, Any] = {
        "intake": intake,
        "responses": sent["responses"],
        "non200": sent["non200"],
        "errors": sent["errors"],
        "rate": sent["responses"] / window if window else 0.0,
        "latency_ms": sent["latency_ms"],
        "window_s": window,
        "drain_after_last_answer_s": drain_s,
        "all_done_s": turns["all_done_s"] if turns else window,
        "turns": turns,
        "cpu": cpu,
        "loadavg_before": loadavg_before,
        "loadavg_after": load_average(),
    }
    log(
        f"  {intake:7s} {result['rate']:7.1f} answers/s  p50 {sent['latency_ms']['p50']:.1f} "
        f"p99 {sent['latency_ms']['p99']:.1f} max {sent['latency_ms']['max']:.1f} ms  "
        f"all done {result['all_done_s']:.1f} s  non200 {sent['non200']}  turns {turns}  "
        f"load {loadavg_before} -> {result['loadavg_after']}  cpu {cpu}"
    )
    return result


def markdown(label: str, connections: int, per_intake: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        f"{label}, {connections} connections:",
        "",
        "| intake | answers/s | answer p50 / p99 / max, ms | all turns done, s | reply queued "
        "after arrival p50 / p99, ms | turns/s (workers) | CPU, cores: web / workers / "
        "PostgreSQL / load generator / machine | "
        "load average before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for intake, results in per_intake.items():

        def med(path: Sequence[str], rs: list[dict[str, Any]] = results) -> dict[str, float]:
            values = []
            for r in rs:
                value: Any = r
                for key in path:
                    value = value[key] if value is not None else None
                if value is not None:
                    values.append(float(value))
            return spread(values)

        queued = intake == "queued"
        delay = (
            f"{fmt_spread(med(['turns', 'reply_delay_ms', 'p50']))} / "
            f"{fmt_spread(med(['turns', 'reply_delay_ms', 'p99']))}"
            if queued
            else "within the answer"
        )
        cpu = " / ".join(
            f"{med(['cpu', key])['median']:.2f}"
            for key in ("web", "worker", "postgres_all", "loadgen", "machine_busy")
        )
        loads = "; ".join(
            f"{r['loadavg_before'][0]:.1f} → {r['loadavg_after'][0]:.1f}" for r in results
        )
        lines.append(
            f"| {intake} | {fmt_spread(med(['rate']))} "
            f"| {fmt_spread(med(['latency_ms', 'p50']), digits=1)} / "
            f"{fmt_spread(med(['latency_ms', 'p99']))} / {fmt_spread(med(['latency_ms', 'max']))} "
            f"| {fmt_spread(med(['all_done_s']), digits=1)} | {delay} "
            f"| {fmt_spread(med(['turns', 'turns_per_s'])) if queued else '–'} "
            f"| {cpu} | {loads} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1000 if QUICK else 5000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3)
    parser.add_argument("--intakes", default="inline,queued")
    parser.add_argument(
        "--workers", type=int, default=2, help="`sipas-bot worker` processes (as many as web)"
    )
    parser.add_argument(
        "--worker-threads", type=int, default=8, help="WEBHOOK_INBOX_THREADS of each worker"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="run the workers under `nice -n N`: the web answers first, the turns take the rest",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="send at this many events a second (open loop) instead of as fast as answered",
    )
    parser.add_argument("--label", default="burst")
    args = parser.parse_args(argv)
    if not postgres_available():
        log("PostgreSQL does not answer: nothing to measure")
        return 1
    intakes = [i.strip() for i in args.intakes.split(",") if i.strip()]
    events = ingest_mix(args.events, args.users)
    warmup = ingest_mix(WARMUP_EVENTS, 100, seed=99, id_base=WARMUP_ID_BASE)
    logdir = RESULTS / "logs" / f"intake-{time.strftime('%Y%m%d-%H%M%S')}"
    logdir.mkdir(parents=True, exist_ok=True)
    log(
        f"intake {args.label}: {len(events)} events of {args.users} users, "
        f"{args.connections} connections, mix {mix_counts(events)}"
    )
    per_intake: dict[str, list[dict[str, Any]]] = {i: [] for i in intakes}
    with Processes() as procs:
        for _run in range(args.runs):
            for intake in intakes:  # interleaved: the machine's noise spreads over both
                per_intake[intake].append(
                    one_run(
                        procs,
                        intake,
                        events,
                        warmup,
                        connections=args.connections,
                        worker_processes=args.workers,
                        worker_threads=args.worker_threads,
                        worker_nice=args.worker_nice,
                        rate=args.rate,
                        logdir=logdir,
                    )
                )
    table = markdown(args.label, args.connections, per_intake)
    path = write_result(
        f"intake-{args.label}",
        {
            "machine": machine_info(),
            "command": "python -m bench.intake " + " ".join(argv or []),
            "events": len(events),
            "connections": args.connections,
            "runs": per_intake,
            "table": table,
        },
    )
    print(table)
    print(f"\n(raw results: {path}; logs: {logdir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
