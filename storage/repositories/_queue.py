"""What the outbox and the inbox share: a user's oldest pending row is the only one of theirs
that may be taken, so one user's rows are worked on in order and never two at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, func, select
from sqlalchemy.orm import aliased


def due_heads(
    model: Any, pending: str, *, now: datetime | BindParameter[datetime]
) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a row that may be taken now: pending, due, and its (OA, user)'s
    oldest pending row (`model` has id, user_id, oa_id, status and next_attempt_at).

    "The head" is a correlated MIN() (one index probe per candidate), not NOT EXISTS (an
    older pending one): PostgreSQL planned that anti-join with an inner scan of every pending
    row whenever its statistics undercounted them, as right after a burst was enqueued: 0.3 s
    per claim at 1,200 pending in a fresh table, 3.6 s in one analysed before the burst
    (docs/benchmarks.md, 2). This form stays linear in the pending rows whatever the plan.

    Written `id <= head`, which is `id == head` for a pending row (its own id is among those
    the MIN() reads): PostgreSQL guesses that an equality with a subquery keeps 0.5% of the
    rows, an inequality a third. With the equality, walking one OA's ~500 pending messages
    in id order to its first 16 heads looked like reading them all, so it read and sorted
    them all, for every OA at every claim (docs/benchmarks.md, 2, "The claim and the
    backlog").
    """
    older = aliased(model)
    head = (
        select(func.min(older.id))
        .where(
            older.user_id == model.user_id,
            older.oa_id == model.oa_id,
            older.status == pending,
        )
        .scalar_subquery()
    )
    return (model.status == pending, model.next_attempt_at <= now, model.id <= head)
