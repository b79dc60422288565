"""Cells of a spreadsheet (CSV or XLSX) holding text a citizen typed: shown as text, never
run as a formula, and never a character the file format refuses.

A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return before one)
as a formula. A CSV cell may also be split again when it is opened: on `;` in locales whose
list separator it is (Vietnamese among them), on `,`, or into rows on a line feed. So every
piece that would start after such a split is neutralised too, with the `'` spreadsheets read
as "text". The stored text may predate the cleaning at the webhook (`clean_text`), so it is
cleaned again here: XLSX (XML) cannot hold control characters or lone surrogates, and
openpyxl raises on them.
"""

from __future__ import annotations

import re

from zalo_client.text import clean_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_CELL_CHARS = 32_767  # what Excel holds in one cell

# The start of the text, or of any piece a split on ; , or a line would make, followed by
# spaces and a formula start.
_PIECE_START = re.compile(r"(^|[;,\n])( *)(?=[=+\-@\t\r])")


def safe_text(text: str) -> str:
    """A citizen's text as a spreadsheet shows it, never as a formula it would run."""
    cleaned = clean_text(text, max_chars=MAX_CELL_CHARS - 100)
    return _PIECE_START.sub(lambda m: f"{m.group(1)}'{m.group(2)}", cleaned)
