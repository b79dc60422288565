"""A large, realistic PostgreSQL dataset for the reports and export benchmarks.

    python -m bench.dataset --responses 2000000 [--rebuild | --drop]
    python -m bench.dataset --list            # the datasets kept, with their sizes

Builds the schema `bench_reports_<responses>_v<GENERATOR_VERSION>`: the real migrations, 1,000
units through the product's units import (one big unit, HVT, with 10 counters and a tenth of
the responses; 999 others with 3 counters each), the sipas-short questionnaire registered as
the service registers it, then responses and answers loaded with COPY (about 5.3 answers per
response), and ANALYZE. A marker row (table `bench_dataset`) is written last: a schema with
the marker is complete and is reused as it is by the next run (the 20M dataset takes about
half an hour to build on 2 cores, once); a schema without it is dropped and built again.

The data: responses spread evenly over the year before `NOW` (ids in time order, as the
service writes them), the sipas-short items with `factor`/`criterion` as the service stores
them, answers skewed to 4–5, "not applicable" on the feedback item for 30%, 3% of items
skipped, a comment on 8% of completed surveys; 88% completed, 6% partial (stopped after 1–4
items), 3% cancelled, the surveys of the last hour still active; 3% flagged as repeats.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from queue import Queue
from typing import Any

from bench.common import PG_URL, log

GENERATOR_VERSION = 1
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
YEAR_SECONDS = 365 * 86400
UNITS = 1000
BIG_UNIT = "HVT"
BIG_SHARE = 0.10
QUESTIONNAIRE = "sipas-short"
COMMENTS = (
    "Cán bộ nhiệt tình, hướng dẫn rõ ràng.",
    "Phải chờ lâu quá, nên có thêm quầy.",
    "Thủ tục còn rườm rà, cần đơn giản hơn.",
    "Rất hài lòng, cảm ơn cán bộ.",
    "Bãi gửi xe chật, trời nắng không có chỗ ngồi chờ.",
    "Nên nhắn tin báo khi có kết quả.",
    "Phí niêm yết chưa rõ ràng.",
    "Good service, thank you.",
)


def schema_name(responses: int) -> str:
    return f"bench_reports_{responses}_v{GENERATOR_VERSION}"


def schema_url(schema: str) -> str:
    """The SQLAlchemy URL of the service with `schema` first on the search_path."""
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _libpq_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(schema: str | None = None, **kwargs: Any) -> Any:
    import psycopg

    options = f"-csearch_path={schema}" if schema else ""
    return psycopg.connect(_libpq_url(), options=options, **kwargs)


@dataclass(frozen=True)
class Dataset:
    schema: str
    url: str
    responses: int
    info: dict[str, Any]


def marker(schema: str) -> dict[str, Any] | None:
    """The completed dataset's description, or None if the schema is missing or incomplete."""
    with _connect() as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'bench_dataset'",
            (schema,),
        ).fetchone()
        if not exists:
            return None
        row = conn.execute(f'SELECT info FROM "{schema}".bench_dataset').fetchone()
        return None if row is None else dict(row[0])


