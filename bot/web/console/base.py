"""What the console's pages share: the blueprint, CSRF protection, the texts, who is signed
in, and the units they may see (route modules import these; bot/web/console/__init__.py
registers them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFProtect
from jinja2 import pass_context
from jinja2.runtime import Context

from bot.reporting import numbers
from bot.runtime import Runtime
from bot.web.console.accounts import Principal, PrincipalKind, parse_principal_id
from storage import repositories as repo
from storage.models import Unit

HERE = Path(__file__).parent
LANGUAGES = ("vi", "en")

blueprint = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
csrf = CSRFProtect()


def load_texts() -> dict[str, dict[str, str]]:
    texts = {}
    for language in LANGUAGES:
        with (HERE / "locales" / f"{language}.yaml").open(encoding="utf-8") as handle:
            texts[language] = {str(k): str(v) for k, v in yaml.safe_load(handle).items()}
    missing = set(texts["vi"]) ^ set(texts["en"])
    if missing:
        raise RuntimeError(f"console texts differ between vi and en: {sorted(missing)}")
    return texts


def console_runtime() -> Runtime:
    from bot.web.current import runtime_of

    return runtime_of(current_app)


def load_principal(user_id: str) -> Principal | None:
    """Who the session names, read afresh on every request: a removed user or a leader who
    unsubscribed loses access at once."""
    parsed = parse_principal_id(user_id)
    if parsed is None:
        return None
    kind, record_id = parsed
    with console_runtime().session_factory() as db:
        if kind is PrincipalKind.LEADER:
            leader = repo.get_leader(db, record_id)
            return None if leader is None else Principal.of_leader(leader)
        user = repo.get_console_user(db, record_id)
        return None if user is None else Principal.of_user(user)


@blueprint.before_request
def _guard() -> ResponseReturnValue | None:
    runtime = console_runtime()
    if not runtime.settings.console_secret_key:
        abort(503, "the console is not set up: CONSOLE_SECRET_KEY is missing")
    if request.method == "POST":
        csrf.protect()
    signed_in_at = session.get("signed_in_at")
    if current_user.is_authenticated and signed_in_at is not None:
        lifetime = timedelta(hours=runtime.settings.console_session_hours)
        if runtime.clock() - datetime.fromisoformat(signed_in_at) > lifetime:
            logout_user()
            session.clear()
            return redirect(url_for("console.login", expired=1))
    return None


@blueprint.after_request
def _headers(response: Any) -> Any:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


def language() -> str:
    """The session's language, looked up once a request (a page of a thousand rows asks for
    it in every number it shows)."""
    chosen = g.get("console_language")
    if chosen is None:
        chosen = session.get("lang")
        chosen = g.console_language = chosen if chosen in LANGUAGES else "vi"
    return str(chosen)


def set_language(code: str) -> None:
    """Set the session's language (`code` one of LANGUAGES), for this request too."""
    session["lang"] = code
    g.pop("console_language", None)


def links_to(endpoint: str, name: str, **values: Any) -> Callable[[str], str]:
    """`url_for(endpoint, **{name: x}, **values)` for many x, built once: werkzeug builds an
    address in about 20 µs, and the province page shows a thousand units. Each x is quoted
    by the rule's own converter, as url_for would."""
    marker = "sipaslinkmarker"
    values[name] = marker
    head, tail = url_for(endpoint, **values).split(marker, 1)
    converter = current_app.url_map.converters["default"](current_app.url_map)
    return lambda value: f"{head}{converter.to_url(value)}{tail}"


def text(key: str, **values: object) -> str:
    texts: dict[str, dict[str, str]] = current_app.extensions["sipas_console_texts"]
    template = texts[language()].get(key, key)
    return template.format(**values) if values else template


@blueprint.app_template_global("decimal")
@pass_context
def decimal(context: Context, value: float | None, places: int = 2) -> str:
    """A number as the page's language writes it (bot/reporting/numbers.py), the language
    taken from the page's values rather than the session (three numbers a row, a thousand
    rows on the province page)."""
    if value is None:
        return numbers.MISSING
    return numbers.decimal(value, context.get("lang") or language(), places=places)


@blueprint.context_processor
def _template_values() -> dict[str, Any]:
    return {"_": text, "lang": language(), "principal": current_user}


def visible_units(db: Any, principal: Principal) -> list[Unit]:
    """The units this principal may see, by code (their counters loaded on first use)."""
    units = list(repo.list_units(db, counters=False))
    if principal.unit_ids is None:
        return units
    return [u for u in units if u.id in principal.unit_ids]


def unit_or_404(db: Any, principal: Principal, code: str) -> Unit:
    """The unit, if this principal may see it; 404 otherwise, as if it did not exist."""
    unit = repo.find_unit(db, code[:32])
    if unit is None or (principal.unit_ids is not None and unit.id not in principal.unit_ids):
        abort(404)
    g.unit = unit
    return unit
