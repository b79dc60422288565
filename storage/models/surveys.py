"""The surveys: a citizen's conversation, each survey response and its answers, and the
questionnaire versions they were asked from."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import ENVIRONMENT_OA, Base, BigId
from storage.models.states import Channel

if TYPE_CHECKING:
    from storage.models.directory import Counter, Unit


class Conversation(Base):
    """One Zalo user's chat with the OA: the language and the survey open right now.

    The row is locked while an event of that user is handled, which serialises
    concurrent deliveries for one user in the database rather than in a process.
    """

    __tablename__ = "conversations"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Per (user, OA): a Zalo user id is the user's id with one OA (ENVIRONMENT_OA: the one).
    oa_id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=ENVIRONMENT_OA, server_default=text("''")
    )
    language: Mapped[str] = mapped_column(String(8), default="vi")
    open_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"))
    last_interaction_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The user's message allowance (bot/conversation/limits.py), read and written under the
    # row lock the turn already holds: tokens left at `allowance_at`, and whether the user
    # was told they are sending too fast.
    allowance_tokens: Mapped[float | None] = mapped_column(Float)
    allowance_at: Mapped[datetime | None]
    throttled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SurveyResponse(Base):
    """One citizen's survey at one counter, from the scan to the end (or to giving up).

    The Zalo user id is not stored here: `respondent_hash` is enough to spot repeats and
    keeps the answers apart from who gave them.
    """

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    respondent_hash: Mapped[str] = mapped_column(String(64), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"))
    questionnaire_id: Mapped[str] = mapped_column(String(64))
    questionnaire_version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The counting decision, taken once, when the survey first meets the rule of
    # survey_flow/counting.py: `counted` (it is the citizen's survey of this counter for the
    # cooldown, in the index unless quarantined) or `is_repeat` (the same citizen had a
    # counted survey of this counter within SURVEY_COOLDOWN_HOURS). Neither, with no
    # `qualified_at`: the survey never counts in any figure (no answer, or too few).
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    qualified_at: Mapped[datetime | None]
    # How the survey was started (survey_flow.states.StartMethod): static | rotating | visit |
    # device | paper.
    start_method: Mapped[str] = mapped_column(String(16), default="static", server_default="static")
    # Review of a counted survey that matched a suspicious pattern, decided with `counted`
    # (QuarantineState, QuarantineRule); `reviewed_at`: when an operator released or
    # rejected it.
    quarantine: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    quarantine_rule: Mapped[str | None] = mapped_column(String(32))
    reviewed_at: Mapped[datetime | None]
    # Where it was answered (Channel); the tablet that took it, for a kiosk survey (its
    # per-hour limit counts these).
    channel: Mapped[str] = mapped_column(
        String(16), default=Channel.ZALO.value, server_default=Channel.ZALO.value
    )
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    # The officer on shift at the counter when the survey started (None: no shift, or a
    # paper form); set once, by the statement that stores the survey.
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", order_by="Answer.id", cascade="all, delete-orphan"
    )
    counter: Mapped[Counter] = relationship()
    unit: Mapped[Unit] = relationship()

    __table_args__ = (
        Index("ix_survey_responses_unit_started", "unit_id", "started_at"),
        Index("ix_survey_responses_counter_started", "counter_id", "started_at"),
        Index("ix_survey_responses_respondent_counter", "respondent_hash", "counter_id"),
        Index("ix_survey_responses_quarantine", "quarantine"),
        Index("ix_survey_responses_device_started", "device_id", "started_at"),
    )


class Answer(Base):
    """The answer to one item: a value 1–5 or a choice number, a text, or a skip (both null)."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id"))
    item_id: Mapped[str] = mapped_column(String(64))
    # Copied from the questionnaire item when stored, so the index is one SQL aggregate.
    factor: Mapped[int | None]
    criterion: Mapped[int | None]
    value: Mapped[int | None]
    text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]

    response: Mapped[SurveyResponse] = relationship(back_populates="answers")

    __table_args__ = (
        UniqueConstraint("response_id", "item_id"),
        Index("ix_answers_factor_response", "factor", "response_id"),
    )


class QuestionnaireVersion(Base):
    """The text of every questionnaire version ever used, so that stored answers and surveys
    in progress are always read with the form they were asked with."""

    __tablename__ = "questionnaire_versions"

    questionnaire_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_text: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime]
