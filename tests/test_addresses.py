"""The addresses an operator sees: `serve` listens on HOST/PORT, every printed and encoded
link comes from PUBLIC_BASE_URL, and `qr`, `serve` (and `check`) warn in one line when that
is an address no phone can open or when no OA is set outside sandbox mode."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from flask import Flask

from bot.cli import cli
from bot.config import Settings, is_local_address
from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from tests.conftest import EXAMPLE_UNITS, FakeClock, make_settings
from tests.test_cli import EXAMPLE_ENV, ROOT

LOCAL = "http://127.0.0.1:8200"


def app_with(database_url: str, clock: FakeClock, **overrides: Any) -> Flask:
    from bot.units import read_units_file

    app = create_app(make_settings(database_url, **overrides), clock=clock)
    runtime = runtime_of(app)
    migrate.upgrade(runtime.engine)
    with runtime.session_factory.begin() as session:
        repo.upsert_units(session, read_units_file(EXAMPLE_UNITS), now=clock())
    return app


@pytest.fixture
def local_app(database_url: str, clock: FakeClock) -> Iterator[Flask]:
    app = app_with(database_url, clock, public_base_url=LOCAL)
    yield app
    runtime_of(app).engine.dispose()


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("sipas-bot: warning:")]


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.1", True),
        ("http://localhost:8200", True),
        ("http://[::1]:8000", True),
        ("http://0.0.0.0:8000", True),
        ("http://192.168.1.20:8000", False),  # a phone on the office Wi-Fi can open it
        ("https://sipas.example.vn", False),
    ],
)
def test_which_addresses_are_local(url: str, local: bool) -> None:
    assert is_local_address(url) is local


# --- qr and units list ------------------------------------------------------------------------


def test_qr_encodes_public_base_url_and_warns_once_when_it_is_local(
    local_app: Flask, tmp_path: Path
) -> None:
    result = local_app.test_cli_runner().invoke(
        cli, ["qr", "--unit", "HVT", "--out", str(tmp_path / "qr")]
    )
    assert result.exit_code == 0, result.output
    assert f"{LOCAL}/q/HVT01" in result.stdout
    assert "8000" not in result.stdout
    warnings = warnings_in(result.stderr)
    assert len(warnings) == 1
    assert "PUBLIC_BASE_URL" in warnings[0] and LOCAL in warnings[0]


def test_qr_says_nothing_when_the_address_is_public(app: Flask, tmp_path: Path) -> None:
    result = app.test_cli_runner().invoke(
        cli, ["qr", "--unit", "HVT", "--out", str(tmp_path / "qr")]
    )
    assert result.exit_code == 0, result.output
    assert "https://sipas.example.vn/q/HVT01" in result.stdout
    assert result.stderr == ""


def test_qr_warns_when_no_oa_is_set_outside_sandbox_mode(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    app = app_with(database_url, clock, zalo_oa_id="")
    result = app.test_cli_runner().invoke(
        cli, ["qr", "--unit", "HVT", "--out", str(tmp_path / "qr")]
    )
    assert [w for w in warnings_in(result.stderr) if "ZALO_OA_ID" in w]
    runtime_of(app).engine.dispose()


def test_units_list_prints_links_from_public_base_url(local_app: Flask) -> None:
    result = local_app.test_cli_runner().invoke(cli, ["units", "list"])
    assert result.exit_code == 0, result.output
    links = [line.split()[-1] for line in result.stdout.splitlines() if "#HVT" in line]
    assert links == [f"{LOCAL}/q/HVT0{n}" for n in (1, 2, 3)]


# --- serve --------------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`serve` up to the point it would start waitress; what it would have served."""
    import bot.server

    seen: dict[str, Any] = {}

    def fake_serve(_app: Flask, _runtime: Any, *, host: str, port: int, threads: int) -> None:
        seen.update(host=host, port=port)

    monkeypatch.setattr(bot.server, "serve_one_process", fake_serve)
    return seen


def test_serve_listens_on_port_and_host_from_the_environment(
    local_app: Flask, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "8200")
    monkeypatch.setenv("HOST", "0.0.0.0")
    result = local_app.test_cli_runner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    assert served == {"host": "0.0.0.0", "port": 8200}
    assert f"sipas-bot on {LOCAL}" in result.stdout
    assert f"POST {LOCAL}/zalo/webhook" in result.stdout
    assert "8000" not in result.output
    # Local, but the same port: the one warning about the address, none about the port.
    assert len(warnings_in(result.stderr)) == 1


def test_serve_warns_when_public_base_url_names_another_port(
    local_app: Flask, served: dict[str, Any]
) -> None:
    result = local_app.test_cli_runner().invoke(cli, ["serve", "--port", "8300"])
    assert result.exit_code == 0, result.output
    assert served["port"] == 8300
    warnings = warnings_in(result.stderr)
    assert len(warnings) == 2
    assert "8200" in warnings[1] and "8300" in warnings[1]


def test_serve_on_a_public_address_does_not_warn(app: Flask, served: dict[str, Any]) -> None:
    result = app.test_cli_runner().invoke(cli, ["serve", "--port", "8300"])
    assert result.exit_code == 0, result.output
    assert "sipas-bot on https://sipas.example.vn" in result.stdout
    assert warnings_in(result.stderr) == []


# --- init-env and make run ------------------------------------------------------------------------


def test_init_env_with_a_port_makes_public_base_url_match(
    tmp_path: Path, make_cli_app: Callable[[], Flask]
) -> None:
    out = tmp_path / ".env"
    result = (
        make_cli_app()
        .test_cli_runner()
        .invoke(
            cli, ["init-env", "--example", str(EXAMPLE_ENV), "--out", str(out), "--port", "8200"]
        )
    )
    assert result.exit_code == 0, result.output
    values = dotenv_values(out)
    assert values["PORT"] == "8200"
    assert values["PUBLIC_BASE_URL"] == "http://127.0.0.1:8200"
    settings = Settings.from_env({k: v for k, v in values.items() if v is not None})
    assert settings.qr_url("HVT01") == "http://127.0.0.1:8200/q/HVT01"


@pytest.fixture
def make_cli_app(settings: Settings) -> Callable[[], Flask]:
    return lambda: create_app(settings)


def test_make_run_passes_port_and_host_to_init_env_and_serve(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", "PORT=8200", "HOST=0.0.0.0", "VENV=/nonexistent"],
        capture_output=True,
        text=True,
        check=False,
    )
    serve = [line for line in result.stdout.splitlines() if "sipas-bot serve" in line]
    assert serve and serve[0].split("serve", 1)[1].split() == [
        "--host",
        "0.0.0.0",
        "--port",
        "8200",
    ], result.stdout
