"""Numbers as a reader of a language writes them: the one place shares, means and changes
become text (the text report, digests, alerts and the results page all use it).

Vietnamese writes a decimal comma (63,02%), English a decimal point (63.02%). Machine
formats (JSON, CSV, XLSX cells) keep plain numbers and do not come here.
"""

from __future__ import annotations

DECIMAL_MARKS = {"vi": ",", "en": "."}
MISSING = "—"  # a figure that cannot be given (no valid answer)


def decimal(value: float, language: str, *, places: int = 2) -> str:
    """`value` with `places` decimals and the language's decimal mark (Vietnamese default)."""
    return f"{value:.{places}f}".replace(".", DECIMAL_MARKS.get(language, ","))


def percent(value: float | None, language: str) -> str:
    """A share of 0–100 as 63,02% / 63.02%; MISSING for None."""
    return MISSING if value is None else f"{decimal(value, language)}%"


def mean(value: float | None, language: str) -> str:
    """A mean score (1–5) with two decimals; MISSING for None."""
    return MISSING if value is None else decimal(value, language)


def signed(value: float, language: str) -> str:
    """A change with its sign: +1,50 / -0,25 (a zero change is +0,00)."""
    return ("-" if value < 0 and round(value, 2) != 0 else "+") + decimal(abs(value), language)
