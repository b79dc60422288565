"""Zalo's interaction window: consultation messages reach a user only within 7 days of their
last interaction with the OA (Zalo error -230/-232 after it). The one home of that rule."""

from __future__ import annotations

from datetime import datetime, timedelta

ZALO_WINDOW = timedelta(days=7)


def window_closed(last_interaction: datetime | None, now: datetime) -> bool:
    """Known to be closed; an unknown last interaction is tried on Zalo."""
    return last_interaction is not None and now - last_interaction > ZALO_WINDOW


def window_closes_at(last_interaction: datetime) -> datetime:
    return last_interaction + ZALO_WINDOW
