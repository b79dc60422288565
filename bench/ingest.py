"""Webhook ingest: pre-signed events sent over keep-alive connections to the production web
set-up, `sipas-bot serve --workers 2 --no-background` (gunicorn gthread, 8 threads per
worker, sandbox mode, no worker running: the outbox only fills), on SQLite and on
PostgreSQL, and in the same run to a bare Flask endpoint under the same gunicorn settings.

    python -m bench.ingest [--events N] [--users U] [--connections C] [--runs R]
                           [--targets sqlite,postgresql,bare] [--max-seconds S]
                           [--growth [--growth-events N] [--growth-runs R]]
                           [--intake inline|queued]
                           [--oas 100 --units 1000 [--counters-per-unit 3]]

`--intake queued`: the server only verifies, stores the event in the inbox and answers (no
worker runs, the inbox only fills): the intake alone. `python -m bench.intake` compares the
two intakes with workers running the turns (reply latency, a burst).

Each run gets a fresh database (a SQLite file, or a PostgreSQL schema dropped afterwards) and
a fresh server, warmed up with a few hundred events of other users. The targets are
interleaved run by run so that background noise spreads over all of them. Reported: events/s
(responses over the time from the first request to the last answer), latency p50/p99/max,
the ratio to the bare endpoint, and the CPU each party used (server processes, PostgreSQL,
the load generator, the rest of the machine), which tells what the limit was.

With `--oas N --units M` (issue 17), the database holds N Official Accounts (a units file's
`oas` section, each its own Zalo app with its own secrets from the server's environment) and
M units (M/N per OA) with `--counters-per-unit` counters each, and the events are spread
over them: user i writes to OA i % N, at that OA's counters, each event signed with that
OA's secret.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    GUNICORN,
    QUICK,
    RESULTS,
    ROOT,
    SIPAS_BOT,
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
    tail,
    top_snapshot,
    wait_http,
    write_result,
)
from bench.events import Signed, Signer, ingest_mix, mix_counts, post_signed, write_wrk_file
from bench.province import Oa, import_units, oa_env, province, units_yaml

LUA = ROOT / "bench" / "wrk_events.lua"
WARMUP_EVENTS = 300
WARMUP_ID_BASE = 8_000_000_000_000_000_000
BARE_REQUESTS = 10_000


@dataclass(frozen=True)
class Config:
    events: int
    users: int
    connections: int
    workers: int = 2
    threads: int = 8
    wrk_threads: int = 1
    max_seconds: float = 240.0
    loadgen: str = "wrk"  # wrk | python
    prefill_events: int = 0  # rows already in the tables, as if that many events came before
    intake: str = "inline"  # WEBHOOK_INTAKE: inline runs the turn, queued only stores it
    oas: int = 0  # OAs in the database (0: the environment's only), with `units` units
    units: int = 0
    counters_per_unit: int = 3

    def province(self) -> list[Oa]:
        """The OAs and units of `--oas`/`--units` (none without)."""
        if not self.oas:
            return []
        return province(
            self.oas,
            units_per_oa=self.units // self.oas,
            counters_per_unit=self.counters_per_unit,
        )

    def mix(self, events: int, users: int, **kwargs: Any) -> list[Signed]:
        """`ingest_mix`, spread over the OAs' counters and signed with their secrets."""
        accounts = [
            (Signer(oa.app_id, oa.oa_secret_key, oa.oa_id), oa.counters) for oa in self.province()
        ]
        return ingest_mix(events, users, accounts=accounts, **kwargs)


# --- servers --------------------------------------------------------------------------------


