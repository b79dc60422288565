"""Settings from the environment (and a `.env` file, loaded by the CLI before this runs).

Every problem is reported as one `ConfigError` line naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from survey_flow.engine import Policy
from zalo_client.limits import ChoiceStyle

MIN_REPLAY_WINDOW_HOURS = 3
MIN_SECRET_CHARS = 32


class WebhookIntake(StrEnum):
    """What the webhook does before it answers Zalo (WEBHOOK_INTAKE; docs/benchmarks.md, 1).

    inline: runs the conversation's turn and queues the replies, then answers 200.
    queued: stores the raw event in the inbox and answers 200; the workers run the turn.
    """

    INLINE = "inline"
    QUEUED = "queued"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable and what to do."""


def _default_database_url() -> str:
    return f"sqlite:///{default_database_path()}"


def default_database_path() -> Path:
    """instance/sipas-bot.db under the current folder: the one database whose folder the
    service creates itself (any other must be in a folder that exists)."""
    return Path.cwd() / "instance" / "sipas-bot.db"


DATABASE_URL_FORMS = "sqlite:///path/to/file.db or postgresql://user:password@host/db"
POSTGRES_INSTALL = "pip install '.[postgres]' in the sipas-bot folder (docs/deploy.md)"


def with_psycopg_driver(url: str) -> str:
    """`postgres://…` (what hosting panels print) and `postgresql://…` name our driver,
    psycopg 3; SQLAlchemy would read the first as unknown and the second as psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _check_database_url(url: str) -> None:
    """A URL the service can open: SQLite in an existing folder, or PostgreSQL with its
    driver installed; otherwise one ConfigError saying what to change or install."""
    scheme = url.split("://", 1)[0] if "://" in url else url[:20]
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise ConfigError(
            f"DATABASE_URL {scheme!r}… is not a database URL sipas-bot can use: "
            f"use {DATABASE_URL_FORMS}"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"DATABASE_URL names {backend}: only SQLite and PostgreSQL are supported "
            f"(use {DATABASE_URL_FORMS})"
        )
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = parsed.get_driver_name()
        raise ConfigError(
            f"DATABASE_URL needs the {backend} driver {driver}, which is not installed: "
            + (
                POSTGRES_INSTALL
                if driver == "psycopg"
                else f"install {driver}, or write postgresql://… to use psycopg"
            )
        ) from None
    database = parsed.database or ""
    if backend != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir() and path.absolute() != default_database_path():
        raise ConfigError(
            f"DATABASE_URL: the folder {path.parent} does not exist "
            "(create it, or name a file in an existing folder)"
        )


@dataclass(frozen=True)
class Settings:
    zalo_app_id: str = ""
    zalo_app_secret: str = ""
    zalo_oa_id: str = ""
    zalo_oa_name: str = ""  # printed on the counter posters
    zalo_oa_secret_key: str = ""
    zalo_access_token: str = ""
    zalo_refresh_token: str = ""
    zalo_api_base: str = "https://openapi.zalo.me"
    zalo_oauth_base: str = "https://oauth.zaloapp.com"
    zalo_sandbox: bool = False
    zalo_choice_style: str = "buttons"
    database_url: str = field(default_factory=_default_database_url)
    public_base_url: str = "http://127.0.0.1:8000"
    qr_url_template: str = "{PUBLIC_BASE_URL}/q/{counter}"
    timezone: str = "Asia/Ho_Chi_Minh"
    survey_flow: str = "sipas-short"
    survey_idle_minutes: int = 30
    survey_cooldown_hours: int = 12
    account_message_burst: int = 30
    account_messages_per_minute: int = 12
    account_starts_per_day: int = 10
    integrity_burst_surveys: int = 5
    integrity_burst_minutes: int = 10
    integrity_new_account_days: int = 7
    integrity_account_surveys_per_day: int = 3
    integrity_hours_grace_minutes: int = 60
    presence_secret: str = ""
    presence_code_step_seconds: int = 60
    presence_code_valid_steps: int = 5
    presence_visit_code_days: int = 7
    kiosk_surveys_per_hour: int = 30
    form_submit_hours: int = 24
    outbox_max_age_hours: int = 24
    outbox_lease_seconds: int = 30
    webhook_replay_window_hours: int = 24
    # inline: the webhook runs the turn before its 200; queued: it stores the event and the
    # workers' inbox threads (WEBHOOK_INBOX_THREADS per process) run it, woken at once in
    # the process that stored it, polling every WEBHOOK_INBOX_POLL_MS in any other.
    webhook_intake: str = WebhookIntake.INLINE.value
    webhook_inbox_threads: int = 8
    webhook_inbox_poll_ms: int = 200
    sandbox_allowed_hosts: str = "127.0.0.1,::1"
    zalo_rate_per_minute: int = 4000
    report_min_answers: int = 10
    digest_daily_at: str = "17:30"
    digest_weekly_at: str = "mon 07:30"
    digest_monthly_at: str = "1 07:30"
    digest_send_empty: bool = False
    alert_max_per_hour: int = 5
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    log_level: str = "INFO"
    privacy_pepper: str = ""
    outbox_retention_days: int = 3
    console_secret_key: str = ""
    console_session_hours: int = 8
    console_link_minutes: int = 10
    console_button_link_hours: int = 24
    # Cases (docs/cases.md): working days to answer one (a unit's `case_due_days` wins), how
    # many working days overdue alert the leaders, the public holidays, how long a closed
    # case's contact (Zalo id, phone) is kept.
    cases_due_working_days: int = 10
    cases_overdue_alert_days: int = 2
    cases_holidays_file: str = ""
    cases_contact_retention_days: int = 30
    # Many OAs (the units file's `oas`, docs/deploy.md): where `file:NAME` secrets are read.
    zalo_secrets_file: str = ""

    # How often a server process checks that its cached units and counters are current
    # (bot/directory.py): a units import is seen within this many seconds; 0: every lookup.
    directory_check_seconds: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            if f.name == "database_url":
                values[f.name] = with_psycopg_driver(raw)
            elif f.type == "bool":
                values[f.name] = _boolean(name, raw)
            elif f.type == "int" and f.name in _ZERO_ALLOWED and raw == "0":
                values[f.name] = 0
            elif f.type == "int":
                values[f.name] = _positive_int(name, raw)
            else:
                values[f.name] = raw
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        for name in ("zalo_api_base", "zalo_oauth_base", "public_base_url"):
            value = getattr(self, name)
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(f"{name.upper()} must be an http(s) URL, got {value!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"TIMEZONE {self.timezone!r} is not a known time zone (e.g. Asia/Ho_Chi_Minh)"
            ) from None
        if len(self.zalo_oa_name) > 100 or any(not c.isprintable() for c in self.zalo_oa_name):
            raise ConfigError("ZALO_OA_NAME must be one line of at most 100 printable characters")
        if "{counter}" not in self.qr_url_template:
            raise ConfigError("QR_URL_TEMPLATE must contain {counter}")
        if self.zalo_choice_style not in set(ChoiceStyle):
            raise ConfigError(f"ZALO_CHOICE_STYLE must be one of {', '.join(ChoiceStyle)}")
        if self.privacy_pepper and len(self.privacy_pepper) < 16:
            raise ConfigError(
                "PRIVACY_PEPPER must be at least 16 characters (`sipas-bot init-env` writes a "
                "random one)"
            )
        if self.webhook_replay_window_hours < MIN_REPLAY_WINDOW_HOURS:
            raise ConfigError(
                f"WEBHOOK_REPLAY_WINDOW_HOURS must be at least {MIN_REPLAY_WINDOW_HOURS}: Zalo "
                "re-sends a failed delivery with its first timestamp for about 2 hours"
            )
        if self.webhook_intake not in set(WebhookIntake):
            raise ConfigError(f"WEBHOOK_INTAKE must be one of {', '.join(WebhookIntake)}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        if self.console_secret_key and len(self.console_secret_key) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"CONSOLE_SECRET_KEY must be at least {MIN_SECRET_CHARS} characters "
                "(`sipas-bot init-env` writes a random one)"
            )
        _check_database_url(self.database_url)

    def require_for_serving(self, *, oas_in_units_file: bool = False) -> None:
        """What the server needs before it may accept a single webhook (fail closed). With
        the OAs in the units file, their secrets are theirs (`check` tests them), and the
        environment's ZALO_* name no OA of their own."""
        missing = [n for n in ("zalo_oa_secret_key", "zalo_app_id") if not getattr(self, n)]
        if not self.zalo_sandbox:
            missing += [n for n in ("zalo_oa_id", "zalo_app_secret") if not getattr(self, n)]
        if oas_in_units_file:
            missing = []
        if missing:
            names = ", ".join(n.upper() for n in missing)
            raise ConfigError(
                f"{names} not set: the webhook cannot verify or answer Zalo without "
                "(set it in .env, or run `sipas-bot init-env` for a sandbox set-up)"
            )
        if not self.zalo_sandbox and not self.privacy_pepper:
            raise ConfigError(
                "PRIVACY_PEPPER not set: answers cannot be stored without pseudonymising who "
                "gave them (`sipas-bot init-env` writes a random one; keep it outside the "
                "database and never change it, docs/privacy.md)"
            )

    @property
    def replay_window(self) -> timedelta:
        """How far a signed webhook timestamp may be from now (either way) to be processed."""
        return timedelta(hours=self.webhook_replay_window_hours)

    @property
    def queued_intake(self) -> bool:
        """Whether the webhook stores events for the workers (WEBHOOK_INTAKE=queued)."""
        return self.webhook_intake == WebhookIntake.QUEUED

    @property
    def dedupe_retention(self) -> timedelta:
        """How long a processed event is remembered: an event is admitted while its timestamp
        is within the window of now, on either side, so a copy may still be admitted up to
        two windows after the first was received; a day more for clocks and job delays."""
        return 2 * self.replay_window + timedelta(days=1)

    @property
    def sandbox_hosts(self) -> frozenset[str]:
        """The client addresses `/sandbox` is shown to ("*" = any)."""
        return frozenset(h.strip() for h in self.sandbox_allowed_hosts.split(",") if h.strip())

    def require_for_console(self) -> None:
        """What the web server needs before it serves the officials' console (fail closed)."""
        if not self.console_secret_key:
            raise ConfigError(
                "CONSOLE_SECRET_KEY not set: the officials' console cannot sign its session "
                "cookies without it (put a random value of 32+ characters in .env, e.g. "
                '`python3 -c "import secrets; print(secrets.token_urlsafe(32))"`)'
            )

    @property
    def secure_cookies(self) -> bool:
        """Cookies (console session, paired device, web-link respondent) only over HTTPS
        when the service is published over HTTPS."""
        return urlparse(self.public_base_url).scheme == "https"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def policy(self) -> Policy:
        from datetime import timedelta

        return Policy(
            idle=timedelta(minutes=self.survey_idle_minutes),
            numbered_choices=self.zalo_choice_style == "text",
            privacy_notice_url=f"{self.public_base_url.rstrip('/')}/privacy",
        )

    def address_warnings(self, *, listening_port: int | None = None) -> list[str]:
        """What makes the printed links and QR codes useless to a citizen, one line each:
        a PUBLIC_BASE_URL no phone can open, a local one naming another port than the one
        the server listens on, and no OA to open outside sandbox mode."""
        warnings = []
        base = self.public_base_url.rstrip("/")
        if is_local_address(base):
            warnings.append(
                f"PUBLIC_BASE_URL is {base}, an address of this machine only: phones and "
                "Zalo cannot open the links and QR codes; set it to the public https address"
            )
            public_port = urlparse(base).port or (443 if base.startswith("https") else 80)
            if listening_port is not None and public_port != listening_port:
                warnings.append(
                    f"PUBLIC_BASE_URL names port {public_port} but this server listens on "
                    f"{listening_port}: links point elsewhere (set PUBLIC_BASE_URL in .env)"
                )
        if not self.zalo_sandbox and not self.zalo_oa_id:
            warnings.append(
                "ZALO_OA_ID is empty: the counter page cannot open the Official Account in Zalo"
            )
        return warnings

    def qr_url(self, counter_code: str) -> str:
        return self.qr_url_template.replace(
            "{PUBLIC_BASE_URL}", self.public_base_url.rstrip("/")
        ).replace("{counter}", counter_code)


