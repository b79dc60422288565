"""The per-process cache of counters and units (bot/directory.py): a units import made by
another process is seen at the next check, a cached lookup costs no query, and what it keeps
outlives the session that read it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from bot.directory import CounterDirectory
from bot.runtime import Runtime
from bot.units import read_units_file
from storage import repositories as repo
from storage.models import OutboxMessage, SurveyResponse
from tests.conftest import EXAMPLE_UNITS, FakeClock, text_event

Post = Callable[..., Any]
OLD_NAME = "Quầy 2 – Địa chính, xây dựng"
NEW_NAME = "Quầy 2 – Đất đai"


def import_units(runtime: Runtime, path: Path, clock: FakeClock) -> None:
    """What `sipas-bot units import` writes, as another process would: nothing tells this
    app's cache but the database."""
    with runtime.session_factory.begin() as session:
        repo.upsert_units(session, read_units_file(path), now=clock())


def renamed_units(tmp_path: Path, *, extra_counter: bool = False) -> Path:
    text = EXAMPLE_UNITS.read_text("utf-8").replace(OLD_NAME, NEW_NAME)
    if extra_counter:
        third = "      - code: HVT03\n"
        text = text.replace(third, "      - code: HVT04\n        name: Quầy 4\n" + third)
    path = tmp_path / "units.yaml"
    path.write_text(text, "utf-8")
    return path


def first_reply(runtime: Runtime, user: str) -> str:
    with runtime.session_factory() as session:
        body = session.scalars(
            select(OutboxMessage.body)
            .where(OutboxMessage.user_id == user)
            .order_by(OutboxMessage.id)
            .limit(1)
        ).one()
    return str(body["text"])


def test_a_units_import_by_another_process_is_seen_by_the_next_start(
    signed_post: Post, runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    assert signed_post(text_event("#HVT02", user_id="1001")).status_code == 200
    assert OLD_NAME in first_reply(runtime, "1001")
    # An unknown code is remembered as unknown, until the stamp changes.
    assert signed_post(text_event("#HVT04", user_id="1002")).status_code == 200
    assert "Quầy 4" not in first_reply(runtime, "1002")
    clock.advance(minutes=1)
    import_units(runtime, renamed_units(tmp_path, extra_counter=True), clock)
    assert signed_post(text_event("#HVT02", user_id="1003")).status_code == 200
    assert NEW_NAME in first_reply(runtime, "1003")
    assert signed_post(text_event("#HVT04", user_id="1004")).status_code == 200
    assert "Quầy 4" in first_reply(runtime, "1004")
    with runtime.session_factory() as session:
        started = session.scalars(select(SurveyResponse.counter_id)).all()
    assert len(started) == 3  # HVT02 twice and HVT04, not the unknown code


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count_statements(runtime: Runtime) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    return seen


def test_a_change_is_seen_within_the_check_interval_and_a_hit_costs_no_query(
    runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    ticks = Ticks()
    directory = CounterDirectory(check_every=timedelta(seconds=5), monotonic=ticks)
    with runtime.session_factory() as session:
        counter = directory.by_code(session, "hvt02")
        assert counter is not None and counter.name == OLD_NAME
        assert directory.by_code(session, "NOPE") is None
    statements = count_statements(runtime)
    with runtime.session_factory() as session:
        again = directory.by_code(session, "HVT02")
        assert again is counter
        assert directory.by_id(session, counter.id) is counter
        assert directory.by_code(session, "NOPE") is None
    assert statements == []

    clock.advance(minutes=1)
    import_units(runtime, renamed_units(tmp_path), clock)
    ticks.now += 4.9  # within the interval: the cached counter is still given
    with runtime.session_factory() as session:
        stale = directory.by_code(session, "HVT02")
        assert stale is not None and stale.name == OLD_NAME
    ticks.now += 0.2  # past it: the stamp is checked, has changed, and the counter is read again
    with runtime.session_factory() as session:
        fresh = directory.by_code(session, "HVT02")
        assert fresh is not None and fresh.name == NEW_NAME
        assert fresh.unit.name == counter.unit.name
    # What is kept is detached: usable after its session is gone, by any thread.
    assert (fresh.code, fresh.unit.code) == ("HVT02", "HVT")


def test_a_lookup_begun_before_the_cache_was_emptied_keeps_nothing(
    runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    ticks = Ticks()
    directory = CounterDirectory(check_every=timedelta(0), monotonic=ticks)
    with runtime.session_factory() as session:
        generation = directory._check(session)
        counter = repo.find_counter(session, "HVT02")
        # Meanwhile another thread saw a new stamp and emptied the cache.
        clock.advance(minutes=1)
        import_units(runtime, renamed_units(tmp_path), clock)
        directory._check(session)
        directory._keep(session, generation, "HVT02", counter)
    with runtime.session_factory() as session:
        kept = directory.by_code(session, "HVT02")
        assert kept is not None and kept.name == NEW_NAME
