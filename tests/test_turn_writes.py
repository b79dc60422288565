"""What a turn writes, statement by statement: on PostgreSQL the survey's UPDATE rides with its
answers' INSERT, and the conversation's UPDATE with the replies' INSERT (data-modifying CTEs,
storage/repositories/_dialect.py `UpdateWithInsert`); SQLite runs them one by one. Either
way, after every turn the survey row, its answers, the conversation and the outbox agree,
and a re-delivered event writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import Answer, Conversation, OutboxMessage, SurveyResponse
from tests.conftest import FakeClock, text_event

USER = "246845883529197922"
Post = Callable[..., Any]


def snapshot(runtime: Runtime) -> dict[str, Any]:
    """The user's survey row, its answers, the conversation and the outbox, as stored."""
    with runtime.session_factory() as session:
        survey = session.scalars(select(SurveyResponse).order_by(SurveyResponse.id)).first()
        conversation = session.get(Conversation, (USER, ""))
        assert conversation is not None
        outbox = session.execute(
            select(OutboxMessage.id, OutboxMessage.body, OutboxMessage.uncertain_sends).order_by(
                OutboxMessage.id
            )
        ).all()
        answers = session.execute(
            select(Answer.item_id, Answer.value, Answer.answered_at).order_by(Answer.id)
        ).all()
        return {
            "survey": None
            if survey is None
            else (survey.id, survey.status, survey.position, survey.updated_at),
            "answers": [(a.item_id, a.value, a.answered_at) for a in answers],
            "open": conversation.open_response_id,
            "allowance_at": conversation.allowance_at,
            "allowance_tokens": conversation.allowance_tokens,
            "outbox": [(m.id, m.body["text"], m.uncertain_sends) for m in outbox],
        }


