"""The web link: a citizen without Zalo answers in the browser (docs/channels.md).

- `GET /s/<code>`: the counter's page for a code (a printed counter code, a rotating code
  shown at the counter, or a one-time visit code), with a button to start.
- `POST /s/<code>`: starts the survey by the same rules as `#code` in the chat (only a
  rotating or visit code is a verified start; a static code follows the unit's
  require_verified; ACCOUNT_STARTS_PER_DAY) and shows the form.
- `POST /s/surveys`: JSON `{"token", "answers"}`, stored once per token; the answer carries
  the reference of the case the survey opened (`"reference"`, else null).

The respondent is a first-party cookie holding a random id (`sipas_respondent`, a year): its
keyed hash stands for the citizen beside the answers, as a Zalo id's does (docs/privacy.md).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.web.current import runtime_of
from bot.web.presence import clean_secret
from bot.web.survey_form import clean_token, form_data, parse_answers, submit_answer, ui_texts
from storage.models import Channel
from survey_flow.engine import Refusal, parse_start_code

blueprint = Blueprint(
    "weblink",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/weblink-static",
)

RESPONDENT_COOKIE = "sipas_respondent"
RESPONDENT_DAYS = 365


def _respondent_id() -> tuple[str, bool]:
    """The browser's random id, and whether it is new (then the response sets the cookie)."""
    kept = clean_secret(request.cookies.get(RESPONDENT_COOKIE))
    return (kept, False) if kept else (secrets.token_urlsafe(18), True)


def _respondent_hash(respondent_id: str) -> str:
    return runtime_of(current_app).pseudonyms.respondent_hash(f"web:{respondent_id}")


@blueprint.route("/s/<code>", methods=["GET", "POST"])
def start(code: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    texts = runtime.texts.of("vi")
    cleaned = parse_start_code(f"#{code}")
    now = runtime.clock()
    if request.method == "GET":
        with runtime.session_factory() as session:
            resolved = runtime.service.resolve(session, cleaned, now) if cleaned else None
            if resolved is None or resolved.counter is None:
                return render_template("weblink_unknown.html", code=code.upper()[:40]), 404
            return render_template(
                "weblink_start.html",
                counter=resolved.counter.name,
                unit=resolved.counter.unit.name,
                action=url_for("weblink.start", code=cleaned),
                ui=ui_texts(texts),
            )
    respondent_id, new = _respondent_id()
    with runtime.session_factory.begin() as session:
        resolved = runtime.service.resolve(session, cleaned, now) if cleaned else None
        if resolved is None or resolved.counter is None:
            return render_template("weblink_unknown.html", code=code.upper()[:40]), 404
        counter_name, unit_name = resolved.counter.name, resolved.counter.unit.name
        opened = runtime.forms.open_web(
            session, resolved, respondent=_respondent_hash(respondent_id), now=now
        )
        if isinstance(opened, Refusal):
            page = render_template(
                "weblink_refused.html",
                counter=counter_name,
                unit=unit_name,
                message=texts(f"refused_{opened}", counter=counter_name),
            )
            status = 403
        else:
            data: Any = form_data(opened, runtime.texts.of(opened.language))
            page = render_template(
                "weblink_survey.html",
                counter=counter_name,
                unit=unit_name,
                config={
                    "form": data,
                    "ui": ui_texts(runtime.texts.of(opened.language)),
                    "submit_url": url_for("weblink.submit"),
                },
            )
            status = 200
    response = current_app.make_response((page, status, {"Cache-Control": "no-store"}))
    if new:
        response.set_cookie(
            RESPONDENT_COOKIE,
            respondent_id,
            max_age=int(timedelta(days=RESPONDENT_DAYS).total_seconds()),
            httponly=True,
            secure=runtime.settings.secure_cookies,
            samesite="Lax",
        )
    return response


@blueprint.post("/s/surveys")
def submit() -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    body: Any = request.get_json(silent=True)
    token = clean_token(body.get("token")) if isinstance(body, dict) else None
    answers = parse_answers(body.get("answers")) if isinstance(body, dict) else None
    if token is None or answers is None:
        return {"error": "bad_request", "message": 'send JSON {"token", "answers"}'}, 400
    respondent_id = clean_secret(request.cookies.get(RESPONDENT_COOKIE))
    if respondent_id is None:
        return {"error": "unknown", "message": "no survey of this browser has that token"}, 404
    with runtime.session_factory.begin() as session:
        done = runtime.forms.submit(
            session,
            token,
            answers,
            channel=Channel.WEB,
            respondent=_respondent_hash(respondent_id),
            now=runtime.clock(),
        )
    return submit_answer(done)
