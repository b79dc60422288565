"""A case reference as a citizen types it back: `PA-2026-000123`, `pa 2026 123`, `PA2026000123`."""

from __future__ import annotations

import re

from storage.repositories.cases import format_reference

_TYPED = re.compile(r"^\s*p\s*a\s*[-\s.]*(\d{4})\s*[-\s.]*(\d{1,6})\s*$", re.IGNORECASE)


def parse_reference(text: str) -> str | None:
    """The reference in its one stored shape, or None when the text is not one."""
    match = _TYPED.match(text)
    if match is None:
        return None
    return format_reference(int(match.group(1)), int(match.group(2)))
