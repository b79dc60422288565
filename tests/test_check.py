"""`sipas-bot check`: every line it prints is true. A check that depends on one that did not
pass is skipped with the reason, a network failure is not blamed on the credentials, and the
settings line names the .env actually read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from flask import Flask

from bot.cli import cli
from bot.web import create_app, runtime_of
from storage import migrate
from tests.conftest import API_BASE, FakeClock, make_settings

PROFILE = f"{API_BASE}/v2.0/oa/getoa"


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if not line.startswith("      ->")]


@pytest.fixture
def zalo() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_without_a_token_pair_the_dependent_checks_are_skipped_not_passed(
    database_url: str, clock: FakeClock, zalo: responses.RequestsMock
) -> None:
    app = create_app(
        make_settings(database_url, zalo_access_token="", zalo_refresh_token=""), clock=clock
    )
    migrate.upgrade(runtime_of(app).engine)
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert result.exit_code == 1, result.output
    shown = lines(result.output)
    assert "FAIL  a Zalo token pair is stored" in shown
    assert "SKIP  token refresh not checked" in shown
    assert "SKIP  zalo api not checked" in shown
    assert not [line for line in shown if "refresh" in line and line.startswith("OK")]
    assert not [line for line in shown if "Zalo API" in line]
    assert len(zalo.calls) == 0  # nothing was asked of Zalo
    runtime_of(app).engine.dispose()


def test_a_database_not_migrated_skips_the_token_checks(
    database_url: str, clock: FakeClock
) -> None:
    app = create_app(make_settings(database_url), clock=clock)
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert result.exit_code == 1, result.output
    shown = lines(result.output)
    assert [line[:4] for line in shown if "token" in line or "zalo api" in line] == ["SKIP"] * 3
    assert "run `sipas-bot db upgrade`" in result.output
    runtime_of(app).engine.dispose()


def test_a_network_failure_says_zalo_cannot_be_reached_not_bad_credentials(
    app: Flask, zalo: responses.RequestsMock
) -> None:
    zalo.get(PROFILE, body=requests.ConnectionError("Name or service not known"))
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert result.exit_code == 1, result.output
    assert f"FAIL  cannot reach Zalo at {API_BASE}" in lines(result.output)
    assert "ZALO_APP_SECRET" not in result.output
    assert "re-authorise" not in result.output


def test_a_refused_token_still_blames_the_token(app: Flask, zalo: responses.RequestsMock) -> None:
    zalo.get(PROFILE, json={"error": -216, "message": "invalid token"})
    zalo.post(
        "https://oauth.zalo.test/v4/oa/access_token",
        json={"error_name": "invalid_grant", "error_description": "revoked"},
    )
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert f"FAIL  Zalo API at {API_BASE} accepts the access token" in lines(result.output)
    assert "re-authorise" in result.output


def test_all_good_prints_only_ok_lines(app: Flask, zalo: responses.RequestsMock) -> None:
    zalo.get(PROFILE, json={"data": {"oa_id": "1", "name": "UBND phường HVT"}, "error": 0})
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert {line[:4] for line in lines(result.output)} == {"OK  "}
    assert "no token refresh has failed" in result.output


# --- the settings line ------------------------------------------------------------------------


def test_the_settings_line_names_the_dotenv_read(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zalo: responses.RequestsMock
) -> None:
    monkeypatch.delenv("FLASK_SKIP_DOTENV")
    (tmp_path / ".env").write_text("# nothing set here\n", "utf-8")
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert f"OK    settings read from {tmp_path / '.env'} and the environment" in result.output


def test_the_settings_line_says_when_there_is_no_dotenv(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zalo: responses.RequestsMock
) -> None:
    monkeypatch.delenv("FLASK_SKIP_DOTENV")
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert f"settings read from the environment only: no .env in {tmp_path}" in result.output


def test_the_settings_line_says_when_dotenv_was_skipped(
    app: Flask, tmp_path: Path, zalo: responses.RequestsMock
) -> None:
    (tmp_path / ".env").write_text("# not read\n", "utf-8")
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert "(.env not read: FLASK_SKIP_DOTENV is set)" in result.output
    assert str(tmp_path / ".env") not in result.output


# --- addresses ----------------------------------------------------------------------------------


def test_a_local_public_address_is_a_warning_line(
    database_url: str, clock: FakeClock, zalo: responses.RequestsMock
) -> None:
    app = create_app(
        make_settings(database_url, public_base_url="http://localhost:8000"), clock=clock
    )
    migrate.upgrade(runtime_of(app).engine)
    zalo.get(PROFILE, json={"data": {"oa_id": "1", "name": "OA"}, "error": 0})
    result = app.test_cli_runner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output  # a warning does not fail the check
    warned = [line for line in lines(result.output) if line.startswith("WARN")]
    assert len(warned) == 1 and "http://localhost:8000" in warned[0]
    runtime_of(app).engine.dispose()
