"""The counter's tablet (kiosk): a survey at the counter, right after the citizen is served.

- `GET /kiosk/<counter>`: the tablet's page, for a device paired with `sipas-bot devices add
  --kind kiosk` only (403 with instructions otherwise). It waits for the officer's tap.
- `POST /kiosk/<counter>/open`: the tap of "Mời đánh giá": opens one survey (or hands the
  open, unanswered one out again), at most KIOSK_SURVEYS_PER_HOUR an hour; JSON with the
  survey token and the questionnaire the page asks.
- `POST /kiosk/<counter>/surveys`: JSON `{"token", "answers"}`: the answers, stored once per
  token (201 stored, 200 already stored); the page resends until it gets either. The answer
  carries the reference of the case the survey opened (`"reference"`, else null).
- `POST /kiosk/<counter>/officer`: the "Cán bộ" control (form field `officer`: a code of the
  unit's officers starts their shift at the counter; empty ends the open shift); back to the
  page (303). Shown only when the unit lists officers (docs/channels.md).
- `GET /kiosk/<counter>/manifest.webmanifest` and `GET /kiosk/sw.js`: installable as a
  full-screen app whose shell works offline.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue

from bot.conversation.forms import KioskRefusal
from bot.conversation.shifts import end_shift, sign_in
from bot.web.current import runtime_of
from bot.web.presence import paired_device
from bot.web.survey_form import clean_token, form_data, parse_answers, submit_answer, ui_texts
from storage import repositories as repo
from storage.models import Channel, DeviceKind, ShiftSource

blueprint = Blueprint(
    "kiosk",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/kiosk-static",
)


def _unpaired() -> ResponseReturnValue:
    return render_template("kiosk_unpaired.html"), 403


@blueprint.get("/kiosk/<code>")
def page(code: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    with runtime.session_factory.begin() as session:
        device = paired_device(session, DeviceKind.KIOSK, code)
        if device is None:
            return _unpaired()
        counter, unit, counter_code = (
            device.counter.name,
            device.counter.unit.name,
            device.counter.code,
        )
        officers = [(o.code, o.name) for o in repo.unit_officers(session, device.counter.unit_id)]
        shift = repo.current_shift(session, device.counter.id, now=runtime.clock())
        on_shift = shift.officer.code if shift is not None else None
    texts = runtime.texts.of("vi")
    return (
        render_template(
            "kiosk.html",
            counter=counter,
            unit=unit,
            code=counter_code,
            ui=ui_texts(texts),
            open_url=url_for("kiosk.open_survey", code=counter_code),
            submit_url=url_for("kiosk.submit", code=counter_code),
            idle_seconds=60,
            officers=officers,
            on_shift=on_shift,
            officer_url=url_for("kiosk.officer", code=counter_code),
            t=texts,
        ),
        200,
        {"Cache-Control": "no-cache"},
    )


@blueprint.post("/kiosk/<code>/open")
def open_survey(code: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    with runtime.session_factory.begin() as session:
        device = paired_device(session, DeviceKind.KIOSK, code)
        if device is None:
            return {"error": "unpaired", "message": "this device is not paired to the counter"}, 403
        opened = runtime.forms.open_kiosk(session, device, now=runtime.clock())
        if isinstance(opened, KioskRefusal):
            return {"error": opened.value, "message": runtime.texts.of("vi")("kiosk_limit")}, 429
        data = form_data(opened, runtime.texts.of(opened.language))
    return data, 201, {"Cache-Control": "no-store"}


@blueprint.post("/kiosk/<code>/officer")
def officer(code: str) -> ResponseReturnValue:
    """The officer at the tablet picks themselves (or nobody, to end the shift). No PIN: the
    tablet is paired to this counter and stands behind it, and the unit's leaders see every
    shift with how it was started (docs/channels.md says why that is proportionate)."""
    runtime = runtime_of(current_app)
    wanted = request.form.get("officer", "").strip().upper()[:32]
    now = runtime.clock()
    with runtime.session_factory.begin() as session:
        device = paired_device(session, DeviceKind.KIOSK, code)
        if device is None:
            return _unpaired()
        counter = device.counter
        if not wanted:
            end_shift(session, counter, now=now)
        elif (
            sign_in(
                session,
                counter,
                wanted,
                via=ShiftSource.KIOSK,
                now=now,
                default_zone=runtime.settings.tz,
            )
            is None
        ):
            return {"error": "unknown_officer", "message": f"no officer {wanted}"}, 404
        target = url_for("kiosk.page", code=counter.code)
    return redirect(target, code=303)


@blueprint.post("/kiosk/<code>/surveys")
def submit(code: str) -> ResponseReturnValue:
    runtime = runtime_of(current_app)
    body: Any = request.get_json(silent=True)
    token = clean_token(body.get("token")) if isinstance(body, dict) else None
    answers = parse_answers(body.get("answers")) if isinstance(body, dict) else None
    if token is None or answers is None:
        return {"error": "bad_request", "message": 'send JSON {"token", "answers"}'}, 400
    with runtime.session_factory.begin() as session:
        device = paired_device(session, DeviceKind.KIOSK, code)
        if device is None:
            return {"error": "unpaired", "message": "this device is not paired to the counter"}, 403
        done = runtime.forms.submit(
            session,
            token,
            answers,
            channel=Channel.KIOSK,
            device_id=device.id,
            now=runtime.clock(),
        )
    return submit_answer(done)


@blueprint.get("/kiosk/<code>/manifest.webmanifest")
def manifest(code: str) -> ResponseReturnValue:
    cleaned = code.upper()[:32]
    if not cleaned.replace("-", "").replace("_", "").isalnum():
        return {"error": "bad_request"}, 400
    body = {
        "name": f"Đánh giá sự hài lòng – {cleaned}",
        "short_name": "Đánh giá",
        "start_url": f"/kiosk/{cleaned}",
        "scope": "/kiosk/",
        "display": "fullscreen",
        "orientation": "any",
        "background_color": "#f3f6fa",
        "theme_color": "#0068ff",
        "icons": [
            {
                "src": url_for("kiosk.static", filename="icon.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
            }
        ],
    }
    return body, 200, {"Content-Type": "application/manifest+json"}


@blueprint.get("/kiosk/sw.js")
def service_worker() -> ResponseReturnValue:
    """Served under /kiosk/ so that its scope covers the tablet's page."""
    assert blueprint.static_folder is not None
    response = send_from_directory(blueprint.static_folder, "sw.js", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
