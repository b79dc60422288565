"""Small pages: health, the landing page a counter's QR code opens, and the sandbox outbox."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from bot.conversation.presence import CodeCheck
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
        shown = counter.code if counter is not None else code.upper()
        if counter is None:
            # The QR of a counter's display holds its rotating code (bot/web/presence).
            rotating = runtime.rotating.check(code, runtime.clock())
            if rotating is not None and rotating.check is CodeCheck.VALID:
                counter = repo.find_counter(session, rotating.counter)
        if counter is None:
            return render_template("landing_unknown.html", code=code.upper()), 404
        return render_template(
            "landing.html",
            unit=counter.unit.name,
            counter=counter.name,
            code=shown,
            oa_url=f"https://zalo.me/{runtime.settings.zalo_oa_id}"
            if runtime.settings.zalo_oa_id
            else None,
        )


@blueprint.get("/sandbox")
def sandbox() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    if not runtime.settings.zalo_sandbox:
        abort(404)
    with runtime.session_factory() as session:
        messages = [
            {
                "id": m.id,
                "user": runtime.pseudonyms.user_tag(m.user_id),
                "created_at": m.created_at.astimezone(runtime.settings.tz).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "status": m.status,
                "text": m.body.get("text", ""),
                "buttons": [b["title"] for b in m.body.get("buttons", [])],
            }
            for m in repo.recent_outbox(session)
        ]
    return render_template("sandbox.html", messages=messages)
