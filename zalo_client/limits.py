"""Zalo's limits on what one consultation message may carry: the one home of each number,
imported by the client (which refuses what would break them) and by the questionnaire and
text checks (which refuse a questionnaire or locale that could not be sent)."""

from __future__ import annotations

from enum import StrEnum

MAX_TEXT_CHARS = 2000  # one text message
MAX_BUTTONS = 5  # buttons (or list elements) on one message
MAX_PAYLOAD_CHARS = 1000  # a query button's payload
BUTTON_TITLE_MAX = 20  # sources disagree; 20 is safe (checked on a real OA before raising it)


class ChoiceStyle(StrEnum):
    """How choices are rendered (ZALO_CHOICE_STYLE): buttons, a list template, or a numbered
    text list answered by typing the number."""

    BUTTONS = "buttons"
    LIST = "list"
    TEXT = "text"
