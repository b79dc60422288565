"""Paper forms (docs/channels.md): numbered when printed, entered by staff one line per form
(the console's entry page, `sipas-bot paper import`), each stored once.

A form number is the unit's: `sipas-bot print paper-form` takes the next numbers of the unit
(`HVT-000123`), and a line is taken only with a number printed for its unit and not entered
yet (the unique (unit, number) of `paper_forms` holds even against two clerks at once).
Each form is one citizen: its survey has a random respondent of its own, channel `paper`,
start method `paper` (it proves no presence, and no quarantine rule weighs it), and is
stored as a kiosk's or a web link's is (FormSurveys: the answers replayed through the
engine, stored by `Counting.record_answers`, counted by the same rule). A line is
stored whole or not at all: every answer the engine would not keep is a problem of the line.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.conversation.forms import FormSurveys
from bot.units import unit_zone
from storage import repositories as repo
from storage.models import Channel, Counter, PaperForm, Unit
from survey_flow.engine import Answer, StartMethod, SurveyStatus
from survey_flow.paper import LineProblem, PaperProblem, read_cells, untaken_answers
from survey_flow.questionnaire import Questionnaire

log = logging.getLogger("sipas_bot.paper")

PAPER_LANGUAGE = "vi"  # the form is printed in Vietnamese
MAX_PRINT = 1000  # form numbers one printing may take
UNDO_WINDOW = timedelta(minutes=30)  # how long the last line entered may be taken back
# What closes the case of a form taken back (its trail says "withdrawn", by the clerk).
WITHDRAWN_RESOLUTION = "Phiếu giấy {number} đã được hoàn tác (nhập nhầm): ý kiến được rút."
_NUMBER = re.compile(r"^(?:([A-Za-z0-9_]+)\s*-\s*)?0*(\d{1,9})$")


def format_form_number(unit_code: str, number: int) -> str:
    """`HVT-000123`: what is printed on the form."""
    return f"{unit_code}-{number:06d}"


def parse_form_number(text: str, unit_code: str) -> int | None:
    """The number of `123`, `000123` or `HVT-000123` (this unit's prefix only); None when
    it is none of these."""
    found = _NUMBER.match(text.strip())
    if found is None or int(found.group(2)) == 0:
        return None
    prefix = found.group(1)
    if prefix is not None and prefix.upper() != unit_code.upper():
        return None
    return int(found.group(2))


def parse_visit_date(text: str) -> date | LineProblem | None:
    """The visit date written on a form: `YYYY-MM-DD` or `DD/MM/YYYY` (None when empty)."""
    text = text.strip()
    if not text:
        return None
    try:
        if "/" in text:
            day, month, year = (int(part) for part in text.split("/"))
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        return LineProblem(PaperProblem.DATE_INVALID, values={"value": text})


@dataclass(frozen=True)
class PaperLine:
    """One form as typed: its number, one cell per question (`paper_questions`), and the
    date of the visit written on it (None: not written; the entry date stands)."""

    number: str
    cells: Sequence[str]
    visit_date: date | None = None


@dataclass(frozen=True)
class EnteredForm:
    id: int
    number: int
    response_id: int
    status: SurveyStatus
    counted: bool
    reference: str | None = None  # the case the form opened (a comment, a counted low rating)


class PaperForms:
    """Numbers paper forms and stores each entered form once."""

    def __init__(
        self,
        forms: FormSurveys,
        *,
        default_zone: ZoneInfo,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(12),
        new_respondent: Callable[[], str] = lambda: secrets.token_hex(32),
    ) -> None:
        self.forms = forms
        self.default_zone = default_zone
        self.new_token = new_token
        self.new_respondent = new_respondent

    def allocate(self, session: Session, unit: Unit, count: int) -> list[int]:
        """`count` new form numbers of the unit, for one printing."""
        if not 1 <= count <= MAX_PRINT:
            raise ValueError(f"a printing takes 1–{MAX_PRINT} form numbers")
        first = repo.allocate_paper_numbers(session, unit.id, count)
        log.info("event=paper_print unit=%s first=%d count=%d", unit.code, first, count)
        return list(range(first, first + count))

    def enter(
        self,
        session: Session,
        counter: Counter,
        questionnaire: Questionnaire,
        line: PaperLine,
        *,
        entered_by: str,
        now: datetime,
    ) -> EnteredForm | list[LineProblem]:
        """Store one form, or store nothing and return every problem of the line.

        The questionnaire must be registered (FlowRegistry.named + register): the survey
        keeps its version."""
        problems: list[LineProblem] = []
        number = self._number(session, counter.unit, line.number, problems)
        started_at = self._visit(counter.unit, line.visit_date, problems, now)
        answers, cell_problems = read_cells(questionnaire, line.cells)
        problems.extend(cell_problems)
        token = self.new_token()
        if not cell_problems:
            survey = self.forms.replay(
                counter,
                questionnaire,
                answers,
                token=token,
                method=StartMethod.PAPER,
                language=PAPER_LANGUAGE,
                now=now,
            )
            problems.extend(untaken_answers(questionnaire, answers, survey))
        if problems or number is None or started_at is None:
            return problems
        return self._store(
            session, counter, questionnaire, answers, number, token, started_at, entered_by, now
        )

    def _store(
        self,
        session: Session,
        counter: Counter,
        questionnaire: Questionnaire,
        answers: dict[str, Answer],
        number: int,
        token: str,
        started_at: datetime,
        entered_by: str,
        now: datetime,
    ) -> EnteredForm:
        response_id = repo.insert_survey(
            session,
            {
                "token": token,
                "respondent_hash": self.new_respondent(),
                "unit_id": counter.unit_id,
                "counter_id": counter.id,
                "questionnaire_id": questionnaire.id,
                "questionnaire_version": questionnaire.version,
                "language": PAPER_LANGUAGE,
                "status": SurveyStatus.ACTIVE,
                "position": 0,
                "is_repeat": False,
                "start_method": StartMethod.PAPER.value,
                "channel": Channel.PAPER.value,
                "device_id": None,
                "started_at": started_at,
                "updated_at": now,
                "completed_at": None,
            },
        )
        row = repo.lock_form_survey(session, token)
        assert row is not None
        stored = self.forms.store(session, row, answers, now=now)
        form_id = repo.add_paper_form(
            session,
            unit_id=counter.unit_id,
            number=number,
            response_id=response_id,
            entered_by=entered_by,
            now=now,
        )
        log.info(
            "event=paper_enter counter=%s number=%d status=%s counted=%s",
            counter.code,
            number,
            stored.survey.status,
            stored.counted,
        )
        return EnteredForm(
            form_id,
            number,
            response_id,
            SurveyStatus(stored.survey.status),
            stored.counted,
            stored.case.reference if stored.case is not None else None,
        )

    def _number(
        self, session: Session, unit: Unit, text: str, problems: list[LineProblem]
    ) -> int | None:
        if not text.strip():
            problems.append(LineProblem(PaperProblem.NUMBER_MISSING))
            return None
        number = parse_form_number(text, unit.code)
        if number is None:
            example = format_form_number(unit.code, 123)
            problems.append(
                LineProblem(
                    PaperProblem.NUMBER_INVALID, values={"value": text.strip(), "example": example}
                )
            )
            return None
        shown = format_form_number(unit.code, number)
        last = repo.last_paper_number(session, unit.id)
        if number > last:
            problems.append(
                LineProblem(
                    PaperProblem.NUMBER_NOT_PRINTED,
                    values={"number": shown, "last": format_form_number(unit.code, last)},
                )
            )
            return None
        existing = repo.find_paper_form(session, unit.id, number)
        if existing is not None:
            problems.append(used_problem(existing, shown, unit_zone(unit, self.default_zone)))
            return None
        return number

    def _visit(
        self, unit: Unit, visit: date | None, problems: list[LineProblem], now: datetime
    ) -> datetime | None:
        """When the survey counts as started: the visit's date written on the form, at noon
        in the unit's time zone (no later than now), or the entry time when none is given.
        The survey then falls in the period of the visit."""
        if visit is None:
            return now
        zone = unit_zone(unit, self.default_zone)
        if visit > now.astimezone(zone).date():
            problems.append(LineProblem(PaperProblem.DATE_FUTURE, values={"date": str(visit)}))
            return None
        return min(datetime.combine(visit, time(12), tzinfo=zone), now)

    def undo_last(
        self, session: Session, unit: Unit, *, entered_by: str, now: datetime
    ) -> PaperForm | None:
        """Take back the last form `entered_by` entered in the unit, if within UNDO_WINDOW:
        its survey is withdrawn (cancelled, out of every count, its answers removed), its case
        closed as withdrawn, and its number may be entered again. None when there is nothing
        to take back."""
        last = next(
            iter(repo.recent_paper_forms(session, unit.id, entered_by=entered_by, limit=1)), None
        )
        if last is None or not undoable(last, now):
            return None
        shown = format_form_number(unit.code, last.number)
        self.forms.withdraw(
            session,
            last.response,
            actor=entered_by,
            resolution=WITHDRAWN_RESOLUTION.format(number=shown),
            now=now,
        )
        repo.remove_paper_form(session, last.id)
        log.info("event=paper_undo unit=%s number=%d", unit.code, last.number)
        return last


def undoable(form: PaperForm, now: datetime) -> bool:
    """Whether the form, the last its clerk entered, may still be taken back."""
    return now - form.entered_at <= UNDO_WINDOW


def used_problem(existing: PaperForm, shown: str, zone: ZoneInfo) -> LineProblem:
    """The problem of a number entered already: by whom and when."""
    return LineProblem(
        PaperProblem.NUMBER_USED,
        values={
            "number": shown,
            "by": existing.entered_by,
            "at": existing.entered_at.astimezone(zone).strftime("%d/%m/%Y %H:%M"),
        },
    )
