"""A survey's states, shared by the engine that moves between them and the storage that
keeps them (storage imports this module alone of survey_flow): its status and how it was
started."""

from __future__ import annotations

from enum import StrEnum


class SurveyStatus(StrEnum):
    """A survey's state; stored as its value."""

    ACTIVE = "active"
    COMPLETED = "completed"
    PARTIAL = "partial"  # closed before the end: expired, switched counter, restarted
    CANCELLED = "cancelled"


class StartMethod(StrEnum):
    """How a survey was started: the printed counter code, a rotating code shown at the
    counter, a one-time visit code, a tablet paired to the counter, or a paper form entered
    by staff (only rotating, visit and device prove the citizen was there: PRESENCE_PROOF)."""

    STATIC = "static"
    ROTATING = "rotating"
    VISIT = "visit"
    DEVICE = "device"  # opened by the officer on a tablet paired to the counter (kiosk)
    PAPER = "paper"  # a paper form, entered by staff afterwards (docs/channels.md)


# The start methods that prove the citizen was at the counter: the "verified presence only"
# figure counts these (docs/integrity.md). A paper form proves nothing by itself: anyone
# with a blank form and a pen could fill it.
PRESENCE_PROOF = frozenset({StartMethod.ROTATING, StartMethod.VISIT, StartMethod.DEVICE})
