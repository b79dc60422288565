"""Parsing of Zalo webhook payloads, starting from the official samples."""

from __future__ import annotations

import hashlib
import json

import pytest

from zalo_client import InboundEvent, MalformedEvent, dedupe_key, parse_event

USER_SEND_TEXT = (
    '{"app_id":"360846524940903967","sender":{"id":"246845883529197922"},'
    '"user_id_by_app":"552177279717587730","recipient":{"id":"388613280878808645"},'
    '"event_name":"user_send_text","message":{"text":"message","msg_id":"96d3cdf3af150460909"},'
    '"timestamp":"1543908534740"}'
)
FOLLOW = (
    '{"oa_id":"388613280879808645","follower":{"id":"24684588352919792"},'
    '"user_id_by_app":"552172779717587730","event_name":"follow","source":"oa_profile",'
    '"app_id":"36084652489903967","timestamp":"1543979782740"}'
)


def test_user_send_text_sample() -> None:
    event = parse_event(json.loads(USER_SEND_TEXT))
    assert event == InboundEvent(
        name="user_send_text",
        user_id="246845883529197922",
        text="message",
        msg_id="96d3cdf3af150460909",
        timestamp_ms=1543908534740,
        app_id="360846524940903967",
        oa_id="388613280878808645",
    )


def test_follow_without_user_id_by_app() -> None:
    payload = json.loads(FOLLOW)
    del payload["user_id_by_app"]
    event = parse_event(payload)
    assert event == InboundEvent(
        name="follow",
        user_id="24684588352919792",
        text=None,
        msg_id=None,
        timestamp_ms=1543979782740,
        app_id="36084652489903967",
        oa_id="388613280879808645",
    )


def test_unfollow_reads_follower() -> None:
    payload = json.loads(FOLLOW) | {"event_name": "unfollow"}
    assert parse_event(payload).user_id == "24684588352919792"


def test_chatnow_with_top_level_user_id() -> None:
    payload = {
        "event_name": "user_click_chatnow",
        "app_id": "360846524940903967",
        "user_id": "246845883529197922",
        "oa_id": "388613280878808645",
        "timestamp": "1543908534740",
    }
    event = parse_event(payload)
    assert event.user_id == "246845883529197922"
    assert event.oa_id == "388613280878808645"
    assert event.text is None


def test_chatnow_with_follower() -> None:
    payload = {
        "event_name": "user_click_chatnow",
        "follower": {"id": "246845883529197922"},
        "oa_id": "388613280878808645",
        "timestamp": "1543908534740",
    }
    assert parse_event(payload).user_id == "246845883529197922"


def test_chatnow_with_sender_only() -> None:
    payload = {
        "event_name": "user_click_chatnow",
        "sender": {"id": "246845883529197922"},
        "recipient": {"id": "388613280878808645"},
    }
    event = parse_event(payload)
    assert event.user_id == "246845883529197922"
    assert event.oa_id == "388613280878808645"


def test_other_user_event_reads_sender() -> None:
    payload = json.loads(USER_SEND_TEXT) | {"event_name": "user_send_sticker"}
    event = parse_event(payload)
    assert event.user_id == "246845883529197922"
    assert event.text is None


@pytest.mark.parametrize(
    "name", ["oa_send_text", "oa_send_list", "user_received_message", "user_seen_message"]
)
def test_oa_side_events_read_the_user_from_recipient(name: str) -> None:
    payload = {
        "event_name": name,
        "app_id": "360846524940903967",
        "sender": {"id": "388613280878808645"},
        "recipient": {"id": "246845883529197922"},
        "message": {"text": "Bạn hài lòng?", "msg_id": "abc"},
        "timestamp": "1543908534740",
    }
    event = parse_event(payload)
    assert event.user_id == "246845883529197922"
    assert event.oa_id == "388613280878808645"
    assert event.text is None


def test_seen_message_has_no_single_msg_id() -> None:
    payload = {
        "event_name": "user_seen_message",
        "sender": {"id": "388613280878808645"},
        "recipient": {"id": "246845883529197922"},
        "message": {"msg_ids": ["a", "b"]},
    }
    assert parse_event(payload).msg_id is None


def test_ids_stay_strings_without_losing_digits() -> None:
    event = parse_event(json.loads(USER_SEND_TEXT))
    for value in (event.user_id, event.oa_id, event.app_id, event.msg_id):
        assert isinstance(value, str)
    assert event.user_id == "246845883529197922"


def test_numeric_ids_are_converted_to_strings() -> None:
    payload = {
        "event_name": "user_send_text",
        "sender": {"id": 246845883529197922},
        "recipient": {"id": 388613280878808645},
        "app_id": 360846524940903967,
        "message": {"text": "hi", "msg_id": 42},
        "timestamp": 1543908534740,
    }
    event = parse_event(payload)
    assert event.user_id == "246845883529197922"
    assert event.oa_id == "388613280878808645"
    assert event.app_id == "360846524940903967"
    assert event.msg_id == "42"
    assert event.timestamp_ms == 1543908534740


def test_missing_optional_parts_become_none() -> None:
    assert parse_event({"event_name": "user_send_text"}) == InboundEvent(
        name="user_send_text",
        user_id=None,
        text=None,
        msg_id=None,
        timestamp_ms=None,
        app_id=None,
        oa_id=None,
    )


def test_ill_typed_optional_parts_become_none() -> None:
    payload = {
        "event_name": "user_send_text",
        "sender": "246845883529197922",
        "recipient": {"id": None},
        "message": {"text": 5, "msg_id": ["x"]},
        "timestamp": "yesterday",
        "app_id": True,
    }
    event = parse_event(payload)
    assert (event.user_id, event.oa_id, event.text, event.msg_id) == (None, None, None, None)
    assert (event.timestamp_ms, event.app_id) == (None, None)


@pytest.mark.parametrize(
    "payload",
    [None, [], "user_send_text", 3, {}, {"event_name": 5}, {"event_name": ""}, {"name": "follow"}],
)
def test_malformed_payload_raises(payload: object) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(payload)


def test_malformed_event_is_a_value_error() -> None:
    assert issubclass(MalformedEvent, ValueError)


def test_dedupe_key_uses_msg_id() -> None:
    raw = USER_SEND_TEXT.encode()
    assert dedupe_key(parse_event(json.loads(raw)), raw) == "msg:96d3cdf3af150460909"


def test_dedupe_key_without_msg_id_hashes_the_body() -> None:
    raw = FOLLOW.encode()
    event = parse_event(json.loads(raw))
    key = dedupe_key(event, raw)
    assert key == "body:" + hashlib.sha256(raw).hexdigest()
    assert dedupe_key(parse_event(json.loads(raw)), raw) == key


def test_dedupe_key_differs_for_different_bodies() -> None:
    other = FOLLOW.replace("1543979782740", "1543979782741").encode()
    first = dedupe_key(parse_event(json.loads(FOLLOW)), FOLLOW.encode())
    assert dedupe_key(parse_event(json.loads(other)), other) != first
