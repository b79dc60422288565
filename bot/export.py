"""CSV export: one row per survey, streamed, so the size of the database does not matter."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, tzinfo
from itertools import groupby
from typing import IO, Any

from sqlalchemy.orm import Session

from bot.flows import FlowRegistry
from storage import repositories as repo
from survey_flow.questionnaire import NOT_APPLICABLE

FIXED_COLUMNS = [
    "response_id",
    "unit_code",
    "counter_code",
    "questionnaire",
    "status",
    "repeat",
    "started_at",
    "completed_at",
]


def item_columns(session: Session, flows: FlowRegistry) -> list[str]:
    """Every item id that can hold an answer, in questionnaire order, across versions used."""
    columns: list[str] = []
    for questionnaire_id, version in repo.questionnaire_versions_used(session):
        questionnaire = flows.version(session, questionnaire_id, version)
        for item in questionnaire.items:
            if item.is_question and item.id not in columns:
                columns.append(item.id)
    return columns


def _cell(value: int | None, text: str | None) -> str:
    if text is not None:
        return text
    if value == NOT_APPLICABLE:
        return "NA"
    return "" if value is None else str(value)


def _iso(moment: datetime | None, zone: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def export_rows(
    session: Session, flows: FlowRegistry, *, zone: tzinfo, unit_code: str | None = None
) -> Iterator[list[str]]:
    """The header, then one list of cells per survey."""
    columns = item_columns(session, flows)
    yield FIXED_COLUMNS + columns
    rows = repo.iter_export_rows(session, unit_code=unit_code)
    for _, group in groupby(rows, key=lambda row: row.id):
        answers: dict[str, str] = {}
        first: Any = None
        for row in group:
            first = first or row
            if row.item_id is not None:
                answers[row.item_id] = _cell(row.value, row.text)
        yield [
            first.token,
            first.unit_code,
            first.counter_code,
            f"{first.questionnaire_id}@{first.questionnaire_version}",
            first.status,
            "yes" if first.is_repeat else "no",
            _iso(first.started_at, zone),
            _iso(first.completed_at, zone),
            *(answers.get(column, "") for column in columns),
        ]


def write_csv(rows: Iterator[list[str]], out: IO[str]) -> int:
    """Write rows; returns the number of surveys written (the header excluded)."""
    writer = csv.writer(out)
    count = -1
    for row in rows:
        writer.writerow(row)
        count += 1
    return max(count, 0)
