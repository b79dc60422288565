"""Sandbox mode's pages: play a citizen through the real webhook, and see what the bot would
have sent, one thread per user.

- GET  /sandbox                 the threads, and a chat box
- POST /sandbox/say             the chat box: a signed text event handed to /zalo/webhook
                                in-process (no outside connection), then back to the page
- GET  /sandbox/messages.json   a user's outgoing messages (for `sipas-bot simulate`)

They answer only with ZALO_SANDBOX=1 and only to SANDBOX_ALLOWED_HOSTS (this machine,
127.0.0.1 and ::1, by default); anything else gets 403. What was typed in the chat box is
kept in this process's memory (the last KEPT_LINES lines) to show the threads as
conversations; the bot's side comes from the outbox. (A trial tool: a restart forgets the
typed side, never a survey or a message.)
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from bot.web.current import runtime_of
from bot.web.sandbox.citizen import clean_name, name_of, signed_text_event, user_id_for
from storage import repositories as repo

blueprint = Blueprint("sandbox", __name__)
KEPT_LINES = 500


@dataclass(frozen=True)
class Said:
    """A line typed in the chat box, placed after the outbox messages that existed then."""

    user_id: str
    text: str
    after_message: int


class ChatLog:
    """What was typed in this process's chat box (bounded; lost on restart)."""

    def __init__(self) -> None:
        self._lines: deque[Said] = deque(maxlen=KEPT_LINES)
        self._lock = threading.Lock()

    def add(self, said: Said) -> None:
        with self._lock:
            self._lines.append(said)

    def of(self, user_id: str) -> list[Said]:
        with self._lock:
            return [s for s in self._lines if s.user_id == user_id]


def _chat_log(app: Flask) -> ChatLog:
    log: ChatLog = app.extensions.setdefault("sipas_bot_sandbox_chat", ChatLog())
    return log


@blueprint.before_request
def only_sandbox_and_allowed_hosts() -> None:
    settings = runtime_of(current_app).settings
    if not settings.zalo_sandbox:
        abort(403, "the sandbox pages exist only in sandbox mode (ZALO_SANDBOX=1)")
    allowed = settings.sandbox_hosts  # SANDBOX_ALLOWED_HOSTS, this machine by default
    # Behind a reverse proxy every request comes from the proxy: the addresses it forwards
    # for must be allowed too.
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
    clients = [request.remote_addr or "", *(a for a in forwarded if a)]
    if "*" not in allowed and not all(client in allowed for client in clients):
        abort(403, "the sandbox pages answer only on this machine (SANDBOX_ALLOWED_HOSTS)")


def _label(user_id: str) -> str:
    name = name_of(user_id)
    tag = runtime_of(current_app).pseudonyms.user_tag(user_id)
    return name if name is not None else f"Zalo {tag}"  # never the raw id


def _message(m: Any, zone: Any) -> dict[str, Any]:
    return {
        "id": m.id,
        "created_at": m.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "status": m.status,
        "text": m.body.get("text", ""),
        "buttons": [
            {"title": b["title"], "payload": b.get("payload", b["title"])}
            for b in m.body.get("buttons", [])
        ],
    }


@blueprint.get("/sandbox")
def page() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    current = clean_name(request.args.get("user"))
    log = _chat_log(current_app)
    zone = runtime.settings.tz
    with runtime.session_factory() as session:
        recent = list(reversed(repo.recent_outbox(session, limit=300)))
    users: dict[str, list[dict[str, Any]]] = {}
    for m in recent:
        users.setdefault(m.user_id, []).append(_message(m, zone))
    users.setdefault(user_id_for(current), [])
    threads = []
    for user_id, messages in users.items():
        said = log.of(user_id)
        lines: list[dict[str, Any]] = []
        for message in messages:
            while said and said[0].after_message < message["id"]:
                lines.append({"from": "citizen", "text": said.pop(0).text})
            lines.append({"from": "bot", **message})
        lines += [{"from": "citizen", "text": s.text} for s in said]
        threads.append(
            {
                "label": _label(user_id),
                "name": name_of(user_id),
                "current": user_id == user_id_for(current),
                "lines": lines,
            }
        )
    threads.sort(key=lambda t: not t["current"])
    return render_template("sandbox.html", threads=threads, current=current)


@blueprint.post("/sandbox/say")
def say() -> ResponseReturnValue:
    """The chat box: the text as a signed event from the simulated user, through the app's
    own webhook handler (in-process: the test client runs the full request)."""
    runtime = runtime_of(current_app)
    name = clean_name(request.form.get("user"))
    text = " ".join((request.form.get("text") or "").split())
    if text:
        user_id = user_id_for(name)
        with runtime.session_factory() as session:
            last = repo.last_outbox_id(session)
        body, headers = signed_text_event(
            runtime.verifier,
            app_id=runtime.settings.zalo_app_id,
            oa_id=runtime.settings.zalo_oa_id,
            user_id=user_id,
            text=text,
            now=runtime.clock(),
        )
        response = current_app.test_client().post("/zalo/webhook", data=body, headers=headers)
        if response.status_code != 200:
            abort(502, f"the webhook answered {response.status_code}: {response.get_data(True)}")
        _chat_log(current_app).add(Said(user_id, text, last))
    return redirect(url_for("sandbox.page", user=name) + "#chat", code=303)


@blueprint.get("/sandbox/messages.json")
def messages() -> ResponseReturnValue:
    """A simulated user's outgoing messages with an id above `after`, oldest first."""
    runtime = runtime_of(current_app)
    user_id = user_id_for(request.args.get("user", ""))
    after = request.args.get("after", "0")
    after_id = int(after) if after.isdigit() else 0
    with runtime.session_factory() as session:
        found = [
            _message(m, runtime.settings.tz)
            for m in repo.user_outbox(session, user_id, after_id=after_id)
        ]
    return {"user": name_of(user_id), "messages": found}
