"""The conversation as one pure function: `advance(conversation, event) -> Step`.

Everything the function needs is passed in: the questionnaire of the open survey, the texts,
the time, and (in a `Start` event) the counter looked up and a fresh survey token. The caller
persists the new conversation and the surveys that closed, and sends the replies.

Button payloads are `sv:<survey token>:<item id>:<value>`; a click arrives as plain text.
The token ties a click to one survey, so a click on a finished survey's button is recognised
as stale instead of answering the survey open now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from survey_flow.matching import NOT_APPLICABLE_WORDS, SKIP_WORDS, command_of, fold, leading_number
from survey_flow.questionnaire import MAX_BUTTONS, NOT_APPLICABLE, Item, Questionnaire
from survey_flow.texts import Texts

PAYLOAD_PREFIX = "sv:"
SKIP_PAYLOAD = "skip"
ACTIVE, COMPLETED, PARTIAL, CANCELLED = "active", "completed", "partial", "cancelled"


@dataclass(frozen=True)
class CounterInfo:
    code: str
    name: str
    unit_name: str


@dataclass(frozen=True)
class Answer:
    """A number (scale 1–5, 0 = not applicable; choice 1–n), a text, or a skip (neither)."""

    value: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class SurveyState:
    token: str
    counter: CounterInfo
    questionnaire_id: str
    questionnaire_version: str
    language: str
    started_at: datetime
    updated_at: datetime
    position: int = 0
    answers: Mapping[str, Answer] = field(default_factory=dict)
    status: str = ACTIVE
    repeat: bool = False
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Conversation:
    language: str = "vi"
    survey: SurveyState | None = None


@dataclass(frozen=True)
class Greet:
    """The user followed the OA or tapped "chat now"."""


@dataclass(frozen=True)
class Message:
    text: str


@dataclass(frozen=True)
class Start:
    """`#CODE` was sent; the caller looked the counter up (None when unknown)."""

    code: str
    counter: CounterInfo | None
    questionnaire: Questionnaire | None
    token: str
    repeat: bool = False


Event = Greet | Message | Start


@dataclass(frozen=True)
class Policy:
    idle: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Choice:
    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class Step:
    conversation: Conversation
    replies: tuple[Reply, ...]
    closed: tuple[SurveyState, ...] = ()


def parse_start_code(text: str) -> str | None:
    """`#hvt01` → `HVT01`; anything else → None."""
    stripped = text.strip()
    if not stripped.startswith("#") or stripped.startswith("##"):
        return None
    code = stripped[1:].strip().upper()
    if not code or len(code) > 32 or not all(ch.isalnum() or ch in "-_" for ch in code):
        return None
    return code


def advance(
    conversation: Conversation,
    event: Event,
    *,
    questionnaire: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
    policy: Policy = Policy(),
) -> Step:
    """The next state and the replies, for one event of one user.

    `questionnaire` is the one the open survey was started with (None when none is open).
    """
    survey = conversation.survey
    if survey is not None and questionnaire is None:
        raise ValueError("an open survey needs its questionnaire")
    if survey is not None and now - survey.updated_at > policy.idle:
        expired = replace(survey, status=PARTIAL, ended_at=now)
        idle = replace(conversation, survey=None)
        if isinstance(event, Start):
            step = _start(idle, event, texts, now)
            return replace(step, closed=(expired, *step.closed))
        t = texts[conversation.language]
        return Step(idle, (Reply(t("expired")),), (expired,))

    if isinstance(event, Start):
        return _start(conversation, event, texts, now)
    if isinstance(event, Greet):
        if survey is not None and questionnaire is not None:
            t = _texts_for(conversation, texts)
            return Step(conversation, (_ask(survey, questionnaire, t, lead=t("resume")),))
        return _greet(conversation, texts)
    return _message(conversation, event.text, questionnaire, texts, now)


def _texts_for(conversation: Conversation, texts: Mapping[str, Texts]) -> Texts:
    return texts.get(conversation.language, texts["vi"])


def _greet(conversation: Conversation, texts: Mapping[str, Texts], lead: str = "") -> Step:
    t = _texts_for(conversation, texts)
    return Step(conversation, (Reply(_join(lead, t("greeting"))),))


def _start(
    conversation: Conversation, event: Start, texts: Mapping[str, Texts], now: datetime
) -> Step:
    t = _texts_for(conversation, texts)
    open_survey = conversation.survey
    if event.counter is None or event.questionnaire is None:
        return Step(conversation, (Reply(t("unknown_counter", code=event.code)),))
    if open_survey is not None and open_survey.counter.code == event.counter.code:
        return Step(conversation, (_ask(open_survey, event.questionnaire, t, lead=t("resume")),))

    closed: tuple[SurveyState, ...] = ()
    lead = ""
    if open_survey is not None:
        closed = (replace(open_survey, status=PARTIAL, ended_at=now),)
        lead = t("switched_counter")
    q = event.questionnaire
    language = conversation.language if conversation.language in q.languages else q.languages[0]
    survey = SurveyState(
        token=event.token,
        counter=event.counter,
        questionnaire_id=q.id,
        questionnaire_version=q.version,
        language=language,
        started_at=now,
        updated_at=now,
        repeat=event.repeat,
    )
    t = texts[language]
    intro = t(
        "start",
        counter=event.counter.name,
        unit=event.counter.unit_name,
        count=sum(1 for item in q.items if item.is_question and item.when is None),
    )
    if event.repeat:
        intro = _join(intro, t("repeat_notice"))
    survey, replies = _proceed(survey, q, t, now)
    return Step(
        replace(conversation, survey=survey if survey.status == ACTIVE else None),
        (Reply(_join(lead, intro)), *replies),
        closed + ((survey,) if survey.status != ACTIVE else ()),
    )


def _message(
    conversation: Conversation,
    text: str,
    q: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
) -> Step:
    survey = conversation.survey
    t = _texts_for(conversation, texts)
    stripped = text.strip()
    if stripped.startswith(PAYLOAD_PREFIX):
        return _click(conversation, stripped, q, texts, now)

    command = command_of(fold(stripped))
    if command is not None and command.startswith("lang:"):
        language = command.removeprefix("lang:")
        conversation = replace(conversation, language=language)
        t = texts[language]
        if survey is None or q is None:
            return _greet(conversation, texts, lead=t("language_switched"))
        if language in q.languages:
            survey = replace(survey, language=language, updated_at=now)
        conversation = replace(conversation, survey=survey)
        return Step(conversation, (_ask(survey, q, t, lead=t("language_switched")),))

    if survey is None or q is None:
        if command == "help":
            return Step(conversation, (Reply(_join(t("help"), t("greeting"))),))
        return _greet(conversation, texts)

    t = texts[survey.language]
    if command == "cancel":
        cancelled = replace(survey, status=CANCELLED, updated_at=now, ended_at=now)
        return Step(replace(conversation, survey=None), (Reply(t("cancelled")),), (cancelled,))
    if command == "restart":
        fresh = replace(survey, position=0, answers={}, updated_at=now)
        fresh, replies = _proceed(fresh, q, t, now)
        return Step(replace(conversation, survey=fresh), (Reply(t("restarted")), *replies))
    if command == "help":
        return Step(conversation, (_ask(survey, q, t, lead=t("help")),))

    item = q.items[survey.position]
    answer = _interpret(item, stripped, texts)
    if answer is None:
        return Step(conversation, (_ask(survey, q, t, lead=t("reprompt")),))
    return _record(conversation, survey, item, answer, q, t, now)


def _click(
    conversation: Conversation,
    payload: str,
    q: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
) -> Step:
    survey = conversation.survey
    t = _texts_for(conversation, texts)
    parts = payload.split(":")
    token, item_id, raw_value = (parts[1], parts[2], parts[3]) if len(parts) == 4 else ("", "", "")
    if survey is None or q is None or token != survey.token:
        if survey is not None and q is not None:
            return Step(conversation, (_ask(survey, q, t, lead=t("stale_click")),))
        return Step(conversation, (Reply(t("stale_click")),))

    t = texts[survey.language]
    item = q.items[survey.position]
    if item_id != item.id:
        lead = t("already_answered") if item_id in survey.answers else t("reprompt")
        return Step(conversation, (_ask(survey, q, t, lead=lead),))
    answer = _value_answer(item, raw_value)
    if answer is None:
        return Step(conversation, (_ask(survey, q, t, lead=t("reprompt")),))
    return _record(conversation, survey, item, answer, q, t, now)


def _record(
    conversation: Conversation,
    survey: SurveyState,
    item: Item,
    answer: Answer,
    q: Questionnaire,
    t: Texts,
    now: datetime,
) -> Step:
    answered = replace(
        survey,
        answers={**survey.answers, item.id: answer},
        position=survey.position + 1,
        updated_at=now,
    )
    answered, replies = _proceed(answered, q, t, now)
    if answered.status == COMPLETED:
        return Step(replace(conversation, survey=None), tuple(replies), (answered,))
    return Step(replace(conversation, survey=answered), tuple(replies))


def _applies(item: Item, answers: Mapping[str, Answer]) -> bool:
    if item.when is None:
        return True
    answer = answers.get(item.when.item)
    return answer is not None and answer.value in item.when.values


def _proceed(
    survey: SurveyState, q: Questionnaire, t: Texts, now: datetime
) -> tuple[SurveyState, list[Reply]]:
    """From the current position: pass intros and items whose condition fails, stop at the
    next question, or complete the survey."""
    intros: list[str] = []
    position = survey.position
    while position < len(q.items):
        item = q.items[position]
        if not _applies(item, survey.answers):
            position += 1
            continue
        if item.kind == "intro":
            intros.append(_text(item, survey.language))
            position += 1
            continue
        survey = replace(survey, position=position)
        return survey, [_ask(survey, q, t, lead="\n\n".join(intros))]
    done = replace(survey, position=len(q.items), status=COMPLETED, ended_at=now)
    return done, [Reply(_join("\n\n".join(intros), t("thanks")))]


def _text(item: Item, language: str) -> str:
    return item.text.get(language) or next(iter(item.text.values()))


def _progress(survey: SurveyState, q: Questionnaire) -> tuple[int, int]:
    number = 1 + sum(
        1 for item_id in survey.answers if (item := q.item(item_id)) and item.is_question
    )
    later = sum(
        1
        for item in q.items[survey.position + 1 :]
        if item.is_question
        and (
            item.when is None
            or item.when.item not in survey.answers
            or _applies(item, survey.answers)
        )
    )
    return number, number + later


def _ask(survey: SurveyState, q: Questionnaire, t: Texts, *, lead: str = "") -> Reply:
    """The current question as one message: progress, question, hint and choices."""
    item = q.items[survey.position]
    number, total = _progress(survey, q)
    question = _text(item, survey.language)
    prefix = f"{survey.token}:{item.id}"
    choices: list[Choice] = []
    numbered = ""
    if item.kind == "scale":
        hint = t("scale_hint_na") if item.not_applicable else t("scale_hint")
        choices = [Choice(t.scale[v], f"{PAYLOAD_PREFIX}{prefix}:{v}") for v in range(1, 6)]
    elif item.kind == "choice":
        hint = t("choice_hint")
        labels = [
            option.label.get(survey.language) or option.label["vi"] for option in item.options
        ]
        if len(labels) <= MAX_BUTTONS:
            choices = [
                Choice(label, f"{PAYLOAD_PREFIX}{prefix}:{number_}")
                for number_, label in enumerate(labels, start=1)
            ]
        else:
            numbered = "\n".join(f"{n}. {label}" for n, label in enumerate(labels, start=1))
    else:
        hint = t("text_hint")
        if item.optional:
            choices = [Choice(t("skip"), f"{PAYLOAD_PREFIX}{prefix}:{SKIP_PAYLOAD}")]
    if item.optional and item.kind != "text":
        hint = _join(hint, f'({t("skip")}: "{t("skip").lower()}")', sep=" ")
    body = _join(question, numbered, sep="\n")
    text = _join(lead, t("progress", number=number, total=total), sep="\n")
    return Reply(_join(text, _join(body, hint), sep="\n"), tuple(choices))


def _join(*parts: str, sep: str = "\n\n") -> str:
    return sep.join(part for part in parts if part)


def _interpret(item: Item, text: str, texts: Mapping[str, Texts]) -> Answer | None:
    """What typed text means for this item, or None when it is no answer to it."""
    folded = fold(text)
    if item.optional and folded in SKIP_WORDS:
        return Answer()
    if item.kind == "text":
        return Answer(text=text[:2000]) if text else None
    if item.kind == "scale":
        if item.not_applicable and folded in NOT_APPLICABLE_WORDS:
            return Answer(value=NOT_APPLICABLE)
        number = leading_number(folded)
        if number is not None:
            return Answer(value=number) if 1 <= number <= 5 else None
        for t in texts.values():
            for value, label in t.scale.items():
                if folded == fold(label):
                    return Answer(value=value)
        return None
    number = leading_number(folded)
    if number is not None:
        return Answer(value=number) if 1 <= number <= len(item.options) else None
    for option in item.options:
        if any(folded == fold(label) for label in option.label.values()):
            return Answer(value=option.value)
    return None


def _value_answer(item: Item, raw: str) -> Answer | None:
    """A button payload's value, checked against the item (payloads can be forged)."""
    if raw == SKIP_PAYLOAD:
        return Answer() if item.optional else None
    if not raw.isdigit():
        return None
    value = int(raw)
    if item.kind == "scale" and (
        1 <= value <= 5 or (value == NOT_APPLICABLE and item.not_applicable)
    ):
        return Answer(value=value)
    if item.kind == "choice" and 1 <= value <= len(item.options):
        return Answer(value=value)
    return None
