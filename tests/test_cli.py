"""The `sipas-bot` console script: init-env and chat, plus the helpers other CLI tests share
for running the real script as a subprocess."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from flask import Flask
from sqlalchemy import func, select

from bot.cli import cli
from bot.config import Settings
from bot.runtime import Runtime
from storage.models import (
    Answer,
    Conversation,
    OutboxMessage,
    ProcessedEvent,
    QuestionnaireVersion,
    SurveyResponse,
)
from tests.cli_runner import assert_one_error_line, run_cli, run_installed_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ENV = ROOT / "config.example.env"


# --- init-env ----------------------------------------------------------------------------------


def _init_env(*extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("init-env", "--example", str(EXAMPLE_ENV), *extra, cwd=cwd)


def test_init_env_writes_a_sandbox_dotenv_from_the_example(tmp_path: Path) -> None:
    result = _init_env(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = dotenv_values(tmp_path / ".env")
    example = dotenv_values(EXAMPLE_ENV)
    assert written["ZALO_SANDBOX"] == "1"
    secret = written["ZALO_OA_SECRET_KEY"] or ""
    assert len(secret) >= 32
    assert secret.replace("-", "").replace("_", "").isalnum()
    pepper = written["PRIVACY_PEPPER"] or ""
    assert len(pepper) >= 32 and pepper != secret
    # Every other setting of the example is carried over unchanged.
    assert len(written["CONSOLE_SECRET_KEY"] or "") >= 32
    assert written["CONSOLE_SECRET_KEY"] != secret
    filled = {
        "ZALO_SANDBOX",
        "ZALO_OA_SECRET_KEY",
        "ZALO_APP_ID",
        "CONSOLE_SECRET_KEY",
        "PRIVACY_PEPPER",
    }
    assert set(written) == set(example)
    assert {k: v for k, v in written.items() if k not in filled} == {
        k: v for k, v in example.items() if k not in filled
    }
    # The comments that explain each setting are kept too.
    assert "# 1 = sandbox" in (tmp_path / ".env").read_text("utf-8")


def test_init_env_output_is_enough_to_serve_in_sandbox_mode(tmp_path: Path) -> None:
    assert _init_env(cwd=tmp_path).returncode == 0
    values = {k: v for k, v in dotenv_values(tmp_path / ".env").items() if v is not None}
    settings = Settings.from_env(values)
    assert settings.zalo_sandbox is True
    settings.require_for_serving()  # raises ConfigError if a required value were missing
    settings.require_for_console()


def test_init_env_makes_a_new_secret_every_time(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert _init_env(cwd=first).returncode == 0
    assert _init_env(cwd=second).returncode == 0
    secrets = {dotenv_values(d / ".env")["ZALO_OA_SECRET_KEY"] for d in (first, second)}
    assert len(secrets) == 2
    peppers = {dotenv_values(d / ".env")["PRIVACY_PEPPER"] for d in (first, second)}
    assert len(peppers) == 2


def test_init_env_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    existing = tmp_path / ".env"
    existing.write_text("ZALO_OA_SECRET_KEY=keep-me\n", "utf-8")
    result = _init_env(cwd=tmp_path)
    assert_one_error_line(result, ".env", "--force")
    assert existing.read_text("utf-8") == "ZALO_OA_SECRET_KEY=keep-me\n"


def test_init_env_with_force_replaces_the_file(tmp_path: Path) -> None:
    existing = tmp_path / ".env"
    existing.write_text("ZALO_OA_SECRET_KEY=old\n", "utf-8")
    existing.chmod(0o644)
    result = _init_env("--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert dotenv_values(existing)["ZALO_OA_SECRET_KEY"] not in ("old", "", None)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600


def test_init_env_writes_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    assert _init_env(cwd=tmp_path).returncode == 0
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_init_env_without_the_example_file_is_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    result = run_cli("init-env", "--example", str(tmp_path / "missing.env"), cwd=tmp_path)
    assert_one_error_line(result, "missing.env")
    assert not (tmp_path / ".env").exists()


# --- chat --------------------------------------------------------------------------------------

ANSWERS = "5\n4\n3\n2\n0\nbỏ qua\n"


def _stored_rows(runtime: Runtime) -> dict[str, int]:
    with runtime.session_factory() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (
                SurveyResponse,
                Answer,
                Conversation,
                OutboxMessage,
                ProcessedEvent,
                QuestionnaireVersion,
            )
        }


def test_chat_runs_the_short_survey_to_the_thank_you(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["chat", "--counter", "HVT01"], input=ANSWERS)
    assert result.exit_code == 0, result.output
    output = result.stdout
    positions = [output.index(f"Câu {n}/6") for n in range(1, 7)]
    assert positions == sorted(positions)
    assert "Quầy 1 – Tư pháp, hộ tịch" in output
    assert "Trân trọng cảm ơn" in output
    assert output.index("Trân trọng cảm ơn") > positions[-1]
    assert "Xin lỗi, chưa hiểu" not in output  # every answer was understood


def test_chat_stores_nothing_in_the_real_database(app: Flask, runtime: Runtime) -> None:
    before = _stored_rows(runtime)
    result = app.test_cli_runner().invoke(cli, ["chat", "--counter", "hvt02"], input=ANSWERS)
    assert result.exit_code == 0, result.output
    assert "Trân trọng cảm ơn" in result.stdout
    assert before == _stored_rows(runtime) == dict.fromkeys(before, 0)


def test_chat_ends_quietly_when_input_runs_out(app: Flask, runtime: Runtime) -> None:
    result = app.test_cli_runner().invoke(cli, ["chat", "--counter", "HVT01"], input="5\n")
    assert result.exit_code == 0, result.output
    assert "Câu 2/6" in result.stdout
    assert "Trân trọng cảm ơn" not in result.stdout
    assert _stored_rows(runtime)["survey_responses"] == 0


def test_chat_with_an_unknown_counter_exits_2_in_one_line(app: Flask, settings: Settings) -> None:
    result = run_cli(
        "chat", "--counter", "NOPE9", env={"DATABASE_URL": settings.database_url}, input=ANSWERS
    )
    assert_one_error_line(result, "NOPE9")
    assert "Câu 1/" not in result.stdout


def test_chat_through_the_console_script_reads_answers_from_stdin(
    app: Flask, settings: Settings, runtime: Runtime
) -> None:
    result = run_installed_cli(
        "chat", "--counter", "HVT03", env={"DATABASE_URL": settings.database_url}, input=ANSWERS
    )
    assert result.returncode == 0, result.stderr
    assert "Câu 6/6" in result.stdout
    assert "Trân trọng cảm ơn" in result.stdout
    assert _stored_rows(runtime)["survey_responses"] == 0


@pytest.mark.parametrize("word", ["/quit", "/q"])
def test_chat_leaves_on_an_exit_word(app: Flask, word: str) -> None:
    result = app.test_cli_runner().invoke(
        cli, ["chat", "--counter", "HVT01"], input=f"5\n{word}\n4\n"
    )
    assert result.exit_code == 0, result.output
    assert "Câu 2/6" in result.stdout
    assert "Câu 3/6" not in result.stdout


# --- the group ---------------------------------------------------------------------------------


def test_help_lists_only_sipas_bots_own_commands_and_options(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:")[1].splitlines()
    commands = [line.split()[0] for line in listing if line.startswith("  ") and line.split()]
    for ours in ("serve", "check", "units", "qr", "report", "digest", "chat", "simulate"):
        assert ours in commands
    for flasks in ("run", "shell", "routes"):
        assert flasks not in commands
    for option in ("--app", "-A", "--debug", "--env-file", "-e", "--version"):
        assert f"{option} " not in result.output and f"{option}," not in result.output


@pytest.mark.parametrize("flask_command", ["run", "shell", "routes"])
def test_flasks_own_commands_are_not_reachable(app: Flask, flask_command: str) -> None:
    result = app.test_cli_runner().invoke(cli, [flask_command], input="")
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_help_works_without_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "serve" in result.output
