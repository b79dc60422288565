"""Where the webhook's time goes.

    python -m bench.profile_ingest inprocess [--backend postgresql] [--events 3000]
                                             [--oas 100 --units 1000]
    python -m bench.profile_ingest pyspy [--backend postgresql] [--seconds 20]
    python -m bench.profile_ingest instructions [--backend postgresql] [--events 200]

`inprocess`: the app built in this process (sandbox mode), the ingest mix posted through
Flask's test client in a loop, once timed (CPU ms per event, no profiler) and once under a
profiler: pyinstrument (a call tree of wall time, written as text) or, with `--profiler
cprofile`, cProfile timed by the process's CPU clock (`time.process_time`: what the event
costs in CPU whatever else runs on the machine), summed by function and by area. No HTTP
server: this is the application's own cost. `--oas N --units M`: the database holds N OAs
and M units and the events are spread over them, as `bench.ingest --oas N --units M` does.

`pyspy`: the production web set-up (`sipas-bot serve --workers 2 --no-background`) under
wrk load, with `py-spy record --gil` on one gunicorn worker (samples of the thread holding
the GIL only, i.e. Python running on a CPU; waits for PostgreSQL are left out);
the samples are summed by function (self and total) and by area (signature, JSON, Flask,
SQLAlchemy, the database driver, logging, the survey engine...).

`instructions`: the machine instructions the web process executes per event, counted by
valgrind's callgrind, which does not depend on what else runs on the machine (CPU time does,
through caches and shared cores). The app is run in-process twice under callgrind, on two
fresh databases, once with `--base` events (100) and once with `--base` + `--events`; the
difference divided by `--events` is the cost of an event without the start-up (imports, app,
a warm-up of 50 events). PostgreSQL's own work is not counted (another process). Slow (every
instruction of the start-up is counted too): 6 minutes for `--events 100` on a quiet
machine; needs `apt-get install valgrind`.

They need the bench tools: pip install pyinstrument py-spy (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    APP_ID,
    OA_SECRET,
    RESULTS,
    BenchDatabase,
    Processes,
    log,
    machine_info,
    postgres_available,
    process_tree,
    spread,
    write_result,
)
from bench.events import Signed, ingest_mix, write_wrk_file
from bench.ingest import Config
from bench.province import Oa, import_units, oa_env, units_yaml

AREAS = [
    ("signature check", ("zalo_client/signature", "hmac", "_hashlib")),
    ("survey engine (survey_flow)", ("survey_flow/",)),
    ("flows registry", ("bot/conversation/registry",)),
    ("conversation service (bot/conversation, cases)", ("bot/conversation/", "bot/cases/")),
    ("privacy (pseudonyms, scrubbing)", ("bot/privacy/",)),
    ("webhook and web app (bot/web)", ("bot/web/",)),
    ("zalo_client (events, text)", ("zalo_client/",)),
    ("repositories (query building)", ("storage/repositories",)),
    ("storage models (types)", ("storage/models",)),
    ("logging", ("logging/",)),
    ("psycopg (driver)", ("psycopg",)),
    ("sqlite3 (driver)", ("sqlite3",)),
    ("SQLAlchemy ORM", ("sqlalchemy/orm",)),
    ("SQLAlchemy core/engine/sql", ("sqlalchemy/",)),
    ("json", ("json/", "_json")),
    ("Flask/Werkzeug", ("flask/", "werkzeug/")),
    ("gunicorn", ("gunicorn/",)),
]


PRODUCT_DIRS = ("(bot/", "(storage/", "(survey_flow/", "(zalo_client/")


def area_of(frame: str) -> str | None:
    for name, needles in AREAS:
        if any(n in frame for n in needles):
            return name
    return None


# --- in-process -----------------------------------------------------------------------------


def _post_all(client: Any, events: Sequence[Signed], header: str) -> None:
    for event in events:
        response = client.post(
            "/zalo/webhook",
            data=event.body,
            headers={header: event.signature},
            content_type="application/json",
        )
        assert response.status_code == 200, response.data


def _write_cprofile(profiler: Any, stem: Path, n_events: int) -> None:
    """The CPU profile as pstats text (by own time and by cumulative time) and by area:
    `<stem>.txt`, `<stem>-areas.txt`, and the raw `<stem>.pstats` (snakeviz, gprof2dot)."""
    import io
    import pstats

    profiler.dump_stats(str(stem.with_suffix(".pstats")))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(60)
    stats.sort_stats("cumulative").print_stats(80)
    stem.with_suffix(".txt").write_text(text.getvalue(), "utf-8")
    by_area: Counter[str] = Counter()
    total = 0.0
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        total += own
        by_area[area_of(f"{filename}:{name}") or "other"] += own
    lines = [f"CPU per event {1000 * total / n_events:.3f} ms (under cProfile), by own time:"]
    lines += [
        f"{area:45} {1000 * own / n_events:7.3f} ms  {100 * own / total:5.1f}%"
        for area, own in by_area.most_common()
    ]
    Path(f"{stem}-areas.txt").write_text("\n".join(lines) + "\n", "utf-8")


def _inprocess_pass(
    backend: str,
    events: Sequence[Signed],
    out_dir: Path,
    *,
    profile: str | None,
    warmup: Sequence[Signed],
    oas: Sequence[Oa] = (),
) -> dict[str, Any]:
    """One pass on a fresh database: CPU and wall time per event, and the SQL statements
    sent (counted, not timed); with `profile`, under pyinstrument."""
    from sqlalchemy import event as sa_event

    from bot.config import Settings
    from bot.web import create_app, runtime_of
    from zalo_client import SIGNATURE_HEADER

    statements: Counter[str] = Counter()
    counting = False

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if counting:
            statements[" ".join(statement.split())[:110]] += 1

    with BenchDatabase(backend) as database:
        if oas:
            units_path = out_dir / "units.yaml"
            units_path.write_text(units_yaml(list(oas), with_oas=True), "utf-8")
            import_units(database.url, units_path)
        settings = Settings(
            zalo_app_id=APP_ID,
            zalo_oa_secret_key=OA_SECRET,
            zalo_sandbox=True,
            database_url=database.url,
        )
        app = create_app(settings)
        engine = runtime_of(app).engine
        sa_event.listen(engine, "before_cursor_execute", count)
        client = app.test_client()
        _post_all(client, warmup, SIGNATURE_HEADER)
        profiler: Any = None
        if profile == "pyinstrument":
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
        elif profile == "cprofile":
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        counting = True
        cpu0, wall0 = time.process_time(), time.perf_counter()
        _post_all(client, events, SIGNATURE_HEADER)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        counting = False
        if profile == "pyinstrument":
            profiler.stop()
            (out_dir / f"pyinstrument-{backend}.txt").write_text(
                profiler.output_text(unicode=True, color=False, show_all=False), "utf-8"
            )
        elif profile == "cprofile":
            profiler.disable()
            _write_cprofile(profiler, out_dir / f"cprofile-{backend}", len(events))
        engine.dispose()
    n = len(events)
    return {
        "cpu_ms_per_event": round((cpu1 - cpu0) / n * 1000, 3),
        "wall_ms_per_event": round((wall1 - wall0) / n * 1000, 3),
        "statements_per_event": round(sum(statements.values()) / n, 2),
        "statements": [(sql, round(c / n, 3)) for sql, c in statements.most_common(40)],
    }


def inprocess(
    backend: str,
    n_events: int,
    users: int,
    out_dir: Path,
    *,
    passes: int,
    profile: str | None,
    oas: int = 0,
    units: int = 0,
) -> dict[str, Any]:
    import logging

    # As in production: one INFO line per event, here to a file.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        filename=str(out_dir / "inprocess.log"),
    )
    config = Config(events=n_events, users=users, connections=1, oas=oas, units=units)
    province = config.province()
    os.environ.update(oa_env(province))  # the units file's `env:` references
    events = config.mix(n_events, users)
    warmup = config.mix(200, 50, seed=99, id_base=8_000_000_000_000_000_000)
    runs = [
        _inprocess_pass(backend, events, out_dir, profile=None, warmup=warmup, oas=province)
        for _ in range(passes)
    ]
    result: dict[str, Any] = {
        "backend": backend,
        "oas": oas,
        "units": units,
        "events": len(events),
        "cpu_ms_per_event": spread([r["cpu_ms_per_event"] for r in runs]),
        "wall_ms_per_event": spread([r["wall_ms_per_event"] for r in runs]),
        "statements_per_event": runs[0]["statements_per_event"],
        "statements": runs[0]["statements"],
    }
    log(
        f"in-process {backend}: CPU {result['cpu_ms_per_event']} ms/event, "
        f"wall {result['wall_ms_per_event']} ms/event, "
        f"{result['statements_per_event']} statements/event (+ COMMIT)"
    )
    if profile:
        _inprocess_pass(backend, events, out_dir, profile=profile, warmup=warmup, oas=province)
    return result


# --- instructions per event (callgrind) ------------------------------------------------------


def _post_only(url: str, mix: int, events: int, users: int) -> None:
    """What runs under callgrind: the app on `url`, warmed up, then the first `events` of
    the `mix`-event stream posted."""
    import logging
    import tempfile

    from bot.config import Settings
    from bot.web import create_app
    from zalo_client import SIGNATURE_HEADER

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        filename=str(Path(tempfile.gettempdir()) / "sipas-bench-instructions.log"),
    )
    settings = Settings(
        zalo_app_id=APP_ID, zalo_oa_secret_key=OA_SECRET, zalo_sandbox=True, database_url=url
    )
    client = create_app(settings).test_client()
    _post_all(
        client,
        ingest_mix(50, 20, seed=99, id_base=8_000_000_000_000_000_000),
        SIGNATURE_HEADER,
    )
    _post_all(client, ingest_mix(mix, users)[:events], SIGNATURE_HEADER)


def _callgrind_total(path: Path) -> int:
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"no total in {path}")


def instructions(
    backend: str, n_events: int, users: int, out_dir: Path, *, base: int
) -> dict[str, Any]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    totals: dict[int, int] = {}
    for events in (base, base + n_events):
        with BenchDatabase(backend) as database:
            out = out_dir / f"callgrind-{backend}-{events}.out"
            command = [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.profile_ingest",
                "post-only",
                "--url",
                database.url,
                "--mix",
                str(base + n_events),
                "--events",
                str(events),
                "--users",
                str(users),
            ]
            started = time.perf_counter()
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            totals[events] = _callgrind_total(out)
            log(
                f"callgrind, {events} events: {totals[events]:,} instructions, "
                f"{time.perf_counter() - started:.0f} s"
            )
    per_event = (totals[base + n_events] - totals[base]) / n_events
    log(f"instructions per event ({backend}): {per_event / 1e6:.2f} million")
    return {
        "backend": backend,
        "events": n_events,
        "base_events": base,
        "instructions": totals,
        "million_instructions_per_event": round(per_event / 1e6, 3),
    }


# --- py-spy on a gunicorn worker ------------------------------------------------------------


def pyspy(backend: str, seconds: int, out_dir: Path) -> dict[str, Any]:
    from bench.ingest import Config, start_server, warm_up

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    # few users, so that the sampled seconds see the whole mix (starts, answers, junk...)
    config = Config(events=40000, users=300, connections=32, max_seconds=seconds + 60)
    events = ingest_mix(config.events, config.users)
    events_file = out_dir / "events-pyspy.txt"
    write_wrk_file(events, events_file, threads=1)
    raw_path = out_dir / f"pyspy-{backend}.txt"
    svg_path = out_dir / f"pyspy-{backend}.svg"
    with Processes() as procs, BenchDatabase(backend, on_exit=procs.stop_all) as database:
        server, port, _log = start_server(procs, backend, database.url, config, out_dir)
        warm_up(port, ingest_mix(300, 100, seed=99, id_base=8_000_000_000_000_000_000))
        workers = [p for p in process_tree(server.pid) if p != server.pid]
        wrk = procs.spawn(
            "wrk",
            [
                shutil.which("wrk") or "wrk",
                "-t1",
                f"-c{config.connections}",
                f"-d{seconds + 15}s",
                "-s",
                str(Path(__file__).parent / "wrk_events.lua"),
                f"http://127.0.0.1:{port}",
            ],
            env={"BENCH_EVENTS": str(events_file), "PATH": "/usr/bin:/bin"},
            log_path=out_dir / "wrk-pyspy.out",
        )
        time.sleep(2)
        for fmt, path in (("raw", raw_path), ("flamegraph", svg_path)):
            subprocess.run(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(workers[0]),
                    "--duration",
                    str(seconds // 2),
                    "--rate",
                    "200",
                    "--gil",  # only samples holding the GIL: where the CPU goes
                    "--format",
                    fmt,
                    "--output",
                    str(path),
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
        procs.stop(wrk)
        procs.stop(server)
    return summarise_collapsed(raw_path)


def summarise_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and total samples by function and by area, from py-spy's collapsed stacks."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    product_counts: Counter[str] = Counter()
    area_counts: Counter[str] = Counter()
    samples = 0
    for line in path.read_text("utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        # keep request threads' work only: stacks through the WSGI app
        if not any("wsgi_app" in f or "handle_request" in f for f in frames):
            continue
        samples += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            total_counts[frame] += count
        # the service's own functions (file and name, any line), inclusive
        for frame in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            if any(p in frame for p in PRODUCT_DIRS) or "SessionTransaction.commit" in frame:
                product_counts[frame] += count
        # the innermost frame that belongs to a known area names where the time went
        area = next((a for a in map(area_of, reversed(frames)) if a), "other")
        area_counts[area] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(samples, 1), 1)) for k, v in counter.most_common(top)]

    return {
        "samples": samples,
        "by_area_pct": pct(area_counts),
        "self_pct": pct(self_counts),
        "total_pct": pct(total_counts),
        "product_total_pct": pct(product_counts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", choices=["inprocess", "pyspy", "instructions", "post-only"])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--passes", type=int, default=3, help="inprocess: timed passes")
    parser.add_argument("--no-profile", action="store_true", help="inprocess: time only")
    parser.add_argument(
        "--profiler",
        choices=["pyinstrument", "cprofile"],
        default="pyinstrument",
        help="inprocess: pyinstrument (wall time, a call tree) or cProfile (CPU time)",
    )
    parser.add_argument("--base", type=int, default=100, help="instructions: events not counted")
    parser.add_argument("--oas", type=int, default=0, help="inprocess: OAs in the database")
    parser.add_argument("--units", type=int, default=0, help="inprocess: units (--oas per OA)")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--mix", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if bool(args.oas) != bool(args.units) or (args.oas and args.units % args.oas):
        parser.error("--oas and --units go together, --units a multiple of --oas")
    if args.mode == "post-only":  # run by `instructions` under valgrind
        _post_only(args.url, args.mix, args.events, args.users)
        return 0
    if args.backend == "postgresql" and not postgres_available():
        log("PostgreSQL does not answer")
        return 2
    out_dir = RESULTS / "logs" / f"profile-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.mode == "inprocess":
        result = inprocess(
            args.backend,
            args.events,
            args.users,
            out_dir,
            passes=args.passes,
            profile=None if args.no_profile else args.profiler,
            oas=args.oas,
            units=args.units,
        )
    elif args.mode == "instructions":
        result = instructions(args.backend, args.events, args.users, out_dir, base=args.base)
    else:
        result = pyspy(args.backend, args.seconds, out_dir)
    result["machine"] = machine_info()
    path = write_result(f"profile-{args.mode}-{args.backend}", result)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"(profiles in {out_dir}; result {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
