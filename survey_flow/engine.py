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
from enum import StrEnum

from survey_flow.matching import (
    SKIP_WORDS,
    ReadingKind,
    command_in,
    fold,
    leading_number,
    read_choice,
    read_scale,
)
from survey_flow.questionnaire import MAX_BUTTONS, NOT_APPLICABLE, Item, Option, Questionnaire
from survey_flow.states import StartMethod, SurveyStatus
from survey_flow.texts import Texts, texts_for
from zalo_client.limits import BUTTON_TITLE_MAX

PAYLOAD_PREFIX = "sv:"
SKIP_PAYLOAD = "skip"
TEXT_ANSWER_MAX = 2000
_QUOTED = 40  # a comment named back when it is corrected is cut to this many characters
_NOTE_WORDS = 5  # typed text of this many words (4 with a "?") that answers nothing is a note
ACTIVE, COMPLETED, PARTIAL, CANCELLED = (
    SurveyStatus.ACTIVE,
    SurveyStatus.COMPLETED,
    SurveyStatus.PARTIAL,
    SurveyStatus.CANCELLED,
)


class Refusal(StrEnum):
    """Why a start code did not start a survey; each has its text in the locales."""

    TOO_MANY_STARTS = "too_many_starts"
    VERIFIED_REQUIRED = "verified_required"
    CODE_EXPIRED = "code_expired"
    CODE_USED = "code_used"
    OTHER_OA = "other_oa"  # a counter of another Official Account's unit (many OAs)


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
    status: SurveyStatus = SurveyStatus.ACTIVE
    repeat: bool = False
    ended_at: datetime | None = None
    method: StartMethod = StartMethod.STATIC


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
    """`#CODE` was sent; the caller looked the counter up (None when unknown) and verified
    the code: `method` is how it proves presence, `refusal` why it may not start a survey
    (a new survey only: the counter's open survey is resumed whatever the verdict)."""

    code: str
    counter: CounterInfo | None
    questionnaire: Questionnaire | None
    token: str
    repeat: bool = False
    method: StartMethod = StartMethod.STATIC
    refusal: Refusal | None = None


@dataclass(frozen=True)
class FormAnswer:
    """An answer given on a form (the counter's tablet, the web link) rather than typed in a
    chat: the item it answers and the answer itself (a skip has neither value nor text).
    Nothing in it is read as a command or matched as words; it is checked against the item
    like a button payload, since a form's fields can be forged."""

    token: str
    item_id: str
    answer: Answer


Event = Greet | Message | Start | FormAnswer


@dataclass(frozen=True)
class Policy:
    """How a deployment runs surveys: when an idle one expires, and whether choices reach
    the citizen as a numbered list answered by typing the number (ZALO_CHOICE_STYLE=text)
    rather than as buttons."""

    idle: timedelta = timedelta(minutes=30)
    numbered_choices: bool = False
    # Where the privacy notice is published: a survey's first message links to it (what is
    # stored and why, before the citizen answers). None: no consent line (tests, previews).
    privacy_notice_url: str | None = None


@dataclass(frozen=True)
class Choice:
    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """One message: its text and choices, and the id of the item it asks when it is a
    question (None for any other message)."""

    text: str
    choices: tuple[Choice, ...] = ()
    asks: str | None = None


@dataclass(frozen=True)
class Step:
    """The outcome of one event: the new conversation, the replies to send, the surveys that
    closed, and what the citizen wrote that is no answer (a question about their dossier, a
    complaint), in a survey or outside one, for the caller to open a case of and acknowledge
    (outside a survey the step then has no reply of its own)."""

    conversation: Conversation
    replies: tuple[Reply, ...]
    closed: tuple[SurveyState, ...] = ()
    notes: tuple[str, ...] = ()