SECRET_REFERENCE = re.compile(r"(env|file):([A-Za-z_][A-Za-z0-9_]{0,99})")
"""Where an OA's secret is read: `env:NAME` (an environment variable, or a line of .env) or
`file:NAME` (a line NAME=value of ZALO_SECRETS_FILE). The units file holds only these."""


def read_secret(reference: str, *, secrets_file: str, env: Mapping[str, str] | None = None) -> str:
    """The secret a reference names; ConfigError naming the reference when it is unset."""
    match = SECRET_REFERENCE.fullmatch(reference)
    if match is None:
        raise ConfigError(f"{reference!r} is not a secret reference (env:NAME or file:NAME)")
    source, name = match.groups()
    if source == "env":
        value = (os.environ if env is None else env).get(name, "").strip()
        if not value:
            raise ConfigError(f"{reference}: the environment variable {name} is not set")
        return value
    if not secrets_file:
        raise ConfigError(f"{reference}: ZALO_SECRETS_FILE is not set")
    if not Path(secrets_file).is_file():
        raise ConfigError(f"{reference}: ZALO_SECRETS_FILE {secrets_file} does not exist")
    value = (dotenv_values(secrets_file).get(name) or "").strip()
    if not value:
        raise ConfigError(f"{reference}: {name} is not set in {secrets_file}")
    return value


def is_local_address(url: str) -> bool:
    """Whether `url` names this machine only (localhost, a loopback or unspecified address).

    A private-network address (192.168.x.x …) is not counted: phones on the office network
    can open it, which is a deliberate set-up for a trial."""
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


# Whole-number settings for which 0 means something (else every one must be above 0).
_ZERO_ALLOWED = frozenset({"directory_check_seconds"})


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")
    return value
