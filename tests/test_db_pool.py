"""PostgreSQL's pooled connections: one that waited in the pool is tested before use (a dead
one replaced), one in constant use is not (storage/db.py, `_ping_when_idle`)."""

from __future__ import annotations

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


def test_a_connection_idle_in_the_pool_is_tested_and_a_dead_one_replaced(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = db.make_engine(postgresql_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(postgresql_url, first)  # a restarted server, a firewall's idle timeout
        second = _backend_pid(engine)  # no error: the dead connection was replaced
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_in_constant_use_is_not_pinged(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 60.0)
    engine = db.make_engine(postgresql_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(postgresql_url, first)
        # Used a moment ago, so not tested: the statement meets the dead connection (as a
        # statement in flight when the server goes away would), and the pool is renewed.
        with pytest.raises(OperationalError) as failed:
            _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