def parse_start_code(text: str) -> str | None:
    """`#hvt01` → `HVT01`; anything else → None.

    The same shape holds a counter code, a rotating code shown at the counter (`#HVT01-K7KQF`)
    and a one-time visit code (`#K7KQ2-M4XPD`); spaces typed around a dash are dropped. Which
    one it is, and whether it is valid, is the caller's to say (in the `Start` event).
    """
    stripped = text.strip()
    if not stripped.startswith("#") or stripped.startswith("##"):
        return None
    code = "-".join(part.strip() for part in stripped[1:].split("-")).upper()
    if not code or len(code) > 40 or not all(ch.isalnum() or ch in "-_" for ch in code):
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
    The conversation may hold a survey closed since as partial (expired by a housekeeping
    job): the citizen is then told it expired, and it is not returned in `closed` again.
    """
    step = _turn(
        conversation, event, questionnaire=questionnaire, texts=texts, now=now, policy=policy
    )
    survey = step.conversation.survey
    if survey is None:
        return step
    # A survey this event started has the Start's questionnaire; any other, the one passed.
    started = isinstance(event, Start) and event.token == survey.token
    q = event.questionnaire if isinstance(event, Start) and started else questionnaire
    return _offer_not_applicable(step, survey, q, _texts(survey.language, texts), policy)


def _offer_not_applicable(
    step: Step, survey: SurveyState, q: Questionnaire | None, t: Texts, policy: Policy
) -> Step:
    """A question that allows "không áp dụng" is followed by a short message with that one
    button: its five levels already take the five buttons Zalo allows in a message.

    Not where choices are a numbered list typed back: a second list would make "1" mean both
    "Không áp dụng" and "Rất không hài lòng". There the hint says to type 0, as it always does.
    """
    if policy.numbered_choices or q is None or not step.replies:
        return step
    item = q.items[survey.position]
    if not item.not_applicable or step.replies[-1].asks != item.id:
        return step
    payload = f"{PAYLOAD_PREFIX}{survey.token}:{item.id}:{NOT_APPLICABLE}"
    offer = Reply(t("not_applicable_offer"), (Choice(t("not_applicable"), payload),))
    return replace(step, replies=(*step.replies, offer))


def _turn(
    conversation: Conversation,
    event: Event,
    *,
    questionnaire: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
    policy: Policy,
) -> Step:
    """`advance` but for the "không áp dụng" button."""
    survey = conversation.survey
    if survey is not None and survey.status != ACTIVE:
        # Closed meanwhile (by a housekeeping job expiring idle surveys): forget it, and tell
        # the citizen why unless they are starting a new survey anyway.
        conversation = replace(conversation, survey=None)
        if survey.status == PARTIAL and not isinstance(event, Start):
            t = _texts(conversation.language, texts)
            return Step(conversation, (Reply(t("expired")),))
        survey, questionnaire = None, None
    if survey is not None and questionnaire is None:
        raise ValueError("an open survey needs its questionnaire")
    if survey is not None and now - survey.updated_at > policy.idle:
        expired = replace(survey, status=PARTIAL, ended_at=now)
        idle = replace(conversation, survey=None)
        if isinstance(event, Start):
            step = _start(idle, event, None, texts, now, policy.privacy_notice_url)
            return replace(step, closed=(expired, *step.closed))
        t = _texts(conversation.language, texts)
        return Step(idle, (Reply(t("expired")),), (expired,))
    if survey is not None:
        # Anything the citizen sends while a survey is open keeps it alive.
        conversation = replace(conversation, survey=replace(survey, updated_at=now))

    if isinstance(event, Start):
        return _start(conversation, event, questionnaire, texts, now, policy.privacy_notice_url)
    if isinstance(event, Greet):
        if conversation.survey is not None and questionnaire is not None:
            t = _texts(conversation.survey.language, texts)
            return Step(
                conversation, (_ask(conversation.survey, questionnaire, t, lead=t("resume")),)
            )
        return _greet(conversation, texts)
    if isinstance(event, FormAnswer):
        return _form_answer(conversation, event, questionnaire, texts, now)
    return _message(conversation, event.text, questionnaire, texts, now)


def _texts(language: str, texts: Mapping[str, Texts]) -> Texts:
    return texts_for(texts, language)


def _greet(conversation: Conversation, texts: Mapping[str, Texts], lead: str = "") -> Step:
    t = _texts(conversation.language, texts)
    return Step(conversation, (Reply(_join(lead, t("greeting"))),))


def _start(
    conversation: Conversation,
    event: Start,
    open_questionnaire: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
    privacy_notice_url: str | None,
) -> Step:
    t = _texts(conversation.language, texts)
    open_survey = conversation.survey
    if event.counter is None or event.questionnaire is None:
        return Step(conversation, (Reply(t("unknown_counter", code=event.code)),))
    if (
        open_survey is not None
        and open_questionnaire is not None
        and open_survey.counter.code == event.counter.code
    ):
        # The same QR code again: carry on with the questionnaire the survey started with,
        # even when the counter has been given another one since.
        t = _texts(open_survey.language, texts)
        return Step(conversation, (_ask(open_survey, open_questionnaire, t, lead=t("resume")),))
    if event.refusal is not None:
        refused = t(f"refused_{event.refusal}", counter=event.counter.name)
        return Step(conversation, (Reply(refused),))

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
        method=event.method,
    )
    t = _texts(language, texts)
    survey, replies = _proceed(survey, q, t, now)
    count = _progress(survey, q)[1] if survey.status == ACTIVE else 0
    intro = t("start", counter=event.counter.name, unit=event.counter.unit_name, count=count)
    if event.repeat:
        intro = _join(intro, t("repeat_notice"))
    if privacy_notice_url is not None:
        intro = _join(intro, t("consent", url=privacy_notice_url))
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
    stripped = text.strip()
    if stripped.startswith(PAYLOAD_PREFIX):
        return _click(conversation, stripped, q, texts, now)

    command = command_in(stripped)
    if command is not None and command.startswith("lang:"):
        language = command.removeprefix("lang:")
        conversation = replace(conversation, language=language)
        t = _texts(language, texts)
        if survey is None or q is None:
            return _greet(conversation, texts, lead=t("language_switched"))
        if language in q.languages:
            survey = replace(survey, language=language)
            lead = t("language_switched")
        else:
            lead = t("language_not_offered")
        conversation = replace(conversation, survey=survey)
        return Step(conversation, (_ask(survey, q, _texts(survey.language, texts), lead=lead),))

    if survey is None or q is None:
        t = _texts(conversation.language, texts)
        if command == "help":
            return Step(conversation, (Reply(_join(t("help"), t("greeting"))),))
        if command is None and _is_a_note(stripped):
            # A question or a complaint to the OA: the caller opens a case and replies with
            # its reference (a greeting would ignore what the citizen asked).
            return Step(conversation, (), notes=(stripped[:TEXT_ANSWER_MAX],))
        return _greet(conversation, texts)

    t = _texts(survey.language, texts)
    if command == "cancel":
        cancelled = replace(survey, status=CANCELLED, ended_at=now)
        return Step(replace(conversation, survey=None), (Reply(t("cancelled")),), (cancelled,))
    if command == "restart":
        fresh = replace(survey, position=0, answers={})
        fresh, replies = _proceed(fresh, q, t, now)
        return Step(replace(conversation, survey=fresh), (Reply(t("restarted")), *replies))
    if command == "help":
        return Step(conversation, (_ask(survey, q, t, lead=t("help")),))
    if command == "back":
        return _back(conversation, survey, q, t)

    item = q.items[survey.position]
    answer = _interpret(item, stripped)
    if isinstance(answer, Unsure):
        if answer.lead == "reprompt" and _is_a_note(stripped):
            # Not an answer but a message for the ward: kept, and the question asked again.
            reply = _ask(survey, q, t, lead=t("noted"))
            return Step(conversation, (reply,), notes=(stripped[:TEXT_ANSWER_MAX],))
        return Step(conversation, (_ask_back(survey, q, t, answer),))
    return _record(conversation, survey, item, answer, q, t, now)


def _is_a_note(text: str) -> bool:
    """Whether text that answers no question reads as a message of its own: a question
    (`cho hỏi hồ sơ bao giờ có kết quả?`) or a sentence (`cán bộ không nhiệt tình`), not a
    slip (`xin chào`, `hài`, `6`). Only asked of text no answer was read in."""
    words = len(text.split())
    return words >= _NOTE_WORDS or (words >= _NOTE_WORDS - 1 and ("?" in text or "？" in text))


def _back(conversation: Conversation, survey: SurveyState, q: Questionnaire, t: Texts) -> Step:
    """`sửa`: the last answer is removed and its question asked again, saying so."""
    answered = [
        index for index, item in enumerate(q.items[: survey.position]) if item.id in survey.answers
    ]
    if not answered:
        return Step(conversation, (_ask(survey, q, t, lead=t("nothing_to_correct")),))
    index = answered[-1]
    item = q.items[index]
    removed = survey.answers[item.id]
    if removed.text is not None:
        said = removed.text if len(removed.text) <= _QUOTED else removed.text[:_QUOTED] + "…"
    elif removed.value is None:
        said = t("skip")
    else:
        said = _value_label(item, removed.value, survey.language, t)
    back = replace(
        survey,
        position=index,
        answers={item_id: a for item_id, a in survey.answers.items() if item_id != item.id},
    )
    reply = _ask(back, q, t, lead=t("back", answer=said))
    return Step(replace(conversation, survey=back), (reply,))


def _click(
    conversation: Conversation,
    payload: str,
    q: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
) -> Step:
    """A tapped button. Its token says which survey it belongs to; only the open survey's
    current question takes the answer, anything else is answered and changes nothing."""
    survey = conversation.survey
    parts = payload.split(":")
    token, item_id, raw_value = (parts[1], parts[2], parts[3]) if len(parts) == 4 else ("", "", "")
    if survey is None or q is None:
        return Step(conversation, (Reply(_texts(conversation.language, texts)("stale_click")),))
    t = _texts(survey.language, texts)
    if token != survey.token:
        return Step(conversation, (_ask(survey, q, t, lead=t("stale_click_open")),))
    item = q.items[survey.position]
    if item_id != item.id:
        lead = t("already_answered") if item_id in survey.answers else t("reprompt")
        return Step(conversation, (_ask(survey, q, t, lead=lead),))
    answer = _value_answer(item, raw_value)
    if answer is None:
        return Step(conversation, (_ask(survey, q, t, lead=t("reprompt")),))
    return _record(conversation, survey, item, answer, q, t, now)


def _form_answer(
    conversation: Conversation,
    event: FormAnswer,
    q: Questionnaire | None,
    texts: Mapping[str, Texts],
    now: datetime,
) -> Step:
    """An answer from a form: taken only by the open survey's current question, and only
    when it is a valid answer to it; anything else asks the question again."""
    survey = conversation.survey
    if survey is None or q is None:
        return Step(conversation, (Reply(_texts(conversation.language, texts)("stale_click")),))
    t = _texts(survey.language, texts)
    item = q.items[survey.position]
    answer = _form_value(item, event.answer)
    if event.token != survey.token or event.item_id != item.id or answer is None:
        return Step(conversation, (_ask(survey, q, t, lead=t("reprompt")),))
    return _record(conversation, survey, item, answer, q, t, now)


def _form_value(item: Item, given: Answer) -> Answer | None:
    """The form's answer as the item may hold it, or None when it may not."""
    if given.value is None and not (given.text or "").strip():
        return Answer() if item.optional else None
    if item.kind == "text":
        text = (given.text or "").strip()
        return Answer(text=text[:TEXT_ANSWER_MAX]) if given.value is None else None
    if given.text is not None or given.value not in item.valid_values():
        return None
    return Answer(value=given.value)


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
    answered, replies = _proceed(answered, q, t, now, lead=_recorded(item, answer, survey, t))
    if answered.status == COMPLETED:
        return Step(replace(conversation, survey=None), tuple(replies), (answered,))
    return Step(replace(conversation, survey=answered), tuple(replies))


