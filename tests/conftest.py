"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL when
TEST_DATABASE_URL names one), an app with a controllable clock, signed webhook posts, and
Zalo's HTTP API faked at its edge with `responses`."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses as responses_lib
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from playwright.sync_api import Browser, Playwright, sync_playwright
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.delivery.leader_messages import LeaderMail
from bot.delivery.sign_in_links import SignInLinks
from bot.reporting.alerts import AlertService
from bot.reporting.digests import DigestService
from bot.runtime import Runtime, build_mailer
from bot.units import read_units_file
from bot.web import create_app, runtime_of
from storage import migrate
from storage import repositories as repo
from storage.db import make_engine, make_session_factory
from storage.models import Base
from tests.browser import LiveServer, launch_chromium
from zalo_client import SIGNATURE_HEADER, SignatureVerifier

# Hypothesis: a quick run on a developer's machine, the full search in CI (.ci/run sets
# HYPOTHESIS_PROFILE=ci; CI=1 does too). A test that sets its own max_examples keeps it.
_FULL_SEARCH = (
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "1" else "dev")
) == "ci"
hypothesis_settings.register_profile("dev", max_examples=40, deadline=None)
hypothesis_settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("ci" if _FULL_SEARCH else "dev")
# The webhook fuzz (tests/test_fuzz.py): requests per database.
FUZZ_EXAMPLES = 2000 if _FULL_SEARCH else 100

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_UNITS = ROOT / "examples" / "units.yaml"
API_BASE = "https://openapi.zalo.test"
OAUTH_BASE = "https://oauth.zalo.test"
APP_ID = "360846524940903967"
OA_SECRET = "test-oa-secret-key"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
ENV_PREFIXES = (
    "ZALO_",
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "QR_URL_TEMPLATE",
    "TIMEZONE",
    "SURVEY_",
    "OUTBOX_",
    "LOG_LEVEL",
    "FLASK_",
    "REPORT_",
    "DIGEST_",
    "ALERT_",
    "SMTP_",
    "ACCOUNT_",
    "PRESENCE_",
    "INTEGRITY_",
    "PRIVACY_",
    "WEBHOOK_",
    "SANDBOX_",
    "PORT",
    "HOST",
    "CONSOLE_",
    "CASES_",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine or from another test; no .env is read."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    monkeypatch.chdir(tmp_path)


def _real_now() -> datetime:
    return datetime.now(UTC)


# The time the event factories stamp events with: the test's FakeClock while the `clock`
# fixture is in use (so events stay inside the webhook's replay window as the test moves
# the clock), the real time otherwise (tests against a real server).
_event_time: list[Callable[[], datetime]] = [_real_now]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock(datetime(2026, 3, 14, 2, 0, tzinfo=UTC))
    _event_time[0] = fake
    yield fake
    _event_time[0] = _real_now


# PostgreSQL schemas already migrated, free for the next test that builds an app (one list
# per test process): emptying one is much cheaper than creating and migrating a new one.
_MIGRATED_SCHEMAS: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_pooled_schemas() -> Iterator[None]:
    yield
    if _MIGRATED_SCHEMAS:
        admin = create_engine(TEST_DATABASE_URL)
        with admin.begin() as connection:
            for schema in _MIGRATED_SCHEMAS:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        _MIGRATED_SCHEMAS.clear()


def _emptied(admin: Engine, schema: str) -> bool:
    """Empty a pooled schema's tables (not its migration record); False if it cannot be."""
    tables = ", ".join(f'"{schema}"."{name}"' for name in Base.metadata.tables)
    try:
        with admin.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '5s'"))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    except Exception:
        return False
    return True


def _at_head(admin: Engine, schema: str) -> bool:
    with admin.connect() as connection:
        version = connection.execute(
            text(
                "SELECT version_num FROM information_schema.tables t "
                f'JOIN "{schema}".alembic_version ON true '
                "WHERE t.table_schema = :schema AND t.table_name = 'alembic_version'"
            ),
            {"schema": schema},
        ).scalar()
    return version == migrate.head_revision()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own. A test that
    builds the app gets a migrated schema emptied of rows (the app fixture migrates anyway)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    admin = create_engine(TEST_DATABASE_URL)
    for_app = "app" in request.fixturenames
    schema = ""
    while for_app and _MIGRATED_SCHEMAS and not schema:
        candidate = _MIGRATED_SCHEMAS.pop()
        if _emptied(admin, candidate):
            schema = candidate
    if not schema:
        schema = f"t_{secrets.token_hex(6)}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    try:
        reusable = for_app and _at_head(admin, schema)
    except Exception:
        reusable = False
    if reusable:
        _MIGRATED_SCHEMAS.append(schema)
    else:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "zalo_app_id": APP_ID,
        "zalo_app_secret": "test-app-secret",
        "zalo_oa_id": "388613280878808645",
        "zalo_oa_secret_key": OA_SECRET,
        "zalo_access_token": "access-token-1",
        "zalo_refresh_token": "refresh-token-1",
        "zalo_api_base": API_BASE,
        "zalo_oauth_base": OAUTH_BASE,
        "database_url": database_url,
        "public_base_url": "https://sipas.example.vn",
        "privacy_pepper": "test-pepper-0123456789",
        "console_secret_key": "test-console-secret-key-of-32-characters-or-more",
        "zalo_oa_name": "Dịch vụ công Phường Thử",
        # Cached units and counters checked at every lookup: a test's change is seen at once
        # (tests/test_directory.py tests the interval).
        "directory_check_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


def migrate_with_example_units(engine: Engine, now: datetime) -> None:
    migrate.upgrade(engine)
    with make_session_factory(engine).begin() as session:
        repo.upsert_units(session, read_units_file(EXAMPLE_UNITS), now=now)


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> Callable[[datetime], Path]:
    """Migrated SQLite files holding the example units, made once per clock start and copied
    for each test: migrating takes far longer than copying a file."""
    made: dict[datetime, Path] = {}

    def template(now: datetime) -> Path:
        if now not in made:
            path = tmp_path_factory.mktemp("template") / "migrated.db"
            engine = make_engine(f"sqlite:///{path}")
            migrate_with_example_units(engine, now)
            engine.dispose()
            made[now] = path
        return made[now]

    return template


@pytest.fixture
def app(
    settings: Settings, clock: FakeClock, sqlite_templates: Callable[[datetime], Path]
) -> Iterator[Flask]:
    """The app on a migrated database holding the example units."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        shutil.copyfile(sqlite_templates(clock()), url.database)
    app = create_app(settings, clock=clock)
    runtime = runtime_of(app)
    if url.get_backend_name() != "sqlite":
        migrate_with_example_units(runtime.engine, clock())
    yield app
    runtime.engine.dispose()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return runtime_of(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


_counter = iter(range(10**9))


def event_timestamp() -> str:
    """A webhook `timestamp` (epoch ms, a string) for now, distinct for every event."""
    return str(int(_event_time[0]().timestamp() * 1000) + next(_counter) % 1000)


def text_event(
    text: str,
    *,
    user_id: str = "246845883529197922",
    msg_id: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """A `user_send_text` event shaped like Zalo's (ids and timestamp are strings)."""
    n = next(_counter)
    return {
        "app_id": APP_ID,
        "sender": {"id": user_id},
        "user_id_by_app": "552177279717587730",
        "recipient": {"id": "388613280878808645"},
        "event_name": "user_send_text",
        "message": {"text": text, "msg_id": msg_id or f"msg{n:08d}"},
        "timestamp": timestamp or event_timestamp(),
    }


def follow_event(*, user_id: str = "246845883529197922") -> dict[str, Any]:
    return {
        "oa_id": "388613280878808645",
        "follower": {"id": user_id},
        "event_name": "follow",
        "source": "oa_profile",
        "app_id": APP_ID,
        "timestamp": event_timestamp(),
    }


def chatnow_event(*, user_id: str = "246845883529197922") -> dict[str, Any]:
    return {
        "oa_id": "388613280878808645",
        "user_id": user_id,
        "event_name": "user_click_chatnow",
        "app_id": APP_ID,
        "timestamp": event_timestamp(),
    }


def encode(event: dict[str, Any]) -> bytes:
    """As Zalo encodes (UTF-8, not \\u escapes); a lone surrogate, which UTF-8 cannot hold, is
    written as the \\ud800 escape a sender could use."""
    try:
        return json.dumps(event, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(event).encode("utf-8")


@pytest.fixture
def signed_post(client: FlaskClient) -> Callable[..., Any]:
    """Post an event signed the way Zalo signs it; returns the test response."""
    return make_signed_post(client)


def make_signed_post(client: FlaskClient) -> Callable[..., Any]:
    """`signed_post` for a client of one's own (bench.screenshots seeds its demo with it)."""
    verifier = SignatureVerifier(APP_ID, OA_SECRET)

    def post(event: dict[str, Any] | bytes, *, signature: str | None = None) -> Any:
        body = event if isinstance(event, bytes) else encode(event)
        if signature is None:
            timestamp = json.loads(body)["timestamp"]
            signature = verifier.sign(body, str(timestamp))
        return client.post(
            "/zalo/webhook",
            data=body,
            headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
        )

    return post


@pytest.fixture
def zalo_api() -> Iterator[responses_lib.RequestsMock]:
    """Zalo's message endpoint, answering success; tests add their own failures."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def zalo_success(message_id: str = "63ecf43f0df7dba892e6", user_id: str = "1") -> dict[str, Any]:
    return {
        "data": {"message_id": message_id, "user_id": user_id, "sent_time": "1626926349402"},
        "error": 0,
        "message": "Success",
    }


def sent_bodies(mock: responses_lib.RequestsMock) -> list[dict[str, Any]]:
    """The JSON bodies of the messages that reached Zalo's consultation endpoint, in order."""
    return [
        json.loads(call.request.body or b"{}")
        for call in mock.calls
        if call.request.url == f"{API_BASE}/v3.0/oa/message/cs"
    ]


def reconfigure(runtime: Runtime, **changes: Any) -> None:
    """Change settings of a running app, and rebuild what the Runtime builds from them (the
    mailer, the sign-in links, the services of leader messages, digests and alerts), as a
    restart would."""
    settings = dataclasses.replace(runtime.settings, **changes)
    mailer, runtime.mail_problem = build_mailer(settings)
    links = SignInLinks.from_settings(settings)
    runtime.settings = settings
    runtime.mailer = mailer
    runtime.sign_in_links = links
    runtime.service.leaders.links = links
    runtime.leader_mail = LeaderMail(
        runtime.session_factory, mailer, runtime.texts, clock=runtime.clock
    )
    ready = mailer is not None
    runtime.digests = DigestService(settings, runtime.texts, email_ready=ready, links=links)
    runtime.alerts = AlertService(settings, runtime.texts, email_ready=ready, links=links)


# The browser tests' (tests/browser.py): one chromium for the session, a live server a test.


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One chromium for the whole session; a test fails (never skips) without it."""
    try:
        chromium = launch_chromium(playwright)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield chromium
    chromium.close()


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer()
    yield live
    live.stop()
