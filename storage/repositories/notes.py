"""Citizens' notes: messages typed during a survey that answered no question, kept for the
unit. Each function takes a session; none commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import CitizenNote


def add_citizen_note(
    session: Session,
    *,
    unit_id: int,
    counter_id: int,
    respondent_hash: str,
    text: str,
    received_at: datetime,
) -> None:
    """Keep a message typed during a survey that answered no question, for the unit."""
    session.add(
        CitizenNote(
            unit_id=unit_id,
            counter_id=counter_id,
            respondent_hash=respondent_hash,
            text=text,
            received_at=received_at,
        )
    )
