"""Alembic environment: the engine comes from storage.migrate, never from a config file."""

from __future__ import annotations

from alembic import context

from storage.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch ALTER copies a table into a new one and drops the old: with foreign keys
        # enforced, SQLite refuses to drop a table other rows refer to (0016 on a database
        # with answers). Off for the migration (set outside any transaction, as SQLite
        # requires), every reference checked before the commit, and on again after.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migrating left rows without their parent: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
