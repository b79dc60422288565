"""Fill the roll-up of counts of a large bench dataset in two SQL statements (PostgreSQL),
for a dataset built before migration 0014 whose back-fill (the product's per-unit
`rebuild_unit`, Python) is too slow on a busy 2-core machine; then check units against the
product's own recomputation (`compare_unit`).

    python -m bench.rollup_fill [--responses 2000000] [--check 20]

Bench only: the service never runs this; `sipas-bot rollup rebuild` is the product's way.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from bench import dataset
from bench.common import log

SURVEYS = """
INSERT INTO rollup_surveys
SELECT g.grain, s.unit_id,
       CASE WHEN g.grain = 'day' THEN s.day ELSE date_trunc('month', s.day)::date END,
       s.counter_id, s.channel, s.start_method, s.is_repeat, s.status, s.quarantine, count(*)
FROM (
  SELECT r.unit_id, r.counter_id, r.channel, r.start_method, r.is_repeat, r.status,
         r.quarantine, (r.started_at AT TIME ZONE z.zone)::date AS day
  FROM survey_responses r JOIN rollup_units z ON z.unit_id = r.unit_id
  WHERE r.status IN ('completed', 'partial') AND r.qualified_at IS NOT NULL
    AND r.quarantine IN ('none', 'released', 'held')
) s CROSS JOIN (VALUES ('day'), ('month')) AS g(grain)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""

TALLIES = """
INSERT INTO rollup_tallies
SELECT g.grain, s.unit_id,
       CASE WHEN g.grain = 'day' THEN s.day ELSE date_trunc('month', s.day)::date END,
       s.counter_id, s.channel, s.start_method, s.is_repeat, s.factor, s.criterion, s.item_key,
       count(*), sum(s.satisfied), sum(s.value)
FROM (
  SELECT r.unit_id, r.counter_id, r.channel, r.start_method, r.is_repeat,
         (r.started_at AT TIME ZONE z.zone)::date AS day, a.factor,
         coalesce(a.criterion, 0) AS criterion,
         CASE WHEN a.criterion IS NULL THEN a.item_id ELSE '' END AS item_key,
         CASE WHEN a.value >= 4 THEN 1 ELSE 0 END AS satisfied, a.value
  FROM answers a JOIN survey_responses r ON r.id = a.response_id
  JOIN rollup_units z ON z.unit_id = r.unit_id
  WHERE r.status IN ('completed', 'partial') AND r.qualified_at IS NOT NULL
    AND r.quarantine IN ('none', 'released')
    AND a.factor IS NOT NULL AND a.value BETWEEN 1 AND 5
) s CROSS JOIN (VALUES ('day'), ('month')) AS g(grain)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""


def fill(engine: Any) -> None:
    """Every unit's roll-up, in its own time zone or Asia/Ho_Chi_Minh, from the raw rows."""
    from sqlalchemy import text

    with engine.begin() as conn:
        t0 = time.monotonic()
        conn.execute(text("TRUNCATE rollup_tallies, rollup_surveys, rollup_units"))
        conn.execute(
            text(
                "INSERT INTO rollup_units SELECT id, coalesce(timezone, 'Asia/Ho_Chi_Minh'),"
                " now() FROM units"
            )
        )
        conn.execute(text(SURVEYS))
        conn.execute(text(TALLIES))
        log(f"roll-up filled in {time.monotonic() - t0:.0f} s")
    with engine.begin() as conn:
        for table in ("rollup_units", "rollup_surveys", "rollup_tallies"):
            conn.execute(text(f"ANALYZE {table}"))
        for table in ("rollup_surveys", "rollup_tallies"):
            size_of = f"pg_size_pretty(pg_total_relation_size('{table}'))"
            count, size = conn.execute(text(f"SELECT count(*), {size_of} FROM {table}")).one()
            log(f"{table}: {count:,} rows, {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--responses", type=int, default=2_000_000)
    parser.add_argument("--check", type=int, default=20, help="units to check (HVT and random)")
    args = parser.parse_args()
    from sqlalchemy import text

    from storage import migrate
    from storage import repositories as repo
    from storage.db import make_engine, make_session_factory
    from storage.models import Base

    data = dataset.ensure(args.responses)
    engine = make_engine(data.url)
    try:
        if not migrate.is_up_to_date(engine):
            names = ("rollup_units", "rollup_surveys", "rollup_tallies")
            Base.metadata.create_all(engine, tables=[Base.metadata.tables[n] for n in names])
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": "0014"})
            assert migrate.is_up_to_date(engine)
        fill(engine)
        factory = make_session_factory(engine)
        with factory() as session:
            units = list(session.execute(text("SELECT id, code FROM units ORDER BY id")))
            chosen = [u for u in units if u.code == dataset.BIG_UNIT]
            chosen += random.Random(1).sample(units, args.check)
            for unit_id, code in chosen:
                t0 = time.monotonic()
                differences = repo.compare_unit(session, unit_id, span=None)
                log(f"{code}: {len(differences)} difference(s) ({time.monotonic() - t0:.0f} s)")
                assert not differences, differences[:5]
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