def _applies(item: Item, answers: Mapping[str, Answer]) -> bool:
    if item.when is None:
        return True
    answer = answers.get(item.when.item)
    return answer is not None and answer.value in item.when.values


def _proceed(
    survey: SurveyState, q: Questionnaire, t: Texts, now: datetime, *, lead: str = ""
) -> tuple[SurveyState, list[Reply]]:
    """From the current position: pass intros and items whose condition fails, stop at the
    next question, or complete the survey. `lead` goes first (what was just recorded)."""
    intros: list[str] = [lead] if lead else []
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


def _label(option: Option, language: str) -> str:
    return option.label.get(language) or next(iter(option.label.values()))


def _progress(survey: SurveyState, q: Questionnaire) -> tuple[int, int]:
    """(n, m) of "Câu n/m" for the current question: m counts the later questions that may
    still be asked, so it can drop once an answer rules conditional questions out."""
    number = 1 + sum(
        1 for item_id in survey.answers if (item := q.item(item_id)) and item.is_question
    )
    possible = {q.items[survey.position].id}
    later = 0
    for item in q.items[survey.position + 1 :]:
        if item.when is None:
            asked = True
        elif item.when.item in survey.answers:
            asked = _applies(item, survey.answers)
        else:
            asked = item.when.item in possible
        if asked:
            possible.add(item.id)
            later += item.is_question
    return number, number + later


