"""Which surveys count in the SIPAS index: the rule, pure, on a questionnaire and its answers.

A survey counts once it has answered the whole rated part of its form: every scale question
that names a factor and applies (its condition, if any, answered and met) holds an answer
(a rating 1–5, "not applicable", or a skip the item allows), and at least one of them is a
rating 1–5. A completed survey with a rating always counts; a partial one counts when the
citizen left only after the rated questions (before the comment, say). A survey that never
got an answer never counts. Why this rule and not "one factor": docs/integrity.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from survey_flow.questionnaire import Item, Questionnaire


class _Answered(Protocol):
    @property
    def value(self) -> int | None: ...


def rated_items(questionnaire: Questionnaire) -> tuple[Item, ...]:
    """The questions behind the index: scale items that name a factor."""
    return tuple(item for item in questionnaire.items if item.kind == "scale" and item.factor)


def qualifies(questionnaire: Questionnaire, answers: Mapping[str, _Answered]) -> bool:
    """Whether a survey with these answers counts in the index (see the module docstring)."""
    rated = False
    for item in rated_items(questionnaire):
        if item.when is not None:
            condition = answers.get(item.when.item)
            if condition is None:
                return False  # not known yet whether the question applies: not answered through
            if condition.value not in item.when.values:
                continue
        answer = answers.get(item.id)
        if answer is None:
            return False
        rated = rated or (answer.value is not None and 1 <= answer.value <= 5)
    return rated
