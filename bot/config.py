"""Settings from the environment (and a `.env` file, loaded by the CLI before this runs).

Every problem is reported as one `ConfigError` line naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from survey_flow.engine import Policy
from zalo_client.limits import ChoiceStyle


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable and what to do."""


def _default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'instance' / 'sipas-bot.db'}"


@dataclass(frozen=True)
class Settings:
    zalo_app_id: str = ""
    zalo_app_secret: str = ""
    zalo_oa_id: str = ""
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
    presence_secret: str = ""
    presence_code_step_seconds: int = 60
    presence_code_valid_steps: int = 5
    presence_visit_code_days: int = 7
    outbox_max_age_hours: int = 24
    outbox_lease_seconds: int = 60
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
    # Cases (docs/cases.md): working days to answer one (a unit's `case_due_days` wins), how
    # many working days overdue alert the leaders, the public holidays, how long a closed
    # case's contact (Zalo id, phone) is kept.
    cases_due_working_days: int = 10
    cases_overdue_alert_days: int = 2
    cases_holidays_file: str = ""
    cases_contact_retention_days: int = 30

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
            if f.type == "bool":
                values[f.name] = _boolean(name, raw)
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
        if "{counter}" not in self.qr_url_template:
            raise ConfigError("QR_URL_TEMPLATE must contain {counter}")
        if self.zalo_choice_style not in set(ChoiceStyle):
            raise ConfigError(f"ZALO_CHOICE_STYLE must be one of {', '.join(ChoiceStyle)}")
        if self.privacy_pepper and len(self.privacy_pepper) < 16:
            raise ConfigError(
                "PRIVACY_PEPPER must be at least 16 characters (`sipas-bot init-env` writes a "
                "random one)"
            )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        try:
            make_url(self.database_url).get_dialect()
        except Exception:  # ArgumentError, NoSuchModuleError, ImportError of a driver…
            raise ConfigError(
                f"DATABASE_URL {self.database_url.split('://')[0]!r}… is not a usable database "
                "URL: use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
            ) from None

    def require_for_serving(self) -> None:
        """What the server needs before it may accept a single webhook (fail closed)."""
        missing = [n for n in ("zalo_oa_secret_key", "zalo_app_id") if not getattr(self, n)]
        if not self.zalo_sandbox:
            missing += [n for n in ("zalo_oa_id", "zalo_app_secret") if not getattr(self, n)]
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

    def qr_url(self, counter_code: str) -> str:
        return self.qr_url_template.replace(
            "{PUBLIC_BASE_URL}", self.public_base_url.rstrip("/")
        ).replace("{counter}", counter_code)


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")
    return value
