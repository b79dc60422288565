"""Numbers for a reader: one formatting for the text report, digests and pages, by language
(the report's use is pinned in test_reports, the digests' in the golden digests)."""

from __future__ import annotations

import pytest

from bot.reporting import numbers


@pytest.mark.parametrize(
    ("value", "language", "text"),
    [
        (63.0249, "vi", "63,02%"),
        (63.0249, "en", "63.02%"),
        (100.0, "vi", "100,00%"),
        (None, "vi", "—"),
        (None, "en", "—"),
    ],
)
def test_percent_uses_the_languages_decimal_mark(
    value: float | None, language: str, text: str
) -> None:
    assert numbers.percent(value, language) == text


def test_signed_changes_and_means() -> None:
    assert numbers.signed(1.5, "vi") == "+1,50"
    assert numbers.signed(-0.25, "en") == "-0.25"
    assert numbers.signed(-0.001, "vi") == "+0,00"  # no "-0,00"
    assert numbers.mean(3.9333, "vi") == "3,93"
    assert numbers.mean(None, "en") == "—"