def _ask(survey: SurveyState, q: Questionnaire, t: Texts, *, lead: str = "") -> Reply:
    """The current question as one message: progress, question, hint and choices."""
    number, total = _progress(survey, q)
    return render_question(
        q.items[survey.position],
        language=survey.language,
        token=survey.token,
        number=number,
        total=total,
        texts=t,
        lead=lead,
    )


def render_question(
    item: Item,
    *,
    language: str,
    token: str,
    number: int,
    total: int,
    texts: Texts,
    lead: str = "",
) -> Reply:
    """One question as the citizen sees it: lead, "Câu n/m", the question, choices, hints.

    Up to 5 options are buttons; more are a numbered list. An optional item gets a Skip
    button when there is room for one, else a hint to type "bỏ qua".
    """
    t = texts
    prefix = f"{PAYLOAD_PREFIX}{token}:{item.id}:"
    choices: list[Choice] = []
    listed = ""
    hints: list[str] = []
    if item.kind == "scale":
        hints.append(t("scale_hint_na") if item.not_applicable else t("scale_hint"))
        choices = [Choice(t.scale[value], f"{prefix}{value}") for value in range(1, 6)]
    elif item.kind == "choice":
        labels = [_label(option, language) for option in item.options]
        if len(labels) <= MAX_BUTTONS:
            hints.append(t("choice_hint"))
            choices = [
                Choice(label, f"{prefix}{value}") for value, label in enumerate(labels, start=1)
            ]
        else:
            hints.append(t("list_hint"))
            listed = "\n".join(f"{value}. {label}" for value, label in enumerate(labels, start=1))
    else:
        hints.append(t("text_hint") if item.optional else t("text_required_hint"))
    if item.optional:
        if item.kind == "text" or (item.kind == "choice" and 0 < len(choices) < MAX_BUTTONS):
            choices.append(Choice(t("skip"), f"{prefix}{SKIP_PAYLOAD}"))
        else:
            hints.append(t("skip_hint"))
    body = _join(t("progress", number=number, total=total), _text(item, language), listed, sep="\n")
    return Reply(_join(lead, body, " ".join(hints)), tuple(choices), asks=item.id)


