"""Zalo's interaction window applied: whether a message to a user can still go out on Zalo
(the window's length is Zalo's rule, in zalo_client.limits)."""

from __future__ import annotations

from datetime import datetime

from zalo_client.limits import INTERACTION_WINDOW as ZALO_WINDOW


def window_closed(last_interaction: datetime | None, now: datetime) -> bool:
    """Known to be closed; an unknown last interaction is tried on Zalo."""
    return last_interaction is not None and now - last_interaction > ZALO_WINDOW


def window_closes_at(last_interaction: datetime) -> datetime:
    return last_interaction + ZALO_WINDOW
