"""Reading what a citizen typed: case, spacing and Vietnamese diacritics do not matter."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w/#:.-]+")
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower case, no diacritics (đ → d), punctuation dropped, single spaces.

    `Rất  hài lòng!` and `rat hai long` both fold to `rat hai long`.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stripped = _NON_WORD.sub(" ", stripped.lower())
    return _SPACES.sub(" ", stripped).strip(" .-")


_NUMBER = re.compile(r"^(\d{1,2})(?:\s*(?:/\s*\d+|sao|diem|d|\*|stars?|points?))?$")


def leading_number(folded: str) -> int | None:
    """`5`, `5 sao`, `5/5`, `4 diem` → the number; anything else → None."""
    match = _NUMBER.match(folded)
    return int(match.group(1)) if match else None


COMMAND_WORDS: dict[str, frozenset[str]] = {
    "restart": frozenset({"lam lai", "bat dau lai", "restart", "start over"}),
    "cancel": frozenset({"huy", "huy bo", "cancel", "thoi"}),
    "help": frozenset({"huong dan", "tro giup", "help", "?"}),
    "lang:en": frozenset({"english", "tieng anh", "en"}),
    "lang:vi": frozenset({"tieng viet", "vietnamese", "vi"}),
}

SKIP_WORDS = frozenset({"bo qua", "skip", "khong co", "khong", "no", "none", "-"})
NOT_APPLICABLE_WORDS = frozenset(
    {"khong ap dung", "kad", "n/a", "na", "not applicable", "khong biet", "0"}
)


def command_of(folded: str) -> str | None:
    for command, words in COMMAND_WORDS.items():
        if folded in words:
            return command
    return None


def command_in(text: str) -> str | None:
    """The command a message is (`restart`, `cancel`, `help`, `lang:en`, `lang:vi`), or None."""
    if text.strip() in ("?", "？"):
        return "help"
    return command_of(fold(text))


def compact(folded: str) -> str:
    """A folded text without spaces or hyphens: `rathailong` and `18-25` still match."""
    return folded.replace(" ", "").replace("-", "")
