"""A survey answered on a form (the counter's tablet, the web link), replayed through the
engine: the page asks the questions itself and sends every answer at once, and `replay_form`
feeds them to `advance` one `FormAnswer` at a time, in the order the engine asks. So which
questions apply, what a valid answer is and when a survey is complete are decided by the same
rules as in the Zalo chat; an answer the engine does not take ends the replay there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from survey_flow.engine import (
    CANCELLED,
    COMPLETED,
    PARTIAL,
    Answer,
    Conversation,
    FormAnswer,
    Policy,
    Start,
    SurveyState,
    advance,
)
from survey_flow.texts import Texts


def replay_form(
    start: Start,
    answers: Mapping[str, Answer],
    *,
    language: str,
    texts: Mapping[str, Texts],
    now: datetime,
    policy: Policy,
) -> SurveyState:
    """The closed survey a form's answers make: completed when every question asked got a
    valid answer, partial when some did, cancelled when none did (nothing to keep)."""
    questionnaire = start.questionnaire
    if questionnaire is None or start.counter is None:
        raise ValueError("a form survey needs its counter and questionnaire")
    step = advance(
        Conversation(language=language),
        replace(start, refusal=None),
        questionnaire=None,
        texts=texts,
        now=now,
        policy=policy,
    )
    while (survey := step.conversation.survey) is not None:
        item = questionnaire.items[survey.position]
        given = answers.get(item.id)
        if given is None:
            break
        step = advance(
            step.conversation,
            FormAnswer(survey.token, item.id, given),
            questionnaire=questionnaire,
            texts=texts,
            now=now,
            policy=policy,
        )
        after = step.conversation.survey
        if after is not None and after.position == survey.position:
            break  # not taken: the form's later answers cannot be trusted to follow
    survey = step.conversation.survey
    if survey is None:
        done = [s for s in step.closed if s.status == COMPLETED]
        if not done:
            raise ValueError("the replay ended without a completed survey")
        return done[-1]
    status = PARTIAL if survey.answers else CANCELLED
    return replace(survey, status=status, ended_at=now)
