"""Small pages: health and the landing page a counter's QR code opens (the sandbox pages are
in bot.web.sandbox)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from bot.web import runtime_of
from storage import repositories as repo

blueprint = Blueprint("pages", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    try:
        with runtime.session_factory() as session:
            session.execute(text("SELECT 1"))
            counts = repo.outbox_counts(session)
    except Exception as exc:  # the health check reports, it does not crash
        return {"status": "down", "database": f"error: {type(exc).__name__}"}, 503
    problems = []
    if runtime.tokens is not None:
        token = runtime.tokens.status()
        if not token.stored:
            problems.append("no Zalo token pair stored: run `sipas-bot tokens set`")
        elif token.failing:
            problems.append(f"Zalo token refresh failed: {token.refresh_error}")
    # 200 even when degraded: the webhook still accepts and stores events; monitoring reads
    # `status`, while a load balancer keeps sending traffic.
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "sandbox": runtime.settings.zalo_sandbox,
        "outbox": {"pending": counts.get("pending", 0), "dead": counts.get("dead", 0)},
    }, 200


@blueprint.get("/q/<code>")
def landing(code: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    with runtime.session_factory() as session:
        counter = repo.find_counter(session, code)
        if counter is None:
            return render_template("landing_unknown.html", code=code.upper()), 404
        return render_template(
            "landing.html",
            unit=counter.unit.name,
            counter=counter.name,
            code=counter.code,
            oa_url=f"https://zalo.me/{runtime.settings.zalo_oa_id}"
            if runtime.settings.zalo_oa_id
            else None,
        )
