"""Paper forms (docs/channels.md): the numbers printed for a unit, and each form entered
once. Each function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import PaperForm, PaperFormSequence, SurveyResponse
from storage.repositories._dialect import dialect_insert


def allocate_paper_numbers(session: Session, unit_id: int, count: int) -> int:
    """The first of `count` new form numbers of the unit, taken by one UPDATE of the unit's
    row (created once, INSERT … ON CONFLICT DO NOTHING), which holds the row until the
    transaction ends: two printings never share a number."""
    session.execute(
        dialect_insert(session, PaperFormSequence)
        .values(unit_id=unit_id, last_number=0)
        .on_conflict_do_nothing(index_elements=["unit_id"])
    )
    last = session.execute(
        update(PaperFormSequence)
        .where(PaperFormSequence.unit_id == unit_id)
        .values(last_number=PaperFormSequence.last_number + count)
        .returning(PaperFormSequence.last_number)
    ).scalar_one()
    return int(last) - count + 1


def last_paper_number(session: Session, unit_id: int) -> int:
    """The highest form number printed for the unit (0: none yet)."""
    last = session.scalar(
        select(PaperFormSequence.last_number).where(PaperFormSequence.unit_id == unit_id)
    )
    return int(last or 0)


def find_paper_form(session: Session, unit_id: int, number: int) -> PaperForm | None:
    return session.scalars(
        select(PaperForm).where(PaperForm.unit_id == unit_id, PaperForm.number == number)
    ).one_or_none()


def add_paper_form(
    session: Session,
    *,
    unit_id: int,
    number: int,
    response_id: int,
    entered_by: str,
    now: datetime,
) -> int:
    """Record an entered form; the unique (unit, number) refuses a second one."""
    return int(
        session.execute(
            insert(PaperForm)
            .values(
                unit_id=unit_id,
                number=number,
                response_id=response_id,
                entered_by=entered_by,
                entered_at=now,
            )
            .returning(PaperForm.id)
        ).scalar_one()
    )


def recent_paper_forms(
    session: Session, unit_id: int, *, entered_by: str | None = None, limit: int = 50
) -> Sequence[PaperForm]:
    """The unit's forms entered last (by `entered_by` when given), newest first, with their
    survey, its counter and its answers loaded."""
    query = (
        select(PaperForm)
        .where(PaperForm.unit_id == unit_id)
        .options(
            selectinload(PaperForm.response).selectinload(SurveyResponse.answers),
            selectinload(PaperForm.response).selectinload(SurveyResponse.counter),
        )
        .order_by(PaperForm.id.desc())
        .limit(limit)
    )
    if entered_by is not None:
        query = query.where(PaperForm.entered_by == entered_by)
    return session.scalars(query).all()


def remove_paper_form(session: Session, paper_form_id: int) -> None:
    """Forget an entered form (its number may be entered again); its survey stays, withdrawn
    by the caller."""
    session.execute(delete(PaperForm).where(PaperForm.id == paper_form_id))
