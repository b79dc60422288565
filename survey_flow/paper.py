"""A paper form's answers as staff type them: one cell per question, in the order the form
prints them (`paper_questions`: every item but the section intros, numbered Q1, Q2, …).

A cell of a scale question holds a level 1–5, 0 (or x) for "không áp dụng" where the
question allows it, or nothing; a choice holds an option's number; a text question its text.
`read_cells` turns the cells into answers or names every cell it cannot read. Which answers
a survey keeps is then the engine's to say (survey_flow/forms.py replays them):
`untaken_answers` names each answer on the form that the replay did not keep, and why, so
that staff are told rather than an answer being dropped in silence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from survey_flow.engine import Answer, SurveyState
from survey_flow.questionnaire import NOT_APPLICABLE, Item, Questionnaire

# What a cell may hold for "không áp dụng" besides the 0 the chat uses.
NOT_APPLICABLE_KEYS = frozenset({"0", "x"})


class PaperProblem(StrEnum):
    """Why a paper form's line cannot be stored; each has its text in the console's locales
    (`paper_problem_<value>`), which the CLI prints too."""

    NOT_A_LEVEL = "not_a_level"  # a scale cell that is not 1–5 (or 0)
    NO_NOT_APPLICABLE = "no_not_applicable"  # 0 on a question without "không áp dụng"
    NOT_AN_OPTION = "not_an_option"  # a choice cell that is not an option's number
    NOT_ASKED = "not_asked"  # answered, but its condition on an earlier answer is not met
    AFTER_BLANK = "after_blank"  # answered after a required question left blank
    NO_ANSWER = "no_answer"  # nothing answered on the form
    CELLS = "cells"  # not one cell per question (a forged or truncated line)
    NUMBER_MISSING = "number_missing"
    NUMBER_INVALID = "number_invalid"  # not a form number of this unit's shape
    NUMBER_NOT_PRINTED = "number_not_printed"  # beyond the numbers printed for the unit
    NUMBER_USED = "number_used"  # this unit's form of that number is stored already
    NUMBER_TWICE = "number_twice"  # the same number on two lines of one file
    COUNTER_UNKNOWN = "counter_unknown"
    DATE_INVALID = "date_invalid"
    DATE_FUTURE = "date_future"


# The problems of the form number (the entry page marks its field).
NUMBER_PROBLEMS = frozenset(
    {
        PaperProblem.NUMBER_MISSING,
        PaperProblem.NUMBER_INVALID,
        PaperProblem.NUMBER_NOT_PRINTED,
        PaperProblem.NUMBER_USED,
        PaperProblem.NUMBER_TWICE,
    }
)


@dataclass(frozen=True)
class LineProblem:
    """One problem of a line: its kind, the question it is about (1-based, None for the
    line as a whole) and the values its text needs."""

    kind: PaperProblem
    question: int | None = None
    values: Mapping[str, str] = field(default_factory=dict)


def paper_questions(questionnaire: Questionnaire) -> tuple[Item, ...]:
    """The questions in the order the form numbers them (Q1 is the first)."""
    return questionnaire.questions


def levels_of(item: Item) -> str:
    """The values a cell of this question may hold, as the form says them: `1–5`, `1–2`."""
    if item.kind == "choice":
        return f"1–{len(item.options)}"
    return "1–5"


def read_cells(
    questionnaire: Questionnaire, cells: Sequence[str]
) -> tuple[dict[str, Answer], list[LineProblem]]:
    """The answers the cells hold (a blank cell answers nothing) and every cell that holds
    no possible answer to its question."""
    questions = paper_questions(questionnaire)
    if len(cells) != len(questions):
        problem = LineProblem(
            PaperProblem.CELLS, values={"given": str(len(cells)), "expected": str(len(questions))}
        )
        return {}, [problem]
    answers: dict[str, Answer] = {}
    problems: list[LineProblem] = []
    for number, (item, raw) in enumerate(zip(questions, cells, strict=True), start=1):
        cell = raw.strip()
        if not cell:
            if item.optional:
                answers[item.id] = Answer()  # skipped, as the chat's "bỏ qua"
            continue
        if item.kind == "text":
            answers[item.id] = Answer(text=cell)
            continue
        key = cell.lower()
        if key in NOT_APPLICABLE_KEYS and item.kind == "scale":
            if not item.not_applicable:
                problems.append(
                    LineProblem(PaperProblem.NO_NOT_APPLICABLE, number, {"value": cell})
                )
            else:
                answers[item.id] = Answer(value=NOT_APPLICABLE)
            continue
        value = int(cell) if cell.isascii() and cell.isdigit() else None
        if value is None or value == NOT_APPLICABLE or value not in item.valid_values():
            kind = PaperProblem.NOT_A_LEVEL if item.kind == "scale" else PaperProblem.NOT_AN_OPTION
            problems.append(LineProblem(kind, number, {"value": cell, "levels": levels_of(item)}))
            continue
        answers[item.id] = Answer(value=value)
    if not any(_given(answer) for answer in answers.values()) and not problems:
        problems.append(LineProblem(PaperProblem.NO_ANSWER))
    return answers, problems


def untaken_answers(
    questionnaire: Questionnaire, given: Mapping[str, Answer], survey: SurveyState
) -> list[LineProblem]:
    """The answers on the form that the replayed `survey` did not keep, each with why: its
    question is asked only after another answer, or it comes after a required question
    left blank (where the engine ends a form survey)."""
    questions = paper_questions(questionnaire)
    number_of = {item.id: number for number, item in enumerate(questions, start=1)}
    problems: list[LineProblem] = []
    for number, item in enumerate(questions, start=1):
        if item.id not in given or not _given(given[item.id]) or item.id in survey.answers:
            continue
        when = item.when
        if when is not None and not _condition_met(item, given):
            values = {
                "other": str(number_of.get(when.item, "?")),
                "values": ", ".join(str(v) for v in sorted(when.values)),
            }
            problems.append(LineProblem(PaperProblem.NOT_ASKED, number, values))
            continue
        blank = next(
            (
                n
                for n, earlier in enumerate(questions[: number - 1], start=1)
                if earlier.id not in survey.answers
                and not earlier.optional
                and _condition_met(earlier, survey.answers)
            ),
            None,
        )
        values = {"blank": str(blank) if blank is not None else "?"}
        problems.append(LineProblem(PaperProblem.AFTER_BLANK, number, values))
    return problems


def _given(answer: Answer) -> bool:
    """Whether a cell gave this answer (a skip is a blank cell)."""
    return answer.value is not None or answer.text is not None


def _condition_met(item: Item, answers: Mapping[str, Answer]) -> bool:
    """Whether the answers meet the item's condition (said here only to explain a refusal:
    what is asked is the engine's to decide)."""
    if item.when is None:
        return True
    earlier = answers.get(item.when.item)
    return earlier is not None and earlier.value in item.when.values
