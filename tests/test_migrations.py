"""Alembic migrations: the migrated schema is the models' schema on every backend, upgrading
is idempotent, and the commands refuse a database that is not at the current revision."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, insert, inspect, select

from storage import migrate
from storage import repositories as repo
from storage.db import make_engine, make_session_factory
from storage.models import (
    Answer,
    Base,
    Counter,
    RollupUnitSurveys,
    RollupUnitTally,
    SurveyResponse,
    Unit,
)
from tests.cli_runner import assert_one_error_line, free_port, run_cli, run_installed_cli
from tests.conftest import EXAMPLE_UNITS

NOW = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_the_migrated_schema_equals_the_models(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert schema_differences(engine) == []


def test_the_models_tables_are_all_created(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert set(Base.metadata.tables) <= table_names(engine)


def test_is_up_to_date_only_after_upgrade(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    assert migrate.is_up_to_date(engine) is False
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.is_up_to_date(engine) is True


def test_upgrade_twice_keeps_the_revision_and_the_data(engine: Engine) -> None:
    migrate.upgrade(engine)
    with make_session_factory(engine).begin() as session:
        session.add(Unit(code="HVT", name="UBND", created_at=NOW, updated_at=NOW))
    migrate.upgrade(engine)
    assert migrate.is_up_to_date(engine)
    assert schema_differences(engine) == []
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Unit)) == 1


def test_the_revisions_form_one_line_to_a_single_head() -> None:
    script = ScriptDirectory(str(migrate.MIGRATIONS))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert [r for r in revisions if r.down_revision is None] == [revisions[-1]]


def test_an_older_revision_is_not_up_to_date(engine: Engine) -> None:
    script = ScriptDirectory(str(migrate.MIGRATIONS))
    first = list(script.walk_revisions())[-1].revision
    if first == migrate.head_revision():
        pytest.skip("only one revision so far")
    migrate.upgrade(engine, first)
    assert migrate.is_up_to_date(engine) is False
    migrate.upgrade(engine)
    assert migrate.is_up_to_date(engine) is True
    assert schema_differences(engine) == []


def test_surveys_from_before_the_rollup_are_rolled_up_into_every_table(engine: Engine) -> None:
    """0014 rolls up the surveys stored before it (into the two tables it makes, with the
    code of today), 0020 sums their month rows per unit: the result is what the writers
    would have made."""
    migrate.upgrade(engine, "0013")
    march = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    with engine.begin() as connection:
        times = {"created_at": NOW, "updated_at": NOW}
        connection.execute(insert(Unit.__table__).values(id=1, code="HVT", name="UBND", **times))
        connection.execute(
            insert(Counter.__table__),
            [{"id": n, "unit_id": 1, "code": f"HVT0{n}", "name": "Quầy", **times} for n in (1, 2)],
        )
        for n, (counter_id, status) in enumerate(
            [(1, "completed"), (2, "completed"), (2, "partial")]
        ):
            connection.execute(
                insert(SurveyResponse.__table__).values(
                    id=n + 1,
                    token=f"t{n}",
                    respondent_hash=f"h{n}",
                    unit_id=1,
                    counter_id=counter_id,
                    questionnaire_id="q",
                    questionnaire_version="1",
                    language="vi",
                    status=status,
                    counted=True,
                    qualified_at=march,
                    channel="zalo" if n else "web",
                    started_at=march,
                    updated_at=march,
                )
            )
            connection.execute(
                insert(Answer.__table__).values(
                    response_id=n + 1, item_id="q1", factor=1, value=4 + n % 2, answered_at=march
                )
            )
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        assert repo.compare_unit(session, 1, span=None) == []
        surveys = select(
            RollupUnitSurveys.month, RollupUnitSurveys.status, RollupUnitSurveys.surveys
        )
        assert sorted(session.execute(surveys).all()) == [
            (date(2026, 3, 1), "completed", 2),
            (date(2026, 3, 1), "partial", 1),
        ]
        tallies = select(RollupUnitTally.factor, RollupUnitTally.valid, RollupUnitTally.total)
        assert session.execute(tallies).all() == [(1, 3, 13)]


# --- the commands on an unmigrated database ------------------------------------------------------

COMMANDS = {
    "units import": ["units", "import", str(EXAMPLE_UNITS)],
    "units list": ["units", "list"],
    "export": ["export"],
    "qr": ["qr", "--unit", "HVT", "--out", "codes"],
    "chat": ["chat", "--counter", "HVT01"],
    "serve": ["serve", "--port", "0"],
}
SERVABLE = {"ZALO_SANDBOX": "1", "ZALO_APP_ID": "sandbox-app", "ZALO_OA_SECRET_KEY": "s" * 32}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_on_an_unmigrated_database_says_to_run_db_upgrade(
    database_url: str, engine: Engine, command: str
) -> None:
    args = [str(free_port()) if a == "0" else a for a in COMMANDS[command]]
    # A server that started would listen until the timeout: serve runs as a real process.
    run = run_installed_cli if command == "serve" else run_cli
    result = run(*args, env={"DATABASE_URL": database_url, **SERVABLE})
    assert_one_error_line(result, "sipas-bot db upgrade")
    assert table_names(engine) == set()  # the command created nothing on its way out


def test_a_command_on_an_older_revision_says_to_run_db_upgrade(
    database_url: str, engine: Engine
) -> None:
    script = ScriptDirectory(str(migrate.MIGRATIONS))
    first = list(script.walk_revisions())[-1].revision
    if first == migrate.head_revision():
        pytest.skip("only one revision so far")
    migrate.upgrade(engine, first)
    result = run_cli("units", "list", env={"DATABASE_URL": database_url})
    assert_one_error_line(result, "sipas-bot db upgrade")


def test_db_upgrade_migrates_an_empty_database_and_can_run_again(
    database_url: str, engine: Engine
) -> None:
    first = run_cli("db", "upgrade", env={"DATABASE_URL": database_url})
    assert first.returncode == 0, first.stderr
    assert f"revision {migrate.head_revision()}" in first.stdout
    assert migrate.is_up_to_date(engine)
    again = run_cli("db", "upgrade", env={"DATABASE_URL": database_url})
    assert again.returncode == 0, again.stderr
    listed = run_cli("units", "list", env={"DATABASE_URL": database_url})
    assert listed.returncode == 0, listed.stderr