def start_server(
    procs: Processes,
    target: str,
    database_url: str,
    config: Config,
    logdir: Path,
    *,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """The service (or the bare app) on a free port, answering /healthz."""
    port = free_port()
    log_path = logdir / f"server-{target}-{port}.log"
    if target == "bare":
        command = [
            GUNICORN,
            "--worker-class",
            "gthread",
            "--workers",
            str(config.workers),
            "--threads",
            str(config.threads),
            "--bind",
            f"127.0.0.1:{port}",
            "bench.bare_app:create_app()",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        process = procs.spawn("bare", command, env=env, cwd=ROOT, log_path=log_path)
    else:
        command = [
            SIPAS_BOT,
            "serve",
            "--workers",
            str(config.workers),
            "--threads",
            str(config.threads),
            "--no-background",
            "--port",
            str(port),
        ]
        process = procs.spawn(
            target,
            command,
            env=service_env(database_url, WEBHOOK_INTAKE=config.intake, **(env or {})),
            cwd=logdir,
            log_path=log_path,
        )
    wait_http(f"http://127.0.0.1:{port}/healthz", process=process, log_path=log_path)
    return process, port, log_path


def warm_up(port: int, events: Sequence[Signed], *, connections: int = 4) -> None:
    """Send a few hundred events of other users, so that every worker has loaded its code,
    its questionnaires and its database connections before the measurement."""
    failures: list[str] = []

    def send(share: Sequence[Signed]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for event in share:
                status, _ = post_signed(connection, event)
                if status != 200:
                    failures.append(str(status))
        finally:
            connection.close()

    by_user: dict[str, int] = {}
    shares: list[list[Signed]] = [[] for _ in range(connections)]
    for event in events:
        shares[by_user.setdefault(event.user_id, len(by_user) % connections)].append(event)
    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"warm-up got non-200 answers: {sorted(set(failures))}")


# --- load generators ------------------------------------------------------------------------


def run_wrk(
    procs: Processes,
    port: int,
    events_file: Path,
    config: Config,
    meter: CpuMeter,
    logdir: Path,
    *,
    repeat: int = 1,
) -> dict[str, Any]:
    done_dir = Path(tempfile.mkdtemp(prefix="wrk-done-", dir=logdir))
    out_path = logdir / f"wrk-{port}.out"
    env = dict(
        os.environ,
        BENCH_EVENTS=str(events_file),
        BENCH_DONE_DIR=str(done_dir),
        BENCH_REPEAT=str(repeat),
    )
    command = [
        shutil.which("wrk") or "wrk",
        "-t",
        str(config.wrk_threads),
        "-c",
        str(config.connections),
        "-d",
        f"{int(config.max_seconds)}s",
        "--timeout",
        "15s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
    ]
    wrk = procs.spawn("wrk", command, env=env, log_path=out_path)
    meter.groups = {**meter.groups, "loadgen": lambda: [wrk.pid]}
    meter.start()
    snapshot = ""
    deadline = time.monotonic() + config.max_seconds + 30
    snap_at = time.monotonic() + 3.0
    while wrk.poll() is None and time.monotonic() < deadline:
        if len(list(done_dir.glob("done-*"))) >= config.wrk_threads:
            break
        if not snapshot and time.monotonic() >= snap_at:
            snapshot = top_snapshot()
        time.sleep(0.05)
    cpu = meter.stop(extra={"postgres_service": pg_backend_pids()})
    if wrk.poll() is None:
        wrk.send_signal(signal.SIGINT)  # wrk's own clock would run to -d: end it now
        try:
            wrk.wait(timeout=30)
        except subprocess.TimeoutExpired:
            procs.stop(wrk)
    procs.stop(wrk)
    text = out_path.read_text("utf-8", errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result{tail(out_path)}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    if not result["window_s"]:
        result["window_s"] = result["wrk_duration_s"]
    result["cpu"] = cpu
    result["top"] = snapshot
    return result


def run_python(
    port: int, events: Sequence[Signed], config: Config, meter: CpuMeter
) -> dict[str, Any]:
    from bench import loadgen

    pids: list[int] = []

    def on_start(children: list[int]) -> None:
        pids.extend(children)
        meter.groups = {**meter.groups, "loadgen": lambda: [os.getpid()]}
        meter.start()

    result = loadgen.run(
        port,
        events,
        connections=config.connections,
        max_seconds=config.max_seconds,
        on_start=on_start,
    )
    cpu = meter.stop(extra={"postgres_service": pg_backend_pids()})
    # the generator's processes have exited: add the CPU they reported
    cpu["loadgen"] = round(cpu.get("loadgen", 0.0) + result["children_cpu_s"] / cpu["wall_s"], 3)
    result["cpu"] = cpu
    result["top"] = ""
    return result


# --- one run --------------------------------------------------------------------------------

COUNTS = {
    "processed_events": "SELECT count(*) FROM processed_events",
    "inbox_events": "SELECT count(*) FROM inbox_events",
    "outbox_messages": "SELECT count(*) FROM outbox_messages",
    "survey_responses": "SELECT count(*) FROM survey_responses",
    "completed": "SELECT count(*) FROM survey_responses WHERE status = 'completed'",
}


def one_run(
    procs: Processes,
    target: str,
    config: Config,
    events: Sequence[Signed],
    events_file: Path,
    warmup: Sequence[Signed],
    logdir: Path,
) -> dict[str, Any]:
    from bench.common import BenchDatabase

    backend = {"bare": "sqlite"}.get(target, target)
    loadavg = load_average()
    with BenchDatabase(backend) as database:
        if config.prefill_events and target != "bare":
            prefill_volume(database.url, backend, config.prefill_events, config.users)
        oas = config.province() if target != "bare" else []
        if oas:
            units_path = logdir / "units.yaml"
            units_path.write_text(units_yaml(oas, with_oas=True), "utf-8")
            import_units(database.url, units_path)
        server, port, server_log = start_server(
            procs, target, database.url, config, logdir, env=oa_env(oas)
        )
        try:
            warm_up(port, warmup)
            meter = CpuMeter(
                {
                    "server": lambda: process_tree(server.pid),
                    "postgres_all": lambda: pids_named("postgres"),
                    "postgres_service": pg_backend_pids,
                }
            )
            if config.loadgen == "wrk":
                # the bare endpoint keeps nothing: send its events again until the run is
                # long enough to be measured (about 10,000 requests)
                repeat = -(-BARE_REQUESTS // len(events)) if target == "bare" else 1
                result = run_wrk(procs, port, events_file, config, meter, logdir, repeat=repeat)
            else:
                result = run_python(port, events, config, meter)
            result["counts"] = {} if target == "bare" else count_rows(database.url, COUNTS)
        finally:
            procs.stop(server)
    cpu = result["cpu"]
    if backend != "postgresql":
        cpu["postgres_service"] = 0.0
    cpu["other"] = round(
        cpu["machine_busy"] - cpu["server"] - cpu.get("loadgen", 0) - cpu["postgres_all"], 3
    )
    result["rate"] = result["responses"] / result["window_s"] if result["window_s"] else 0.0
    result["target"] = target
    result["loadavg_before"] = loadavg
    result["server_log"] = str(server_log)
    return result


def prefill_volume(url: str, backend: str, events: int, users: int) -> None:
    """Tables as after `events` earlier events of `users` * 10 other users: processed events,
    conversations, completed surveys with five answers, and sent outbox messages."""
    from sqlalchemy import text

    from storage.db import make_engine

    if backend != "postgresql":
        raise ValueError("prefilled tables are for PostgreSQL runs")
    old_users = users * 10
    surveys = events // 8
    statements = [
        """INSERT INTO processed_events (dedupe_key, event_name, received_at)
           SELECT 'old:' || g, 'user_send_text', now() - interval '1 hour'
           FROM generate_series(1, :events) g""",
        """INSERT INTO conversations (user_id, language, last_interaction_at, created_at,
               updated_at)
           SELECT 'old' || g, 'vi', now() - interval '1 hour', now() - interval '1 day',
               now() - interval '1 hour'
           FROM generate_series(1, :old_users) g""",
        """INSERT INTO survey_responses (token, respondent_hash, unit_id, counter_id,
               questionnaire_id, questionnaire_version, language, status, position, is_repeat,
               started_at, updated_at, completed_at)
           SELECT 'old' || g, md5('r' || (g % :old_users)), c.unit_id, c.id, 'sipas-short',
               '2026.1', 'vi', 'completed', 6, false, now() - interval '2 hours',
               now() - interval '1 hour', now() - interval '1 hour'
           FROM generate_series(1, :surveys) g, (SELECT id, unit_id FROM counters ORDER BY id
               LIMIT 1) c""",
        """INSERT INTO answers (response_id, item_id, factor, value, answered_at)
           SELECT r.id, i.item, i.factor, 1 + (r.id + i.factor) % 5, now() - interval '1 hour'
           FROM survey_responses r, (VALUES ('access', 1), ('procedure', 2), ('staff', 3),
               ('result', 4), ('feedback', 5)) AS i(item, factor)
           WHERE r.token LIKE 'old%'""",
        """INSERT INTO outbox_messages (user_id, body, status, attempts, created_at,
               next_attempt_at, sent_at)
           SELECT 'old' || (g % :old_users), '{"text": "old", "buttons": []}', 'sent', 1,
               now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour'
           FROM generate_series(1, :events) g""",
        "ANALYZE",
    ]
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for sql in statements:
                connection.execute(
                    text(sql), {"events": events, "old_users": old_users, "surveys": surveys}
                )
    finally:
        engine.dispose()


def limit_of(cpu: dict[str, float], ncpu: int) -> str:
    """A plain reading of where the CPU went."""
    parts = [
        f"server {cpu['server']:.2f}",
        f"PostgreSQL {cpu['postgres_all']:.2f} (service's own backends "
        f"{cpu['postgres_service']:.2f})",
        f"load generator {cpu.get('loadgen', 0):.2f}",
        f"other {cpu['other']:.2f}",
    ]
    busy = cpu["machine_busy"]
    verdict = "CPU-bound" if busy >= 0.9 * ncpu else "not CPU-bound"
    return f"machine {busy:.2f}/{ncpu} cores ({verdict}): " + ", ".join(parts)


# --- a series -------------------------------------------------------------------------------


def series(
    procs: Processes,
    *,
    targets: Sequence[str],
    config: Config,
    runs: int,
    logdir: Path,
    label: str,
) -> dict[str, Any]:
    events = config.mix(config.events, config.users)
    warmup = config.mix(WARMUP_EVENTS, 100, seed=99, id_base=WARMUP_ID_BASE)
    slug = "".join(ch if ch.isalnum() else "-" for ch in label).strip("-")
    events_file = logdir / f"events-{slug}.txt"
    write_wrk_file(events, events_file, threads=config.wrk_threads)
    log(
        f"ingest {label}: {len(events)} events of {config.users} users, "
        f"{config.connections} connections, mix {mix_counts(events)}"
    )
    per_target: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
    for run in range(runs):
        for target in targets:
            result = one_run(procs, target, config, events, events_file, warmup, logdir)
            per_target[target].append(result)
            lat = result["latency_ms"]
            log(
                f"  run {run + 1}/{runs} {target:10s} {result['rate']:8.1f} ev/s  "
                f"p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms  max {lat['max']:.1f} ms  "
                f"non200 {result['non200']}  counts {result.get('counts')}  "
                f"cpu {result['cpu']}"
            )
    summary: dict[str, Any] = {}
    bare_rates = [r["rate"] for r in per_target.get("bare", [])]
    for target, results in per_target.items():
        rates = [r["rate"] for r in results]
        summary[target] = {
            "rate": spread(rates),
            "p50_ms": spread([r["latency_ms"]["p50"] for r in results]),
            "p99_ms": spread([r["latency_ms"]["p99"] for r in results]),
            "max_ms": spread([r["latency_ms"]["max"] for r in results]),
            "non200": sum(r["non200"] for r in results),
            "sent": spread([r["responses"] for r in results])["median"],
            "cpu_median": {
                key: spread([r["cpu"].get(key, 0.0) for r in results])["median"]
                for key in results[0]["cpu"]
            },
        }
        if bare_rates and target != "bare":
            # run by run: each run's rate over the bare endpoint's rate of the same round
            ratios = [r / b for r, b in zip(rates, bare_rates, strict=False) if b]
            summary[target]["ratio_to_bare"] = spread(ratios)
    return {
        "label": label,
        "config": asdict(config),
        "mix": mix_counts(events),
        "runs": per_target,
        "summary": summary,
    }


def markdown(series_results: Sequence[dict[str, Any]], ncpu: int) -> str:
    lines = [
        "| series | target | conns | events sent | events/s | p50 ms | p99 ms | max ms "
        "| ratio to bare | CPU (median, cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in series_results:
        config = s["config"]
        for target, summary in s["summary"].items():
            ratio = summary.get("ratio_to_bare")
            lines.append(
                f"| {s['label']} | {target} | {config['connections']} "
                f"| {summary['sent']:,.0f} "
                f"| {fmt_spread(summary['rate'])} | {fmt_spread(summary['p50_ms'], digits=1)} "
                f"| {fmt_spread(summary['p99_ms'], digits=1)} "
                f"| {fmt_spread(summary['max_ms'], digits=0)} "
                f"| {fmt_spread(ratio, digits=2) if ratio else '–'} "
                f"| {limit_of(summary['cpu_median'], ncpu)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=3000 if QUICK else 15000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3)
    parser.add_argument("--targets", default="sqlite,postgresql,bare")
    parser.add_argument(
        "--growth",
        action="store_true",
        help="also PostgreSQL (and bare) at 10x fewer and 10x more connections, and with "
        "tables holding 10x the base run's events beforehand",
    )
    parser.add_argument("--growth-runs", type=int, default=None)
    parser.add_argument(
        "--growth-events", type=int, default=None, help="events per growth run (default --events)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="cap on one run's sending time"
    )
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--workers", type=int, default=2, help="web processes (gunicorn)")
    parser.add_argument("--threads", type=int, default=8, help="threads per web process")
    parser.add_argument(
        "--intake",
        choices=["inline", "queued"],
        default="inline",
        help="WEBHOOK_INTAKE of the server: queued only stores each event (no worker runs "
        "here, so this measures the intake alone; bench.intake measures the turns too)",
    )
    parser.add_argument(
        "--oas",
        type=int,
        default=0,
        help="Official Accounts in the database, the events spread over them (with --units)",
    )
    parser.add_argument("--units", type=int, default=0, help="units, --units/--oas per OA")
    parser.add_argument("--counters-per-unit", type=int, default=3)
    args = parser.parse_args(argv)
    if bool(args.oas) != bool(args.units) or (args.oas and args.units % args.oas):
        parser.error("--oas and --units go together, --units a multiple of --oas")

    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if any(t.startswith("postgresql") for t in targets) and not postgres_available():
        log("PostgreSQL does not answer: skipping it")
        targets = [t for t in targets if not t.startswith("postgresql")]
    machine = machine_info()
    ncpu = int(machine["nproc"] or 1)
    base = Config(
        events=args.events,
        users=args.users,
        connections=args.connections,
        loadgen=loadgen,
        max_seconds=args.max_seconds,
        workers=args.workers,
        threads=args.threads,
        intake=args.intake,
        oas=args.oas,
        units=args.units,
        counters_per_unit=args.counters_per_unit,
    )
    logdir = RESULTS / "logs" / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}"
    logdir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with Processes() as procs:
        results.append(
            series(
                procs,
                targets=targets,
                config=base,
                runs=args.runs,
                logdir=logdir,
                label=f"{args.oas} OAs, {args.units} units" if args.oas else "base",
            )
        )
        if args.growth:
            growth_runs = args.growth_runs or args.runs
            growth_targets = [t for t in targets if t in ("postgresql", "bare")] or targets
            for label, config in growth_configs(base, args.growth_events or base.events):
                if config.prefill_events and "postgresql" not in growth_targets:
                    continue
                results.append(
                    series(
                        procs,
                        targets=growth_targets,
                        config=config,
                        runs=growth_runs,
                        logdir=logdir,
                        label=label,
                    )
                )
    table = markdown(results, ncpu)
    data = {
        "machine": machine,
        "loadavg_after": load_average(),
        "command": "python -m bench.ingest " + " ".join(argv or []),
        "loadgen": loadgen,
        "series": results,
        "table": table,
    }
    path = write_result("ingest", data)
    print(table)
    print(f"\n(raw results: {path}; logs: {logdir})")
    for target, summary in results[0]["summary"].items():
        if target == "postgresql":
            rate, p99 = summary["rate"]["median"], summary["p99_ms"]["median"]
            ratio = summary.get("ratio_to_bare", {}).get("median")
            print(
                f"PostgreSQL against issue 17's targets (at 32 connections): {rate:,.0f} "
                f"events/s (target >= 600), p99 {p99:.1f} ms (target < 100), "
                f"ratio to bare {ratio if ratio is not None else 'n/a'} (target >= 0.25)"
            )
    return 0


def growth_configs(base: Config, events: int) -> list[tuple[str, Config]]:
    """10x less and 10x more load: connections (concurrent requests), and the tables' size."""
    small_c = max(1, round(base.connections / 10))
    growth = Config(**{**asdict(base), "events": events})
    return [
        (f"conns/10 ({small_c})", Config(**{**asdict(growth), "connections": small_c})),
        (
            f"conns*10 ({base.connections * 10})",
            Config(**{**asdict(growth), "connections": base.connections * 10}),
        ),
        (
            f"tables*10 ({base.events * 10:,} earlier events)",
            Config(**{**asdict(growth), "prefill_events": base.events * 10}),
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
