"""Text from outside, made safe once: for storing (`clean_text`) and for a log line (`for_log`).

One home for what counts as a character that must not pass: NUL and the other C0/C1 control
characters (a line feed and a tab are kept in stored text: citizens write them), lone
surrogates (a JSON ``"\\ud800"`` decodes to one; PostgreSQL and UTF-8 encoders refuse it),
and the Unicode line and paragraph separators, which some terminals and log viewers treat as
line breaks.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TEXT_CHARS", "clean_text", "for_log"]

MAX_TEXT_CHARS = 2000
"""Longest citizen text kept; Zalo's own messages stop at 2,000 characters."""

# C0 controls but \t and \n, DEL, C1 controls, lone surrogates, U+2028/U+2029.
_DROPPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
# The same, and \t and \n too: a log line is one line.
_ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


def clean_text(text: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """The text without control characters (but line feeds and tabs) or lone surrogates, at
    most `max_chars` long. A carriage return before a line feed goes; a lone one becomes a
    line feed, so "a\\rb" keeps its two lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _DROPPED.sub("", text)[:max_chars]


def for_log(value: object, *, max_chars: int = 120) -> str:
    """`value` as one line of a log: every control character written as an escape (``\\n``,
    ``\\x00``, ``\\ud800``), cut to `max_chars` with a marker. A forged second line cannot
    start in it (no log injection)."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > max_chars
    text = _ESCAPED.sub(_escape, text[:max_chars])
    return f"{text}…" if cut else text


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
