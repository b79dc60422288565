"""Paper forms in the console (docs/console.md, docs/channels.md): the entry page, one line
per form, keyboard only (the form number, then one digit per question, Tab between fields,
Enter saves the line), and the printable form.

The entry page works without JavaScript: each line is an ordinary form POST, answered by a
redirect to the page (saved) or by the page again with the line as typed and its problems
(nothing stored). Operators and leaders of the unit may enter forms; viewers may not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.conversation.paper import (
    PaperLine,
    format_form_number,
    parse_form_number,
    undoable,
    used_problem,
)
from bot.reporting.periods import unit_zone
from bot.runtime import Runtime
from bot.web.console.base import blueprint, console_runtime, text, unit_or_404, visible_units
from storage import repositories as repo
from storage.models import Counter, PaperForm, Unit
from survey_flow.paper import (
    NUMBER_PROBLEMS,
    LineProblem,
    PaperProblem,
    levels_of,
    paper_questions,
)
from survey_flow.questionnaire import Questionnaire, shipped_ids
from zalo_client.text import clean_text

SAVED_SHOWN = 20
PRINT_MAX = 200  # forms one printing from the console may take


def problem_text(say: Callable[..., str], problem: LineProblem) -> str:
    """A problem of a line in the words of `say` (the console's `text`, or the English
    texts for the CLI): the texts are the console's locales, `paper_problem_<kind>`."""
    question = "" if problem.question is None else str(problem.question)
    return say(f"paper_problem_{problem.kind.value}", question=question, **problem.values)


def questionnaire_names(runtime: Runtime, unit: Unit) -> list[str]:
    """The questionnaires a unit's paper forms may use: its counters', its own, the default
    and the shipped ones. Only these may be named in a request (never a path typed in)."""
    names = [c.questionnaire for c in unit.counters if c.questionnaire]
    names += [unit.questionnaire or "", runtime.settings.survey_flow, *shipped_ids()]
    return list(dict.fromkeys(name for name in names if name))


def entered_by() -> str:
    """How the console records who entered a form: the principal's name and id."""
    return f"{current_user.name} [{current_user.get_id()}]"[:200]


@dataclass(frozen=True)
class Batch:
    """What a clerk chooses once for a stack of forms: the counter, the questionnaire and the
    visit date written on the forms (None: the entry date)."""

    counter: Counter
    name: str
    questionnaire: Questionnaire
    visit: date | None

    def args(self) -> dict[str, Any]:
        values: dict[str, Any] = {"counter": self.counter.code, "questionnaire": self.name}
        if self.visit is not None:
            values["date"] = self.visit.isoformat()
        return values


def _batch(runtime: Runtime, unit: Unit, values: Mapping[str, str]) -> Batch | None:
    """The batch the request names, None when it names none yet; 400 for a counter or a
    questionnaire that is not the unit's to choose."""
    code = values.get("counter", "").strip().upper()[:32]
    name = values.get("questionnaire", "").strip()
    if not code:
        return None
    counter = next((c for c in unit.counters if c.code == code), None)
    if counter is None:
        abort(400)
    if not name:
        name = counter.questionnaire or unit.questionnaire or runtime.settings.survey_flow
    if name not in questionnaire_names(runtime, unit):
        abort(400)
    questionnaire = runtime.flows.named(name)
    # Kept in a transaction of its own: the registry remembers a version as kept, so the
    # row must not go with a line that is refused (rolled back).
    with runtime.session_factory.begin() as registering:
        runtime.flows.register(registering, questionnaire, now=runtime.clock())
    raw_date = values.get("date", "").strip()[:10]
    try:
        visit = date.fromisoformat(raw_date) if raw_date else None
    except ValueError:
        abort(400)
    return Batch(counter, name, questionnaire, visit)


def _require_actor() -> None:
    if not current_user.can_act:
        abort(403)


@dataclass(frozen=True)
class SavedLine:
    number: str
    counter_code: str
    cells: list[str]
    status: str
    entered_at: datetime
    visit: date
    reference: str | None  # the case the form opened (a comment, a counted low rating)