def test_after_every_turn_the_survey_its_answers_the_conversation_and_the_outbox_agree(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01"))
    start = snapshot(runtime)
    assert start["survey"] is not None
    response_id, status, position, _updated = start["survey"]
    assert (status, position, start["open"]) == ("active", 0, response_id)
    assert start["allowance_at"] == clock.now
    # The start's replies, in the order they were queued: the greeting, then question 1.
    texts = [text for _id, text, _u in start["outbox"]]
    assert len(texts) >= 2 and "Câu 1/6" in texts[-1] and "Câu 1/6" not in texts[0]
    assert [u for _i, _t, u in start["outbox"]] == [0] * len(texts)

    before = start
    for number, value in enumerate([4, 2, 5, 1, 3], start=1):
        turn_at = clock.advance(minutes=1)
        signed_post(text_event(str(value)))
        after = snapshot(runtime)
        # The survey row moved on with the answer stored in the same turn.
        assert after["survey"] == (response_id, "active", number, turn_at)
        assert len(after["answers"]) == number
        assert after["answers"][-1][1:] == (value, turn_at)
        assert after["answers"][:-1] == before["answers"]
        # The conversation's allowance was written with the replies, which come after the
        # earlier ones and in order.
        assert after["open"] == response_id
        assert after["allowance_at"] == turn_at
        new = after["outbox"][len(before["outbox"]) :]
        assert after["outbox"][: len(before["outbox"])] == before["outbox"]
        assert new and f"Câu {number + 1}/6" in new[0][1]
        if number == 4:  # question 5 comes with a second message, after it
            assert len(new) == 2 and "không áp dụng" in new[1][1]
        assert [u for _i, _t, u in new] == [0] * len(new)
        before = after

    end_at = clock.advance(minutes=1)
    signed_post(text_event("bỏ qua"))
    end = snapshot(runtime)
    assert end["survey"] == (response_id, "completed", 6, end_at)
    assert [value for _item, value, _at in end["answers"]] == [4, 2, 5, 1, 3, None]
    assert end["open"] is None  # the conversation's change went with the closing words
    assert end["allowance_at"] == end_at
    assert len(end["outbox"]) > len(before["outbox"])
    assert "cảm ơn" in end["outbox"][-1][1].lower()


def test_a_redelivered_answer_writes_nothing(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01"))
    clock.advance(minutes=1)
    answer = text_event("4")
    assert signed_post(answer).get_json()["outcome"] == "handled"
    once = snapshot(runtime)
    clock.advance(minutes=1)

    assert signed_post(answer).get_json()["outcome"] == "duplicate"

    assert snapshot(runtime) == once
    assert len(once["answers"]) == 1


def test_replies_queued_with_the_conversations_change_keep_their_order(
    runtime: Runtime, clock: FakeClock
) -> None:
    """`save_conversation_and_reply` directly: three bodies and a changed conversation, then
    bodies alone (nothing changed), then a change alone (no bodies)."""
    now = clock.now
    with runtime.session_factory.begin() as session:
        row = repo.lock_conversation(session, USER, now=now)
        repo.take_allowance(row, tokens=3.5, at=now, throttled=False)
        bodies = [{"text": f"message {n}", "buttons": []} for n in range(3)]
        repo.save_conversation_and_reply(
            session, row, bodies, language="en", open_response_id=None, now=now
        )
        repo.save_conversation_and_reply(
            session,
            row,
            [{"text": "message 3", "buttons": []}],
            language="en",
            open_response_id=None,
            now=now,
        )
        repo.take_allowance(row, tokens=2.5, at=now, throttled=True)
        repo.save_conversation_and_reply(
            session, row, [], language="en", open_response_id=None, now=now
        )
    with runtime.session_factory() as session:
        conversation = session.get(Conversation, (USER, ""))
        assert conversation is not None
        assert (conversation.language, conversation.allowance_tokens) == ("en", 2.5)
        assert conversation.throttled is True
        rows = session.execute(
            select(OutboxMessage.user_id, OutboxMessage.body, OutboxMessage.status).order_by(
                OutboxMessage.id
            )
        ).all()
        assert [(r.user_id, r.body["text"], r.status) for r in rows] == [
            (USER, f"message {n}", "pending") for n in range(4)
        ]
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 4


def test_a_form_survey_written_at_once_keeps_its_row_and_answers_together(
    runtime: Runtime, clock: FakeClock
) -> None:
    """`write_answers` with several new answers and the row's columns (as the kiosk and the
    web link write): the row's columns and every answer, on both backends."""
    now: datetime = clock.now
    with runtime.session_factory.begin() as session:
        counter = repo.find_counter(session, "HVT01")
        assert counter is not None
        response_id = repo.insert_survey(
            session,
            {
                "token": "formtoken01",
                "respondent_hash": "r" * 64,
                "unit_id": counter.unit_id,
                "counter_id": counter.id,
                "questionnaire_id": "sipas-short",
                "questionnaire_version": "2026.1",
                "language": "vi",
                "status": "active",
                "position": 0,
                "is_repeat": False,
                "start_method": "static",
                "started_at": now,
                "updated_at": now,
                "completed_at": None,
            },
        )
        later = clock.advance(minutes=3)
        added = [
            {
                "item_id": item,
                "factor": factor,
                "criterion": None,
                "value": value,
                "text": None,
                "answered_at": later,
            }
            for item, factor, value in [("access", 1, 5), ("procedure", 2, 1), ("staff", 3, 4)]
        ]
        repo.write_answers(
            session,
            response_id,
            columns={
                "language": "en",
                "status": "completed",
                "position": 3,
                "updated_at": later,
                "completed_at": later,
            },
            added=added,
            changed=[],
            removed=[],
        )
    with runtime.session_factory() as session:
        survey = session.get(SurveyResponse, response_id)
        assert survey is not None
        assert (survey.language, survey.status, survey.position) == ("en", "completed", 3)
        assert survey.updated_at == later and survey.completed_at == later
        assert [(a.item_id, a.value, a.answered_at) for a in survey.answers] == [
            ("access", 5, later),
            ("procedure", 1, later),
            ("staff", 4, later),
        ]
