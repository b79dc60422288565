"""The survey itself: questionnaires as data and the conversation as one pure function.

No Flask, no SQL, no HTTP, no clock or randomness it was not given. `advance` can be
called a thousand times in a test without a database.
"""

from survey_flow.engine import (
    Choice,
    Conversation,
    CounterInfo,
    Greet,
    Message,
    Policy,
    Reply,
    Start,
    Step,
    SurveyState,
    advance,
    parse_start_code,
)
from survey_flow.questionnaire import (
    Item,
    Questionnaire,
    QuestionnaireError,
    load_questionnaire,
    load_shipped,
    shipped_ids,
)
from survey_flow.texts import Texts, load_texts

__all__ = [
    "Choice",
    "Conversation",
    "CounterInfo",
    "Greet",
    "Item",
    "Message",
    "Policy",
    "Questionnaire",
    "QuestionnaireError",
    "Reply",
    "Start",
    "Step",
    "SurveyState",
    "Texts",
    "advance",
    "load_questionnaire",
    "load_shipped",
    "load_texts",
    "parse_start_code",
    "shipped_ids",
]
