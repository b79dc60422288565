"""`make bench`: every benchmark of issue 6, one after the other, bounded in time.

    python -m bench.run_all              # full: about 35 minutes on 2 cores (see docs)
    BENCH_QUICK=1 python -m bench.run_all   # smoke run: 1-2 minutes, one run of each

Writes bench/results/summary.md (the tables, the machine, the commands) beside the raw JSON
of each benchmark. Exits 1 if the concurrent-survey correctness check failed (or a
benchmark crashed); the measurements themselves never fail the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from typing import Any

from bench.common import QUICK, RESULTS, ROOT, load_average, log, machine_info, postgres_available

FULL = [
    (
        "ingest",
        [
            "bench.ingest",
            "--events",
            "14000",
            "--users",
            "2000",
            "--connections",
            "32",
            "--runs",
            "3",
            "--growth",
            "--growth-events",
            "2000",
            "--max-seconds",
            "30",
        ],
    ),
    (
        "outbox",
        [
            "bench.outbox",
            "--users",
            "300",
            "--messages",
            "4",
            "--concurrency",
            "8,64",
            "--runs",
            "3",
        ],
    ),
    ("concurrent-surveys", ["bench.concurrent_surveys", "--users", "1000"]),
    # The datasets are built on the first run (2M: about 4 min) and kept for the next ones.
    ("reports", ["bench.reports_large", "--scales", "200000,2000000", "--runs", "5"]),
    ("export", ["bench.export_large", "--sizes", "100000", "--runs", "3"]),
    (
        "export-1m",
        ["bench.export_large", "--sizes", "1000000", "--runs", "1", "--result-name", "export-1m"],
    ),
]
# The 20M-response dataset takes about half an hour to build: its report runs only when it
# was built before (`python -m bench.dataset --responses 20000000`), then in every full run.
REPORTS_20M = (
    "reports-20m",
    [
        "bench.reports_large",
        "--scales",
        "20000000",
        "--runs",
        "5",
        "--result-name",
        "reports-20m",
    ],
)
SMOKE = [
    (
        "ingest",
        [
            "bench.ingest",
            "--events",
            "1200",
            "--users",
            "200",
            "--runs",
            "1",
            "--max-seconds",
            "20",
        ],
    ),
    (
        "outbox",
        [
            "bench.outbox",
            "--users",
            "100",
            "--messages",
            "4",
            "--concurrency",
            "8,64",
            "--runs",
            "1",
        ],
    ),
    ("concurrent-surveys", ["bench.concurrent_surveys", "--users", "100"]),
    ("reports", ["bench.reports_large", "--scales", "20000", "--runs", "2"]),
    ("export", ["bench.export_large", "--dataset", "20000", "--sizes", "5000", "--runs", "1"]),
]


def main() -> int:
    plan = SMOKE if QUICK else FULL
    if not QUICK and postgres_available():
        from bench import dataset

        if dataset.marker(dataset.schema_name(20_000_000)) is not None:
            plan = [*plan, REPORTS_20M]
        else:
            log(
                "no 20M dataset kept: reports at 20M skipped (python -m bench.dataset "
                "--responses 20000000 builds it once, about half an hour)"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    log(f"bench ({'quick' if QUICK else 'full'}) on {machine}")
    if not shutil.which("wrk"):
        log("wrk is not installed (apt-get install wrk): the Python load generator is used")
    if not postgres_available():
        log("PostgreSQL does not answer on BENCH_PG_URL: PostgreSQL runs are skipped")
    status: dict[str, Any] = {}
    started = time.monotonic()
    for name, args in plan:
        needs_pg = ("concurrent-surveys", "reports", "reports-20m", "export", "export-1m")
        if name in needs_pg and not postgres_available():
            status[name] = {"returncode": None, "skipped": "no PostgreSQL"}
            continue
        t0 = time.monotonic()
        command = [sys.executable, "-m", *args]
        log(f"--- {name}: {' '.join(['python', '-m', *args])}")
        completed = subprocess.run(command, cwd=ROOT, check=False)
        status[name] = {
            "returncode": completed.returncode,
            "seconds": round(time.monotonic() - t0, 1),
            "command": "python -m " + " ".join(args),
        }
    total = time.monotonic() - started
    write_summary(machine, status, total)
    failed = [n for n, s in status.items() if s.get("returncode") not in (0, None)]
    log(f"bench done in {total / 60:.1f} min; {'failed: ' + ', '.join(failed) if failed else 'ok'}")
    return 1 if failed else 0


def _latest(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}-latest.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def write_summary(machine: dict[str, Any], status: dict[str, Any], total: float) -> None:
    lines = [
        f"# Benchmark results ({'quick' if QUICK else 'full'} run)",
        "",
        f"- date: {machine['date']}; total {total / 60:.1f} min",
        f"- machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB; Python {machine['python']}; "
        f"PostgreSQL {machine.get('postgresql', 'n/a')}; {machine.get('wrk', 'no wrk')}",
        f"- load average before: {machine['loadavg']}; after: {load_average()}",
        "",
    ]
    for name, key in (
        ("ingest", "ingest"),
        ("outbox", "outbox"),
        ("concurrent-surveys", "concurrent-surveys"),
        ("reports", "reports"),
        ("reports-20m", "reports-20m"),
        ("export", "export"),
        ("export-1m", "export-1m"),
    ):
        if name not in status:
            continue
        info = status.get(name, {})
        lines += [f"## {name}", "", f"`{info.get('command', '')}` (exit {info.get('returncode')})"]
        data = _latest(key)
        if data is None:
            lines += ["", "no result", ""]
            continue
        if "table" in data:
            lines += ["", data["table"], ""]
        if name == "concurrent-surveys":
            lines += [""]
            lines += [
                f"- [{'PASS' if ok else 'FAIL'}] {check}" for check, ok in data["checks"].items()
            ]
            lines += [
                f"- ingest: {data['events']} events in {data['send_seconds']} s "
                f"({data['events_per_s']} events/s), latency {data['webhook_latency_ms']}",
                f"- delivery: outbox empty {data['drain_seconds']} s after the first event, "
                f"{data['delivery_rate']} messages/s",
                "",
            ]
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
