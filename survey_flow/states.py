"""A survey's states, shared by the engine that moves between them and the storage that
keeps them (storage imports this module alone of survey_flow)."""

from __future__ import annotations

from enum import StrEnum


class SurveyStatus(StrEnum):
    """A survey's state; stored as its value."""

    ACTIVE = "active"
    COMPLETED = "completed"
    PARTIAL = "partial"  # closed before the end: expired, switched counter, restarted
    CANCELLED = "cancelled"