def _saved_lines(
    runtime: Runtime, db: Session, unit: Unit, forms: Sequence[PaperForm]
) -> list[SavedLine]:
    """The forms as typed: one cell per question of the questionnaire each was entered with."""
    zone = unit_zone(unit, runtime.settings.tz)
    references = repo.case_references_of(db, [form.response_id for form in forms])
    lines = []
    for form in forms:
        response = form.response
        questionnaire = runtime.flows.version(
            db, response.questionnaire_id, response.questionnaire_version
        )
        answers = {a.item_id: a for a in response.answers}
        cells = []
        for item in paper_questions(questionnaire):
            answer = answers.get(item.id)
            if answer is None or (answer.value is None and not answer.text):
                cells.append("")
            else:
                cells.append(answer.text or str(answer.value))
        lines.append(
            SavedLine(
                number=format_form_number(unit.code, form.number),
                counter_code=response.counter.code,
                cells=cells,
                status=response.status,
                entered_at=form.entered_at.astimezone(zone),
                visit=response.started_at.astimezone(zone).date(),
                reference=references.get(form.response_id),
            )
        )
    return lines


def _page(
    db: Session,
    unit: Unit,
    batch: Batch | None,
    *,
    typed: Mapping[str, str] | None = None,
    problems: Sequence[LineProblem] = (),
    status: int = 200,
) -> ResponseReturnValue:
    runtime = console_runtime()
    now = runtime.clock()
    forms = repo.recent_paper_forms(db, unit.id, entered_by=entered_by(), limit=SAVED_SHOWN)
    bad = {p.question for p in problems if p.question is not None}
    number_bad = any(p.kind in NUMBER_PROBLEMS for p in problems)
    questions = paper_questions(batch.questionnaire) if batch else ()
    first_bad = "number" if number_bad or not problems else None
    if first_bad is None:
        first_bad = next((f"q{n}" for n in sorted(bad)), "number")
    return (
        render_template(
            "console/paper_entry.html",
            unit=unit,
            units=visible_units(db, current_user),
            period_args={},
            batch=batch,
            counters=unit.counters,
            names=questionnaire_names(runtime, unit),
            questions=[
                {
                    "number": n,
                    "item": item,
                    "levels": levels_of(item),
                    "width": len(str(max(item.valid_values(), default=9))),
                }
                for n, item in enumerate(questions, start=1)
            ],
            typed=typed or {},
            problems=[problem_text(text, p) for p in problems],
            bad=bad,
            number_bad=number_bad,
            focus=first_bad,
            saved=_saved_lines(runtime, db, unit, forms),
            can_undo=bool(forms) and undoable(forms[0], now),
            last_printed=repo.last_paper_number(db, unit.id),
            format_number=lambda n: format_form_number(unit.code, n),
            default_name=(unit.questionnaire or runtime.settings.survey_flow),
            today=now.astimezone(unit_zone(unit, runtime.settings.tz)).date(),
        ),
        status,
    )


class _Refused(Exception):
    """A line not stored: raised in the writing transaction to roll it back."""

    def __init__(self, problems: list[LineProblem]) -> None:
        super().__init__("refused")
        self.problems = problems


def _chosen(runtime: Runtime, code: str, values: Mapping[str, str]) -> tuple[Unit, Batch | None]:
    """The unit (404 unless the principal's) and the batch the request names, read before
    any writing transaction (the questionnaire's version is kept in one of its own)."""
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        return unit, _batch(runtime, unit, values)


@blueprint.get("/units/<code>/paper")
@login_required
def paper_entry(code: str) -> ResponseReturnValue:
    _require_actor()
    runtime = console_runtime()
    _, batch = _chosen(runtime, code, request.args)
    with runtime.session_factory() as db:
        return _page(db, unit_or_404(db, current_user, code), batch)


