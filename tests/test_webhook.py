"""`POST /zalo/webhook` through the Flask test client: what is refused, what is stored, and
what the citizen is sent back (read from the outbox rows the webhook writes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import Conversation, OutboxMessage, ProcessedEvent, SurveyResponse
from tests.conftest import (
    APP_ID,
    chatnow_event,
    encode,
    follow_event,
    text_event,
)
from zalo_client import SignatureVerifier

USER = "246845883529197922"
SCALE_ITEMS = ["access", "procedure", "staff", "result", "feedback"]
Post = Callable[..., Any]


# --- helpers -------------------------------------------------------------------------------


def row_counts(runtime: Runtime) -> dict[str, int]:
    with runtime.session_factory() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (ProcessedEvent, Conversation, OutboxMessage, SurveyResponse)
        }


NOTHING_STORED = {
    "processed_events": 0,
    "conversations": 0,
    "outbox_messages": 0,
    "survey_responses": 0,
}


def replies(runtime: Runtime, user_id: str = USER) -> list[dict[str, Any]]:
    """The bodies queued for one user, oldest first."""
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage.body)
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id)
            )
        )


def last_reply(runtime: Runtime, user_id: str = USER) -> dict[str, Any]:
    return replies(runtime, user_id)[-1]


def payload_for(runtime: Runtime, value: int, user_id: str = USER) -> str:
    """The payload of the button for `value` on the question asked last (buttons are 1..5;
    a "không áp dụng" offer may come after the question)."""
    asked = [body for body in replies(runtime, user_id) if len(body["buttons"]) == 5]
    buttons = asked[-1]["buttons"]
    payload: str = buttons[value - 1]["payload"]
    assert payload.endswith(f":{value}")
    return payload


def skip_payload(runtime: Runtime, user_id: str = USER) -> str:
    (button,) = last_reply(runtime, user_id)["buttons"]
    assert button["title"] == "Bỏ qua"
    payload: str = button["payload"]
    return payload


def stored_surveys(runtime: Runtime) -> list[tuple[str, str, dict[str, tuple[Any, Any]]]]:
    """(counter code, status, {item id: (value, text)}) of every stored survey."""
    with runtime.session_factory() as session:
        return [
            (
                response.counter.code,
                response.status,
                {a.item_id: (a.value, a.text) for a in response.answers},
            )
            for response in session.scalars(select(SurveyResponse).order_by(SurveyResponse.id))
        ]


def answers(runtime: Runtime) -> dict[str, tuple[Any, Any]]:
    (survey,) = stored_surveys(runtime)
    return survey[2]


def start_survey(signed_post: Post, user_id: str = USER) -> None:
    assert signed_post(text_event("#HVT01", user_id=user_id)).status_code == 200


# --- refused deliveries --------------------------------------------------------------------


def test_a_post_without_signature_is_refused_and_nothing_is_stored(
    client: FlaskClient, runtime: Runtime
) -> None:
    response = client.post(
        "/zalo/webhook", data=encode(text_event("#HVT01")), content_type="application/json"
    )
    assert response.status_code == 401
    assert row_counts(runtime) == NOTHING_STORED


def test_a_wrong_mac_is_refused_and_nothing_is_stored(signed_post: Post, runtime: Runtime) -> None:
    event = text_event("#HVT01")
    body = encode(event)
    forged = SignatureVerifier(APP_ID, "not-the-oa-secret-key").sign(body, event["timestamp"])
    response = signed_post(body, signature=forged)
    assert response.status_code == 401
    assert row_counts(runtime) == NOTHING_STORED


def test_a_body_altered_after_signing_is_refused(signed_post: Post, runtime: Runtime) -> None:
    event = text_event("#HVT01")
    signature = SignatureVerifier(APP_ID, "test-oa-secret-key").sign(
        encode(event), event["timestamp"]
    )
    tampered = encode({**event, "message": {**event["message"], "text": "#HVT02"}})
    response = signed_post(tampered, signature=signature)
    assert response.status_code == 401
    assert row_counts(runtime) == NOTHING_STORED


def test_a_signature_over_the_reserialised_json_is_refused(
    signed_post: Post, runtime: Runtime
) -> None:
    """The mac covers the exact bytes received; signing a re-encoded body must not pass."""
    event = text_event("#HVT01")
    sent = json.dumps(event, ensure_ascii=False, indent=1).encode("utf-8")
    signature = SignatureVerifier(APP_ID, "test-oa-secret-key").sign(
        encode(event), event["timestamp"]
    )
    assert signed_post(sent, signature=signature).status_code == 401
    assert row_counts(runtime) == NOTHING_STORED


def test_malformed_json_is_a_bad_request_once_signed(signed_post: Post, runtime: Runtime) -> None:
    body = b'{"event_name": "user_send_text", '
    signature = SignatureVerifier(APP_ID, "test-oa-secret-key").sign(body, "")
    assert signed_post(body, signature=signature).status_code == 400
    assert row_counts(runtime) == NOTHING_STORED


def test_malformed_json_with_a_wrong_mac_is_unauthorised_not_parsed(
    signed_post: Post, runtime: Runtime
) -> None:
    """The signature is checked on the raw bytes first: an unsigned body is never parsed."""
    response = signed_post(b'{"event_name": "user_send_text", ', signature="mac=" + "0" * 64)
    assert response.status_code == 401
    assert row_counts(runtime) == NOTHING_STORED


def test_a_body_over_64_kib_is_refused_even_when_signed(
    signed_post: Post, runtime: Runtime
) -> None:
    event = text_event("x" * (65 * 1024))
    response = signed_post(event)
    assert response.status_code == 413
    assert row_counts(runtime) == NOTHING_STORED


def test_a_body_just_under_the_limit_is_accepted(signed_post: Post, runtime: Runtime) -> None:
    """The other side of the 413 boundary: a large but allowed body is handled."""
    event = text_event("")
    room = 64 * 1024 - len(encode(event)) - 16
    event["message"]["text"] = "x" * room
    assert len(encode(event)) <= 64 * 1024
    assert signed_post(event).status_code == 200
    assert row_counts(runtime)["processed_events"] == 1


@pytest.mark.parametrize("event_name", ["oa_send_text", "something_new"])
def test_events_that_are_not_the_citizen_speaking_are_acknowledged_and_ignored(
    signed_post: Post, runtime: Runtime, event_name: str
) -> None:
    event = text_event("#HVT01")
    event["event_name"] = event_name
    if event_name.startswith("oa_send_"):  # on OA-side events sender and recipient swap
        event["sender"], event["recipient"] = event["recipient"], event["sender"]
    response = signed_post(event)
    assert response.status_code == 200
    assert row_counts(runtime) == NOTHING_STORED


def test_health_check_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["outbox"] == {"pending": 0, "dead": 0, "oldest_due_seconds": 0}


# --- deduplication -------------------------------------------------------------------------


def test_the_same_message_delivered_twice_is_processed_once(
    signed_post: Post, runtime: Runtime
) -> None:
    event = text_event("#HVT01")
    first = signed_post(event)
    replies_after_first = replies(runtime)
    second = signed_post(event)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.get_json()["outcome"] == "duplicate"
    assert len(replies_after_first) == 2  # the intro and question 1
    assert replies(runtime) == replies_after_first
    assert row_counts(runtime)["survey_responses"] == 1


def test_a_redelivered_answer_is_not_recorded_twice(signed_post: Post, runtime: Runtime) -> None:
    start_survey(signed_post)
    answer = text_event("4")
    signed_post(answer)
    signed_post(answer)
    assert answers(runtime) == {"access": (4, None)}
    assert "Câu 2/6" in last_reply(runtime)["text"]


def test_an_event_without_msg_id_delivered_twice_is_processed_once(
    signed_post: Post, runtime: Runtime
) -> None:
    event = follow_event()
    signed_post(event)
    signed_post(event)
    assert len(replies(runtime)) == 1
    assert row_counts(runtime)["processed_events"] == 1


def test_two_distinct_follow_events_are_both_answered(signed_post: Post, runtime: Runtime) -> None:
    """Deduplication keys on the delivery, not on the user: a second follow is new."""
    signed_post(follow_event())
    signed_post(follow_event())
    assert len(replies(runtime)) == 2


# --- greeting and starting -----------------------------------------------------------------


def chatnow_with_follower(user_id: str) -> dict[str, Any]:
    event = chatnow_event(user_id=user_id)
    del event["user_id"]
    event["follower"] = {"id": user_id}
    return event


@pytest.mark.parametrize(
    "make_event",
    [
        pytest.param(lambda user: follow_event(user_id=user), id="follow"),
        pytest.param(lambda user: chatnow_event(user_id=user), id="chatnow-user_id"),
        pytest.param(chatnow_with_follower, id="chatnow-follower.id"),
    ],
)
def test_a_greeting_event_explains_how_to_send_a_counter_code(
    signed_post: Post, runtime: Runtime, make_event: Callable[[str], dict[str, Any]]
) -> None:
    user = "8000000000000000001"
    assert signed_post(make_event(user)).status_code == 200
    (greeting,) = replies(runtime, user)
    assert "#" in greeting["text"]
    assert "mã quầy" in greeting["text"]
    assert greeting["buttons"] == []
    assert row_counts(runtime)["survey_responses"] == 0


def test_a_lowercase_code_starts_a_survey_at_that_counter(
    signed_post: Post, runtime: Runtime
) -> None:
    signed_post(text_event("#hvt01"))
    assert stored_surveys(runtime) == [("HVT01", "active", {})]
    intro, question = replies(runtime)
    assert "Quầy 1 – Tư pháp, hộ tịch" in intro["text"]
    assert "UBND phường Hoàng Văn Thụ" in intro["text"]
    assert question["text"].startswith("Câu 1/6")
    assert [b["title"] for b in question["buttons"]] == [
        "Rất không hài lòng",
        "Không hài lòng",
        "Bình thường",
        "Hài lòng",
        "Rất hài lòng",
    ]


def test_an_unknown_code_is_named_in_the_reply_and_starts_nothing(
    signed_post: Post, runtime: Runtime
) -> None:
    signed_post(text_event("#xyz99"))
    (reply,) = replies(runtime)
    assert "#XYZ99" in reply["text"]
    assert "Không tìm thấy quầy" in reply["text"]
    assert row_counts(runtime)["survey_responses"] == 0


# --- full surveys --------------------------------------------------------------------------


def test_a_survey_completed_with_buttons_is_stored_with_every_answer(
    signed_post: Post, runtime: Runtime
) -> None:
    start_survey(signed_post)
    chosen = dict(zip(SCALE_ITEMS, [5, 4, 3, 2, 1], strict=True))
    labels = {5: "Rất hài lòng", 4: "Hài lòng", 3: "Bình thường", 2: "Không hài lòng", 1: ""}
    recorded = ""
    for number, item in enumerate(SCALE_ITEMS, start=1):
        if item == "feedback":  # "không áp dụng" is offered in a message after the question
            assert last_reply(runtime)["buttons"][0]["title"] == "Không áp dụng"
            question = replies(runtime)[-2]
        else:
            question = last_reply(runtime)
        assert question["text"].startswith(f"{recorded}Câu {number}/6\n")
        signed_post(text_event(payload_for(runtime, chosen[item])))
        recorded = f"Đã ghi nhận: {labels[chosen[item]]}.\n\n"
    assert last_reply(runtime)["text"].startswith("Đã ghi nhận: Rất không hài lòng.\n\nCâu 6/6")
    signed_post(text_event(skip_payload(runtime)))

    expected = {item: (value, None) for item, value in chosen.items()}
    assert stored_surveys(runtime) == [
        ("HVT01", "completed", {**expected, "comment": (None, None)}),
    ]
    assert "cảm ơn" in last_reply(runtime)["text"]
    with runtime.session_factory() as session:
        response = session.scalars(select(SurveyResponse)).one()
        assert response.completed_at is not None


@pytest.mark.parametrize(
    ("comment", "stored_comment"),
    [
        pytest.param("bỏ qua", (None, None), id="skipped"),
        pytest.param(
            "Cán bộ hướng dẫn tận tình, cảm ơn!",
            (None, "Cán bộ hướng dẫn tận tình, cảm ơn!"),
            id="free-text",
        ),
    ],
)
def test_a_survey_completed_by_typing_is_stored_with_every_answer(
    signed_post: Post, runtime: Runtime, comment: str, stored_comment: tuple[Any, Any]
) -> None:
    start_survey(signed_post)
    for typed in ["1", "2", "3", "4", "rất hài lòng", comment]:
        signed_post(text_event(typed))
    assert stored_surveys(runtime) == [
        (
            "HVT01",
            "completed",
            {
                "access": (1, None),
                "procedure": (2, None),
                "staff": (3, None),
                "result": (4, None),
                "feedback": (5, None),
                "comment": stored_comment,
            },
        )
    ]


def test_a_click_on_an_earlier_question_does_not_change_its_answer(
    signed_post: Post, runtime: Runtime
) -> None:
    start_survey(signed_post)
    first_question_low = payload_for(runtime, 1)
    signed_post(text_event(payload_for(runtime, 5)))
    signed_post(text_event(first_question_low))
    assert answers(runtime) == {"access": (5, None)}
    reply = last_reply(runtime)
    assert "đã được trả lời" in reply["text"]
    assert "Câu 2/6" in reply["text"]


def test_a_click_on_a_finished_surveys_button_changes_nothing(
    signed_post: Post, runtime: Runtime
) -> None:
    start_survey(signed_post)
    early = payload_for(runtime, 1)
    for typed in ["5", "5", "5", "5", "5", "bỏ qua"]:
        signed_post(text_event(typed))
    before = stored_surveys(runtime)
    signed_post(text_event(early))
    assert stored_surveys(runtime) == before
    assert before[0][1] == "completed"
    assert "đã kết thúc" in last_reply(runtime)["text"]


def test_a_finished_surveys_button_does_not_answer_the_survey_open_now(
    signed_post: Post, runtime: Runtime
) -> None:
    start_survey(signed_post)
    old_first_question = payload_for(runtime, 1)
    for typed in ["5", "5", "5", "5", "5", "bỏ qua"]:
        signed_post(text_event(typed))
    signed_post(text_event("#HVT02"))  # a new survey, asking the same first question
    signed_post(text_event(old_first_question))

    first, second = stored_surveys(runtime)
    assert first[1] == "completed"
    assert first[2]["access"] == (5, None)
    assert second == ("HVT02", "active", {})
    assert "Câu 1/6" in last_reply(runtime)["text"]


@pytest.mark.parametrize("junk", ["xin chào bạn", "6", "🙏", "sv:forged:access:5"])
def test_junk_text_reprompts_and_stores_nothing_new(
    signed_post: Post, runtime: Runtime, junk: str
) -> None:
    start_survey(signed_post)
    signed_post(text_event("4"))
    signed_post(text_event(junk))
    assert answers(runtime) == {"access": (4, None)}
    reply = last_reply(runtime)
    assert "Câu 2/6" in reply["text"]
    assert len(reply["buttons"]) == 5


def test_replies_are_vietnamese_with_diacritics(signed_post: Post, runtime: Runtime) -> None:
    start_survey(signed_post)
    question = last_reply(runtime)["text"]
    assert "Câu 1/" in question
    assert "Ông/Bà đánh giá thế nào" in question
    assert "Bấm một nút hoặc gõ số từ 1 đến 5" in question
