"""Cells of a spreadsheet (CSV or XLSX) holding text a citizen typed: shown as text, never
run as a formula."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """A citizen's text as a spreadsheet shows it, never as a formula it would run."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
