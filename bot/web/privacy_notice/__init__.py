"""`GET /privacy`: the privacy notice a survey's first message links to (Decree 13/2023): what
is stored about a citizen who answers, why, for how long, and how to have it erased; in
Vietnamese, then English. The retention periods are read from the same settings the purge
uses, so the page cannot promise what the service does not do."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from bot.privacy.retention import Retention
from bot.web.current import runtime_of

blueprint = Blueprint("privacy_notice", __name__, template_folder="templates")


@blueprint.get("/privacy")
def privacy_notice() -> ResponseReturnValue:
    retention = Retention.from_settings(runtime_of(current_app).settings)
    return render_template(
        "privacy.html",
        window_days=retention.raw_user_id.days,
        message_days=retention.delivered_message.days,
    )
