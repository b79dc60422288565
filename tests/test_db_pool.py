"""PostgreSQL's pooled connections: one that waited in the pool is tested before use (a dead
one replaced), one in constant use is not (storage/db.py, `_ping_when_idle`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from storage import db


def _terminate(database_url: str, pid: int) -> None:
    admin = create_engine(database_url)
    try:
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def postgresql_url(database_url: str) -> str:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite connection is a file, nothing to ping")
    return database_url


@contextmanager
def pool_of_one_killed(
    url: str, monkeypatch: pytest.MonkeyPatch, *, ping_after: float
) -> Iterator[tuple[Engine, int]]:
    """An engine whose one pooled connection was used, returned, then killed server-side
    (a restarted server, a firewall's idle timeout); with the killed backend's pid."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", ping_after)
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(url, first)
        yield engine, first
    finally:
        engine.dispose()


def test_a_connection_idle_in_the_pool_is_tested_and_a_dead_one_replaced(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pool_of_one_killed(postgresql_url, monkeypatch, ping_after=0.0) as (engine, killed):
        assert _backend_pid(engine) != killed  # no error: the dead connection was replaced


def test_a_connection_in_constant_use_is_not_pinged(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pool_of_one_killed(postgresql_url, monkeypatch, ping_after=60.0) as (engine, killed):
        # Used a moment ago, so not tested: the statement meets the dead connection (as a
        # statement in flight when the server goes away would), and the pool is renewed.
        with pytest.raises(OperationalError) as failed:
            _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert _backend_pid(engine) != killed


def test_the_jit_compiler_is_off_on_every_connection_and_nothing_is_left_open(
    postgresql_url: str,
) -> None:
    """PostgreSQL's JIT compiled the console's month reads for longer than they ran
    (docs/benchmarks.md, section 7): every connection of the service's engine has it off,
    and it was committed: a rollback of the first transaction does not undo it."""
    engine = db.make_engine(postgresql_url, pool_size=2, max_overflow=0)
    plain = create_engine(postgresql_url)
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                assert connection.execute(text("SHOW jit")).scalar_one() == "off"
                connection.rollback()
                assert connection.execute(text("SHOW jit")).scalar_one() == "off"
        with plain.connect() as connection:  # the server's default is untouched
            assert connection.execute(text("SHOW jit")).scalar_one() == "on"
    finally:
        engine.dispose()
        plain.dispose()
