"""How long the console's pages take on PostgreSQL over the 2M-response dataset of
bench/dataset.py: a unit's overview (HVT, a tenth of the responses) and the province view of
1,000 units, each for October 2026, requested through the app as a signed-in operator.

    python -m bench.console_speed [--responses 2000000] [--runs 3] [--profile]

Each page is requested once untimed, then `--runs` times; the median and min–max are
reported, with the number of SQL statements and their time (SQLAlchemy cursor events);
`--profile` adds one request of each page under cProfile, written by function to
bench/results/logs/console-profile-*.txt. The
target of issue 14 is 300 ms for both. A dataset built before the roll-up (migration 0014)
is migrated first, which back-fills it (timed); the pages then read the roll-up of counts
(docs/benchmarks.md section 7).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench import dataset
from bench.common import (
    RESULTS,
    fmt_spread,
    load_average,
    log,
    machine_info,
    postgres_available,
    spread,
    write_result,
)
from bench.reports_large import statement_timer

OPERATOR = "bench-operator@example.vn"
PASSWORD = "bench password of the console"
PAGES = {
    "unit overview (HVT)": "/console/units/HVT?period=month&date=2026-10-15",
    "province view (1,000 units)": "/console/province?period=month&date=2026-10-15",
}


def signed_in_client(app: Any) -> Any:
    """A test client signed in as an operator of every unit (created once in the dataset)."""
    from bot.web import runtime_of
    from bot.web.console.accounts import ConsoleRole, hash_password
    from storage import repositories as repo
    from tests.console_support import password_sign_in

    runtime = runtime_of(app)
    with runtime.session_factory.begin() as session:
        if repo.find_console_user(session, OPERATOR) is None:
            repo.add_console_user(
                session,
                email=OPERATOR,
                role=ConsoleRole.OPERATOR,
                password_hash=hash_password(PASSWORD),
                units=[],
                now=runtime.clock(),
            )
    client = app.test_client()
    response = password_sign_in(client, OPERATOR, PASSWORD)
    assert response.status_code == 302, response.status_code
    return client


def time_page(client: Any, engine: Any, path: str) -> dict[str, float]:
    with statement_timer(engine) as timings:
        t0 = time.perf_counter()
        response = client.get(path)
        seconds = time.perf_counter() - t0
    assert response.status_code == 200, (path, response.status_code)
    return {
        "ms": seconds * 1000,
        "sql_ms": sum(t for t, _ in timings) * 1000,
        "statements": len(timings),
    }


def profile_page(client: Any, name: str, path: str) -> Path:
    """One request of `path` under cProfile; its 40 costliest functions (own and cumulative
    time) written to a text file, whose path is returned."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    response = client.get(path)
    profiler.disable()
    assert response.status_code == 200, (path, response.status_code)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    for order in ("cumulative", "tottime"):
        stats.sort_stats(order).print_stats(40)
    slug = name.split(" (")[0].replace(" ", "-")
    target = RESULTS / "logs" / f"console-profile-{slug}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(out.getvalue())
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--responses", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="also profile one request of each page (cProfile)"
    )
    args = parser.parse_args()
    if not postgres_available():
        log("PostgreSQL does not answer on BENCH_PG_URL: skipped")
        return 0
    from bot.web import create_app, runtime_of
    from tests.conftest import make_settings

    data = dataset.ensure(args.responses)
    from storage import migrate
    from storage.db import make_engine

    schema_engine = make_engine(data.url)
    try:
        if not migrate.is_up_to_date(schema_engine):
            t0 = time.perf_counter()
            migrate.upgrade(schema_engine)
            log(f"dataset migrated to the current schema in {time.perf_counter() - t0:.0f} s")
    finally:
        schema_engine.dispose()
    settings = make_settings(data.url, public_base_url="http://127.0.0.1:8000")
    app = create_app(settings, clock=lambda: dataset.NOW)
    engine = runtime_of(app).engine
    client = signed_in_client(app)
    from bot.server import freeze_startup_objects

    freeze_startup_objects()  # as `serve` does once the app is built (bot/server.py)
    result: dict[str, Any] = {
        "responses": args.responses,
        "machine": machine_info(),
        "pages": {},
    }
    try:
        for name, path in PAGES.items():
            first = time_page(client, engine, path)
            timed = [time_page(client, engine, path) for _ in range(args.runs)]
            page: dict[str, Any] = {
                "path": path,
                "first_ms": round(first["ms"]),
                "ms": spread([t["ms"] for t in timed]),
                "sql_ms": spread([t["sql_ms"] for t in timed]),
                "statements": timed[-1]["statements"],
                "loadavg": load_average(),
            }
            result["pages"][name] = page
            log(
                f"{name}: {fmt_spread(page['ms'], ' ms')} (SQL {fmt_spread(page['sql_ms'], ' ms')}"
                f", {page['statements']} statements; first {page['first_ms']} ms)"
            )
            if args.profile:
                log(f"{name}: profile written to {profile_page(client, name, path)}")
    finally:
        engine.dispose()
    log(f"wrote {write_result('console-speed', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
