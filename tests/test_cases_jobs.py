"""The case jobs: a survey the expiry job closes opens its case by the rule of a survey that
ends in the chat (a comment, a counted low rating), once; a case overdue by
CASES_OVERDUE_ALERT_DAYS working days alerts the unit's leaders once, weekends not counted,
and never for a closed case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from bot.jobs import expire_idle_surveys, follow_cases
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage.models import Case, LeaderMessage, SurveyResponse
from tests.conftest import FakeClock, make_settings, text_event
from tests.test_cases import cases, texts_to
from tests.test_leaders import LEADER, register
from tests.test_persistence import poster

Post = Callable[..., Any]
CITIZEN = "246845883529197931"
OTHER = "246845883529197932"
# A form whose comment comes first: a survey can be left with a comment and no end.
COMMENT_FIRST = """\
id: comment-first
version: "1"
languages: [vi]
title: Góp ý trước
items:
  - {id: comment, kind: text, optional: true, text: "Ông/Bà có góp ý gì không?"}
  - {id: access, kind: scale, factor: 1, text: "Tiếp cận dịch vụ?"}
"""


def statuses(runtime: Runtime) -> list[str]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(SurveyResponse.status).order_by(SurveyResponse.id)))


def test_an_expired_survey_with_a_counted_low_rating_opens_its_case_once(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    # Five ratings, one of them low, then the citizen leaves at the comment: counted.
    signed_post(text_event("#HVT01", user_id=CITIZEN))
    for typed in ("4", "1", "5", "4", "5"):
        signed_post(text_event(typed, user_id=CITIZEN))
    # Another leaves after two low ratings: not counted, so no case (as in the chat).
    signed_post(text_event("#HVT01", user_id=OTHER))
    for typed in ("1", "1"):
        signed_post(text_event(typed, user_id=OTHER))
    sent_before = len(texts_to(runtime, CITIZEN)), len(texts_to(runtime, OTHER))
    assert cases(runtime) == []

    clock.advance(minutes=31)
    assert expire_idle_surveys(runtime) == 2
    assert statuses(runtime) == ["partial", "partial"]
    (case,) = cases(runtime)
    assert (case.source, case.kind, case.reference) == ("low_rating", "phan_anh", "PA-2026-000001")
    assert case.text == "Đánh giá thấp: procedure = 1"
    assert case.scores == {"access": 4, "procedure": 1, "staff": 5, "result": 4, "feedback": 5}
    # The citizen is given the reference; the other citizen is sent nothing.
    told = texts_to(runtime, CITIZEN)
    assert len(told) == sent_before[0] + 1 and "mã PA-2026-000001" in told[-1]
    assert len(texts_to(runtime, OTHER)) == sent_before[1]

    # Once: the job again, and the citizen's next message (told the survey timed out).
    clock.advance(minutes=5)
    assert expire_idle_surveys(runtime) == 0
    signed_post(text_event("3", user_id=CITIZEN))
    assert len(cases(runtime)) == 1


def test_an_expired_survey_with_a_comment_opens_a_comment_case(
    app: Flask, database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    form = tmp_path / "comment-first.yaml"
    form.write_text(COMMENT_FIRST, "utf-8")
    built = create_app(make_settings(database_url, survey_flow=str(form)), clock=clock)
    runtime, post = runtime_of(built), poster(built)
    try:
        post(text_event("#HVT01", user_id=CITIZEN))
        post(text_event("Đề nghị bố trí thêm ghế ngồi chờ, gọi 0912345678", user_id=CITIZEN))
        assert cases(runtime) == []
        clock.advance(minutes=31)
        assert expire_idle_surveys(runtime) == 1
        (case,) = cases(runtime)
        assert (case.source, case.kind, case.scores) == ("comment", "kien_nghi", None)
        assert "0912345678" not in case.text  # scrubbed as in the chat
        assert "mã PA-2026-000001" in texts_to(runtime, CITIZEN)[-1]
        assert expire_idle_surveys(runtime) == 0
        assert len(cases(runtime)) == 1
    finally:
        runtime.engine.dispose()


def overdue_alerts(runtime: Runtime) -> list[str]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(LeaderMessage.subject)
                .where(LeaderMessage.kind == "case_overdue")
                .order_by(LeaderMessage.id)
            )
        )


def test_an_overdue_case_alerts_the_units_leaders_once_after_working_days_only(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    register(signed_post, LEADER)
    # Saturday 14/3/2026: two questions to HVT, due 10 working days later, Friday 27/3.
    for user in (CITIZEN, OTHER):
        signed_post(text_event("#HVT01", user_id=user))
        signed_post(text_event("/huy", user_id=user))
        signed_post(text_event("Cho hỏi hồ sơ đất của tôi bao giờ có kết quả?", user_id=user))
    first, second = cases(runtime)
    assert (first.due_on.isoformat(), first.unit_id is not None) == ("2026-03-27", True)
    with runtime.session_factory.begin() as session:
        runtime.cases.close(
            session,
            second.reference,
            resolution="Đã trả lời qua điện thoại.",
            actor="t",
            now=clock(),
        )

    # Monday 30/3: three days past due but one working day (the weekend does not count).
    clock.advance(days=16)
    assert clock().astimezone(runtime.settings.tz).strftime("%a %d/%m") == "Mon 30/03"
    assert follow_cases(runtime) == (0, 0)
    assert overdue_alerts(runtime) == []
    # Tuesday 31/3: two working days late: the leader is told, of the open case only.
    clock.advance(days=1)
    assert follow_cases(runtime) == (0, 1)
    assert overdue_alerts(runtime) == [
        f"Ý kiến {first.reference} quá hạn – UBND phường Hoàng Văn Thụ"
    ]
    # Once: not again the next run, nor the next day.
    assert follow_cases(runtime) == (0, 0)
    clock.advance(days=1)
    assert follow_cases(runtime) == (0, 0)
    assert len(overdue_alerts(runtime)) == 1
    with runtime.session_factory() as session:
        case = session.scalars(select(Case).where(Case.reference == first.reference)).one()
        assert [e.action for e in case.events][-1] == "overdue_alert"
