"""What the kiosk and the web link share: the questionnaire as the page asks it, the answers
a page sends back (cleaned here, at the edge), and the page's script and style
(`/form-static/…`, vendored: no request leaves the server's origin).

The page only renders; the rules stay in the engine: the answers are replayed through it
when they arrive (bot/conversation/forms.py).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from bot.conversation.forms import OpenedSurvey, SubmitStatus, Submitted
from survey_flow.engine import TEXT_ANSWER_MAX, Answer
from survey_flow.texts import Texts

blueprint = Blueprint(
    "survey_form", __name__, static_folder="static", static_url_path="/form-static"
)

MAX_ANSWERS = 200
ITEM_ID_CHARS = 64
TOKEN_CHARS = 16
UI_TEXTS = (
    "form_back",
    "form_send",
    "form_comment_placeholder",
    "form_queued",
    "form_pending",
    "form_start",
    "form_failed",
    "kiosk_invite",
    "kiosk_waiting",
    "kiosk_offline",
    "kiosk_limit",
    "keyboard",
    "keyboard_space",
    "keyboard_backspace",
    "keyboard_shift",
    "thanks",
    "form_case_reference",
    "not_applicable",
    "skip",
    "progress",
)

SUBMIT_CODES = {
    SubmitStatus.STORED: 201,
    SubmitStatus.DUPLICATE: 200,
    SubmitStatus.UNKNOWN: 404,
    SubmitStatus.TOO_LATE: 410,
}


def submit_answer(done: Submitted) -> ResponseReturnValue:
    """What a page is told of answers it sent: stored (201) or stored already (200), with the
    reference of the case the survey opened (null when none), or why not."""
    body = {"status": done.status.value, "completed": done.completed, "reference": done.reference}
    return body, SUBMIT_CODES[done.status]


def _label(labels: Mapping[str, str], language: str) -> str:
    return labels.get(language) or next(iter(labels.values()))


def form_data(opened: OpenedSurvey, texts: Texts) -> dict[str, Any]:
    """The survey as the page asks it: its token, opening text and items (with the
    conditions the page uses to pass items that do not apply), in the survey's language."""
    language = opened.language
    items = [
        {
            "id": item.id,
            "kind": item.kind,
            "text": _label(item.text, language),
            "optional": item.optional,
            "not_applicable": item.not_applicable,
            "options": [_label(option.label, language) for option in item.options],
            "when": (
                {"item": item.when.item, "values": sorted(item.when.values)}
                if item.when is not None
                else None
            ),
        }
        for item in opened.questionnaire.items
    ]
    return {"token": opened.token, "intro": opened.intro, "items": items}


def ui_texts(texts: Texts) -> dict[str, Any]:
    """The page's own words and the five levels' labels, from survey_flow/locales."""
    return {
        # Templates as written: the page fills {number}, {total} and {count} itself.
        "strings": {key: texts.strings[key] for key in UI_TEXTS},
        "scale": {str(value): label for value, label in texts.scale.items()},
    }


def clean_text(raw: str, limit: int) -> str:
    """Text from a page without control characters or lone surrogates, at most `limit`."""
    kept = "".join(
        ch
        for ch in raw[: limit * 2]
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Cf", "Co", "Cn")
    )
    return kept.strip()[:limit]


def clean_token(raw: object) -> str | None:
    if not isinstance(raw, str) or not 0 < len(raw) <= TOKEN_CHARS:
        return None
    if not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in raw):
        return None
    return raw


def parse_answers(raw: object) -> dict[str, Answer] | None:
    """`{"q1": {"value": 5}, "comment": {"text": "…"}, "q9": {}}` as engine answers; None
    when the shape is wrong (values are checked against the items by the engine)."""
    if not isinstance(raw, dict) or len(raw) > MAX_ANSWERS:
        return None
    answers: dict[str, Answer] = {}
    for item_id, given in raw.items():
        if not isinstance(item_id, str) or not 0 < len(item_id) <= ITEM_ID_CHARS:
            return None
        if not isinstance(given, dict):
            return None
        value, text = given.get("value"), given.get("text")
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 99
        ):
            return None
        if text is not None and not isinstance(text, str):
            return None
        answers[item_id] = Answer(
            value=value, text=None if text is None else clean_text(text, TEXT_ANSWER_MAX)
        )
    return answers
