"""Property-based tests of the engine over every shipped questionnaire: whatever a citizen
sends (answers, junk, commands, stale clicks from older surveys, duplicates, pauses, new
scans, restarts, language switches) the state stays valid, stored answers stay in range,
every reply fits one Zalo message, and a click from another survey changes nothing."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey_flow.engine import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    PARTIAL,
    Answer,
    Conversation,
    Greet,
    Message,
    Reply,
    Start,
    Step,
    SurveyState,
)
from survey_flow.matching import command_in
from survey_flow.preview import size
from survey_flow.questionnaire import Item, Questionnaire
from tests.test_engine import COUNTERS, POLICY, SHIPPED, TEXTS, Chat
from zalo_client.limits import MAX_TEXT_CHARS

QUESTIONNAIRES = sorted(SHIPPED)
CODES = [*COUNTERS, "NOPE"]
PROGRESS = re.compile(r"^(?:Câu|Question) (\d+)/(\d+)$", re.MULTILINE)
SCALE_WORDS = [label for t in TEXTS.values() for label in t.scale.values()]
VOCAB = [
    *("làm lại", "lam lai", "restart", "hủy", "huy", "cancel", "hướng dẫn", "help", "?"),
    *("English", "english", "Tiếng Việt", "tieng viet", "vi", "en"),
    *("bỏ qua", "bo qua", "skip", "không", "khong", "no", "-"),
    *("0", "1", "2", "3", "4", "5", "6", "8", "5 sao", "4/5", "99", "không áp dụng", "n/a"),
    *("Có", "Yes", "Nhiều", "Ít", "Trên 60", "Khác", "#Q01", "#q02", "##", "sv:", "sv:x:y:z"),
    *SCALE_WORDS,
]

actions = st.one_of(
    st.tuples(st.just("answer"), st.integers(0, 10**6)),
    st.tuples(st.just("tap"), st.integers(0, 10**6)),
    st.tuples(st.just("say"), st.sampled_from(VOCAB)),
    st.tuples(st.just("junk"), st.text(max_size=40)),
    st.tuples(
        st.just("scan"),
        st.tuples(st.sampled_from(CODES), st.sampled_from(QUESTIONNAIRES), st.booleans()),
    ),
    st.tuples(st.just("greet"), st.none()),
    st.tuples(st.just("wait"), st.integers(0, 45)),
    st.tuples(st.just("housekeep"), st.none()),
    st.tuples(st.just("again"), st.none()),
    st.tuples(
        st.just("forged"),
        st.tuples(st.integers(0, 10**6), st.sampled_from(["0", "1", "5", "6", "skip", "-1", ""])),
    ),
)


# --- what an input means in the state the chat is in ---------------------------------------


def typed_answers(item: Item) -> list[str]:
    """Valid answers to `item` as a citizen may type them."""
    if item.kind == "text":
        forms = ["Cán bộ rất nhiệt tình", "x" * 2500]
    elif item.kind == "scale":
        forms = [str(v) for v in range(1, 6)] + [f"{v} sao" for v in range(1, 6)] + SCALE_WORDS
        if item.not_applicable:
            forms += ["0", "không áp dụng"]
    else:
        forms = [str(option.value) for option in item.options]
        forms += [label for option in item.options for label in option.label.values()]
    if item.optional:
        forms += ["bỏ qua", "skip"]
    return forms


def event_for(chat: Chat, action: tuple[str, Any], previous: Any) -> Any:
    """The engine event an action stands for (a scan is returned as its arguments)."""
    kind, arg = action
    q, survey = chat.questionnaire, chat.survey
    if kind == "answer":
        if q is None or survey is None:
            return Message("5")
        forms = typed_answers(q.items[survey.position])
        return Message(forms[arg % len(forms)])
    if kind == "tap":
        with_buttons = [reply for reply in chat.history if reply.choices]
        if not with_buttons:
            return Message("4")
        reply = with_buttons[arg % len(with_buttons)]
        return Message(reply.choices[(arg // len(with_buttons)) % len(reply.choices)].payload)
    if kind in ("say", "junk"):
        return Message(arg)
    if kind == "greet":
        return Greet()
    if kind == "again":
        return previous if previous is not None else Greet()
    if kind == "forged":
        number, value = arg
        token = survey.token if survey is not None and number % 4 else f"tok{number % 7:03d}"
        item_id = "access"
        if q is not None and survey is not None:
            # Mostly the current question, where a forged value would be taken if allowed.
            index = survey.position if number % 3 else number % len(q.items)
            item_id = q.items[index].id
        return Message(f"sv:{token}:{item_id}:{value}")
    return action


# --- the invariants ------------------------------------------------------------------------


def applies(item: Item, answers: dict[str, Answer] | Any) -> bool:
    if item.when is None:
        return True
    answer = answers.get(item.when.item)
    return answer is not None and answer.value in item.when.values


def check_answers(q: Questionnaire, survey: SurveyState) -> None:
    for item_id, answer in survey.answers.items():
        item = q.item(item_id)
        assert item is not None and item.is_question, item_id
        assert applies(item, survey.answers), item_id
        if answer.text is not None:
            assert item.kind == "text" and answer.value is None
            assert 0 < len(answer.text) <= 2000
        elif answer.value is None:
            assert item.optional, f"{item_id} skipped but required"
        else:
            assert item.kind in ("scale", "choice")
            assert answer.value in item.valid_values(), (item_id, answer)
            if item.kind == "scale":
                assert 0 <= answer.value <= 5
                assert answer.value != 0 or item.not_applicable


def check_open(q: Questionnaire, survey: SurveyState) -> None:
    assert survey.status == ACTIVE
    assert 0 <= survey.position < len(q.items)
    current = q.items[survey.position]
    assert current.is_question and applies(current, survey.answers)
    assert current.id not in survey.answers
    for item in q.items[survey.position + 1 :]:
        assert item.id not in survey.answers
    for item in q.items[: survey.position]:
        if item.is_question and not item.optional and applies(item, survey.answers):
            assert item.id in survey.answers, f"passed {item.id} unanswered"


def check_closed(q: Questionnaire, survey: SurveyState) -> None:
    assert survey.status in (COMPLETED, PARTIAL, CANCELLED)
    assert survey.ended_at is not None
    if survey.status == COMPLETED:
        for item in q.items:
            if item.is_question and not item.optional and applies(item, survey.answers):
                assert item.id in survey.answers, f"completed without {item.id}"


def check_reply(reply: Reply, open_survey: SurveyState | None, q: Questionnaire | None) -> None:
    assert reply.text.strip()
    assert len(reply.text) <= MAX_TEXT_CHARS
    assert size(reply) <= MAX_TEXT_CHARS
    assert len(reply.choices) <= 5
    for choice in reply.choices:
        assert 0 < len(choice.title) <= 20
        assert len(choice.payload) <= 1000
        # Buttons only ever belong to the question the open survey is at now.
        assert open_survey is not None and q is not None
        _, token, item_id, _ = choice.payload.split(":")
        assert token == open_survey.token
        assert item_id == q.items[open_survey.position].id
    for number, total in PROGRESS.findall(reply.text):
        assert 1 <= int(number) <= int(total)


def check_step(chat: Chat, before: Conversation, event: Any, step: Step, closed: set[str]) -> None:
    assert step.replies, "every input is answered"
    after = step.conversation.survey
    q_after = chat.questionnaire
    for reply in step.replies:
        check_reply(reply, after, q_after)
    for survey in step.closed:
        assert survey.token not in closed, "a survey is closed once"
        closed.add(survey.token)
        q = chat.questionnaires[(survey.questionnaire_id, survey.questionnaire_version)]
        check_closed(q, survey)
        check_answers(q, survey)
    if after is not None:
        assert q_after is not None
        assert after.token not in closed, "the open survey is never a closed one"
        assert (after.questionnaire_id, after.questionnaire_version) == (
            q_after.id,
            q_after.version,
        )
        check_open(q_after, after)
        check_answers(q_after, after)

    old = before.survey
    if old is None:
        return
    kept = [s for s in (after, *step.closed) if s is not None and s.token == old.token]
    assert len(kept) <= 1
    is_click = isinstance(event, Message) and event.text.strip().startswith("sv:")
    foreign = is_click and event.text.strip().split(":")[1:2] != [old.token]
    for survey in kept:
        if foreign or not isinstance(event, Message):
            assert survey.answers == old.answers, "a click from another survey changed answers"
        elif survey is after and command_in(event.text) == "restart":
            assert survey.answers == {}
        else:
            assert len(set(survey.answers) - set(old.answers)) <= 1, "one answer per message"
            for item_id, answer in old.answers.items():
                assert survey.answers.get(item_id) == answer, "an earlier answer was changed"


def run(actions_list: list[tuple[str, Any]], language: str) -> Chat:
    chat = Chat(language=language)
    closed: set[str] = set()
    previous: Any = None
    for action in actions_list:
        if action[0] == "wait":
            chat.wait(minutes=action[1])
            continue
        survey = chat.survey
        if action[0] == "housekeep":
            # The server's job closes idle surveys as partial, between two messages.
            if survey is not None and chat.now - survey.updated_at > POLICY.idle:
                survey = replace(survey, status=PARTIAL, ended_at=chat.now)
                chat.conversation = replace(chat.conversation, survey=survey)
                closed.add(survey.token)
            continue
        event = event_for(chat, action, previous)
        before = chat.conversation
        if isinstance(event, tuple) and event[0] == "scan":
            code, name, repeat = event[1]
            step = chat.scan(code, name, repeat=repeat)
            event = Start(code, None, None, "")
        else:
            step = chat.send(event)
        check_step(chat, before, event, step, closed)
        previous = event if not isinstance(event, Start) else None
    return chat


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(QUESTIONNAIRES),
    st.sampled_from(["vi", "en"]),
    st.lists(actions, min_size=1, max_size=40),
)
def test_any_sequence_of_inputs_keeps_the_conversation_valid(
    first: str, language: str, steps: list[tuple[str, Any]]
) -> None:
    run([("scan", ("Q01", first, False)), *steps], language)


@settings(deadline=None)
@given(
    st.sampled_from(QUESTIONNAIRES),
    st.sampled_from(["vi", "en"]),
    st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), min_size=60, max_size=60),
)
def test_answering_every_question_completes_the_survey(
    name: str, language: str, choices: list[tuple[bool, int]]
) -> None:
    """Any valid answers, tapped or typed, complete the survey; "Câu n/m" counts up by one
    and m never grows, ending at n/n."""
    chat = Chat(language=language)
    chat.scan("Q01", name)
    q = SHIPPED[name]
    seen: list[tuple[int, int]] = []
    for tap, seed in choices:
        survey = chat.survey
        if survey is None:
            break
        (number, total) = map(int, PROGRESS.findall(chat.last.text)[-1])
        seen.append((number, total))
        item = q.items[survey.position]
        if tap and chat.last.choices:
            chat.say(chat.last.choices[seed % len(chat.last.choices)].payload)
        else:
            forms = typed_answers(item)
            chat.say(forms[seed % len(forms)])
    assert chat.survey is None, "not finished after 60 answers"
    (done,) = chat.closed
    assert done.status == COMPLETED
    check_closed(q, done)
    check_answers(q, done)
    assert [n for n, _ in seen] == list(range(1, len(seen) + 1))
    assert all(later <= earlier for (_, earlier), (_, later) in pairwise(seen))
    assert seen[-1][0] == seen[-1][1]


def _mangle(label: str, data: st.DataObject) -> str:
    """A label as a hurried citizen types it: case, spaces, diacritics and a full stop."""
    if data.draw(st.booleans()):
        label = unicodedata.normalize("NFD", label.replace("đ", "d").replace("Đ", "D"))
        label = "".join(ch for ch in label if not unicodedata.combining(ch))
    words = label.split()
    spaces = [" " * data.draw(st.integers(1, 3)) for _ in words]
    label = "".join(word + space for word, space in zip(words, spaces, strict=True)).strip()
    label = "".join(ch.upper() if data.draw(st.booleans()) else ch.lower() for ch in label)
    return label + data.draw(st.sampled_from(["", ".", "!", " "]))


@settings(deadline=None)
@given(st.sampled_from(QUESTIONNAIRES), st.data())
def test_a_typed_label_means_what_tapping_its_button_means(name: str, data: st.DataObject) -> None:
    q = SHIPPED[name]
    item = data.draw(st.sampled_from([i for i in q.items if i.kind in ("scale", "choice")]))
    alone = replace(q, items=(replace(item, when=None),))
    language = data.draw(st.sampled_from(list(q.languages)))
    if item.kind == "scale":
        value = data.draw(st.integers(1, 5))
        label = TEXTS[data.draw(st.sampled_from(["vi", "en"]))].scale[value]
    else:
        option = data.draw(st.sampled_from(list(item.options)))
        value = option.value
        label = option.label[data.draw(st.sampled_from(list(option.label)))]
    typed = _mangle(label, data)

    tapped, written = Chat(language=language), Chat(language=language)
    for chat in (tapped, written):
        chat.scan("Q01", alone)
    tapped.say(tapped.last.choices[value - 1].payload if tapped.last.choices else str(value))
    written.say(typed)
    assert written.closed and written.closed[0].answers == tapped.closed[0].answers, typed
    assert tapped.closed[0].answers[item.id] == Answer(value=value)