def _join(*parts: str, sep: str = "\n\n") -> str:
    return sep.join(part for part in parts if part)


@dataclass(frozen=True)
class Unsure:
    """Typed text that is not clearly one answer: what to say before asking again, and the
    two values it named when it named two (asked back as "A or B?")."""

    lead: str
    between: tuple[int, int] | None = None


def _interpret(item: Item, text: str) -> Answer | Unsure:
    """What typed text means for this item, or why it is not taken as an answer.

    survey_flow/matching.py reads it (`rat hai long`, `ko hài lòng`, `5 sao`, `hài lòg`, 👍);
    nothing it is unsure of is recorded. An option's own words win over the skip words
    (`Không` is an answer).
    """
    folded = fold(text)
    skip_word = folded in SKIP_WORDS
    if item.kind == "text":
        if item.optional and skip_word:
            return Answer()
        return Answer(text=text[:TEXT_ANSWER_MAX]) if text else Unsure("reprompt")
    if item.kind == "scale":
        reading = read_scale(text)
    else:
        reading = read_choice(text, [tuple(option.label.values()) for option in item.options])
        # The Skip button comes after the options; where buttons are shown as a numbered
        # list (ZALO_CHOICE_STYLE=text), its number means skip.
        skip_number = len(item.options) + 1
        if item.optional and leading_number(folded) == skip_number <= MAX_BUTTONS:
            return Answer()
    kind = reading.kind
    if kind == ReadingKind.VALUE and reading.values[0] in item.valid_values():
        return Answer(value=reading.values[0])
    if item.optional and (skip_word or kind == ReadingKind.SKIP):
        return Answer()
    if item.not_applicable and kind in (ReadingKind.NOT_APPLICABLE, ReadingKind.DONT_KNOW):
        return Answer(value=NOT_APPLICABLE)
    if kind == ReadingKind.BETWEEN:
        low, high = reading.values
        return Unsure("which_of_two", (low, high))
    if kind == ReadingKind.SKIP:
        return Unsure("cannot_skip")
    if item.kind == "scale" and kind == ReadingKind.DONT_KNOW:
        return Unsure("dont_know")
    if item.kind == "scale" and kind == ReadingKind.YES_NO:
        return Unsure("yes_no")
    return Unsure("reprompt")


