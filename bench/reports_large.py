"""The month's SIPAS report on PostgreSQL over 200k / 2M / 20M stored responses: for one unit
(`sipas-bot report --unit HVT`) and for all 1,000 units at once (`sipas-bot report --unit
all`, the province's report), through the product's `build_report` and `render_text`.

    python -m bench.reports_large [--scales 200000,2000000] [--runs 5] [--rebuild]
                                  [--drop-after]

The datasets come from bench/dataset.py (built once per size with COPY, then kept and
reused; `--drop-after` drops them at the end). The report is October 2026 with September
for comparison, in Asia/Ho_Chi_Minh, as the CLI makes it (previous period, 20 comments).

Warm cache: every case runs once untimed (its time is kept as "first"), then `--runs` timed
runs; the median and min–max are reported. The page cache of the machine is not dropped
(other people use the machine), so "first" is only as cold as PostgreSQL's buffers were.
Every SQL statement is timed (SQLAlchemy cursor events), so the SQL share and the number of
statements show where the time goes; EXPLAIN (ANALYZE, BUFFERS) of the main aggregate (the
criterion tallies) is saved beside the JSON.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bench import dataset
from bench.common import (
    QUICK,
    RESULTS,
    fmt_spread,
    load_average,
    log,
    machine_info,
    postgres_available,
    spread,
    write_result,
)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MONTH = datetime(2026, 10, 15, 12, tzinfo=ZONE)
CASES = {"one unit": [dataset.BIG_UNIT], "1,000 units": None}


@contextmanager
def statement_timer(engine: Any) -> Iterator[list[tuple[float, str]]]:
    """(seconds, first words of the statement) of every statement executed meanwhile."""
    from sqlalchemy import event

    timings: list[tuple[float, str]] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        _conn.info["bench_t0"] = time.perf_counter()

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        timings.append((time.perf_counter() - _conn.info.pop("bench_t0"), statement[:80]))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield timings
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def run_case(factory: Any, engine: Any, unit_codes: list[str] | None) -> dict[str, Any]:
    """One report as `sipas-bot report` makes it, in a new session; seconds and statements."""
    from bot.reporting.periods import period_containing
    from bot.reporting.render import render_text
    from bot.reporting.report import build_report

    period = period_containing("month", MONTH, ZONE)
    with statement_timer(engine) as timings, factory() as session:
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = build_report(
            session, unit_codes=unit_codes, period=period, min_answers=10, comment_limit=20
        )
        text = render_text(report)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "sql_seconds": sum(t for t, _ in timings),
        "statements": len(timings),
        "slowest": sorted(timings, reverse=True)[:3],
        "responses": report.responses,
        "answers": report.overall.valid,
        "units": len(report.units),
        "text_lines": text.count("\n"),
    }


def explain(factory: Any, engine: Any, unit_codes: list[str] | None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the criterion tallies of the month, bounded by the
    month's response-id range as `build_report` bounds them."""
    from sqlalchemy import text

    from bot.reporting.periods import period_containing
    from bot.reporting.report import _scope, find_units
    from storage import stats

    period = period_containing("month", MONTH, ZONE)
    with factory() as session:
        units = find_units(session, unit_codes)
        scope = _scope(units, None, period, False)
        query = stats.criterion_tallies_query(
            scope, response_ids=stats.response_id_range(session, scope)
        )
        compiled = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        rows = session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + compiled))
        return "\n".join(row[0] for row in rows)


def bench_scale(responses: int, *, runs: int, rebuild: bool) -> dict[str, Any]:
    from storage.db import make_engine, make_session_factory

    data = dataset.ensure(responses, rebuild=rebuild)
    engine = make_engine(data.url)
    factory = make_session_factory(engine)
    result: dict[str, Any] = {"responses": responses, "dataset": data.info, "cases": {}}
    try:
        for name, codes in CASES.items():
            first = run_case(factory, engine, codes)
            timed = [run_case(factory, engine, codes) for _ in range(runs)]
            plan = explain(factory, engine, codes)
            slug = name.replace(",", "").replace(" ", "-")
            plan_path = RESULTS / f"reports-plan-{responses}-{slug}.txt"
            plan_path.write_text(plan + "\n", "utf-8")
            case = {
                "first_ms": round(first["seconds"] * 1000),
                "ms": spread([r["seconds"] * 1000 for r in timed]),
                "sql_ms": spread([r["sql_seconds"] * 1000 for r in timed]),
                # this process's CPU: Python, plus psycopg's decoding; not PostgreSQL's
                "python_cpu_ms": spread([r["cpu_seconds"] * 1000 for r in timed]),
                "statements": timed[-1]["statements"],
                "slowest_statements": timed[-1]["slowest"],
                "responses_in_month": timed[-1]["responses"],
                "answers_in_month": timed[-1]["answers"],
                "units": timed[-1]["units"],
                "plan": plan,
                "plan_file": str(plan_path.relative_to(RESULTS.parent.parent)),
                "loadavg": load_average(),
            }
            result["cases"][name] = case
            log(
                f"{responses:,} responses, {name}: "
                f"{fmt_spread(case['ms'], ' ms')} (SQL "
                f"{fmt_spread(case['sql_ms'], ' ms')}, {case['statements']} statements; "
                f"CPU of this process {fmt_spread(case['python_cpu_ms'], ' ms')}; "
                f"first run {case['first_ms']} ms); month: {case['responses_in_month']:,} "
                f"responses, {case['answers_in_month']:,} rated answers"
            )
    finally:
        engine.dispose()
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| responses stored | report | responses / rated answers in the month | "
        "time, ms | of which SQL, ms | CPU of the Python process, ms | statements | "
        "first run, ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for name, case in result["cases"].items():
            lines.append(
                f"| {result['responses']:,} | {name} | {case['responses_in_month']:,} / "
                f"{case['answers_in_month']:,} | {fmt_spread(case['ms'])} | "
                f"{fmt_spread(case['sql_ms'])} | {fmt_spread(case.get('python_cpu_ms', {}))} | "
                f"{case['statements']} | "
                f"{case['first_ms']:,} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        default="20000" if QUICK else "200000,2000000",
        help="Stored responses, comma-separated (answers ≈ 5.3x).",
    )
    parser.add_argument("--runs", type=int, default=2 if QUICK else 5)
    parser.add_argument("--rebuild", action="store_true", help="Build the datasets again.")
    parser.add_argument(
        "--drop-after", action="store_true", help="Drop the datasets at the end (else kept)."
    )
    parser.add_argument("--result-name", default="reports", help="bench/results/<name>-*.json")
    args = parser.parse_args()
    if not postgres_available():
        log("PostgreSQL does not answer on BENCH_PG_URL: skipped")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    scales = [int(s) for s in args.scales.split(",") if s]
    results = []
    try:
        for responses in scales:
            results.append(bench_scale(responses, runs=args.runs, rebuild=args.rebuild))
    finally:
        if args.drop_after:
            for responses in scales:
                dataset.drop(dataset.schema_name(responses))
    summary = table(results)
    print(summary)
    path = write_result(
        args.result_name,
        {"machine": machine, "runs": args.runs, "results": results, "table": summary},
    )
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
