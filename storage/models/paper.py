"""Paper forms entered by a clerk, numbered per unit (docs/channels.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base, BigId

if TYPE_CHECKING:
    from storage.models.surveys import SurveyResponse


class PaperFormSequence(Base):
    """The last paper form number printed for a unit: `sipas-bot print paper-form` takes the
    next ones by one UPDATE of this row, which the database serialises between processes."""

    __tablename__ = "paper_form_sequences"

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id"), primary_key=True, autoincrement=False
    )
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class PaperForm(Base):
    """A paper form entered (docs/channels.md): its number is unique in its unit, so a form
    is stored once; who entered it (a console principal, `cli:<os user>` or
    `import:<file name>`) and when; the survey it made (channel paper)."""

    __tablename__ = "paper_forms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    number: Mapped[int] = mapped_column(Integer)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id"), unique=True)
    entered_by: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[datetime]

    response: Mapped[SurveyResponse] = relationship()

    __table_args__ = (
        UniqueConstraint("unit_id", "number"),
        Index("ix_paper_forms_entered_by_at", "entered_by", "entered_at"),
    )
