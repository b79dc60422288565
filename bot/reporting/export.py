"""CSV and XLSX export: one row per survey, streamed, so the size of the database does not
matter. With every survey stored (`ExportFilter.statuses` None) and the columns of the
counting decision, the index can be recomputed from the export (docs/reports.md)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from bot.conversation.registry import FlowRegistry
from bot.reporting.cells import safe_text
from storage import repositories as repo
from survey_flow.questionnaire import NOT_APPLICABLE

FIXED_COLUMNS = [
    "response_id",
    "unit_code",
    "counter_code",
    "questionnaire",
    "status",
    "counted",
    "repeat",
    "start_method",
    "quarantine",
    "quarantine_rule",
    "started_at",
    "completed_at",
    "channel",
    "officer",
]
# What an export holds unless asked for more: the surveys an index may count.
DEFAULT_STATUSES = ("completed", "partial")


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
        return safe_text(text)
    if value == NOT_APPLICABLE:
        return "NA"
    return "" if value is None else str(value)


def _typed_cell(value: int | None, text: str | None) -> int | str | None:
    if text is not None:
        return safe_text(text)
    if value == NOT_APPLICABLE:
        return "NA"
    return value


def _iso(moment: datetime | None, zone: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def _local(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """Wall time in `zone` without tzinfo: spreadsheets know no time zones."""
    return None if moment is None else moment.astimezone(zone).replace(tzinfo=None)


@dataclass(frozen=True)
class ExportFilter:
    """Which surveys to export: in `statuses` (None: all), one unit's, one counter's, started
    in [start, end); with the officer recorded on each when `with_officers`."""

    statuses: tuple[str, ...] | None = DEFAULT_STATUSES
    unit_code: str | None = None
    counter_code: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    # The `officer` column holds the officer's code only for the unit's leaders and operators
    # (staff's personal data); it is empty for anyone else.
    with_officers: bool = False


def _surveys(
    session: Session, where: ExportFilter
) -> Iterator[tuple[Any, dict[str, tuple[int | None, str | None]]]]:
    """Each survey's row and its answers by item, streamed."""
    return repo.iter_export_surveys(
        session,
        statuses=where.statuses,
        unit_code=where.unit_code,
        counter_code=where.counter_code,
        started_from=where.start,
        started_before=where.end,
    )


def export_rows(
    session: Session,
    flows: FlowRegistry,
    *,
    zone: tzinfo,
    unit_code: str | None = None,
    where: ExportFilter | None = None,
) -> Iterator[list[str]]:
    """The header, then one list of cells (text) per survey."""
    where = where or ExportFilter(unit_code=unit_code)
    yield from _table(session, flows, where, cell=_cell, moment=lambda m: _iso(m, zone))


def export_records(
    session: Session, flows: FlowRegistry, *, zone: tzinfo, where: ExportFilter
) -> Iterator[list[Any]]:
    """Like `export_rows`, with typed cells: numbers as numbers, times as local datetimes."""
    yield from _table(session, flows, where, cell=_typed_cell, moment=lambda m: _local(m, zone))


def _table(
    session: Session,
    flows: FlowRegistry,
    where: ExportFilter,
    *,
    cell: Callable[[int | None, str | None], Any],
    moment: Callable[[datetime | None], Any],
) -> Iterator[list[Any]]:
    columns = item_columns(session, flows)
    yield FIXED_COLUMNS + columns
    for first, answers in _surveys(session, where):
        yield [
            first.token,
            first.unit_code,
            first.counter_code,
            f"{first.questionnaire_id}@{first.questionnaire_version}",
            first.status,
            "yes" if first.counted else "no",
            "yes" if first.is_repeat else "no",
            first.start_method,
            first.quarantine,
            first.quarantine_rule or "",
            moment(first.started_at),
            moment(first.completed_at),
            first.channel,
            (first.officer_code or "") if where.with_officers else "",
            *(cell(*answers.get(column, (None, None))) for column in columns),
        ]


def write_csv(rows: Iterator[list[str]], out: IO[str]) -> int:
    """Write rows; returns the number of surveys written (the header excluded)."""
    writer = csv.writer(out)
    count = -1
    for row in rows:
        writer.writerow(row)
        count += 1
    return max(count, 0)


def write_xlsx(rows: Iterator[list[Any]], path: Path) -> int:
    """Write rows to one sheet, streamed (openpyxl's write-only mode keeps no row in memory),
    atomically; returns the number of surveys written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from bot.files import atomic_binary

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Phiếu khảo sát")
    header = next(rows)
    widths = {"response_id": 18, "unit_code": 10, "counter_code": 12, "questionnaire": 22}
    for index, name in enumerate(header, start=1):
        width = 20 if name in ("started_at", "completed_at") else widths.get(name, 12)
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        bold.append(cell)
    sheet.append(bold)
    time_columns = {header.index("started_at"), header.index("completed_at")}
    count = 0
    for row in rows:
        cells: list[Any] = []
        for index, value in enumerate(row):
            if index in time_columns and value is not None:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
        count += 1
    with atomic_binary(path) as tmp:
        workbook.save(tmp)
    return count
