"""Fuzzing the webhook (issue 12): signed and unsigned events, well-formed and poisoned (huge
ids, NUL, lone surrogates, control characters, deep nesting, wrong types, huge numbers, broken
bytes), through the Flask test client on SQLite and PostgreSQL. No answer may be a 5xx, and
every answer is one the webhook defines.

In `make test` with the Hypothesis profile's example count (tests/conftest.py: 100, or 2,000
with CI=1 / HYPOTHESIS_PROFILE=ci). `pytest -m slow tests/test_fuzz.py -s` sends 10,000
events per database and prints the answers by status (docs/security.md).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import APP_ID, FUZZ_EXAMPLES, OA_SECRET, FakeClock, encode
from zalo_client import SIGNATURE_HEADER, SignatureVerifier

VERIFIER = SignatureVerifier(APP_ID, OA_SECRET)
DEFINED = {200, 400, 401, 413}
USERS = ["246845883529197922", "7600000000000000001", "7600000000000000002"]
EVENT_NAMES = [
    "user_send_text",
    "follow",
    "unfollow",
    "user_click_chatnow",
    "user_send_sticker",
    "oa_send_text",
    "user_received_message",
    "user_seen_message",
]
TEXTS = ["#HVT01", "#hvt02", "#NOPE", "1", "2", "3", "4", "5", "0", "hủy", "bỏ qua", "DANGKY 1"]

# --- poison --------------------------------------------------------------------------------

controls = st.characters(codec=None, categories=["Cc", "Cs", "Cf", "Zl", "Zp"])
nasty_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=controls, max_size=20),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(TEXTS), st.text(controls), st.text()),
    st.just("\x00"),
    st.just("\ud800"),
    st.just("a\udfffb"),
    st.just("\x1b[31m=cmd|' /C calc'!A0;=1+1"),
    st.integers(0, 5000).map(lambda n: "x" * n),
    st.integers(1, 200).map(lambda n: "9" * n),
)
huge_numbers = st.one_of(
    st.integers(min_value=-(10**80), max_value=10**80),
    st.just(10**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(1e308),
)
scalars = st.one_of(st.none(), st.booleans(), huge_numbers, nasty_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(nasty_text, inner, max_size=4)
    ),
    max_leaves=12,
)
ids = st.one_of(st.sampled_from(USERS), st.text(alphabet="0123456789", max_size=40), scalars)


@st.composite
def events(draw: st.DrawFn, now_ms: int) -> dict[str, Any]:
    """A Zalo-shaped event, each part either right or poisoned."""
    name = draw(st.one_of(st.sampled_from(EVENT_NAMES), nasty_text, scalars))
    user = draw(ids)
    event: dict[str, Any] = {
        "app_id": draw(st.one_of(st.just(APP_ID), ids)),
        "event_name": name,
        "sender": draw(st.one_of(st.just({"id": user}), json_values)),
        "recipient": {"id": draw(st.one_of(st.just("388613280878808645"), ids))},
        "message": {
            "text": draw(st.one_of(st.sampled_from(TEXTS), nasty_text, scalars)),
            "msg_id": draw(st.one_of(st.uuids().map(lambda u: u.hex), ids)),
        },
        "timestamp": draw(
            st.one_of(
                st.integers(now_ms - 3 * 3_600_000, now_ms + 60_000).map(str),
                st.integers(now_ms - 10**10, now_ms + 10**10),
                scalars,
            )
        ),
    }
    if draw(st.booleans()):
        event["follower"] = {"id": user}
        event["oa_id"] = draw(st.one_of(st.just("388613280878808645"), ids))
    if draw(st.integers(0, 9)) == 0:
        event["extra"] = draw(json_values)
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=2)):
        event.pop(key, None)
    return event


def timestamp_text(event: dict[str, Any]) -> str:
    """What Zalo would sign with: the body's `timestamp` as it is written."""
    value = event.get("timestamp")
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the body holds its \\u escape
        return json.dumps(text)[1:-1]
    return text


@st.composite
def requests(draw: st.DrawFn, now_ms: int) -> tuple[bytes, str | None, str]:
    """(body, signature header, "signed" or "unsigned"): a JSON event or broken bytes."""
    kind = draw(st.sampled_from(["event", "event", "event", "nested", "bytes"]))
    timestamp = ""
    if kind == "event":
        event = draw(events(now_ms))
        body = encode(event)
        timestamp = timestamp_text(event)
    elif kind == "nested":
        depth = draw(st.integers(1, 30_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        body = b'{"event_name":"user_send_text","x":' + opener * depth + b"1" + closer * depth
        body += b"}"
    else:
        body = draw(st.binary(max_size=300))
    signing = draw(st.sampled_from(["signed", "signed", "none", "wrong", "junk"]))
    header = {
        "signed": VERIFIER.sign(body, timestamp),
        "none": None,
        "wrong": "mac=" + "0" * 64,
        "junk": draw(st.text(max_size=80)),
    }[signing]
    return body, header, "signed" if signing == "signed" else "unsigned"


def post(client: FlaskClient, body: bytes, header: str | None) -> int:
    headers = {} if header is None else {SIGNATURE_HEADER: header}
    try:
        response = client.post(
            "/zalo/webhook", data=body, headers=headers, content_type="application/json"
        )
    except ValueError:
        # Werkzeug refuses to even build a header holding a line break: no request is made.
        return 0
    return response.status_code


def run_property(
    client: FlaskClient,
    clock: FakeClock,
    tally: Counter[tuple[str, int]],
    examples: int | None = None,
) -> None:
    """Post fuzzed requests (the profile's number, or `examples`), tallying (signed or not,
    status)."""
    now_ms = int(clock().timestamp() * 1000)
    count = FUZZ_EXAMPLES if examples is None else examples

    @given(requests(now_ms))
    @settings(
        max_examples=count,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def check(request: tuple[bytes, str | None, str]) -> None:
        body, header, signing = request
        status = post(client, body, header)
        tally[signing, status] += 1
        assert status == 0 or status in DEFINED, status

    check()


class LineCheck(logging.Handler):
    """Keeps every log message that is not a single line free of control characters."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines = 0
        self.broken: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        message = record.getMessage()
        if record.exc_info or any(ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in message):
            self.broken.append(message)


@pytest.fixture
def log_lines() -> Iterator[LineCheck]:
    check = LineCheck()
    logger = logging.getLogger("sipas_bot")
    logger.addHandler(check)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield check
    logger.removeHandler(check)
    logger.setLevel(level)


def test_no_fuzzed_request_gets_a_5xx(
    client: FlaskClient, clock: FakeClock, log_lines: LineCheck
) -> None:
    tally: Counter[tuple[str, int]] = Counter()
    run_property(client, clock, tally)
    assert not [status for _, status in tally if status >= 500]
    assert tally["signed", 200] and tally["unsigned", 401], tally  # both sides were exercised
    assert not tally["unsigned", 200], "nothing unsigned gets in"
    # one line per request at least (the refusals), none broken or with a traceback
    refused = sum(n for (_, status), n in tally.items() if status not in (0, 200))
    assert log_lines.lines >= refused
    assert log_lines.broken == []


@pytest.mark.slow
def test_ten_thousand_fuzzed_requests_get_no_5xx(client: FlaskClient, clock: FakeClock) -> None:
    tally: Counter[tuple[str, int]] = Counter()
    run_property(client, clock, tally, examples=10_000)
    print(f"\n{sum(tally.values())} requests by (signing, status): {sorted(tally.items())}")
    assert not [status for _, status in tally if status >= 500]
    assert not tally["unsigned", 200]
