"""The conversation engine, called directly: what a citizen may type or tap, and what the
stored survey becomes. `Chat` plays the caller (bot/conversations.py) without a database, and
is shared with the property tests in test_engine_properties.py."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from survey_flow.engine import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    PARTIAL,
    Answer,
    Conversation,
    CounterInfo,
    Event,
    Greet,
    Message,
    Policy,
    Reply,
    Start,
    Step,
    SurveyState,
    advance,
)
from survey_flow.questionnaire import Questionnaire, load_shipped, parse_questionnaire, shipped_ids
from survey_flow.texts import load_texts

TEXTS = load_texts()
POLICY = Policy(idle=timedelta(minutes=30))
T0 = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)
SHIPPED = {name: load_shipped(name) for name in shipped_ids()}
COUNTERS = {
    code: CounterInfo(code, f"Quầy {code}", "UBND phường Hoàng Văn Thụ")
    for code in ("Q01", "Q02", "Q03")
}


@dataclass
class Chat:
    """One citizen and the engine, with the bookkeeping bot/conversations.py does: the open
    survey's questionnaire is looked up by id and version, closed surveys are kept."""

    language: str = "vi"
    now: datetime = T0
    conversation: Conversation = field(init=False)
    questionnaires: dict[tuple[str, str], Questionnaire] = field(default_factory=dict)
    closed: list[SurveyState] = field(default_factory=list)
    history: list[Reply] = field(default_factory=list)
    step: Step | None = None
    tokens: int = 0
    policy: Policy = POLICY

    def __post_init__(self) -> None:
        self.conversation = Conversation(language=self.language)

    @property
    def survey(self) -> SurveyState | None:
        return self.conversation.survey

    @property
    def questionnaire(self) -> Questionnaire | None:
        survey = self.survey
        if survey is None:
            return None
        return self.questionnaires[(survey.questionnaire_id, survey.questionnaire_version)]

    @property
    def replies(self) -> tuple[Reply, ...]:
        assert self.step is not None
        return self.step.replies

    @property
    def last(self) -> Reply:
        return self.replies[-1]

    @property
    def question(self) -> Reply:
        """The last reply that asks a question (a "không áp dụng" offer may follow it)."""
        (asked,) = [reply for reply in self.replies if reply.asks is not None]
        return asked

    def send(self, event: Event) -> Step:
        self.step = advance(
            self.conversation,
            event,
            questionnaire=self.questionnaire,
            texts=TEXTS,
            now=self.now,
            policy=self.policy,
        )
        self.conversation = self.step.conversation
        self.closed += self.step.closed
        self.history += self.step.replies
        return self.step

    def scan(
        self, code: str = "Q01", questionnaire: str | Questionnaire = "sipas-short", **kw: bool
    ) -> Step:
        q = SHIPPED[questionnaire] if isinstance(questionnaire, str) else questionnaire
        self.questionnaires[(q.id, q.version)] = q
        self.tokens += 1
        return self.send(
            Start(
                code=code,
                counter=COUNTERS.get(code),
                questionnaire=q if code in COUNTERS else None,
                token=f"tok{self.tokens:03d}",
                repeat=kw.get("repeat", False),
            )
        )

    def say(self, text: str) -> Step:
        return self.send(Message(text))

    def tap(self, title: str, reply: Reply | None = None) -> Step:
        """Tap the button with this title on a reply (the last one unless given)."""
        reply = reply or self.last
        (payload,) = [choice.payload for choice in reply.choices if choice.title == title]
        return self.say(payload)

    def wait(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def answers(self) -> dict[str, Answer]:
        survey = self.survey or self.closed[-1]
        return dict(survey.answers)


def ask_text(reply: Reply) -> str:
    return reply.text


def progress(reply: Reply) -> str:
    """The "Câu n/m" line of a question's message (what was recorded may come before it)."""
    (line,) = re.findall(r"^(?:Câu|Question) \d+/\d+$", reply.text, re.MULTILINE)
    return str(line)


def titles(reply: Reply) -> list[str]:
    return [choice.title for choice in reply.choices]


def small(items: str, *, languages: str = "[vi, en]") -> Questionnaire:
    """A questionnaire from a few YAML item lines, for the rules the shipped ones lack."""
    return parse_questionnaire(
        f"id: small\nversion: '1'\nlanguages: {languages}\ntitle: {{vi: Thử, en: Try}}\n"
        f"items:\n{items}",
        "small.yaml",
    )


YES_NO_OPTIONAL = small(
    """  - id: gave
    kind: choice
    optional: true
    text: {vi: "Có góp ý không?", en: "Any feedback?"}
    options:
      - {vi: Có, en: "Yes"}
      - {vi: Không, en: "No"}
  - id: rating
    kind: scale
    factor: 1
    text: {vi: "Đánh giá?", en: "Rating?"}
"""
)


def answer_all(chat: Chat, value: str = "4") -> None:
    """Answer every remaining question by typing (a value for scales, 1 for choices)."""
    for _ in range(100):
        q, survey = chat.questionnaire, chat.survey
        if q is None or survey is None:
            return
        item = q.items[survey.position]
        chat.say(value if item.kind == "scale" else "1" if item.kind == "choice" else "ý kiến")
    raise AssertionError("the survey never ended")


# --- forgiving input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "5",
        "5 sao",
        "5 Sao",
        "5/5",
        "5 điểm",
        "rat hai long",
        "Rất hài lòng",
        "  RẤT   HÀI LÒNG!  ",
        "rathailong",
        "very satisfied",
        "Very Satisfied.",
    ],
)
def test_five_can_be_typed_many_ways(typed: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say(typed)
    assert chat.answers() == {"access": Answer(value=5)}
    assert chat.last.text.startswith("Đã ghi nhận: Rất hài lòng.\n\nCâu 2/6\n")


@pytest.mark.parametrize(
    "typed", ["khong hai long", "Không hài lòng", "2", "2 sao", "dissatisfied"]
)
def test_two_can_be_typed_many_ways(typed: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say(typed)
    assert chat.answers() == {"access": Answer(value=2)}


@pytest.mark.parametrize("typed", ["6", "0", "55", "hài", "rất", "", "5 6", "1 2 3"])
def test_what_is_no_answer_to_a_scale_is_asked_again(typed: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say(typed)
    assert chat.answers() == {}
    assert "chưa hiểu" in chat.last.text
    assert chat.last.text.count("Câu 1/6") == 1
    assert len(chat.last.choices) == 5


@pytest.mark.parametrize("typed", ["bo qua", "bỏ qua", "Bỏ  Qua", "skip", "SKIP"])
def test_an_optional_comment_is_skipped_with_any_spelling(typed: str) -> None:
    chat = Chat()
    chat.scan()
    for _ in range(5):
        chat.say("4")
    assert titles(chat.last) == ["Bỏ qua"]
    chat.say(typed)
    assert chat.survey is None
    (done,) = chat.closed
    assert done.status == COMPLETED
    assert done.answers["comment"] == Answer()


@pytest.mark.parametrize("typed", ["bỏ qua", "bo qua", "skip", "Bỏ qua!"])
def test_a_required_question_cannot_be_skipped_and_says_so(typed: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say(typed)
    assert chat.answers() == {}
    assert chat.last.text.startswith("Câu này cần trả lời, không bỏ qua được.\n\nCâu 1/6\n")
    assert len(chat.last.choices) == 5


# --- what is not clearly one answer is asked back, never guessed ---------------------------


@pytest.mark.parametrize(
    ("typed", "question", "buttons"),
    [
        ("4,5", "Ông/Bà chọn Hài lòng (4) hay Rất hài lòng (5)?", ["Hài lòng", "Rất hài lòng"]),
        ("3-4", "Ông/Bà chọn Bình thường (3) hay Hài lòng (4)?", ["Bình thường", "Hài lòng"]),
        ("tốt nhưng chậm", "Ông/Bà chọn Bình thường (3) hay Hài lòng (4)?", None),
        ("1 hoặc 2", "Ông/Bà chọn Rất không hài lòng (1) hay Không hài lòng (2)?", None),
    ],
)
def test_two_levels_at_once_are_asked_back_with_the_two_as_buttons(
    typed: str, question: str, buttons: list[str] | None
) -> None:
    chat = Chat()
    chat.scan()
    chat.say(typed)
    assert chat.answers() == {}
    assert chat.last.text == question
    if buttons is not None:
        assert titles(chat.last) == buttons
    chat.tap(titles(chat.last)[1])
    assert chat.answers() == {"access": Answer(value=int(question[-3]))}


def test_two_options_at_once_are_asked_back_by_their_words() -> None:
    chat = Chat()
    chat.scan(questionnaire=YES_NO_OPTIONAL)
    chat.say("1,2")
    assert chat.answers() == {}
    assert chat.last.text == "Ông/Bà chọn Có (1) hay Không (2)?"
    assert titles(chat.last) == ["Có", "Không"]


@pytest.mark.parametrize("typed", ["không", "ko", "Không", "có"])
def test_a_bare_yes_or_no_to_a_scale_records_nothing_and_says_why(typed: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say(typed)
    assert chat.answers() == {}
    assert "chưa cho biết Ông/Bà hài lòng ở mức nào" in chat.last.text
    assert progress(chat.last) == "Câu 1/6"


def test_dont_know_is_not_applicable_where_allowed_and_asked_again_elsewhere() -> None:
    chat = Chat()
    chat.scan()
    chat.say("không biết")
    assert chat.answers() == {}
    assert chat.last.text.startswith("Câu này cần một mức đánh giá từ 1 đến 5")
    for _ in range(4):
        chat.say("4")
    chat.say("ko biết")
    assert chat.answers()["feedback"] == Answer(value=0)
    assert chat.last.text.startswith("Đã ghi nhận: Không áp dụng.")


@pytest.mark.parametrize(("typed", "value"), [("ko", 2), ("k", 2), ("co", 1), ("hông", 2)])
def test_a_choice_understands_abbreviations(typed: str, value: int) -> None:
    chat = Chat()
    chat.scan(questionnaire=YES_NO_OPTIONAL)
    chat.say(typed)
    assert chat.answers() == {"gave": Answer(value=value)}


@pytest.mark.parametrize(
    ("language", "typed", "said"),
    [
        ("vi", "ko hài lòng", "Đã ghi nhận: Không hài lòng."),
        ("vi", "👍", "Đã ghi nhận: Hài lòng."),
        ("vi", "năm", "Đã ghi nhận: Rất hài lòng."),
        ("en", "ok", "Recorded: Satisfied."),
    ],
)
def test_the_next_question_says_what_was_recorded(language: str, typed: str, said: str) -> None:
    chat = Chat(language=language)
    chat.scan()
    chat.say(typed)
    assert len(chat.replies) == 1
    assert chat.last.text.startswith(f"{said}\n\n")
    assert progress(chat.last) in ("Câu 2/6", "Question 2/6")


def test_the_thanks_say_the_comment_was_recorded() -> None:
    chat = Chat()
    chat.scan()
    answer_all(chat)
    assert chat.last.text.startswith("Đã ghi nhận ý kiến của Ông/Bà.\n\nTrân trọng cảm ơn")


def test_an_option_named_like_a_skip_word_is_an_answer() -> None:
    """`Không` is the second option, not a skip, even where the question may be skipped."""
    chat = Chat()
    chat.scan(questionnaire=YES_NO_OPTIONAL)
    chat.say("không")
    assert chat.answers() == {"gave": Answer(value=2)}


def test_an_optional_choice_has_a_skip_button_after_its_options() -> None:
    chat = Chat()
    chat.scan(questionnaire=YES_NO_OPTIONAL)
    assert titles(chat.last) == ["Có", "Không", "Bỏ qua"]
    chat.tap("Bỏ qua")
    assert chat.answers() == {"gave": Answer()}


def test_typing_the_skip_buttons_number_skips() -> None:
    """Where buttons are shown as a numbered list (ZALO_CHOICE_STYLE=text), "3" is Bỏ qua."""
    chat = Chat()
    chat.scan(questionnaire=YES_NO_OPTIONAL)
    chat.say("3")
    assert chat.answers() == {"gave": Answer()}


def test_not_applicable_is_typed_where_the_item_allows_it() -> None:
    chat = Chat()
    chat.scan()
    for _ in range(4):
        chat.say("4")
    assert "gõ 0 nếu không áp dụng" in chat.question.text
    chat.say("không áp dụng")
    assert chat.answers()["feedback"] == Answer(value=0)


def test_not_applicable_is_a_button_in_a_short_message_after_the_question() -> None:
    """The five levels take Zalo's five buttons; "Không áp dụng" follows in its own message."""
    chat = Chat()
    chat.scan()
    for _ in range(3):
        chat.say("4")
        assert len(chat.replies) == 1
    chat.say("4")
    question, offer = chat.replies
    assert progress(question) == "Câu 5/6" and len(question.choices) == 5
    assert offer.text.startswith("Nếu câu này không áp dụng với Ông/Bà")
    assert titles(offer) == ["Không áp dụng"]
    chat.tap("Không áp dụng", offer)
    assert chat.answers()["feedback"] == Answer(value=0)
    assert chat.last.text.startswith("Đã ghi nhận: Không áp dụng.")


def test_not_applicable_is_offered_again_whenever_its_question_is_asked_again() -> None:
    chat = Chat()
    chat.scan()
    for _ in range(4):
        chat.say("4")
    chat.say("xyz")
    assert [titles(reply)[-1] for reply in chat.replies] == ["Rất hài lòng", "Không áp dụng"]
    chat.say("4,5")
    assert len(chat.replies) == 1  # "Hài lòng (4) hay Rất hài lòng (5)?" needs no offer


def test_no_not_applicable_button_where_choices_are_a_typed_numbered_list() -> None:
    """ZALO_CHOICE_STYLE=text numbers every message's choices from 1: a second list would
    make "1" mean "Không áp dụng" as well as "Rất không hài lòng"."""
    chat = Chat()
    chat.policy = replace(POLICY, numbered_choices=True)
    chat.scan()
    for _ in range(4):
        chat.say("4")
    (question,) = chat.replies
    assert "gõ 0 nếu không áp dụng" in question.text
    chat.say("0")
    assert chat.answers()["feedback"] == Answer(value=0)


@pytest.mark.parametrize("typed", ["0", "khong ap dung", "N/A", "kad"])
def test_every_spelling_of_not_applicable(typed: str) -> None:
    chat = Chat()
    chat.scan()
    for _ in range(4):
        chat.say("4")
    chat.say(typed)
    assert chat.answers()["feedback"] == Answer(value=0)


def test_more_than_five_options_are_a_numbered_list_answered_by_number() -> None:
    chat = Chat()
    chat.scan(questionnaire="sipas-short-full")
    while chat.survey is not None and chat.questionnaire is not None:
        item = chat.questionnaire.items[chat.survey.position]
        if item.id == "profile-occupation":
            break
        chat.say("bỏ qua" if item.optional else "4")
    assert "\n8. Khác" in chat.last.text
    assert chat.last.choices == ()
    assert 'gõ "bỏ qua"' in chat.last.text
    chat.say("7")
    assert chat.answers()["profile-occupation"] == Answer(value=7)


def test_a_list_option_can_be_typed_by_its_words() -> None:
    chat = Chat()
    chat.scan(questionnaire="sipas-short-full")
    while chat.survey is not None and chat.questionnaire is not None:
        item = chat.questionnaire.items[chat.survey.position]
        if item.id == "profile-age":
            break
        chat.say("bỏ qua" if item.optional else "4")
    chat.say("tren 60")
    assert chat.answers()["profile-age"] == Answer(value=5)


# --- commands ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["làm lại", "lam lai", "Làm Lại", "restart", "bắt đầu lại"])
def test_restart_clears_the_answers_and_asks_the_first_question(command: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say("4")
    chat.say("3")
    token = chat.survey.token if chat.survey else ""
    chat.say(command)
    assert chat.survey is not None and chat.survey.token == token
    assert chat.survey.answers == {}
    assert "Bắt đầu lại" in chat.replies[0].text
    assert chat.last.text.startswith("Câu 1/6")


@pytest.mark.parametrize("command", ["hủy", "huy", "Hủy bỏ", "cancel"])
def test_a_cancelled_survey_is_kept_as_cancelled_with_its_answers(command: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say("4")
    chat.say(command)
    assert chat.survey is None
    (cancelled,) = chat.closed
    assert cancelled.status == CANCELLED
    assert cancelled.answers == {"access": Answer(value=4)}
    assert cancelled.ended_at == T0
    assert "Đã hủy" in chat.last.text


@pytest.mark.parametrize("command", ["hướng dẫn", "huong dan", "help", "?", "trợ giúp"])
def test_help_explains_and_asks_the_same_question_again(command: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say("4")
    chat.say(command)
    assert chat.answers() == {"access": Answer(value=4)}
    (reply,) = chat.replies
    assert '"làm lại"' in reply.text and '"hủy"' in reply.text
    assert "Câu 2/6" in reply.text
    assert len(reply.choices) == 5


def test_switching_language_mid_survey_asks_the_same_question_in_english() -> None:
    chat = Chat()
    chat.scan()
    chat.say("4")
    chat.say("English")
    assert chat.conversation.language == "en"
    assert chat.survey is not None and chat.survey.language == "en"
    assert "Switched to English" in chat.last.text
    assert "Question 2/6" in chat.last.text
    assert titles(chat.last)[0] == "Very dissatisfied"
    chat.say("Tiếng Việt")
    assert "Câu 2/6" in chat.last.text
    assert chat.answers() == {"access": Answer(value=4)}


def test_english_survey_understands_vietnamese_labels_and_the_reverse() -> None:
    chat = Chat(language="en")
    chat.scan()
    assert chat.last.text.startswith("Question 1/6")
    chat.say("hài lòng")
    chat.say("Neutral")
    assert chat.answers() == {"access": Answer(value=4), "procedure": Answer(value=3)}


def test_a_language_the_questionnaire_lacks_is_said_and_the_survey_goes_on() -> None:
    only_vi = small(
        "  - id: a\n    kind: scale\n    factor: 1\n    text: Câu một?\n", languages="[vi]"
    )
    chat = Chat()
    chat.scan(questionnaire=only_vi)
    chat.say("english")
    assert "only available in Vietnamese" in chat.last.text
    assert "Câu 1/1" in chat.last.text
    chat.say("5")
    assert chat.closed[-1].status == COMPLETED


def test_commands_without_a_survey_get_the_greeting() -> None:
    chat = Chat()
    for text in ("hủy", "làm lại", "5", "xin chào"):
        chat.say(text)
        assert "quét mã QR" in chat.last.text
    chat.say("help")
    assert '"làm lại"' in chat.last.text


@pytest.mark.parametrize("command", ["sửa", "sua", "Sửa lại", "back"])
def test_sua_removes_the_last_answer_and_asks_its_question_again(command: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say("5")
    chat.say("ko hài lòng")
    assert chat.answers() == {"access": Answer(value=5), "procedure": Answer(value=2)}
    chat.say(command)
    assert chat.answers() == {"access": Answer(value=5)}
    assert chat.last.text.startswith(
        "Sửa câu trước: câu trả lời “Không hài lòng” đã được xoá, mời Ông/Bà trả lời lại."
    )
    assert progress(chat.last) == "Câu 2/6"
    chat.say("4")
    assert chat.answers() == {"access": Answer(value=5), "procedure": Answer(value=4)}
    assert progress(chat.last) == "Câu 3/6"


def test_sua_goes_back_one_question_at_a_time_and_not_before_the_first() -> None:
    chat = Chat()
    chat.scan()
    chat.say("5")
    chat.say("sửa")
    assert chat.answers() == {}
    chat.say("sửa")
    assert chat.answers() == {}
    assert chat.last.text.startswith("Chưa có câu trả lời nào để sửa.\n\nCâu 1/6")


def test_sua_goes_back_over_intros_and_passed_over_questions() -> None:
    """Criteria 17–19 are passed over after "Không": back from the comment is that choice."""
    chat = Chat()
    chat.scan(questionnaire="sipas-2022")
    for _ in range(16):
        chat.say("4")
    chat.say("không")
    chat.say("sửa")
    assert "gave-feedback" not in chat.answers()
    assert "“Không”" in chat.last.text
    assert titles(chat.last) == ["Có", "Không"]
    chat.tap("Có")
    assert chat.answers()["gave-feedback"] == Answer(value=1)
    assert progress(chat.question) == "Câu 18/21"


# --- messages that are no answer ----------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "cho hỏi hồ sơ của tôi bao giờ có kết quả?",
        "Cho em hỏi thủ tục cấp lại CCCD cần những gì?",
        "cán bộ không nhiệt tình, phải chờ rất lâu",
        "bao giờ có kết quả vậy?",
    ],
)
def test_a_message_that_is_no_answer_is_kept_for_the_ward_and_the_question_asked_again(
    typed: str,
) -> None:
    chat = Chat()
    chat.scan()
    step = chat.say(typed)
    assert step.notes == (typed,)
    assert chat.answers() == {}
    (reply,) = step.replies
    # The caller acknowledges the note with its case reference first; the engine asks on.
    assert reply.text.startswith("Xin mời Ông/Bà trả lời tiếp")
    assert progress(reply) == "Câu 1/6" and len(reply.choices) == 5
    chat.say("5")
    assert chat.answers() == {"access": Answer(value=5)}
    assert chat.step is not None and chat.step.notes == ()


def test_a_message_outside_a_survey_is_a_note_with_no_reply_of_its_own() -> None:
    chat = Chat()
    step = chat.say("cho hỏi hồ sơ của tôi bao giờ có kết quả?")
    assert step.notes == ("cho hỏi hồ sơ của tôi bao giờ có kết quả?",)
    assert step.replies == ()
    greeted = chat.say("xin chào")  # a slip: the greeting, as before
    assert greeted.notes == () and len(greeted.replies) == 1


@pytest.mark.parametrize("typed", ["xin chào", "hài", "6", "sao lâu thế", "4,5", "không"])
def test_a_slip_or_an_unsure_answer_is_no_note(typed: str) -> None:
    chat = Chat()
    chat.scan()
    assert chat.say(typed).notes == ()


def test_a_long_text_on_a_comment_question_is_the_comment_not_a_note() -> None:
    chat = Chat()
    chat.scan()
    for _ in range(5):
        chat.say("4")
    step = chat.say("cho hỏi hồ sơ của tôi bao giờ có kết quả?")
    assert step.notes == ()
    assert chat.closed[-1].answers["comment"] == Answer(
        text="cho hỏi hồ sơ của tôi bao giờ có kết quả?"
    )


# --- a survey's life -----------------------------------------------------------------------


def test_progress_is_shown_on_every_question() -> None:
    chat = Chat()
    chat.scan()
    seen = [progress(chat.question)]
    for _ in range(5):
        chat.say("5")
        seen.append(progress(chat.question))
    assert seen == [f"Câu {n}/6" for n in range(1, 7)]


def test_feedback_criteria_are_asked_only_to_those_who_gave_feedback() -> None:
    gave = Chat()
    gave.scan(questionnaire="sipas-2022")
    assert "(21 câu hỏi)" in gave.replies[0].text
    assert gave.last.text.startswith("Phần I/V – Tiếp cận dịch vụ")
    for _ in range(16):
        gave.say("4")
    assert "Câu 17/21" in gave.last.text and titles(gave.last) == ["Có", "Không"]
    gave.tap("Có")
    assert "Câu 18/21" in gave.question.text
    answer_all(gave, "0")
    assert {"c17-channels", "c18-handled", "c19-reported"} <= set(gave.answers())
    assert gave.answers()["c19-reported"] == Answer(value=0)

    did_not = Chat()
    did_not.scan(questionnaire="sipas-2022")
    for _ in range(16):
        did_not.say("4")
    did_not.say("không")
    assert did_not.last.text.startswith("Đã ghi nhận: Không.\n\nCâu 18/18\n")
    did_not.say("bỏ qua")
    (done,) = did_not.closed
    assert done.status == COMPLETED
    assert not {"c17-channels", "c18-handled", "c19-reported"} & set(done.answers)


def test_every_answer_records_the_questionnaire_and_version() -> None:
    chat = Chat()
    chat.scan(questionnaire="sipas-2022")
    answer_all(chat)
    (done,) = chat.closed
    assert (done.questionnaire_id, done.questionnaire_version) == ("sipas-2022", "2026.1")


def test_an_idle_survey_expires_as_partial_and_the_citizen_is_told() -> None:
    chat = Chat()
    chat.scan()
    chat.say("4")
    chat.wait(minutes=30)
    chat.say("3")  # exactly the idle time: still open
    chat.wait(minutes=30, seconds=1)
    chat.say("5")
    assert chat.survey is None
    (expired,) = chat.closed
    assert expired.status == PARTIAL
    assert expired.answers == {"access": Answer(value=4), "procedure": Answer(value=3)}
    (reply,) = chat.replies
    assert "hết thời gian" in reply.text
    chat.scan()
    assert chat.survey is not None and chat.survey.status == ACTIVE
    assert chat.survey.answers == {}


def test_a_click_on_an_expired_surveys_button_is_answered_and_changes_nothing() -> None:
    chat = Chat()
    chat.scan()
    question = chat.last
    chat.wait(hours=2)
    chat.tap("Hài lòng", question)
    assert "hết thời gian" in chat.last.text
    chat.tap("Hài lòng", question)
    assert "đã kết thúc" in chat.last.text
    assert chat.closed[0].answers == {}
    assert chat.survey is None


def test_help_and_reprompts_keep_a_survey_alive() -> None:
    chat = Chat()
    chat.scan()
    for _ in range(4):
        chat.wait(minutes=20)
        chat.say("hướng dẫn")
    chat.say("5")
    assert chat.answers() == {"access": Answer(value=5)}
    assert chat.closed == []


def test_scanning_the_same_counter_again_resumes_the_current_question() -> None:
    chat = Chat()
    chat.scan("Q01")
    chat.say("4")
    token = chat.survey.token if chat.survey else ""
    chat.scan("Q01")
    assert chat.survey is not None and chat.survey.token == token
    (reply,) = chat.replies
    assert reply.text.startswith("Tiếp tục khảo sát")
    assert "Câu 2/6" in reply.text
    assert chat.closed == []


def test_resuming_keeps_the_questionnaire_the_survey_started_with() -> None:
    """The counter was given another questionnaire meanwhile: the open survey carries on."""
    chat = Chat()
    chat.scan("Q01", "sipas-short")
    chat.say("4")
    chat.scan("Q01", "sipas-2022")
    assert chat.survey is not None and chat.survey.questionnaire_id == "sipas-short"
    assert "Câu 2/6" in chat.last.text
    assert "thủ tục hành chính" in chat.last.text


def test_scanning_another_counter_closes_the_open_survey_as_partial() -> None:
    chat = Chat()
    chat.scan("Q01")
    chat.say("4")
    chat.scan("Q02")
    (closed,) = chat.closed
    assert (closed.counter.code, closed.status) == ("Q01", PARTIAL)
    assert closed.answers == {"access": Answer(value=4)}
    assert chat.survey is not None and chat.survey.counter.code == "Q02"
    assert chat.survey.answers == {}
    assert "Khảo sát trước đã được lưu lại" in chat.replies[0].text


def test_an_unknown_code_leaves_the_open_survey_alone() -> None:
    chat = Chat()
    chat.scan("Q01")
    chat.say("4")
    chat.scan("NOPE")
    assert "#NOPE" in chat.last.text
    assert chat.survey is not None and chat.survey.answers == {"access": Answer(value=4)}


def test_a_repeat_is_told_politely_and_flagged() -> None:
    chat = Chat()
    chat.scan(repeat=True)
    assert "đánh giá lặp lại" in chat.replies[0].text
    answer_all(chat)
    (done,) = chat.closed
    assert done.repeat and done.status == COMPLETED


def test_a_greeting_during_a_survey_asks_the_current_question() -> None:
    chat = Chat()
    chat.scan()
    chat.say("4")
    chat.send(Greet())
    assert "Tiếp tục" in chat.last.text and "Câu 2/6" in chat.last.text


# --- buttons -------------------------------------------------------------------------------


def test_a_click_on_an_earlier_question_changes_nothing() -> None:
    chat = Chat()
    chat.scan()
    first = chat.last
    chat.tap("Hài lòng", first)
    chat.tap("Rất hài lòng", first)
    assert chat.answers() == {"access": Answer(value=4)}
    assert "đã được trả lời" in chat.last.text
    assert "Câu 2/6" in chat.last.text


def test_a_click_from_an_older_survey_never_answers_the_open_one() -> None:
    chat = Chat()
    chat.scan("Q01")
    old_question = chat.last
    chat.scan("Q02")
    chat.tap("Rất hài lòng", old_question)
    assert chat.answers() == {}
    assert "khảo sát đã kết thúc" in chat.last.text
    assert "Câu 1/6" in chat.last.text
    assert chat.closed[0].answers == {}


@pytest.mark.parametrize("value", ["7", "0", "skip", "x", "", "٣"])
def test_a_forged_button_value_is_refused(value: str) -> None:
    chat = Chat()
    chat.scan()
    token = chat.survey.token if chat.survey else ""
    chat.say(f"sv:{token}:access:{value}")
    assert chat.answers() == {}
    assert "chưa hiểu" in chat.last.text


@pytest.mark.parametrize("payload", ["sv:", "sv:a:b", "sv:::::", "sv:tok001:access:4:extra"])
def test_a_malformed_payload_is_answered(payload: str) -> None:
    chat = Chat()
    chat.scan()
    chat.say(payload)
    assert chat.answers() == {}
    assert len(chat.replies) == 1


def test_buttons_fit_zalo() -> None:
    for name in SHIPPED:
        for language in ("vi", "en"):
            chat = Chat(language=language)
            chat.scan(questionnaire=name)
            answer_all(chat)
            for reply in chat.history:
                assert len(reply.text) <= 2000
                assert len(reply.choices) <= 5
                assert all(0 < len(title) <= 20 for title in titles(reply))


def first_lines(replies: Iterable[Reply]) -> list[str]:
    return [reply.text.splitlines()[0] for reply in replies]


CHAINED = small(
    """  - id: gave
    kind: choice
    text: {vi: "Có góp ý không?", en: "Any feedback?"}
    options:
      - {vi: Có, en: "Yes"}
      - {vi: Không, en: "No"}
  - id: handled
    kind: scale
    factor: 5
    when: {item: gave, in: [1]}
    text: {vi: "Xử lý thế nào?", en: "How was it handled?"}
  - id: middle
    kind: scale
    factor: 2
    text: {vi: "Thủ tục?", en: "Procedure?"}
  - id: why
    kind: text
    when: {item: handled, in: [1, 2]}
    text: {vi: "Vì sao?", en: "Why?"}
  - id: last
    kind: scale
    factor: 1
    text: {vi: "Cuối cùng?", en: "Lastly?"}
"""
)


def test_a_question_whose_condition_depends_on_a_skipped_one_is_not_counted() -> None:
    """`why` depends on `handled`, which is not asked after "Không": neither is counted."""
    chat = Chat()
    chat.scan(questionnaire=CHAINED)
    assert chat.last.text.startswith("Câu 1/5")
    chat.say("Không")
    assert progress(chat.last) == "Câu 2/3"
    chat.say("3")
    assert progress(chat.last) == "Câu 3/3"
    chat.say("5")
    assert chat.closed[-1].answers == {
        "gave": Answer(value=2),
        "middle": Answer(value=3),
        "last": Answer(value=5),
    }


def test_a_chain_of_conditions_is_followed() -> None:
    chat = Chat()
    chat.scan(questionnaire=CHAINED)
    chat.say("Có")
    assert progress(chat.last) == "Câu 2/5"
    chat.say("1")
    assert progress(chat.last) == "Câu 3/5"
    chat.say("3")
    assert progress(chat.last) == "Câu 4/5"
    chat.say("Chờ lâu")
    chat.say("5")
    assert chat.closed[-1].answers == {
        "gave": Answer(value=1),
        "handled": Answer(value=1),
        "middle": Answer(value=3),
        "why": Answer(text="Chờ lâu"),
        "last": Answer(value=5),
    }


def test_a_survey_expired_meanwhile_by_housekeeping_is_explained_once() -> None:
    """The caller may hand over the survey a job closed as partial: the citizen is told."""
    chat = Chat()
    chat.scan()
    chat.say("4")
    assert chat.survey is not None
    question = chat.last
    chat.conversation = replace(
        chat.conversation, survey=replace(chat.survey, status=PARTIAL, ended_at=T0)
    )
    chat.tap("Hài lòng", question)
    assert chat.survey is None and chat.step is not None and chat.step.closed == ()
    assert "hết thời gian" in chat.last.text
    chat.tap("Hài lòng", question)
    assert "đã kết thúc" in chat.last.text


def test_a_scan_after_housekeeping_expiry_just_starts_the_new_survey() -> None:
    chat = Chat()
    chat.scan()
    assert chat.survey is not None
    chat.conversation = replace(
        chat.conversation, survey=replace(chat.survey, status=PARTIAL, ended_at=T0)
    )
    step = chat.scan()
    assert step.closed == ()
    assert chat.survey is not None and chat.survey.token == "tok002"
    assert chat.last.text.startswith("Câu 1/6")
