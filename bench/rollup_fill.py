"""Fill the roll-up of counts of a large bench dataset with the product's rebuild (PostgreSQL:
`rebuild_unit` groups each unit's rows in SQL, one transaction per unit, as `sipas-bot rollup
rebuild` and migration 0014's back-fill do), timed; then check units against the product's
per-survey recomputation (`compare_unit`).

    python -m bench.rollup_fill [--responses 2000000] [--check 20]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime
from typing import Any

from bench import dataset
from bench.common import load_average, log

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"


def fill(engine: Any) -> None:
    """Every unit's roll-up, in its own time zone or Asia/Ho_Chi_Minh, from the raw rows."""
    from sqlalchemy import text

    from storage import repositories as repo
    from storage.db import make_session_factory

    factory = make_session_factory(engine)
    with factory() as session:
        units = list(session.execute(text("SELECT id, code, timezone FROM units ORDER BY id")))
    t0 = time.monotonic()
    total = 0
    for n, (unit_id, code, own) in enumerate(units, start=1):
        with factory.begin() as session:
            total += repo.rebuild_unit(
                session, unit_id, zone=own or DEFAULT_ZONE, span=None, now=datetime.now(UTC)
            )
        if n % 100 == 0 or n == len(units) or code == dataset.BIG_UNIT:
            log(
                f"{n}/{len(units)} units rebuilt ({code}), {total:,} surveys, "
                f"{time.monotonic() - t0:.0f} s, load {load_average()}"
            )
    log(f"roll-up rebuilt in {time.monotonic() - t0:.0f} s ({total:,} surveys counted)")
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

    data = dataset.ensure(args.responses)
    engine = make_engine(data.url)
    try:
        if not migrate.is_up_to_date(engine):
            t0 = time.monotonic()
            migrate.upgrade(engine)  # 0014 back-fills with the same rebuild
            log(f"dataset migrated to the current schema in {time.monotonic() - t0:.0f} s")
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