def _ask_back(survey: SurveyState, q: Questionnaire, t: Texts, unsure: Unsure) -> Reply:
    """The reply to text not taken as an answer: "A or B?" with those two as buttons, or
    the question again after a line saying why."""
    if unsure.between is None:
        return _ask(survey, q, t, lead=t(unsure.lead))
    item = q.items[survey.position]
    first, second = (_value_label(item, value, survey.language, t) for value in unsure.between)
    text = t(
        "which_of_two",
        first=first,
        first_value=unsure.between[0],
        second=second,
        second_value=unsure.between[1],
    )
    prefix = f"{PAYLOAD_PREFIX}{survey.token}:{item.id}:"
    choices = tuple(
        Choice(label, f"{prefix}{value}")
        for label, value in zip((first, second), unsure.between, strict=True)
    )
    if any(len(choice.title) > BUTTON_TITLE_MAX for choice in choices):
        choices = ()  # a long option of a numbered list: the text names both with numbers
    return Reply(text, choices)


def _value_label(item: Item, value: int, language: str, t: Texts) -> str:
    """How a value of a scale or choice item is called: `Hài lòng`, an option's words."""
    if item.kind == "scale":
        return t("not_applicable") if value == NOT_APPLICABLE else t.scale[value]
    return _label(item.options[value - 1], language)


def _recorded(item: Item, answer: Answer, survey: SurveyState, t: Texts) -> str:
    """A few words saying what was just recorded, sent before the next question."""
    if answer.text is not None:
        return t("recorded_comment")
    if answer.value is None:
        return t("recorded_skip")
    return t("recorded", answer=_value_label(item, answer.value, survey.language, t))


def _value_answer(item: Item, raw: str) -> Answer | None:
    """A button payload's value, checked against the item (payloads can be forged)."""
    if raw == SKIP_PAYLOAD:
        return Answer() if item.optional else None
    if not raw.isdigit() or not raw.isascii():
        return None
    value = int(raw)
    if item.kind in ("scale", "choice") and value in item.valid_values():
        return Answer(value=value)
    return None
