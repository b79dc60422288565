"""Small pages: health and the landing page a counter's QR code opens (the sandbox pages are
in bot.web.sandbox)."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, abort, current_app, render_template
from flask.typing import ResponseReturnValue

from bot.conversation.inbox import INBOX_LAG_LIMIT
from bot.conversation.presence import CodeCheck
from bot.delivery.tokens import token_statuses
from bot.units import is_code
from bot.web.current import runtime_of
from storage import repositories as repo

log = logging.getLogger("sipas_bot.web")
blueprint = Blueprint("pages", __name__)

# A message due this long and still not sent means the sender is not keeping up (or down).
OUTBOX_LAG_LIMIT = timedelta(minutes=5)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """What a webhook would meet now: 503 when it could not store an event (the database is
    unreachable, unmigrated, read-only or full), "degraded" when events are stored but
    replies would not go out soon (an outbox backlog, an inbox backlog with
    WEBHOOK_INTAKE=queued, no usable Zalo token)."""
    runtime = runtime_of(current_app)
    now = runtime.clock()
    try:
        with runtime.session_factory() as session:
            repo.probe_writable(session, now=now)
            counts = repo.outbox_counts(session)
            oldest_due = repo.oldest_due_message(session, now=now)
            inbox = repo.inbox_backlog(session) if runtime.settings.queued_intake else None
    except Exception as exc:  # the health check reports, it does not crash
        log.warning("event=healthz outcome=down error=%s", type(exc).__name__)
        return {
            "status": "down",
            "reason": "the database does not take writes",
            "database": f"error: {type(exc).__name__}",
        }, 503
    lag = (now - oldest_due) if oldest_due is not None else timedelta(0)
    problems = []
    if lag > OUTBOX_LAG_LIMIT:
        problems.append(
            f"outbox: a message has waited {int(lag.total_seconds())} s to be sent: is a "
            "sender running (`sipas-bot serve` or `sipas-bot worker`)?"
        )
    inbox_lag = now - inbox.oldest if inbox is not None and inbox.oldest else timedelta(0)
    if inbox_lag > INBOX_LAG_LIMIT:
        problems.append(
            f"inbox: an event has waited {int(inbox_lag.total_seconds())} s for its turn: is "
            "a worker running (`sipas-bot serve` or `sipas-bot worker`)?"
        )
    with_tokens = [(oa, oa.tokens) for oa in runtime.accounts.all() if oa.tokens is not None]
    statuses = token_statuses(runtime.session_factory, [tokens for _oa, tokens in with_tokens])
    for (oa, _tokens), token in zip(with_tokens, statuses, strict=True):
        named = f" for OA {oa.oa_id}" if oa.key else ""
        if not token.stored:
            option = f" --oa {oa.oa_id}" if oa.key else ""
            problems.append(f"no Zalo token pair stored{named}: run `sipas-bot tokens set{option}`")
        elif token.failing:
            problems.append(f"Zalo token refresh failed{named}: {token.refresh_error}")
    # 200 even when degraded: the webhook still accepts and stores events; monitoring reads
    # `status`, while a load balancer keeps sending traffic.
    health: dict[str, object] = {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "sandbox": runtime.settings.zalo_sandbox,
        "database": "writable",
        "outbox": {
            "pending": counts.get("pending", 0),
            "dead": counts.get("dead", 0),
            "oldest_due_seconds": int(lag.total_seconds()),
        },
    }
    if inbox is not None:  # WEBHOOK_INTAKE=queued: the events waiting for a worker's turn
        health["inbox"] = {
            "pending": inbox.pending,
            "oldest_seconds": int(inbox_lag.total_seconds()),
        }
    return health, 200


@blueprint.get("/q/<code>")
def landing(code: str) -> ResponseReturnValue:
    if not is_code(code):
        abort(404)  # not even the shape of a counter code: the database is not asked
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
            log.info("event=http_refused status=404 reason=unknown_counter code=%s", code.upper())
            return render_template("landing_unknown.html", code=code.upper()), 404
        oa_id = runtime.oa_shown(counter.unit)[0]  # the unit's OA
        return render_template(
            "landing.html",
            unit=counter.unit.name,
            counter=counter.name,
            code=shown,
            oa_url=f"https://zalo.me/{oa_id}" if oa_id else None,
        )