def drop(schema: str) -> None:
    with _connect(autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def ensure(responses: int, *, rebuild: bool = False, seed: int = 6) -> Dataset:
    """The dataset of this size: reused when complete, else (re)built."""
    schema = schema_name(responses)
    info = None if rebuild else marker(schema)
    if info is not None:
        log(f"dataset {schema}: reusing ({info['responses']:,} responses, built {info['built']})")
        return Dataset(schema, schema_url(schema), responses, info)
    drop(schema)
    info = build(schema, responses, seed=seed)
    return Dataset(schema, schema_url(schema), responses, info)


# --- building -------------------------------------------------------------------------------


def build(schema: str, responses: int, *, seed: int) -> dict[str, Any]:
    from storage import migrate
    from storage.db import make_engine, make_session_factory

    started = time.monotonic()
    log(f"dataset {schema}: building {responses:,} responses (COPY)")
    with _connect(autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    engine = make_engine(schema_url(schema))
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            counters = _units_and_counters(session)
            _register_questionnaire(session)
            items = _items(session)
    finally:
        engine.dispose()
    counts = _copy(schema, responses, counters, items, seed=seed)
    _rollup(schema)
    with _connect(schema, autocommit=True) as conn:
        t0 = time.monotonic()
        conn.execute("ANALYZE")
        log(f"ANALYZE in {time.monotonic() - t0:.0f} s")
        size = conn.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (schema,),
        ).fetchone()[0]
        info = {
            "schema": schema,
            "generator_version": GENERATOR_VERSION,
            "responses": responses,
            **counts,
            "units": UNITS,
            "big_unit": BIG_UNIT,
            "now": NOW.isoformat(),
            "size": size,
            "build_seconds": round(time.monotonic() - started, 1),
            "built": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        from psycopg.types.json import Jsonb

        conn.execute("CREATE TABLE bench_dataset (info jsonb NOT NULL)")
        conn.execute("INSERT INTO bench_dataset VALUES (%s)", (Jsonb(info),))
    log(f"dataset {schema}: built in {info['build_seconds']:.0f} s, {size}")
    return info


def _rollup(schema: str) -> None:
    """The roll-up of counts of the loaded surveys (COPY bypasses the service that writes
    it), with the product's rebuild: bench/rollup_fill.py."""
    from bench.rollup_fill import fill
    from storage.db import make_engine

    engine = make_engine(schema_url(schema))
    try:
        fill(engine)
    finally:
        engine.dispose()


def _units_and_counters(session: Any) -> list[tuple[int, int, bool]]:
    """Units through the product's import; (counter id, unit id, big unit?) for every counter."""
    from sqlalchemy import select

    from storage import repositories as repo
    from storage.models import Counter, Unit
    from storage.repositories import CounterSpec, UnitSpec

    specs = [
        UnitSpec(
            BIG_UNIT,
            "UBND phường Hòa Vang",
            [CounterSpec(f"{BIG_UNIT}{n:02d}", f"Quầy {n}") for n in range(1, 11)],
        )
    ]
    for n in range(2, UNITS + 1):
        code = f"U{n:04d}"
        specs.append(
            UnitSpec(code, f"UBND xã {n}", [CounterSpec(f"{code}{c}", f"Quầy {c}") for c in "ABC"])
        )
    repo.upsert_units(session, specs, now=NOW - timedelta(days=400))
    session.flush()
    rows = session.execute(
        select(Counter.id, Counter.unit_id, Unit.code).join(Unit).order_by(Counter.id)
    )
    return [(cid, uid, code == BIG_UNIT) for cid, uid, code in rows]


def _register_questionnaire(session: Any) -> None:
    from bot.conversation.registry import FlowRegistry

    FlowRegistry(QUESTIONNAIRE).for_default(session, now=NOW - timedelta(days=400))


@dataclass(frozen=True)
class _Item:
    id: str
    factor: str  # COPY text: the number or \N
    criterion: str
    scale: bool
    not_applicable: bool


def _items(session: Any) -> list[_Item]:
    from bot.conversation.registry import FlowRegistry

    questionnaire = FlowRegistry(QUESTIONNAIRE).for_default(session, now=NOW)
    return [
        _Item(
            item.id,
            r"\N" if item.factor is None else str(item.factor),
            r"\N" if item.criterion is None else str(item.criterion),
            item.kind == "scale",
            item.not_applicable,
        )
        for item in questionnaire.items
        if item.is_question
    ]


def _constraints_and_indexes(conn: Any, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the tables' unique and foreign-key constraints and plain
    indexes (not the primary keys): dropped for the load, made again afterwards, so the
    schema ends as the migrations made it."""
    found = []
    for table in tables:
        for name, definition in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            (table,),
        ):
            found.append((table, name, f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
        for name, definition in conn.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
            (table,),
        ):
            found.append((table, name, definition))
    return found


def _copy(
    schema: str,
    responses: int,
    counters: list[tuple[int, int, bool]],
    items: list[_Item],
    *,
    seed: int,
) -> dict[str, int]:
    tables = ("survey_responses", "answers")
    with _connect(schema) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        saved = _constraints_and_indexes(conn, tables)
        # foreign keys first: they depend on the unique indexes
        for table, name, definition in sorted(saved, key=lambda s: "FOREIGN" not in s[2]):
            if definition.startswith("ALTER TABLE"):
                conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            else:
                conn.execute(f"DROP INDEX {name}")
        conn.commit()

        counts = {"responses": 0, "answers": 0, "comments": 0}
        t0 = last_log = time.monotonic()
        with conn.cursor() as cur:
            # One COPY at a time on a connection: each chunk is a COPY of its responses,
            # then one of their answers, all in one transaction.
            for chunk in _ahead(_generate(responses, counters, items, seed=seed)):
                with cur.copy(
                    "COPY survey_responses (id, token, respondent_hash, unit_id, counter_id, "
                    "questionnaire_id, questionnaire_version, language, status, position, "
                    "is_repeat, counted, qualified_at, started_at, updated_at, completed_at) "
                    "FROM STDIN"
                ) as copy:
                    copy.write(chunk.response_rows)
                with cur.copy(
                    "COPY answers (response_id, item_id, factor, criterion, value, text, "
                    "answered_at) FROM STDIN"
                ) as copy:
                    copy.write(chunk.answer_rows)
                counts["responses"] += chunk.responses
                counts["answers"] += chunk.answers
                counts["comments"] += chunk.comments
                copied = counts["responses"]
                elapsed = time.monotonic() - t0
                if time.monotonic() - last_log > 10 or copied == responses:
                    last_log = time.monotonic()
                    log(
                        f"  {copied:,}/{responses:,} responses, {counts['answers']:,} answers "
                        f"in {elapsed:.0f} s ({copied / max(elapsed, 1e-6):,.0f} responses/s, "
                        f"{(copied + counts['answers']) / max(elapsed, 1e-6):,.0f} rows/s)"
                    )
            conn.commit()
        for table in tables:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        conn.commit()
        t1 = time.monotonic()
        for table, name, definition in sorted(saved, key=lambda s: "FOREIGN" in s[2]):
            log(f"  {table}: {name}")
            conn.execute(definition)
            conn.commit()
        log(f"constraints and indexes made again in {time.monotonic() - t1:.0f} s")
    return counts


@dataclass(frozen=True)
class Chunk:
    """COPY text of some responses and of their answers."""

    responses: int
    answers: int
    comments: int
    response_rows: str
    answer_rows: str


def _ahead(chunks: Iterator[Chunk], depth: int = 3) -> Iterator[Chunk]:
    """The chunks made in a thread while the previous ones are sent: PostgreSQL parses
    one chunk while Python writes the next (psycopg waits on the socket without the GIL)."""
    queue: Queue[Chunk | BaseException | None] = Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in chunks:
                queue.put(item)
        except BaseException as exc:
            queue.put(exc)
            return
        queue.put(None)

    thread = threading.Thread(target=produce, name="dataset-generator", daemon=True)
    thread.start()
    while (item := queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def _generate(
    responses: int,
    counters: list[tuple[int, int, bool]],
    items: list[_Item],
    *,
    seed: int,
    chunk: int = 20_000,
) -> Iterator[Chunk]:
    """COPY text of responses and their answers, `chunk` responses at a time."""
    rnd = random.Random(seed)
    big = [(c, u) for c, u, is_big in counters if is_big]
    small = [(c, u) for c, u, is_big in counters if not is_big]
    respondents = [
        hashlib.sha256(f"sipas-respondent:bench-{n}".encode()).hexdigest()
        for n in range(max(1000, min(responses // 3, 300_000)))
    ]
    hms = [f" {h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]
    days: dict[int, str] = {}
    epoch0 = int((NOW - timedelta(seconds=YEAR_SECONDS)).timestamp())
    now_s = int(NOW.timestamp())

    def ts(second: int) -> str:
        day, rest = divmod(second, 86400)
        text = days.get(day)
        if text is None:
            text = days[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        return text + hms[rest]

    values = [5] * 45 + [4] * 30 + [3] * 12 + [2] * 8 + [1] * 5
    scale = [it for it in items if it.scale]
    texts = [it for it in items if not it.scale]
    step = YEAR_SECONDS / responses
    random_ = rnd.random
    choice = rnd.choice
    randrange = rnd.randrange
    comments_total = 0
    for first in range(1, responses + 1, chunk):
        r_lines: list[str] = []
        a_lines: list[str] = []
        for rid in range(first, min(first + chunk, responses + 1)):
            started = epoch0 + int(rid * step) + randrange(60)
            counter_id, unit_id = choice(big) if random_() < BIG_SHARE else choice(small)
            token = f"{(rid * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFF:012x}"
            roll = random_()
            if now_s - started < 3600:
                status, given = "active", randrange(len(scale))
            elif roll < 0.88:
                status, given = "completed", len(scale)
            elif roll < 0.94:
                status, given = "partial", 1 + randrange(len(scale) - 1)
            else:
                status, given = "cancelled", randrange(3)
            at = started
            for item in scale[:given]:
                at += 15 + randrange(30)
                r = random_()
                if r < 0.03:
                    value = r"\N"  # skipped
                elif item.not_applicable and r < 0.33:
                    value = "0"
                else:
                    value = str(choice(values))
                a_lines.append(
                    f"{rid}\t{item.id}\t{item.factor}\t{item.criterion}\t{value}\t\\N\t{ts(at)}\n"
                )
            if status == "completed" and texts:
                at += 20
                if random_() < 0.08:
                    comment = choice(COMMENTS)
                    comments_total += 1
                    a_lines.append(f"{rid}\t{texts[0].id}\t\\N\t\\N\t\\N\t{comment}\t{ts(at)}\n")
                else:  # the optional comment skipped: stored as a skip
                    a_lines.append(f"{rid}\t{texts[0].id}\t\\N\t\\N\t\\N\t\\N\t{ts(at)}\n")
            ended = ts(at + 5)
            repeat = random_() < 0.03
            # the counting decision as the migration back-fills it for older surveys
            decided = status in ("completed", "partial")
            r_lines.append(
                f"{rid}\t{token}\t{choice(respondents)}\t{unit_id}\t{counter_id}\t"
                f"{QUESTIONNAIRE}\t2026.1\t{'vi' if random_() < 0.95 else 'en'}\t{status}\t"
                f"{given + (1 if status == 'completed' else 0)}\t"
                f"{'t' if repeat else 'f'}\t{'t' if decided and not repeat else 'f'}\t"
                f"{ended if decided else chr(92) + 'N'}\t{ts(started)}\t{ended}\t"
                f"{ended if status == 'completed' else chr(92) + 'N'}\n"
            )
        yield Chunk(len(r_lines), len(a_lines), comments_total, "".join(r_lines), "".join(a_lines))
        comments_total = 0


def list_datasets() -> list[tuple[str, dict[str, Any] | None]]:
    with _connect() as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_reports_%' "
                "ORDER BY nspname"
            )
        ]
    return [(name, marker(name)) for name in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=2_000_000)
    parser.add_argument("--rebuild", action="store_true", help="Build again even if kept.")
    parser.add_argument("--drop", action="store_true", help="Drop the dataset of this size.")
    parser.add_argument("--list", action="store_true", help="The datasets kept.")
    args = parser.parse_args()
    if args.list:
        for name, info in list_datasets():
            print(name, "incomplete" if info is None else f"{info['size']}, built {info['built']}")
        return 0
    if args.drop:
        drop(schema_name(args.responses))
        log(f"dropped {schema_name(args.responses)}")
        return 0
    ensure(args.responses, rebuild=args.rebuild)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
