"""Real-time alerts: a completed survey that rates a factor 1–2, through signed webhooks, reaches
the unit's leaders within the alert job's run; at most ALERT_MAX_PER_HOUR per unit and hour,
the rest in one summary once the hour is over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.jobs import build_scheduler, dispatch_alerts
from bot.runtime import Runtime
from storage.models import Alert, AlertAcknowledgement, LeaderMessage, OutboxMessage, SurveyResponse
from tests.conftest import FakeClock, reconfigure, text_event
from tests.test_leaders import LEADER, OTHER, register

Post = Callable[..., Any]
CITIZENS = [f"8000000000000000{n:02d}" for n in range(40)]


def complete_survey(
    signed_post: Post,
    user_id: str,
    ratings: tuple[int, int, int, int, int],
    *,
    counter: str = "HVT01",
    comment: str = "bỏ qua",
) -> None:
    """A citizen's whole survey, typed: the counter code, five ratings, the comment."""
    for text in [f"#{counter}", *(str(r) for r in ratings), comment]:
        assert signed_post(text_event(text, user_id=user_id)).status_code == 200


def alerts(runtime: Runtime) -> list[str]:
    with runtime.session_factory() as session:
        return [a.status for a in session.scalars(select(Alert).order_by(Alert.id))]


def alert_texts(runtime: Runtime, user_id: str = LEADER) -> list[str]:
    """What the leader was queued, alerts and summaries only (not chat replies)."""
    with runtime.session_factory() as session:
        return [
            m.body["text"]
            for m in session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id)
            )
            if any(b.get("payload", "").startswith("al:") for b in m.body.get("buttons", []))
        ]


@pytest.fixture
def leader(signed_post: Post) -> str:
    register(signed_post)
    return LEADER


def test_a_low_rating_is_noted_with_the_completed_survey(
    signed_post: Post, runtime: Runtime
) -> None:
    complete_survey(signed_post, CITIZENS[0], (5, 4, 2, 5, 5))
    with runtime.session_factory() as session:
        (response,) = session.scalars(select(SurveyResponse))
        assert response.status == "completed"
        (alert,) = session.scalars(select(Alert))
        assert (alert.response_id, alert.status) == (response.id, "pending")


@pytest.mark.parametrize("ratings", [(5, 4, 3, 5, 4), (3, 3, 3, 3, 3)])
def test_ratings_of_three_or_more_raise_no_alert(
    signed_post: Post, runtime: Runtime, ratings: tuple[int, int, int, int, int]
) -> None:
    complete_survey(signed_post, CITIZENS[0], ratings)
    assert alerts(runtime) == []


def test_an_abandoned_survey_raises_no_alert(signed_post: Post, runtime: Runtime) -> None:
    for text in ["#HVT01", "1", "huỷ"]:
        signed_post(text_event(text, user_id=CITIZENS[0]))
    assert alerts(runtime) == []


