"""Per-account limits, through signed webhooks: a flood of messages is cut by the token
bucket kept on the conversation row (one notice, then silence), and one account can start only
ACCOUNT_STARTS_PER_DAY surveys in 24 hours."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import Conversation, OutboxMessage
from survey_flow.questionnaire import NOT_APPLICABLE
from tests.conftest import FakeClock, text_event
from tests.integrity_support import FIVE, Post, index, say, surveys

NOTICE = "quá nhiều tin nhắn"


def outbox(runtime: Runtime, user: str) -> list[dict[str, Any]]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage.body)
                .where(OutboxMessage.user_id == user)
                .order_by(OutboxMessage.id)
            )
        )


def test_a_message_flood_is_cut_to_the_burst_with_one_notice(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    # 100 messages in 2 seconds: the burst (30) and what 2 s refill (12/min → 0.4) pass.
    for n in range(100):
        text = "#HVT01" if n == 0 else "5"
        assert signed_post(text_event(text, user_id="555")).status_code == 200
        clock.advance(milliseconds=20)
    bodies = outbox(runtime, "555")
    notices = [b for b in bodies if NOTICE in b["text"]]
    assert len(notices) == 1
    # The start's two replies (welcome, question 1), one for each of the 29 other accepted
    # messages, and the notice: 70 messages dropped without a word. (A question that allows
    # "không áp dụng" is followed by a second message holding that one button.)
    not_applicable_buttons = [
        b
        for b in bodies
        if [button["payload"].rsplit(":", 1)[-1] for button in b.get("buttons", [])]
        == [str(NOT_APPLICABLE)]
    ]
    assert len(bodies) - len(not_applicable_buttons) == 2 + 29 + 1
    with runtime.session_factory() as session:
        row = session.get(Conversation, ("555", ""))
        assert row is not None and row.throttled and (row.allowance_tokens or 0) < 1
    # A minute later the account may write again; the notice comes again only after that.
    clock.advance(minutes=1)
    say(signed_post, clock, "555", "xin chào")
    assert NOTICE not in outbox(runtime, "555")[-1]["text"]
    with runtime.session_factory() as session:
        row = session.get(Conversation, ("555", ""))
        assert row is not None and not row.throttled
    # Whatever it sent, the flood moved the index by one survey at most.
    assert index(runtime, clock, include_repeats=True).responses <= 1


def test_the_bucket_lets_an_ordinary_survey_through(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    say(signed_post, clock, "556", "#HVT01", *FIVE, "Cán bộ nhiệt tình")
    assert not any(NOTICE in b["text"] for b in outbox(runtime, "556"))
    assert [s.status for s in surveys(runtime)] == ["completed"]


def test_survey_starts_per_account_are_limited_per_day(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    # Ten starts (ACCOUNT_STARTS_PER_DAY), switching counters, a minute apart.
    for n in range(10):
        say(signed_post, clock, "557", f"#HVT0{1 + n % 3}")
        clock.advance(minutes=1)
    say(signed_post, clock, "557", "#HVT02")
    assert "nhiều lượt khảo sát" in outbox(runtime, "557")[-1]["text"]
    assert len(surveys(runtime)) == 10
    say(signed_post, clock, "557", "#HVT01")  # the open survey (HVT01) resumes: no new start
    assert outbox(runtime, "557")[-1]["text"].startswith("Tiếp tục")
    clock.advance(hours=24)
    say(signed_post, clock, "557", "#HVT03")
    assert len(surveys(runtime)) == 11
