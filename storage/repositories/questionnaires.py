"""The questionnaire versions surveys were answered with, kept as their source text. Each
function takes a session; none commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import (
    QuestionnaireVersion,
)
from storage.repositories._dialect import dialect_insert

# --- questionnaires ------------------------------------------------------------------------


def questionnaire_text(session: Session, questionnaire_id: str, version: str) -> str | None:
    row = session.get(QuestionnaireVersion, (questionnaire_id, version))
    return None if row is None else row.source_text


def register_questionnaire(
    session: Session, questionnaire_id: str, version: str, source_text: str, *, now: datetime
) -> str | None:
    """Keep a version's text; returns the text already kept when it differs, else None."""
    # INSERT … ON CONFLICT, not read-then-insert: processes starting together all succeed.
    session.execute(
        dialect_insert(session, QuestionnaireVersion)
        .values(
            questionnaire_id=questionnaire_id,
            version=version,
            source_text=source_text,
            registered_at=now,
        )
        .on_conflict_do_nothing(index_elements=["questionnaire_id", "version"])
    )
    kept = session.scalar(
        select(QuestionnaireVersion.source_text).where(
            QuestionnaireVersion.questionnaire_id == questionnaire_id,
            QuestionnaireVersion.version == version,
        )
    )
    return kept if kept is not None and kept != source_text else None