def test_the_alert_reaches_every_leader_of_the_unit_at_the_next_run(
    signed_post: Post, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    register(signed_post, user_id=OTHER)
    complete_survey(
        signed_post, CITIZENS[0], (5, 1, 2, 5, 4), counter="HVT02", comment="Chờ quá lâu"
    )
    clock.advance(seconds=20)

    assert dispatch_alerts(runtime) == {"notified": 1}

    expected = (
        "Cảnh báo đánh giá thấp – UBND phường Hoàng Văn Thụ\n"
        "Lúc 09:00 14/03/2026, một phiếu đánh giá tại Quầy 2 – Địa chính, xây dựng (#HVT02) "
        "chấm thấp:\n"
        "• Thủ tục hành chính: 1/5 – Rất không hài lòng\n"
        "• Công chức giải quyết công việc: 2/5 – Không hài lòng\n"
        "Góp ý: “Chờ quá lâu”"
    )
    assert alert_texts(runtime, LEADER) == [expected]
    assert alert_texts(runtime, OTHER) == [expected]
    assert alerts(runtime) == ["notified"]
    with runtime.session_factory() as session:
        kinds = [m.kind for m in session.scalars(select(LeaderMessage))]
    assert kinds == ["alert", "alert"]
    assert dispatch_alerts(runtime) == {}  # nothing twice


def test_the_alert_button_is_recorded_when_tapped(
    signed_post: Post, runtime: Runtime, leader: str
) -> None:
    complete_survey(signed_post, CITIZENS[0], (1, 5, 5, 5, 5))
    dispatch_alerts(runtime)
    with runtime.session_factory() as session:
        (message,) = session.scalars(select(LeaderMessage))
        outbox = session.get(OutboxMessage, message.outbox_message_id)
        assert outbox is not None
        button, detail = outbox.body["buttons"]
    assert button == {"title": "Đã nhận", "payload": f"al:{message.id}:ack"}
    assert detail["title"] == "Xem chi tiết"
    assert detail["url"].startswith("https://sipas.example.vn/console/login/link?t=")
    signed_post(text_event(button["payload"], user_id=LEADER))
    signed_post(text_event(button["payload"], user_id=LEADER))  # a second tap is the same one
    with runtime.session_factory() as session:
        stored = session.get(LeaderMessage, message.id)
        assert stored is not None and stored.acknowledged_at is not None
        # The same record as an acknowledgement in the console (bot/conversation/acknowledgements)
        (ack,) = session.scalars(select(AlertAcknowledgement))
        assert (ack.alert_id, ack.leader_id, ack.note) == (
            message.alert_id,
            message.leader_id,
            None,
        )


def test_a_unit_without_leaders_marks_the_alert_and_sends_nothing(
    signed_post: Post, runtime: Runtime
) -> None:
    complete_survey(signed_post, CITIZENS[0], (1, 1, 1, 1, 1))
    assert dispatch_alerts(runtime) == {"no_leaders": 1}
    assert alerts(runtime) == ["no_leaders"]


def test_beyond_the_hourly_cap_alerts_are_held_then_summarised_once(
    signed_post: Post, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    reconfigure(runtime, alert_max_per_hour=2)
    clock.now = clock.now.replace(minute=5)  # 09:05 local
    for n in range(5):
        complete_survey(signed_post, CITIZENS[n], (2, 4, 4, 4, 4), counter=f"HVT0{n % 2 + 1}")
        clock.advance(minutes=5)
        dispatch_alerts(runtime)

    assert alerts(runtime) == ["notified", "notified", "held", "held", "held"]
    assert len(alert_texts(runtime)) == 2

    clock.now = clock.now.replace(minute=59)
    dispatch_alerts(runtime)  # the hour is not over: no summary yet
    assert len(alert_texts(runtime)) == 2

    clock.advance(minutes=1, seconds=10)  # 10:00:10 local
    dispatch_alerts(runtime)
    texts = alert_texts(runtime)
    assert len(texts) == 3
    assert texts[-1] == (
        "Thêm đánh giá thấp – UBND phường Hoàng Văn Thụ\n"
        "Từ 09:00 đến 10:00 14/03/2026 còn 3 phiếu đánh giá thấp khác tại UBND phường Hoàng Văn "
        "Thụ (quá 2 cảnh báo trong một giờ nên được gộp lại): #HVT01 × 2, #HVT02 × 1."
    )
    assert alerts(runtime) == ["notified", "notified", "summarised", "summarised", "summarised"]

    complete_survey(signed_post, CITIZENS[9], (1, 4, 4, 4, 4))  # a new hour, a new allowance
    dispatch_alerts(runtime)
    assert len(alert_texts(runtime)) == 4
    dispatch_alerts(runtime)
    assert len(alert_texts(runtime)) == 4


def test_the_cap_is_per_unit(
    signed_post: Post, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    from tests.test_leaders import add_unit

    reconfigure(runtime, alert_max_per_hour=1)
    add_unit(runtime, clock, "ABC", "7777-ABC")
    register(signed_post, code="7777-ABC")
    complete_survey(signed_post, CITIZENS[0], (1, 4, 4, 4, 4), counter="HVT01")
    complete_survey(signed_post, CITIZENS[1], (1, 4, 4, 4, 4), counter="ABC01")
    complete_survey(signed_post, CITIZENS[2], (1, 4, 4, 4, 4), counter="HVT02")
    dispatch_alerts(runtime)
    assert alerts(runtime) == ["notified", "notified", "held"]


def test_the_alert_job_runs_at_least_every_30_seconds(runtime: Runtime) -> None:
    jobs = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    assert jobs["alerts"].func is dispatch_alerts
    assert jobs["alerts"].trigger.interval <= timedelta(seconds=30)
