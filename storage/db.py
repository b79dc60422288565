"""Engine and session factory. Nothing here runs at import: the app factory calls these."""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def _first_line_only(context: Any) -> None:
    """PostgreSQL's error text goes on with DETAIL and CONTEXT lines that quote row values
    ("Key (…)=(…) already exists", "Failing row contains (…)"): a comment or a Zalo id. Keep
    the first line, which names the problem and the constraint, and drop the rest."""
    error = context.original_exception
    message = str(error)
    if "\n" not in message:
        return
    first = message.splitlines()[0]
    error.args = (first,)
    wrapped = context.sqlalchemy_exception  # built before this hook, from the whole text
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (wrapped.args[0].replace(message, first), *wrapped.args[1:])


# A pooled PostgreSQL connection unused for longer than this is tested before it is handed
# out (a restarted server, a firewall's idle timeout); one in constant use is not.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """`pool_pre_ping`, for connections idle longer than `idle_seconds` only.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout: one more for each
    webhook event (docs/benchmarks.md, 1). A connection in constant use has just shown it
    works; one that has waited in the pool is tested (a dead one is replaced, as with
    `pool_pre_ping`). A server restarted while connections are busy fails the statements in
    flight either way, and SQLAlchemy then replaces every connection of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("a pooled connection no longer answers") from exc


def _without_jit(engine: Engine) -> None:
    """PostgreSQL's JIT compiler off on every connection of `engine`.

    PostgreSQL compiles a query to machine code when its estimated cost passes
    `jit_above_cost` (100,000): the console's and the reports' grouped reads over a month of
    a large unit pass it, and compiling took 110-130 ms of a 220 ms statement whose rows
    take 80 ms to read (docs/benchmarks.md, section 7); no query of this service runs long
    enough to win that back. The webhook's statements are far below the threshold.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; on SQLite, one that is safe for a threaded server.

    SQLite gets WAL (readers do not block the writer), a busy timeout, foreign keys, and
    `BEGIN IMMEDIATE` for every transaction: the write lock is taken at the start, so two
    threads handling the same user cannot both read a state and then both write it.
    """
    parsed = make_url(url)
    # A failed statement's error (logged, or shown to an operator) must not quote its
    # parameters: they hold Zalo ids and citizens' comments.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
        if parsed.get_backend_name() == "postgresql":
            _without_jit(engine)
        event.listen(engine, "handle_error", _first_line_only)
        # A forked child (a gunicorn worker) must not use, nor close, the parent's
        # connections: it starts with an empty pool of its own.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        return engine

    database = parsed.database
    if not database or database == ":memory:":
        from sqlalchemy.pool import StaticPool

        kwargs.setdefault("poolclass", StaticPool)
    kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if database and database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


_SQLITE_BEGIN = "sipas_sqlite_begin"


class SessionFactory(sessionmaker[Session]):
    """Sessions that say whether they write.

    `factory.begin()` opens a transaction that writes (on SQLite `BEGIN IMMEDIATE`: the
    write lock from the start). `factory()` gives a session for reading (on SQLite a
    deferred transaction: a long export or report never holds the write lock, so webhooks
    keep being stored meanwhile). On PostgreSQL both are ordinary transactions.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(
            bind=engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"}),
            expire_on_commit=False,
        )
        self._writer = sessionmaker(bind=engine, expire_on_commit=False)

    def begin(self) -> Any:
        return self._writer.begin()


def make_session_factory(engine: Engine) -> SessionFactory:
    return SessionFactory(engine)