@blueprint.post("/units/<code>/paper")
@login_required
def paper_save(code: str) -> ResponseReturnValue:
    _require_actor()
    runtime = console_runtime()
    form = request.form
    unit, batch = _chosen(runtime, code, form)
    if batch is None:
        abort(400)
    questions = paper_questions(batch.questionnaire)
    line = PaperLine(
        number=clean_text(form.get("number", ""), max_chars=40),
        cells=[clean_text(form.get(f"q{n}", "")) for n in range(1, len(questions) + 1)],
        visit_date=batch.visit,
    )
    try:
        with runtime.session_factory.begin() as db:
            counter = repo.find_counter(db, batch.counter.code)
            assert counter is not None
            result = runtime.paper.enter(
                db,
                counter,
                batch.questionnaire,
                line,
                entered_by=entered_by(),
                now=runtime.clock(),
            )
            if isinstance(result, list):
                raise _Refused(result)
    except _Refused as refused:
        problems = refused.problems
    except IntegrityError:  # the same number saved by someone else a moment ago
        with runtime.session_factory() as db:
            problems = _taken(db, unit, line)
    else:
        # No #fragment: a page opened at one skips `autofocus`, and the next line starts in
        # the form number's field.
        return redirect(url_for("console.paper_entry", code=unit.code, **batch.args()), code=303)
    with runtime.session_factory() as db:
        unit = unit_or_404(db, current_user, code)
        return _page(db, unit, batch, typed=form, problems=problems, status=422)


def _taken(db: Session, unit: Unit, line: PaperLine) -> list[LineProblem]:
    number = parse_form_number(line.number, unit.code) or 0
    existing: PaperForm | None = repo.find_paper_form(db, unit.id, number)
    if existing is None:
        return [LineProblem(PaperProblem.NUMBER_INVALID, values={"value": line.number})]
    zone = unit_zone(unit, console_runtime().settings.tz)
    return [used_problem(existing, format_form_number(unit.code, number), zone)]


@blueprint.post("/units/<code>/paper/undo")
@login_required
def paper_undo(code: str) -> ResponseReturnValue:
    _require_actor()
    runtime = console_runtime()
    unit, batch = _chosen(runtime, code, request.form)
    with runtime.session_factory.begin() as db:
        runtime.paper.undo_last(db, unit, entered_by=entered_by(), now=runtime.clock())
    args = batch.args() if batch else {}
    return redirect(url_for("console.paper_entry", code=unit.code, **args), code=303)


def render_paper_forms(
    unit: Unit,
    counter: Counter | None,
    questionnaire: Questionnaire,
    numbers: Sequence[int],
    *,
    runtime: Runtime,
) -> str:
    """One A4 form per number, as HTML (in a request context): the citizen's questionnaire
    in Vietnamese with boxes to tick, for the browser to print or bot.printing.pdf to write."""
    numbered = _numbered(questionnaire)
    return render_template(
        "console/print_paper_form.html",
        unit=unit,
        counter=counter,
        questionnaire=questionnaire,
        items=[
            {
                "item": item,
                "number": number,
                "options": [o.label.get("vi", "") for o in item.options],
                "when": _condition_note(item, numbered),
            }
            for item, number in numbered
        ],
        numbers=[format_form_number(unit.code, n) for n in numbers],
        t=runtime.texts.of("vi"),  # the form speaks to citizens, in Vietnamese
    )


def _numbered(questionnaire: Questionnaire) -> list[tuple[Any, int | None]]:
    """Each item with its question number (None for a section intro)."""
    numbered: list[tuple[Any, int | None]] = []
    number = 0
    for item in questionnaire.items:
        if item.is_question:
            number += 1
            numbered.append((item, number))
        else:
            numbered.append((item, None))
    return numbered


def _condition_note(item: Any, numbered: list[tuple[Any, int | None]]) -> str:
    """ "Chỉ trả lời nếu câu 17 chọn 1" for a question asked only after a given answer."""
    if item.when is None:
        return ""
    number = next((n for other, n in numbered if other.id == item.when.item), None)
    values = ", ".join(str(v) for v in sorted(item.when.values))
    return f"Chỉ trả lời nếu câu {number} chọn {values}."


@blueprint.post("/units/<code>/paper/print")
@login_required
def paper_print(code: str) -> ResponseReturnValue:
    """Print numbered forms from the console: a POST, since it takes form numbers."""
    _require_actor()
    runtime = console_runtime()
    try:
        count = int(request.form.get("count", "0"))
    except ValueError:
        abort(400)
    if not 1 <= count <= PRINT_MAX:
        abort(400)
    unit, batch = _chosen(runtime, code, request.form)
    if batch is None:
        abort(400)
    with runtime.session_factory.begin() as db:
        numbers = runtime.paper.allocate(db, unit, count)
        return render_paper_forms(
            unit, batch.counter, batch.questionnaire, numbers, runtime=runtime
        )
