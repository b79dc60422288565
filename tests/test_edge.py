"""Bad input at the edge (issue 12): every request gets a defined answer and one log line with
control characters escaped; nothing odd reaches the database; replays outside the window are
refused. Runs on SQLite and, with TEST_DATABASE_URL, PostgreSQL (where the odd values used to
be DataErrors)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.jobs import forget_old_deliveries
from bot.runtime import Runtime
from storage.models import Answer, Conversation, OutboxMessage, ProcessedEvent, SurveyResponse
from tests.conftest import APP_ID, OA_SECRET, FakeClock, encode, follow_event, text_event
from zalo_client import SIGNATURE_HEADER, SignatureVerifier
from zalo_client.events import MAX_DEPTH

USER = "246845883529197922"
Post = Callable[..., Any]
VERIFIER = SignatureVerifier(APP_ID, OA_SECRET)


def stored(runtime: Runtime) -> dict[str, int]:
    with runtime.session_factory() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (ProcessedEvent, Conversation, OutboxMessage, SurveyResponse)
        }


NOTHING = {
    "processed_events": 0,
    "conversations": 0,
    "outbox_messages": 0,
    "survey_responses": 0,
}


def sign_raw(client: FlaskClient, body: bytes, timestamp: str = "") -> Any:
    return client.post(
        "/zalo/webhook",
        data=body,
        headers={SIGNATURE_HEADER: VERIFIER.sign(body, timestamp)},
        content_type="application/json",
    )


def webhook_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("sipas_bot.web")]


# --- deep nesting --------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"event_name":"user_send_text","x":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_deep_nesting_without_a_valid_signature_is_401_and_never_parsed(
    client: FlaskClient, runtime: Runtime, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for header in ({}, {SIGNATURE_HEADER: "mac=" + "0" * 64}, {SIGNATURE_HEADER: "junk"}):
        response = client.post("/zalo/webhook", data=nested(depth), headers=header)
        assert response.status_code == 401
    assert stored(runtime) == NOTHING
    assert len(webhook_lines(caplog)) == 3


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 30_000])
def test_deep_nesting_signed_is_a_bad_request(
    client: FlaskClient, runtime: Runtime, depth: int
) -> None:
    response = sign_raw(client, nested(depth))
    assert response.status_code == 400
    assert response.get_json() == {"error": "malformed_body"}
    assert stored(runtime) == NOTHING


def test_nesting_up_to_the_limit_is_read(client: FlaskClient, runtime: Runtime) -> None:
    event = text_event("#HVT01", user_id=USER)
    extra = b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    body = encode(event)[:-1] + b',"extra":' + extra + b"}"
    response = sign_raw(client, body, event["timestamp"])
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "handled"


def test_brackets_inside_strings_do_not_count_as_nesting(
    signed_post: Post, runtime: Runtime
) -> None:
    assert signed_post(text_event("#HVT01")).status_code == 200
    response = signed_post(text_event("[" * 500 + "{" * 500 + '\\"'))
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "handled"


def test_a_nested_timestamp_cannot_stand_in_for_the_events_own(
    client: FlaskClient, runtime: Runtime
) -> None:
    event = text_event("#HVT01") | {"message": {"text": "#HVT01", "timestamp": "1"}}
    body = encode(event)
    response = sign_raw(client, body, "1")  # signed with the nested one, not the event's
    assert response.status_code == 401
    assert stored(runtime) == NOTHING


# --- ids and names that cannot be Zalo's ---------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda e: e["sender"].update(id="9" * 65), id="sender-id-too-long"),
        pytest.param(lambda e: e["sender"].update(id="12 34"), id="sender-id-not-digits"),
        pytest.param(lambda e: e["sender"].update(id="1\x00"), id="sender-id-nul"),
        pytest.param(lambda e: e["sender"].update(id=10**70), id="sender-id-huge-number"),
        pytest.param(lambda e: e["recipient"].update(id="x" * 100), id="recipient-id"),
        pytest.param(lambda e: e["message"].update(msg_id="a" * 65), id="msg-id-too-long"),
        pytest.param(lambda e: e["message"].update(msg_id="\ud800"), id="msg-id-surrogate"),
        pytest.param(lambda e: e.update(app_id="app\n"), id="app-id"),
        pytest.param(lambda e: e.update(oa_id="-1"), id="oa-id"),
        pytest.param(lambda e: e.update(event_name="user_send_text" + "x" * 60), id="long-name"),
        pytest.param(lambda e: e.update(event_name="user_send\x00text"), id="name-nul"),
    ],
)
def test_a_signed_event_zalo_cannot_have_sent_is_acknowledged_and_stores_nothing(
    signed_post: Post,
    runtime: Runtime,
    change: Callable[[dict[str, Any]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = text_event("#HVT01")
    change(event)
    caplog.set_level(logging.INFO)
    response = signed_post(event)
    assert (response.status_code, response.get_json()) == (200, {"ok": True, "outcome": "ignored"})
    assert stored(runtime) == NOTHING
    (line,) = webhook_lines(caplog)
    assert "reason=unusable_event" in line


def test_ids_of_every_zalo_shape_are_accepted(signed_post: Post, runtime: Runtime) -> None:
    event = text_event("#HVT01", user_id="1" * 32, msg_id="96d3cdf3af150460909" + "f" * 45)
    assert signed_post(event).get_json()["outcome"] == "handled"
    assert stored(runtime)["survey_responses"] == 1


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("tốt\x00 lắm", "tốt lắm"),
        ("a\ud800b", "ab"),
        ("\x1b[31mđỏ\x1b[0m", "[31mđỏ[0m"),
        ("dòng 1\r\ndòng 2\tcột\x01", "dòng 1\ndòng 2\tcột"),
        ("\u2028x\x7f\x85", "x"),
        ("x" * 5000, "x" * 2000),
    ],
)
def test_a_comment_is_cleaned_once_at_the_edge_before_it_is_stored(
    client: FlaskClient, runtime: Runtime, typed: str, kept: str
) -> None:
    def say(text: str) -> None:
        event = text_event(text)
        # json.dumps writes a lone surrogate as \ud800, as a sender could.
        body = json.dumps(event, ensure_ascii=True).encode()
        assert sign_raw(client, body, event["timestamp"]).status_code == 200

    for text in ["#HVT01", "1", "2", "3", "4", "5", typed]:
        say(text)
    with runtime.session_factory() as session:
        comment = session.scalar(select(Answer.text).where(Answer.item_id == "comment"))
    assert comment == kept


# --- odd paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/q/%00",
        "/u/%00/results",
        "/q/%00%0Aevent=forged outcome=ok",
        "/u/HVT%0D%0Aforged/results",
        "/q/" + "A" * 300,
        "/q/%ED%A0%80",  # an encoded lone surrogate
        "/q/%FF%FE",  # not UTF-8
        "/%00",
        "/zalo/webhook/%00",
        "/q/HVT01/%0A",
    ],
)
def test_an_odd_path_is_404_with_one_escaped_log_line(
    client: FlaskClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.get(path)
    assert response.status_code == 404
    assert b"Traceback" not in response.data
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "\n" not in lines[0] and "\r" not in lines[0] and "\x00" not in lines[0]
    assert lines[0].startswith("event=http_refused status=404")
    assert not any(r.exc_info for r in caplog.records)


def test_a_wrong_method_is_405_with_one_log_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert client.get("/zalo/webhook").status_code == 405
    assert len(caplog.records) == 1


def test_a_webhook_refusal_logs_one_line_with_the_detail_escaped(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = b'{"event_name": "x\\nforged"'
    response = sign_raw(client, body)
    assert response.status_code == 400
    (line,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in line


def test_an_unexpected_error_is_a_500_with_one_line_not_a_traceback(
    client: FlaskClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom\nforged line")

    runtime.service.handle = broken  # type: ignore[method-assign]
    event = text_event("#HVT01")
    response = sign_raw(client, encode(event), event["timestamp"])
    assert response.status_code == 500
    assert b"boom" not in response.data
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("event=request_failed status=500 method=POST path=/zalo/webhook")
    assert "error=RuntimeError" in line and "\n" not in line


# --- replay window -------------------------------------------------------------------------


def at(clock: FakeClock, **delta: float) -> str:
    return str(int((clock() + timedelta(**delta)).timestamp() * 1000))


@pytest.mark.parametrize(
    ("delta", "outcome"),
    [
        pytest.param({"hours": -2, "minutes": -5}, "handled", id="zalo-retry-after-2h"),
        pytest.param({"hours": -23}, "handled", id="23h-old"),
        pytest.param({"hours": -25}, "ignored", id="25h-old"),
        pytest.param({"days": -30}, "ignored", id="a-month-old"),
        pytest.param({"hours": 25}, "ignored", id="25h-in-the-future"),
        pytest.param({"days": 10**6}, "ignored", id="far-future"),
    ],
)
def test_a_signed_event_is_processed_only_within_the_replay_window(
    signed_post: Post, runtime: Runtime, clock: FakeClock, delta: dict[str, float], outcome: str
) -> None:
    response = signed_post(text_event("#HVT01", timestamp=at(clock, **delta)))
    assert (response.status_code, response.get_json()["outcome"]) == (200, outcome)
    assert stored(runtime)["survey_responses"] == (1 if outcome == "handled" else 0)


@pytest.mark.parametrize(
    ("timestamp", "status"),
    [
        (None, 200),
        ("", 200),
        ("yesterday", 200),
        ("-1", 200),
        ("9" * 40, 200),
        (-1, 200),
        (1.5, 401),
    ],
)
def test_a_signed_event_without_a_usable_timestamp_is_ignored(
    client: FlaskClient, runtime: Runtime, timestamp: Any, status: int
) -> None:
    event = text_event("#HVT01")
    if timestamp is None:
        del event["timestamp"]
    else:
        event["timestamp"] = timestamp
    body = encode(event)
    response = sign_raw(client, body, "" if timestamp is None else json.dumps(timestamp).strip('"'))
    assert response.status_code == status
    assert stored(runtime) == NOTHING


def test_the_window_is_a_setting(database_url: str, clock: FakeClock) -> None:
    from bot.web import create_app, runtime_of
    from storage import migrate
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, webhook_replay_window_hours=3), clock=clock)
    migrate.upgrade(runtime_of(app).engine)
    event = follow_event() | {"timestamp": at(clock, hours=-4)}
    body = encode(event)
    response = sign_raw(app.test_client(), body, event["timestamp"])
    runtime_of(app).engine.dispose()
    assert response.get_json()["outcome"] == "ignored"


def test_a_replay_within_the_window_is_a_duplicate_until_the_window_has_passed(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    """The dedupe rows outlive the window: any copy the window admits finds its row."""
    event = text_event("#HVT01", timestamp=at(clock, hours=23))  # as far ahead as admitted
    assert signed_post(event).get_json()["outcome"] == "handled"
    for _ in range(7):  # 6 h … 42 h later: the timestamp is at most 19 h old, still admitted
        clock.advance(hours=6)
        forget_old_deliveries(runtime)
        assert signed_post(event).get_json()["outcome"] == "duplicate"
    clock.advance(hours=6)  # 48 h: 25 h old
    assert signed_post(event).get_json()["outcome"] == "ignored"
    assert stored(runtime)["survey_responses"] == 1
    clock.advance(hours=25)  # past 2 windows and a day: the row is no longer needed
    forget_old_deliveries(runtime)
    assert stored(runtime)["processed_events"] == 0


def test_an_unknown_counter_code_is_one_log_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert client.get("/q/ZZ99").status_code == 404
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("event=http_refused status=404") and "ZZ99" in line
