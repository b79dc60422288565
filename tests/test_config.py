"""Settings from the environment: every invalid value is one ConfigError naming its variable,
and the console script turns it into one line on stderr with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from bot.config import ConfigError, Settings
from storage import migrate
from storage.db import make_engine
from tests.cli_runner import assert_one_error_line, free_port, run_cli, run_installed_cli

INVALID = [
    ("TIMEZONE", "Mars/Olympus"),
    ("ZALO_SANDBOX", "maybe"),
    ("SURVEY_IDLE_MINUTES", "-3"),
    ("SURVEY_IDLE_MINUTES", "abc"),
    ("PUBLIC_BASE_URL", "not-a-url"),
    ("QR_URL_TEMPLATE", "https://sipas.example.vn/q/{code}"),
    ("DATABASE_URL", "instance/sipas-bot.db"),
]


# --- Settings.from_env ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), INVALID, ids=[f"{n}={v}" for n, v in INVALID])
def test_an_invalid_setting_is_a_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value)


def test_an_empty_environment_gives_the_documented_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.zalo_sandbox is False
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.survey_idle_minutes == 30
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'sipas-bot.db'}"
    assert settings.qr_url("HVT01") == "http://127.0.0.1:8000/q/HVT01"


def test_valid_values_are_parsed_and_blank_ones_fall_back_to_defaults() -> None:
    settings = Settings.from_env(
        {
            "ZALO_SANDBOX": " yes ",
            "SURVEY_IDLE_MINUTES": "45",
            "TIMEZONE": "",
            "PUBLIC_BASE_URL": "https://sipas.example.vn/",
            "QR_URL_TEMPLATE": "{PUBLIC_BASE_URL}/scan?c={counter}",
        }
    )
    assert settings.zalo_sandbox is True
    assert settings.survey_idle_minutes == 45
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.qr_url("HVT02") == "https://sipas.example.vn/scan?c=HVT02"


@pytest.mark.parametrize("raw", ["0", "false", "No", "off"])
def test_zalo_sandbox_accepts_the_usual_words_for_off(raw: str) -> None:
    assert Settings.from_env({"ZALO_SANDBOX": raw}).zalo_sandbox is False


# --- through the console script -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), INVALID, ids=[f"{n}={v}" for n, v in INVALID])
def test_the_console_script_reports_an_invalid_setting_in_one_line(name: str, value: str) -> None:
    result = run_cli("units", "list", env={name: value})
    assert_one_error_line(result, name)
    assert result.stdout == ""


def test_a_database_url_of_an_unknown_kind_is_reported_in_one_line() -> None:
    result = run_cli("units", "list", env={"DATABASE_URL": "nosuchdb://user@host/db"})
    assert_one_error_line(result, "DATABASE_URL")


def test_help_with_an_invalid_setting_shows_no_traceback() -> None:
    result = run_cli("--help", env={"TIMEZONE": "Mars/Olympus"})
    assert "Traceback" not in result.stderr
    assert "init-env" in result.stdout


def test_an_unreachable_database_is_reported_in_one_line() -> None:
    port = free_port()  # nobody listens there
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/nothing?connect_timeout=3"
    result = run_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert_one_error_line(result, "database")


# --- serve refuses to start without the webhook secret ------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [
        {"ZALO_SANDBOX": "1", "ZALO_APP_ID": "sandbox-app"},
        {
            "ZALO_SANDBOX": "0",
            "ZALO_APP_ID": "360846524940903967",
            "ZALO_OA_ID": "388613280878808645",
            "ZALO_ACCESS_TOKEN": "access-token-1",
            "ZALO_REFRESH_TOKEN": "refresh-token-1",
        },
    ],
    ids=["sandbox", "live"],
)
def test_serve_refuses_to_start_without_the_oa_secret_key(
    database_url: str, mode: dict[str, str]
) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    # If the server started, it would listen until the timeout and the test would fail.
    result = run_installed_cli(
        "serve", "--port", str(port), env={"DATABASE_URL": database_url, **mode}, timeout=30
    )
    line = assert_one_error_line(result, "ZALO_OA_SECRET_KEY")
    assert "ZALO_APP_ID" not in line  # set: only the missing variable is named
    assert "sipas-bot on http://" not in result.stdout


# --- .env ---------------------------------------------------------------------------------------


def test_the_console_script_reads_dotenv_from_the_current_folder(tmp_path: Path) -> None:
    from_dotenv = tmp_path / "from-dotenv.db"
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{from_dotenv}\n", "utf-8")
    result = run_cli("db", "upgrade", unset=("FLASK_SKIP_DOTENV",), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(from_dotenv) in result.stdout
    engine = make_engine(f"sqlite:///{from_dotenv}")
    assert "units" in inspect(engine).get_table_names()
    engine.dispose()
    assert not (tmp_path / "instance").exists()  # the default database was not used


def test_the_process_environment_wins_over_dotenv(tmp_path: Path) -> None:
    from_dotenv = tmp_path / "from-dotenv.db"
    from_env = tmp_path / "from-env.db"
    (tmp_path / ".env").write_text(
        f"DATABASE_URL=sqlite:///{from_dotenv}\nTIMEZONE=Mars/Olympus\n", "utf-8"
    )
    result = run_cli(
        "db",
        "upgrade",
        env={"DATABASE_URL": f"sqlite:///{from_env}", "TIMEZONE": "Asia/Bangkok"},
        unset=("FLASK_SKIP_DOTENV",),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert str(from_env) in result.stdout
    assert from_env.exists()
    assert not from_dotenv.exists()


def test_dotenv_is_ignored_when_flask_skip_dotenv_is_set(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Mars/Olympus\n", "utf-8")
    result = run_cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
