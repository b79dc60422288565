"""A questionnaire's messages without a citizen: the `flows show` transcript, and the check
that every message it can produce fits one Zalo message.

Both go through the engine itself, so what an operator previews and what is checked is what
a citizen gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from survey_flow.engine import (
    PAYLOAD_PREFIX,
    Conversation,
    CounterInfo,
    Message,
    Reply,
    Start,
    advance,
    render_question,
)
from survey_flow.questionnaire import (
    Item,
    Questionnaire,
    resolve,
)
from survey_flow.sipas import FACTORS
from survey_flow.sourcefile import FileProblems, Problem
from survey_flow.texts import Texts
from zalo_client.limits import BUTTON_TITLE_MAX, MAX_BUTTONS, MAX_TEXT_CHARS

# Leads the engine may put before a question it asks again (help, a reprompt, a resume…).
_LEADS = (
    "resume",
    "help",
    "reprompt",
    "already_answered",
    "stale_click_open",
    "language_switched",
    "language_not_offered",
)
_PREVIEW_COUNTER = CounterInfo("PREVIEW", "<counter>", "<unit>")
_PREVIEW_TOKEN = "preview"
_PREVIEW_COMMENT = "…"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def size(reply: Reply) -> int:
    """Characters the reply takes in the longest way Zalo may show it: its text, plus its
    buttons written out as a numbered list (ZALO_CHOICE_STYLE=text)."""
    listed = sum(len(f"\n{n}. {choice.title}") for n, choice in enumerate(reply.choices, 1))
    return len(reply.text) + listed


def fit_problems(q: Questionnaire, texts: Mapping[str, Texts]) -> list[Problem]:
    """Every message of `q` that could exceed one Zalo message, in its longest form."""
    problems: list[Problem] = []
    questions = len(q.questions)
    fixed_lead = max(
        (texts[language](key) for language in texts for key in _LEADS), key=len, default=""
    )
    for index, item in enumerate(q.items):
        if not item.is_question:
            continue
        for language in q.languages:
            lead = max(fixed_lead, _intros_before(q, index, language), key=len)
            reply = render_question(
                item,
                language=language,
                token="x" * 12,
                number=questions,
                total=questions,
                texts=texts[language],
                lead=lead,
            )
            problems += _reply_problems(
                reply, item.source or q.source, item.line, item.id, language
            )
    for language in q.languages:
        closing = "\n\n".join([*_intros_after_last(q, language), texts[language]("thanks")])
        if len(closing) > MAX_TEXT_CHARS:
            problems.append(
                Problem(
                    q.source,
                    0,
                    f"the {language} closing message (last intros and thanks) has "
                    f"{len(closing)} characters, over Zalo's {MAX_TEXT_CHARS}",
                )
            )
    return problems


def _reply_problems(
    reply: Reply, source: str, line: int, item_id: str, language: str
) -> list[Problem]:
    problems: list[Problem] = []
    if size(reply) > MAX_TEXT_CHARS:
        problems.append(
            Problem(
                source,
                line,
                f"item {item_id}: its {language} message can reach {size(reply)} characters "
                "(with the intros before it, or a help or error line), "
                f"over Zalo's {MAX_TEXT_CHARS}",
            )
        )
    if len(reply.choices) > MAX_BUTTONS:
        problems.append(
            Problem(
                source,
                line,
                f"item {item_id}: {len(reply.choices)} buttons, at most {MAX_BUTTONS}",
            )
        )
    for choice in reply.choices:
        if len(choice.title) > BUTTON_TITLE_MAX:
            problems.append(
                Problem(
                    source,
                    line,
                    f"item {item_id}: {language} button title {choice.title!r} is over "
                    f"Zalo's {BUTTON_TITLE_MAX} characters",
                )
            )
    return problems


def _intros_before(q: Questionnaire, index: int, language: str) -> str:
    """The longest run of intros the engine can send with the question at `index`: those
    since the last earlier question that is always asked."""
    intros: list[str] = []
    for item in reversed(q.items[:index]):
        if item.kind == "intro":
            intros.insert(0, _text(item, language))
        elif item.when is None:
            break
    return "\n\n".join(intros)


def _intros_after_last(q: Questionnaire, language: str) -> list[str]:
    intros: list[str] = []
    for item in reversed(q.items):
        if item.kind == "intro":
            intros.insert(0, _text(item, language))
        elif item.when is None:
            break
    return intros


def _text(item: Item, language: str) -> str:
    return item.text.get(language) or next(iter(item.text.values()))


def load_checked(name_or_path: str, texts: Mapping[str, Texts]) -> Questionnaire:
    """A shipped questionnaire or a file, parsed and checked to fit Zalo; FileProblems lists
    everything wrong, each problem with its line."""
    questionnaire = resolve(name_or_path)
    problems = fit_problems(questionnaire, texts)
    if problems:
        raise FileProblems(problems)
    return questionnaire


# --- the transcript of `flows show` --------------------------------------------------------


def transcript(q: Questionnaire, texts: Mapping[str, Texts], language: str) -> str:
    """The conversation a citizen has when answering every question, as plain text: each
    message with its buttons, the questions asked only under a condition marked."""
    if language not in q.languages:
        raise ValueError(f"{q.id} is not written in {language} (it has {', '.join(q.languages)})")
    conditional = sum(1 for item in q.questions if item.when is not None)
    lines = [
        f"{q.id} version {q.version} – {q.title.get(language, '')}".rstrip(" –"),
        f"language: {language}; {len(q.questions)} questions, {conditional} asked only under "
        "a condition; blocks: " + (", ".join(q.blocks) or "none"),
        "The path where every question is answered. Buttons are shown as [title]; "
        "<counter> and <unit> are filled in from the units file.",
    ]
    conversation = Conversation(language=language)
    step = advance(
        conversation,
        Start(
            code=_PREVIEW_COUNTER.code,
            counter=_PREVIEW_COUNTER,
            questionnaire=q,
            token=_PREVIEW_TOKEN,
        ),
        questionnaire=None,
        texts=texts,
        now=_EPOCH,
    )
    shown: set[str] = set()
    number = 0
    while True:
        survey = step.conversation.survey
        asked = q.items[survey.position] if survey is not None else None
        for index, reply in enumerate(step.replies):
            number += 1
            item = asked if index == len(step.replies) - 1 else None
            lines += ["", _heading(number, item, q, language)]
            if item is not None and item.when is not None:
                lines.append(_condition(item, q, texts[language], language))
            lines.append(reply.text)
            lines += [f"  [{choice.title}]" for choice in reply.choices]
        if survey is None or asked is None:
            break
        shown.add(asked.id)
        step = advance(
            step.conversation,
            Message(_answer_for(asked, q)),
            questionnaire=q,
            texts=texts,
            now=_EPOCH,
        )
    missed = [item for item in q.questions if item.id not in shown]
    if missed:
        lines += ["", "Not on this path (their conditions exclude each other):"]
        lines += [
            f"  {item.id} {_condition(item, q, texts[language], language)}" for item in missed
        ]
    return "\n".join(lines) + "\n"


def _heading(number: int, item: Item | None, q: Questionnaire, language: str) -> str:
    if item is None:
        return f"--- message {number}"
    detail = item.kind
    if item.factor is not None:
        detail += f", factor {item.factor} ({FACTORS[item.factor][language]})"
    if item.criterion is not None:
        detail += f", criterion {item.criterion}"
    if item.not_applicable:
        detail += ", 0 = not applicable"
    if item.optional:
        detail += ", optional"
    return f"--- message {number} · {item.id}: {detail}"


def _condition(item: Item, q: Questionnaire, t: Texts, language: str) -> str:
    assert item.when is not None
    target = q.item(item.when.item)
    assert target is not None
    names = []
    for value in sorted(item.when.values):
        if target.kind == "scale":
            label = t("not_applicable") if value == 0 else t.scale[value]
        else:
            option = target.options[value - 1]
            label = option.label.get(language) or next(iter(option.label.values()))
        names.append(f"{value} ({label})")
    return f"(asked only if {target.id} is {' or '.join(names)})"


def _answer_for(item: Item, q: Questionnaire) -> str:
    """What the preview answers: for an item later questions depend on, the value that asks
    the most of them; otherwise any valid answer."""
    if item.kind == "text":
        return _PREVIEW_COMMENT
    wanted = [later.when.values for later in q.items if later.when and later.when.item == item.id]
    candidates = sorted(item.valid_values())
    value = max(candidates, key=lambda v: (sum(v in values for values in wanted), -v))
    if not wanted:
        value = candidates[-1] if item.kind == "scale" else candidates[0]
    return f"{PAYLOAD_PREFIX}{_PREVIEW_TOKEN}:{item.id}:{value}"
