"""Every shipped questionnaire completed end to end: through signed webhooks into the database,
and through the terminal chat (`bot.cli.chat.run_chat`); plus the conversation rules that need
the stored state (repeat within the cooldown, cancel, expiry, re-scan)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli.chat import run_chat
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import Case, OutboxMessage, QuestionnaireVersion, SurveyResponse
from storage.repositories import CounterSpec, UnitSpec
from survey_flow.questionnaire import load_shipped, shipped_ids
from tests.conftest import FakeClock, text_event

Post = Callable[..., Any]
USER = "246845883529197922"


def add_counters(runtime: Runtime, clock: FakeClock) -> dict[str, str]:
    """One counter per shipped questionnaire (unit-level choice), code → questionnaire."""
    codes = {f"T{index:02d}01": name for index, name in enumerate(shipped_ids())}
    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session,
            [
                UnitSpec(code[:3], f"Đơn vị thử {name}", [CounterSpec(code, "Quầy 1", None)], name)
                for code, name in codes.items()
            ],
            now=clock(),
        )
    return codes


def replies(runtime: Runtime, user_id: str = USER) -> list[dict[str, Any]]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage.body)
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id)
            )
        )


def responses(runtime: Runtime) -> list[tuple[str, str, str, bool, dict[str, Any]]]:
    """(questionnaire, status, counter, repeat, {item: value or text}) of every survey."""
    with runtime.session_factory() as session:
        return [
            (
                f"{r.questionnaire_id}@{r.questionnaire_version}",
                r.status,
                r.counter.code,
                r.is_repeat,
                {a.item_id: a.text if a.text is not None else a.value for a in r.answers},
            )
            for r in session.scalars(select(SurveyResponse).order_by(SurveyResponse.id))
        ]


def answer_by_buttons(signed_post: Post, runtime: Runtime, user_id: str = USER) -> int:
    """Answer the open survey to the end: tap the last button offered (Rất hài lòng, Có, the
    Skip of an optional choice…), type the first number for a list, a comment for a text."""
    for turn in range(1, 60):
        last = replies(runtime, user_id)[-1]
        if "cảm ơn" in last["text"].lower() and not last["buttons"]:
            return turn - 1
        buttons = last["buttons"]
        if buttons and buttons[0]["title"] == "Có":
            text = buttons[0]["payload"]  # say yes, so the feedback criteria are asked
        elif buttons and buttons[-1]["title"] != "Bỏ qua":
            text = buttons[-1]["payload"]
        elif "\n1. " in last["text"]:
            text = "1"
        elif buttons:
            text = "Cán bộ rất nhiệt tình" if len(buttons) == 1 else buttons[0]["payload"]
        else:
            raise AssertionError(f"no way to answer: {last}")
        assert signed_post(text_event(text, user_id=user_id)).status_code == 200
    raise AssertionError("the survey did not end")


@pytest.mark.parametrize("name", shipped_ids())
def test_every_shipped_questionnaire_completes_through_signed_webhooks(
    signed_post: Post, runtime: Runtime, clock: FakeClock, name: str
) -> None:
    code = next(c for c, n in add_counters(runtime, clock).items() if n == name)
    questionnaire = load_shipped(name)
    assert signed_post(text_event(f"#{code.lower()}")).status_code == 200
    turns = answer_by_buttons(signed_post, runtime)

    ((stored_as, status, counter, repeat, answers),) = responses(runtime)
    assert (stored_as, status, counter, repeat) == (
        f"{name}@{questionnaire.version}",
        "completed",
        code,
        False,
    )
    assert turns == len(answers) == len(questionnaire.questions)
    for item in questionnaire.questions:
        assert item.id in answers
    for body in replies(runtime):
        assert len(body["text"]) <= 2000
        assert len(body["buttons"]) <= 5
        assert all(len(button["title"]) <= 20 for button in body["buttons"])
    with runtime.session_factory() as session:
        kept = session.get(QuestionnaireVersion, (name, questionnaire.version))
        assert kept is not None and kept.source_text == questionnaire.source_text


@pytest.mark.parametrize("name", shipped_ids())
def test_every_shipped_questionnaire_completes_in_the_terminal_chat(
    runtime: Runtime, clock: FakeClock, name: str
) -> None:
    code = next(c for c, n in add_counters(runtime, clock).items() if n == name)
    questionnaire = load_shipped(name)
    written: list[str] = []

    def read(prompt: str) -> str:
        if len(written) > 100:
            raise EOFError  # the survey should have ended long ago
        last = written[-1].rstrip()
        if "từ 1 đến 5" in last:
            return "rat hai long"
        return "Cán bộ rất nhiệt tình" if last.endswith("\n[Bỏ qua]") else "1"

    run_chat(runtime, code, read=read, write=written.append)

    transcript = "\n".join(written)
    total = len(questionnaire.questions)
    assert f"Câu {total}/{total}" in transcript
    assert "Trân trọng cảm ơn" in written[-1]
    with runtime.session_factory() as session:
        assert session.scalars(select(SurveyResponse)).first() is None  # nothing stored


# --- the rules that need stored state ------------------------------------------------------


def start_and_finish(signed_post: Post, runtime: Runtime, code: str = "HVT01") -> None:
    assert signed_post(text_event(f"#{code}")).status_code == 200
    answer_by_buttons(signed_post, runtime)


def test_a_second_survey_within_the_cooldown_is_told_and_flagged_repeat(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    start_and_finish(signed_post, runtime)
    clock.advance(hours=2)
    assert signed_post(text_event("#HVT01")).status_code == 200
    intro = replies(runtime)[-2]["text"]
    assert "đánh giá lặp lại" in intro
    answer_by_buttons(signed_post, runtime)
    clock.advance(hours=13)  # past SURVEY_COOLDOWN_HOURS (12)
    start_and_finish(signed_post, runtime)
    assert [(s[1], s[3]) for s in responses(runtime)] == [
        ("completed", False),
        ("completed", True),
        ("completed", False),
    ]


def test_another_counter_is_not_a_repeat(signed_post: Post, runtime: Runtime) -> None:
    start_and_finish(signed_post, runtime, "HVT01")
    start_and_finish(signed_post, runtime, "HVT02")
    assert [s[3] for s in responses(runtime)] == [False, False]


def test_a_cancelled_survey_is_stored_as_cancelled(signed_post: Post, runtime: Runtime) -> None:
    signed_post(text_event("#HVT01"))
    signed_post(text_event("4"))
    signed_post(text_event("Hủy"))
    assert [(s[1], s[4]) for s in responses(runtime)] == [("cancelled", {"access": 4})]
    assert "Đã hủy" in replies(runtime)[-1]["text"]


def test_sua_removes_the_stored_answer_and_the_survey_goes_on(
    signed_post: Post, runtime: Runtime
) -> None:
    signed_post(text_event("#HVT01"))
    signed_post(text_event("5"))
    signed_post(text_event("ko hài lòng"))
    assert [s[4] for s in responses(runtime)] == [{"access": 5, "procedure": 2}]
    signed_post(text_event("sửa"))
    assert [s[4] for s in responses(runtime)] == [{"access": 5}]
    assert "“Không hài lòng” đã được xoá" in replies(runtime)[-1]["text"]
    signed_post(text_event("tốt"))
    assert [s[4] for s in responses(runtime)] == [{"access": 5, "procedure": 4}]


def test_a_message_that_is_no_answer_is_stored_for_the_unit_without_the_zalo_id(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    question = "cho hỏi hồ sơ của tôi bao giờ có kết quả?"
    signed_post(text_event("#HVT01"))
    signed_post(text_event("4"))
    signed_post(text_event(question))
    signed_post(text_event("xin chào"))  # a slip, not a note
    with runtime.session_factory() as session:
        notes = [
            (n.unit.code, n.counter.code, n.text, n.respondent_hash, n.received_at, n.source)
            for n in session.scalars(select(Case))
        ]
    assert notes == [
        ("HVT", "HVT01", question, runtime.pseudonyms.respondent_hash(USER), clock(), "note")
    ]
    assert USER not in repr(notes)
    assert [s[4] for s in responses(runtime)] == [{"access": 4}]
    assert "đã được ghi nhận, mã PA-2026-000001" in replies(runtime)[-3]["text"]
    assert "Câu 2/6" in replies(runtime)[-2]["text"]


def test_an_idle_survey_is_kept_as_partial_and_a_late_answer_is_told(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01"))
    question = replies(runtime)[-1]
    signed_post(text_event("4"))
    clock.advance(minutes=31)
    signed_post(text_event(question["buttons"][0]["payload"]))
    assert [(s[1], s[4]) for s in responses(runtime)] == [("partial", {"access": 4})]
    assert "hết thời gian" in replies(runtime)[-1]["text"]
    signed_post(text_event(question["buttons"][1]["payload"]))
    assert "đã kết thúc" in replies(runtime)[-1]["text"]
    assert [(s[1], s[4]) for s in responses(runtime)] == [("partial", {"access": 4})]
    start_and_finish(signed_post, runtime)
    assert [s[1] for s in responses(runtime)] == ["partial", "completed"]


def test_rescanning_resumes_and_another_counter_closes_the_open_survey(
    signed_post: Post, runtime: Runtime
) -> None:
    signed_post(text_event("#HVT01"))
    signed_post(text_event("5 sao"))
    signed_post(text_event("#hvt01"))
    resumed = replies(runtime)[-1]["text"]
    assert resumed.startswith("Tiếp tục") and "Câu 2/6" in resumed
    signed_post(text_event("#HVT02"))
    assert [(s[1], s[2], s[4]) for s in responses(runtime)] == [
        ("partial", "HVT01", {"access": 5}),
        ("active", "HVT02", {}),
    ]


def test_a_language_switch_is_remembered_for_the_next_survey(
    signed_post: Post, runtime: Runtime
) -> None:
    signed_post(text_event("English"))
    signed_post(text_event("#HVT01"))
    assert replies(runtime)[-1]["text"].startswith("Question 1/6")
    signed_post(text_event("Tiếng Việt"))
    assert "Câu 1/6" in replies(runtime)[-1]["text"]
