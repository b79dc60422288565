"""Zalo's limits on consultation messages (when one may be sent, what it may carry): the one
home of each number, imported by the client (which refuses what would break them), by the
sender, and by the questionnaire and text checks (which refuse a questionnaire or locale that
could not be sent)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

# A consultation message reaches a user only within this long after their last interaction
# with the OA (error -230/-232 after it).
INTERACTION_WINDOW = timedelta(days=7)

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
