"""The month's feedback figures published beside the index (docs/cases.md): of the cases
received in a period, how many were answered, resolved (closed), and resolved on time (closed
on or before their due date, in the unit's time zone), and how many of each kind."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from bot.cases.kinds import KIND_LABELS
from bot.reporting.periods import Period
from storage import repositories as repo
from storage.models import CaseKind


@dataclass(frozen=True)
class CaseFigures:
    received: int = 0
    answered: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)  # Vietnamese label → received
    # Open cases (any receipt date) whose due date is before the period's last day.
    overdue: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "answered": self.answered,
            "resolved": self.resolved,
            "resolved_on_time": self.resolved_on_time,
            "by_kind": dict(self.by_kind),
            "overdue": self.overdue,
        }


def case_figures(
    session: Session, *, unit_ids: Collection[int] | None, period: Period
) -> CaseFigures:
    """The figures of the cases received in `period` by these units (None: all cases)."""
    cases = repo.cases_received(session, unit_ids=unit_ids, start=period.start, end=period.end)
    by_kind = {label: 0 for label in sorted(KIND_LABELS.values())}
    answered = resolved = on_time = 0
    for case in cases:
        by_kind[KIND_LABELS[CaseKind(case.kind)]] += 1
        answered += case.answered_at is not None
        if case.closed_at is not None:
            resolved += 1
            on_time += case.closed_at.astimezone(period.zone).date() <= case.due_on
    overdue = repo.count_overdue_cases(session, unit_ids=unit_ids, before=period.last_day)
    return CaseFigures(len(cases), answered, resolved, on_time, by_kind, overdue)
