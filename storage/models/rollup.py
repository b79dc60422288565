"""The daily roll-up of the index's counts (storage/repositories/rollup/)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class RollupGrain(StrEnum):
    """How long a roll-up row's `day` lasts: that local day, or the local month it starts."""

    DAY = "day"
    MONTH = "month"


class RollupUnit(Base):
    """A unit whose counted surveys are in the roll-up, kept in the local days of `zone`
    (the unit's time zone, or TIMEZONE when it has none, as when the row was written)."""

    __tablename__ = "rollup_units"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime]


class RollupSurveys(Base):
    """How many qualified surveys (completed or partial; counted or repeat; in the index or
    held for review) a counter had on a local day or month, per channel, start method,
    status and review state: what storage.stats.response_counts counts."""

    __tablename__ = "rollup_surveys"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_method: Mapped[str] = mapped_column(String(16), primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    quarantine: Mapped[str] = mapped_column(String(16), primary_key=True)
    surveys: Mapped[int] = mapped_column(BigInteger)


class CriterionCounts:
    """The last keys and the counts of both tally tables of the roll-up (a mixin's columns
    come after the table's own): the criterion, and its rated answers. `criterion` 0 and
    `item_key` "" stand for none (a key column cannot be NULL)."""

    factor: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    criterion: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    valid: Mapped[int] = mapped_column(BigInteger)
    satisfied: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)


class RollupTally(CriterionCounts, Base):
    """The rated answers (1–5) of the surveys in the index of a counter on a local day or
    month, per channel, start method and criterion: what storage.stats.criterion_tallies
    counts."""

    __tablename__ = "rollup_tallies"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counters.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_method: Mapped[str] = mapped_column(String(16), primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)


class RollupUnitSurveys(Base):
    """The month rows of `rollup_surveys` summed over a unit's counters, channels and start
    methods: one row per unit, local month (`month` the 1st) and kind, so that the province
    view reads a few rows per unit with nothing to sum (docs/reports.md, "The roll-up")."""

    __tablename__ = "rollup_unit_surveys"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    quarantine: Mapped[str] = mapped_column(String(16), primary_key=True)
    surveys: Mapped[int] = mapped_column(BigInteger)


class RollupUnitTally(CriterionCounts, Base):
    """The month rows of `rollup_tallies` summed over a unit's counters, channels and start
    methods (see RollupUnitSurveys)."""

    __tablename__ = "rollup_unit_tallies"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, primary_key=True)
