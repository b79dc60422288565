"""How long `build_report` takes on a large database.

    .venv/bin/python bench/report_speed.py [--responses 200000] [--database-url URL]

Seeds a fresh database (default: a SQLite file in a temporary folder) with one unit of
three counters and N short-form responses spread over a year, then times a month, a
quarter and a year report, and prints the plan of the main aggregate query.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

from bot.reporting.periods import period_containing
from bot.reporting.report import build_report
from storage import migrate, stats
from storage import repositories as repo
from storage.db import make_engine, make_session_factory
from storage.models import Answer, SurveyResponse
from storage.repositories import CounterSpec, UnitSpec

ITEMS = [("access", 1), ("procedure", 2), ("staff", 3), ("result", 4), ("feedback", 5)]
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 20, 3, tzinfo=UTC)


def seed(url: str, responses: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    rnd = random.Random(7)
    with factory.begin() as session:
        repo.upsert_units(
            session,
            [
                UnitSpec(
                    "HVT", "UBND phường", [CounterSpec(f"HVT0{n}", f"Quầy {n}") for n in (1, 2, 3)]
                )
            ],
            now=NOW,
        )
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        counters = [c.id for c in unit.counters]
        unit_id = unit.id
    batch = 5000
    next_id = 1
    for offset in range(0, responses, batch):
        rows, answers = [], []
        for _ in range(min(batch, responses - offset)):
            started = NOW - timedelta(minutes=rnd.randrange(365 * 24 * 60))
            rows.append(
                {
                    "id": next_id,
                    "token": f"t{next_id:015d}",
                    "respondent_hash": "x",
                    "unit_id": unit_id,
                    "counter_id": rnd.choice(counters),
                    "questionnaire_id": "sipas-short",
                    "questionnaire_version": "2026.1",
                    "language": "vi",
                    "status": "completed" if rnd.random() < 0.9 else "partial",
                    "position": 5,
                    "is_repeat": (repeat := rnd.random() < 0.03),
                    "counted": not repeat,
                    "qualified_at": started,
                    "started_at": started,
                    "updated_at": started,
                    "completed_at": started,
                }
            )
            for item, factor in ITEMS:
                value = 0 if factor == 5 and rnd.random() < 0.5 else rnd.choice([2, 3, 4, 4, 5, 5])
                answers.append(
                    {
                        "response_id": next_id,
                        "item_id": item,
                        "factor": factor,
                        "criterion": None,
                        "value": value,
                        "answered_at": started,
                    }
                )
            next_id += 1
        with factory.begin() as session:
            session.execute(insert(SurveyResponse), rows)
            session.execute(insert(Answer), answers)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--database-url", help="An empty database (default: a new SQLite file).")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    started = time.perf_counter()
    seed(url, args.responses)
    print(f"seeded {args.responses} responses in {time.perf_counter() - started:.1f}s ({url})")

    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        session.execute(text("ANALYZE"))
        for kind in ("month", "quarter", "year"):
            period = period_containing(kind, NOW, ZONE)
            started = time.perf_counter()
            report = build_report(session, unit_codes=["HVT"], period=period, min_answers=10)
            elapsed = time.perf_counter() - started
            print(
                f"{kind:<8} {report.responses:>8} responses  {report.overall.valid:>8} answers  "
                f"{elapsed:.2f}s (with the previous {kind})"
            )
        period = period_containing("month", NOW, ZONE)
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        scope = stats.Scope([stats.Window([unit.id], period.start, period.end)])
        query = stats.criterion_tallies_query(scope)
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        print("plan of the month's aggregate:")
        for row in session.execute(text(prefix + str(compiled))):
            print("  ", " ".join(str(c) for c in row))
    engine.dispose()


if __name__ == "__main__":
    main()
