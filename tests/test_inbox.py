"""WEBHOOK_INTAKE=queued: the webhook stores the checked event and answers 200 at once, and a
worker runs the very turn the inline webhook runs: once, in each user's arrival order, and
again after a crash that left it half done."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from bot.cli import cli
from bot.config import ConfigError, Settings
from bot.conversation.inbox import MAX_ATTEMPTS, inbox_threads
from bot.jobs import forget_old_deliveries
from bot.privacy.retention import erase_person
from bot.runtime import Runtime
from bot.server import Background
from storage import repositories as repo
from storage.models import (
    Conversation,
    InboxEvent,
    InboxStatus,
    OutboxMessage,
    ProcessedEvent,
    SurveyResponse,
)
from tests.conftest import FakeClock, follow_event, reconfigure, text_event
from tests.test_webhook import USER, replies, stored_surveys

Post = Callable[..., Any]
CASE_NUMBER = re.compile(r"PA-\d{4}-\d{6}")
OTHER = "246845883529197923"
# A typed survey: the code, five ratings typed as numbers, a skipped comment.
SURVEY = ["#HVT01", "4", "5", "3", "2", "1", "bỏ qua"]


@pytest.fixture
def queued(runtime: Runtime) -> Runtime:
    reconfigure(runtime, webhook_intake="queued")
    return runtime


def inbox_rows(runtime: Runtime) -> list[tuple[str, str, int]]:
    """(user, status, attempts) of every stored event, in arrival order."""
    with runtime.session_factory() as session:
        rows = session.execute(
            select(InboxEvent.user_id, InboxEvent.status, InboxEvent.attempts).order_by(
                InboxEvent.id
            )
        ).all()
    return [(user, status, attempts) for user, status, attempts in rows]


def count(runtime: Runtime, model: type[Any]) -> int:
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def shown(bodies: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """What the citizen sees of the replies: texts and button titles (the payloads carry a
    survey's random token), the case reference without its number (the second survey's
    case is the second case)."""
    return [
        (CASE_NUMBER.sub("PA-n", b["text"]), [button["title"] for button in b.get("buttons", [])])
        for b in bodies
    ]


def test_queued_mode_answers_200_without_running_the_turn(
    signed_post: Post, queued: Runtime
) -> None:
    response = signed_post(text_event("#HVT01"))
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "outcome": "queued"}
    assert inbox_rows(queued) == [(USER, InboxStatus.PENDING, 0)]
    for model in (ProcessedEvent, Conversation, OutboxMessage, SurveyResponse):
        assert count(queued, model) == 0, model.__tablename__


def test_the_worker_sends_what_the_inline_webhook_sends(
    signed_post: Post, runtime: Runtime
) -> None:
    for text in SURVEY:
        assert signed_post(text_event(text, user_id=OTHER)).get_json()["outcome"] == "handled"
    inline = replies(runtime, OTHER)
    reconfigure(runtime, webhook_intake="queued")
    for text in SURVEY:  # all stored before any turn runs
        assert signed_post(text_event(text)).get_json()["outcome"] == "queued"
    assert replies(runtime) == []
    assert runtime.inbox.drain() == len(SURVEY)
    assert len(inline) > len(SURVEY)  # intro, questions, thanks
    assert shown(replies(runtime)) == shown(inline)
    (survey_inline, survey_queued) = stored_surveys(runtime)
    assert survey_queued == survey_inline
    assert survey_queued[2]["access"] == (4, None)
    assert {status for _user, status, _attempts in inbox_rows(runtime)} == {InboxStatus.DONE}


def test_a_redelivery_is_stored_once_and_answered_once(signed_post: Post, queued: Runtime) -> None:
    event = text_event("#HVT01")
    assert signed_post(event).get_json()["outcome"] == "queued"
    assert signed_post(event).get_json()["outcome"] == "duplicate"
    assert len(inbox_rows(queued)) == 1
    assert queued.inbox.drain() == 1
    assert len(replies(queued)) == 2  # the intro and question 1
    # Zalo re-sends it once more after the turn ran: still nothing new.
    assert signed_post(event).get_json()["outcome"] == "duplicate"
    assert queued.inbox.drain() == 0
    assert len(replies(queued)) == 2
    assert count(queued, SurveyResponse) == 1


def test_an_event_without_msg_id_is_stored_once(signed_post: Post, queued: Runtime) -> None:
    event = follow_event()
    signed_post(event)
    assert signed_post(event).get_json()["outcome"] == "duplicate"
    assert queued.inbox.drain() == 1
    assert len(replies(queued)) == 1


def test_refusals_and_ignored_events_are_answered_as_inline_and_not_stored(
    signed_post: Post, queued: Runtime
) -> None:
    assert signed_post(text_event("#HVT01"), signature="mac=00").status_code == 401
    not_a_citizen = {**text_event("hello"), "event_name": "oa_send_text"}
    response = signed_post(not_a_citizen)
    assert (response.status_code, response.get_json()["outcome"]) == (200, "ignored")
    assert inbox_rows(queued) == []


def test_the_webhook_wakes_this_process_inbox_thread(signed_post: Post, queued: Runtime) -> None:
    stop = threading.Event()
    # Polling every 30 s: only the webhook's wake-up can run the turn within the wait below.
    thread = threading.Thread(
        target=queued.inbox.run_forever,
        args=(stop, queued.inbox_wakeup),
        kwargs={"replies": queued.sender_wakeup, "idle_seconds": 30.0},
    )
    thread.start()
    try:
        signed_post(text_event("#HVT01"))
        assert queued.sender_wakeup.wait(timeout=15), "the turn queued no reply"
        assert len(replies(queued)) == 2
    finally:
        stop.set()
        queued.inbox_wakeup.set()
        thread.join(timeout=15)
    assert not thread.is_alive()


class Crash(BaseException):
    """The process dies here: nothing after it runs, the transaction is rolled back."""


def test_a_crash_before_the_commit_leaves_the_event_pending_and_it_runs_once(
    signed_post: Post, queued: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_post(text_event("#HVT01"))

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise Crash

    # After the turn wrote its survey and replies, before the row is marked and committed.
    monkeypatch.setattr(repo, "finish_inbox_event", crash)
    with pytest.raises(Crash):
        queued.inbox.run_once()
    assert inbox_rows(queued) == [(USER, InboxStatus.PENDING, 0)]
    assert (count(queued, ProcessedEvent), replies(queued)) == (0, [])
    monkeypatch.undo()
    assert queued.inbox.drain() == 1
    assert len(replies(queued)) == 2
    assert count(queued, SurveyResponse) == 1
    assert queued.inbox.drain() == 0
    assert inbox_rows(queued) == [("", InboxStatus.DONE, 0)]


def test_a_turn_that_raises_is_retried_later_and_runs_once(
    signed_post: Post, queued: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_post(text_event("#HVT01"))
    signed_post(text_event("4"))
    handle = queued.service.handle

    def fails(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the turn broke")

    monkeypatch.setattr(queued.service, "handle", fails)
    assert queued.inbox.drain() == 1  # tried once, then not due: "4" waits behind it
    monkeypatch.setattr(queued.service, "handle", handle)
    assert queued.inbox.drain() == 0
    assert inbox_rows(queued) == [(USER, InboxStatus.PENDING, 1), (USER, InboxStatus.PENDING, 0)]
    assert replies(queued) == []
    clock.advance(seconds=3)
    assert queued.inbox.drain() == 2
    assert len(replies(queued)) == 3  # the intro, question 1, then question 2
    assert stored_surveys(queued)[0][2] == {"access": (4, None)}


def test_a_turn_that_always_raises_is_given_up_and_the_users_next_event_runs(
    signed_post: Post,
    queued: Runtime,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    signed_post(text_event("4"))
    signed_post(text_event("#HVT01"))
    handle = queued.service.handle

    def fails_on_4(session: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        if event.text == "4":
            raise RuntimeError("the turn broke")
        return handle(session, event, *args, **kwargs)

    monkeypatch.setattr(queued.service, "handle", fails_on_4)
    with caplog.at_level(logging.WARNING, logger="sipas_bot.inbox"):
        for _ in range(MAX_ATTEMPTS):
            assert replies(queued) == []
            queued.inbox.drain()
            clock.advance(seconds=60)
    assert inbox_rows(queued) == [
        (USER, InboxStatus.DEAD, MAX_ATTEMPTS),
        ("", InboxStatus.DONE, 0),
    ]
    assert len(replies(queued)) == 2  # "#HVT01" ran once the first was given up
    failures = [r.getMessage() for r in caplog.records if "inbox_turn_failed" in r.getMessage()]
    assert len(failures) == MAX_ATTEMPTS
    assert "outcome=dead" in failures[-1] and USER not in failures[-1]


def test_two_workers_run_one_users_events_in_arrival_order(
    signed_post: Post, queued: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A holds the user's first event mid-turn; worker B meanwhile runs another user's
    event (PostgreSQL: SKIP LOCKED) or waits for A (SQLite: one writer), never the user's
    second event, which would answer "4" before the survey started."""
    signed_post(text_event("#HVT01"))
    signed_post(text_event("4"))
    signed_post(text_event("#HVT01", user_id=OTHER))
    handle = queued.service.handle
    in_turn, release = threading.Event(), threading.Event()

    def held(session: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        if event.user_id == USER and event.text == "#HVT01":
            in_turn.set()
            assert release.wait(timeout=30)
        return handle(session, event, *args, **kwargs)

    monkeypatch.setattr(queued.service, "handle", held)
    outcomes: dict[str, Any] = {}
    a = threading.Thread(target=lambda: outcomes.setdefault("a", queued.inbox.run_once()))
    b = threading.Thread(target=lambda: outcomes.setdefault("b", queued.inbox.run_once()))
    a.start()
    try:
        assert in_turn.wait(timeout=30)
        b.start()
        if queued.engine.dialect.name == "postgresql":
            b.join(timeout=30)
            assert not b.is_alive()
            assert replies(queued, OTHER) and replies(queued) == []
            assert [s for u, s, _ in inbox_rows(queued) if u == USER] == [
                InboxStatus.PENDING,
                InboxStatus.PENDING,
            ]
    finally:
        release.set()
        a.join(timeout=30)
        b.join(timeout=30)
    assert outcomes["a"] is not None and outcomes["b"] is not None
    queued.inbox.drain()
    # The other user's survey has no answer; the user's "4" answered their question 1.
    assert sorted(len(s[2]) for s in stored_surveys(queued)) == [0, 1]
    assert {"access": (4, None)} in [s[2] for s in stored_surveys(queued)]
    assert "Câu 2/6" in replies(queued)[-1]["text"]
    assert {s for _u, s, _a in inbox_rows(queued)} == {InboxStatus.DONE}


def test_health_and_check_show_the_inbox_backlog(
    app: Flask, signed_post: Post, queued: Runtime, clock: FakeClock
) -> None:
    client = app.test_client()
    signed_post(text_event("#HVT01"))
    signed_post(text_event("#HVT01", user_id=OTHER))
    health = client.get("/healthz").get_json()
    assert (health["status"], health["inbox"]) == ("ok", {"pending": 2, "oldest_seconds": 0})
    clock.advance(minutes=2)
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded"
    assert health["inbox"] == {"pending": 2, "oldest_seconds": 120}
    assert any("inbox" in problem for problem in health["problems"])
    output = app.test_cli_runner().invoke(cli, ["check"]).output
    assert "WARN  inbox (WEBHOOK_INTAKE=queued): 2 event(s) waiting, the oldest for 120 s" in output
    queued.inbox.drain()
    assert client.get("/healthz").get_json()["inbox"] == {"pending": 0, "oldest_seconds": 0}
    output = app.test_cli_runner().invoke(cli, ["check"]).output
    assert "OK    inbox (WEBHOOK_INTAKE=queued): 0 event(s) waiting" in output


def test_inline_mode_shows_no_inbox(client: Any) -> None:
    assert "inbox" not in client.get("/healthz").get_json()


def test_events_run_are_forgotten_with_the_dedupe_records(
    signed_post: Post, queued: Runtime, clock: FakeClock
) -> None:
    signed_post(text_event("#HVT01"))
    queued.inbox.drain()
    signed_post(text_event("#HVT01", user_id=OTHER))  # pending: kept whatever its age
    clock.advance(hours=queued.settings.dedupe_retention.total_seconds() / 3600 + 1)
    forget_old_deliveries(queued)
    assert inbox_rows(queued) == [(OTHER, InboxStatus.PENDING, 0)]


def test_an_unknown_intake_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_INTAKE must be one of inline, queued"):
        Settings.from_env({"WEBHOOK_INTAKE": "async"})
    assert Settings.from_env({"WEBHOOK_INTAKE": "queued"}).queued_intake
    assert not Settings.from_env({}).queued_intake


def test_a_process_inbox_threads_run_the_turns_and_stop(signed_post: Post, queued: Runtime) -> None:
    stop = threading.Event()
    threads = inbox_threads(
        queued.inbox,
        stop,
        queued.inbox_wakeup,
        replies=queued.sender_wakeup,
        count=3,
        poll_seconds=0.05,
    )
    for thread in threads:
        thread.start()
    try:
        for user in (USER, OTHER):
            signed_post(text_event("#HVT01", user_id=user))
        deadline = time.monotonic() + 30
        while any(s == InboxStatus.PENDING for _u, s, _a in inbox_rows(queued)):
            assert time.monotonic() < deadline, "the inbox threads ran no turn"
            time.sleep(0.05)
    finally:
        stop.set()
        queued.inbox_wakeup.set()
        for thread in threads:
            thread.join(timeout=15)
    assert not any(thread.is_alive() for thread in threads)
    assert len(replies(queued)) == len(replies(queued, OTHER)) == 2


def test_events_left_by_a_queued_intake_run_after_the_switch_to_inline(
    app: Flask, signed_post: Post, queued: Runtime
) -> None:
    for user in (USER, OTHER):
        signed_post(text_event("#HVT01", user_id=user))
    reconfigure(queued, webhook_intake="inline")
    output = app.test_cli_runner().invoke(cli, ["check"]).output
    assert "inbox (WEBHOOK_INTAKE=inline, left from queued): 2 event(s) waiting" in output
    background = Background(queued)
    assert len(background.inbox_threads) == 1  # one looks seldom, woken at once here
    for thread in background.inbox_threads:
        thread.start()
    try:
        queued.inbox_wakeup.set()
        deadline = time.monotonic() + 30
        while any(s == InboxStatus.PENDING for _u, s, _a in inbox_rows(queued)):
            assert time.monotonic() < deadline, "the inline process ran no waiting turn"
            time.sleep(0.05)
    finally:
        background.stop_event.set()
        queued.inbox_wakeup.set()
        for thread in background.inbox_threads:
            thread.join(timeout=15)
    assert len(replies(queued)) == len(replies(queued, OTHER)) == 2
    assert "inbox" not in app.test_cli_runner().invoke(cli, ["check"]).output


def test_an_erased_citizen_s_waiting_events_are_deleted_and_a_run_one_keeps_no_id(
    signed_post: Post, queued: Runtime
) -> None:
    signed_post(text_event("#HVT01", user_id=OTHER))
    queued.inbox.drain()
    signed_post(text_event("#HVT01"))
    with queued.session_factory() as session:
        done = session.scalars(select(InboxEvent).where(InboxEvent.status == InboxStatus.DONE))
        assert [(e.user_id, e.body) for e in done] == [("", b"")]
    with queued.session_factory.begin() as session:
        erase_person(session, pseudonyms=queued.pseudonyms, zalo_user_id=USER)
    assert inbox_rows(queued) == [("", InboxStatus.DONE, 0)]
