"""What survives the process: a survey continues on a freshly built app over the same database,
and a survey left idle is closed as partial with the answers it has."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from bot.jobs import expire_idle_surveys
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage.models import Conversation, OutboxMessage, SurveyResponse
from tests.conftest import APP_ID, OA_SECRET, FakeClock, encode, make_settings, text_event
from zalo_client import SIGNATURE_HEADER, SignatureVerifier

USER = "246845883529197922"
Post = Callable[..., Any]


def last_reply(runtime: Runtime) -> dict[str, Any]:
    with runtime.session_factory() as session:
        body: dict[str, Any] = session.scalars(
            select(OutboxMessage.body).order_by(OutboxMessage.id.desc()).limit(1)
        ).one()
        return body


def button(runtime: Runtime, value: int) -> str:
    """The payload of the button for `value` on the question asked last."""
    payload: str = last_reply(runtime)["buttons"][value - 1]["payload"]
    return payload


def surveys(runtime: Runtime) -> list[tuple[str, dict[str, tuple[Any, Any]]]]:
    with runtime.session_factory() as session:
        return [
            (r.status, {a.item_id: (a.value, a.text) for a in r.answers})
            for r in session.scalars(select(SurveyResponse).order_by(SurveyResponse.id))
        ]


def open_survey_id(runtime: Runtime) -> int | None:
    with runtime.session_factory() as session:
        conversation = session.get(Conversation, (USER, ""))
        assert conversation is not None
        return conversation.open_response_id


def poster(app: Flask) -> Post:
    """`signed_post` for an app other than the fixture's."""
    client = app.test_client()
    verifier = SignatureVerifier(APP_ID, OA_SECRET)

    def post(event: dict[str, Any]) -> Any:
        body = encode(event)
        signature = verifier.sign(body, json.loads(body)["timestamp"])
        response = client.post(
            "/zalo/webhook",
            data=body,
            headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
        )
        assert response.status_code == 200
        return response

    return post


@pytest.fixture
def build_app(app: Flask, database_url: str, clock: FakeClock) -> Iterator[Callable[..., Flask]]:
    """New apps on the fixture app's database (migrated, units imported); disposed after."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        new_app = create_app(make_settings(database_url, **overrides), clock=clock)
        built.append(new_app)
        return new_app

    yield build
    for new_app in built:
        runtime_of(new_app).engine.dispose()


# --- restart -------------------------------------------------------------------------------


def test_a_survey_continues_on_a_new_app_after_the_server_died(
    signed_post: Post, runtime: Runtime, build_app: Callable[..., Flask], clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01"))
    signed_post(text_event(button(runtime, 4)))
    signed_post(text_event("3"))
    asked_before_dying = last_reply(runtime)
    runtime.engine.dispose()

    restarted = build_app()
    post, new_runtime = poster(restarted), runtime_of(restarted)
    clock.advance(minutes=5)
    assert "\n\nCâu 3/6\n" in asked_before_dying["text"]
    post(text_event(button(new_runtime, 5)))  # a button the old process queued
    assert last_reply(new_runtime)["text"].startswith("Đã ghi nhận: Rất hài lòng.\n\nCâu 4/6\n")
    for typed in ["2", "1", "Phòng chờ hơi nóng."]:
        post(text_event(typed))

    assert surveys(new_runtime) == [
        (
            "completed",
            {
                "access": (4, None),
                "procedure": (3, None),
                "staff": (5, None),
                "result": (2, None),
                "feedback": (1, None),
                "comment": (None, "Phòng chờ hơi nóng."),
            },
        )
    ]
    assert "cảm ơn" in last_reply(new_runtime)["text"]


# --- idle expiry ---------------------------------------------------------------------------


def answer_two_questions(signed_post: Post) -> None:
    for text in ["#HVT01", "4", "5"]:
        signed_post(text_event(text))


def test_after_the_idle_time_the_next_message_gets_the_expiry_note_and_the_survey_is_partial(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    assert runtime.settings.survey_idle_minutes == 30
    answer_two_questions(signed_post)
    clock.advance(minutes=31)
    signed_post(text_event("3"))

    assert "hết thời gian" in last_reply(runtime)["text"]
    assert surveys(runtime) == [("partial", {"access": (4, None), "procedure": (5, None)})]
    assert open_survey_id(runtime) is None


def test_within_the_idle_time_the_survey_goes_on(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    answer_two_questions(signed_post)
    clock.advance(minutes=29)
    signed_post(text_event("3"))

    assert last_reply(runtime)["text"].startswith("Đã ghi nhận: Bình thường.\n\nCâu 4/6\n")
    assert surveys(runtime) == [
        ("active", {"access": (4, None), "procedure": (5, None), "staff": (3, None)})
    ]


def test_the_idle_time_follows_the_setting(
    build_app: Callable[..., Flask], clock: FakeClock
) -> None:
    quick = build_app(survey_idle_minutes=5)
    post, runtime = poster(quick), runtime_of(quick)
    answer_two_questions(post)
    clock.advance(minutes=6)
    post(text_event("3"))

    assert "hết thời gian" in last_reply(runtime)["text"]
    assert surveys(runtime)[0][0] == "partial"


def test_the_housekeeping_job_keeps_an_idle_surveys_answers_as_partial(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    answer_two_questions(signed_post)
    clock.advance(minutes=31)
    assert expire_idle_surveys(runtime) == 1

    assert surveys(runtime) == [("partial", {"access": (4, None), "procedure": (5, None)})]
    # The conversation still points at it, so the citizen's next message hears why.
    assert open_survey_id(runtime) is not None


def test_after_the_housekeeping_job_closed_a_survey_the_next_message_gets_the_expiry_note(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    answer_two_questions(signed_post)
    clock.advance(minutes=31)
    assert expire_idle_surveys(runtime) == 1
    signed_post(text_event("3"))

    assert "hết thời gian" in last_reply(runtime)["text"]
