"""Digests: schedules from the settings, the period each covers, the text (golden files under
tests/golden/, regenerated with UPDATE_GOLDEN=1), one send per period across processes, and
delivery through the fake Zalo API or, outside Zalo's window, a local SMTP server."""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses
from flask import Flask
from sqlalchemy import select

from bot.cli import cli
from bot.config import ConfigError
from bot.delivery.sender import dead_reason
from bot.errors import OperatorError
from bot.jobs import build_scheduler, deliver_leader_messages, send_scheduled_digests
from bot.reporting.digests import (
    digest_period,
    parse_schedule,
)
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage import repositories as repo
from storage.models import (
    Answer,
    DeadReason,
    Digest,
    LeaderMessage,
    OutboxMessage,
    SurveyResponse,
)
from tests.conftest import API_BASE, FakeClock, reconfigure, sent_bodies, zalo_success
from tests.smtp_sink import SmtpSink
from tests.test_leaders import LEADER, OTHER, register
from zalo_client import ZaloServerError, ZaloUserUnreachable, ZaloWindowClosed

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SEND_URL = f"{API_BASE}/v3.0/oa/message/cs"
GOLDEN = Path(__file__).parent / "golden"
ITEMS = {1: "access", 2: "procedure", 3: "staff", 4: "result", 5: "feedback"}
Post = Callable[..., Any]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


SATURDAY_1730 = local(2026, 3, 14, 17, 30)  # the daily digest's time on the clock fixture's day
MONDAY_0730 = local(2026, 3, 16, 7, 30)
APRIL_1_0730 = local(2026, 4, 1, 7, 30)


# --- data ----------------------------------------------------------------------------------


def add_response(
    runtime: Runtime,
    at: datetime,
    ratings: dict[int, int],
    *,
    counter: str = "HVT01",
    comment: str | None = None,
    status: str = "completed",
) -> None:
    """A stored survey as the survey path writes it (short form: one item per factor)."""
    with runtime.session_factory.begin() as session:
        found = repo.find_counter(session, counter)
        assert found is not None
        response = SurveyResponse(
            token=secrets.token_hex(6),
            respondent_hash=secrets.token_hex(32),
            unit_id=found.unit_id,
            counter_id=found.id,
            questionnaire_id="sipas-short",
            questionnaire_version="2026.1",
            language="vi",
            status=status,
            position=6,
            is_repeat=False,
            counted=True,
            qualified_at=at,
            started_at=at,
            updated_at=at,
            completed_at=at if status == "completed" else None,
        )
        for factor, value in ratings.items():
            response.answers.append(
                Answer(item_id=ITEMS[factor], factor=factor, value=value, answered_at=at)
            )
        if comment:
            response.answers.append(Answer(item_id="comment", text=comment, answered_at=at))
        session.add(response)


PATTERNS = [
    {1: 5, 2: 4, 3: 5, 4: 5, 5: 4},
    {1: 4, 2: 3, 3: 5, 4: 4, 5: 5},
    {1: 5, 2: 2, 3: 4, 4: 5, 5: 0},
    {1: 4, 2: 4, 3: 3, 4: 4, 5: 4},
]


def seed_day(runtime: Runtime, year: int, month: int, day: int, count: int, shift: int = 0) -> None:
    """`count` surveys from 08:00 local, one every 30 minutes, across the three counters."""
    for n in range(count):
        at = local(year, month, day, 8) + timedelta(minutes=30 * n)
        counter = f"HVT0{(n + shift) % 3 + 1}"
        ratings = dict(PATTERNS[(n + shift) % len(PATTERNS)])
        if counter == "HVT02" and n % 2 == 0:
            ratings[3] = 2  # one desk does worse on the civil servant
        add_response(runtime, at, ratings, counter=counter)


def seed_typical(runtime: Runtime) -> None:
    """Friday 13/03: 9 surveys; Saturday 14/03: 12 with three comments and an abandoned one;
    the week of 02/03 and February for the weekly and monthly comparisons."""
    seed_day(runtime, 2026, 3, 13, 9, shift=1)
    seed_day(runtime, 2026, 3, 14, 12)
    add_response(
        runtime,
        local(2026, 3, 14, 9, 10),
        {1: 4},
        counter="HVT03",
        status="partial",
    )
    for minute, counter, text in [
        (615, "HVT01", "Cán bộ hướng dẫn tận tình, chu đáo."),
        (700, "HVT02", "Phải chờ lâu, quầy 2 chỉ có một người."),
        (845, "HVT03", "Nên có thêm ghế ngồi chờ."),
        (900, "HVT01", "Mọi thứ đều tốt."),
    ]:
        at = local(2026, 3, 14) + timedelta(minutes=minute)
        add_response(runtime, at, PATTERNS[0], counter=counter, comment=text)
    seed_day(runtime, 2026, 3, 3, 6, shift=2)
    seed_day(runtime, 2026, 2, 10, 10, shift=3)


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, "utf-8")
        return
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text("utf-8"), f"differs from {path} (UPDATE_GOLDEN=1 to accept)"


# --- fixtures and helpers ------------------------------------------------------------------


configure = reconfigure


@pytest.fixture
def leader(signed_post: Post, runtime: Runtime) -> str:
    register(signed_post)
    return LEADER


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def with_smtp(runtime: Runtime, sink: SmtpSink, **extra: Any) -> None:
    settings: dict[str, Any] = {
        "smtp_host": sink.host,
        "smtp_port": sink.port,
        "smtp_from": "sipas@hvt.gov.vn",
        "smtp_starttls": False,
    }
    configure(runtime, **{**settings, **extra})


def set_email(runtime: Runtime, user_id: str, email: str) -> None:
    with runtime.session_factory.begin() as session:
        leader = repo.find_leader(session, user_id)
        assert leader is not None
        leader.email = email


def digests(runtime: Runtime) -> list[tuple[str, str, str | None]]:
    with runtime.session_factory() as session:
        return [
            (d.kind, d.status, d.claim_key)
            for d in session.scalars(select(Digest).order_by(Digest.id))
        ]


def leader_messages(runtime: Runtime) -> list[LeaderMessage]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(LeaderMessage).order_by(LeaderMessage.id)))


def digest_outbox(runtime: Runtime, user_id: str = LEADER) -> list[OutboxMessage]:
    """Outbox messages of a leader that carry a digest (not the chat replies)."""
    with runtime.session_factory() as session:
        return [
            m
            for m in session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id)
            )
            if any(b.get("payload", "").startswith("dg:") for b in m.body.get("buttons", []))
        ]


def run_daily(runtime: Runtime) -> list[Any]:
    return send_scheduled_digests(runtime, "day", "Asia/Ho_Chi_Minh")


def render(runtime: Runtime, kind: str, now: datetime, language: str = "vi") -> str:
    service = runtime.digests
    with runtime.session_factory() as session:
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        report = service.report(session, unit, kind, now=now)
        return service.render(report, unit, kind, now=now, language=language).zalo_text


# --- schedules -----------------------------------------------------------------------------

AFTER = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)  # Saturday 09:00 in Hà Nội


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("day", "17:30", datetime(2026, 3, 14, 17, 30, tzinfo=ZONE)),
        ("day", "8:05", datetime(2026, 3, 15, 8, 5, tzinfo=ZONE)),
        ("week", "mon 07:30", datetime(2026, 3, 16, 7, 30, tzinfo=ZONE)),
        ("week", "Sat 18:00", datetime(2026, 3, 14, 18, 0, tzinfo=ZONE)),
        ("month", "1 07:30", datetime(2026, 4, 1, 7, 30, tzinfo=ZONE)),
        ("day", "30 17 * * 1-5", datetime(2026, 3, 16, 17, 30, tzinfo=ZONE)),  # weekdays only
        ("week", "0 8 * * 0", datetime(2026, 3, 15, 8, 0, tzinfo=ZONE)),  # cron 0 = Sunday
        ("week", "0 8 * * 7", datetime(2026, 3, 15, 8, 0, tzinfo=ZONE)),  # and so is 7
        ("week", "0 8 * * sat,sun", datetime(2026, 3, 15, 8, 0, tzinfo=ZONE)),
        ("week", "0 8 * * 5-7", datetime(2026, 3, 15, 8, 0, tzinfo=ZONE)),  # Fri–Sun
        ("month", "0 7 15 * *", datetime(2026, 3, 15, 7, 0, tzinfo=ZONE)),
    ],
)
def test_a_schedule_fires_next_in_the_units_time_zone(
    kind: str, value: str, expected: datetime
) -> None:
    trigger = parse_schedule(kind, value, ZONE, variable="DIGEST_X")
    assert trigger is not None
    assert trigger.get_next_fire_time(None, AFTER) == expected


@pytest.mark.parametrize("value", ["off", "OFF", " none "])
def test_off_turns_a_digest_off(value: str) -> None:
    assert parse_schedule("day", value, ZONE, variable="DIGEST_DAILY_AT") is None


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("day", "25:00"),
        ("day", "5pm"),
        ("day", "mon 07:30"),
        ("week", "monday 07:30"),
        ("week", "07:30"),
        ("month", "31 07:30"),
        ("month", "0 07:30"),
        ("day", "61 17 * * *"),
        ("week", "0 8 * * 8"),
        ("week", "0 8 * * fri-mon"),
    ],
)
def test_an_invalid_schedule_is_a_config_error_naming_the_variable(kind: str, value: str) -> None:
    with pytest.raises(ConfigError, match=r"^DIGEST_X .*" + value.split()[0]):
        parse_schedule(kind, value, ZONE, variable="DIGEST_X")


def test_the_scheduler_has_a_job_per_digest_with_its_next_fire_time(runtime: Runtime) -> None:
    scheduler = build_scheduler(runtime)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert {"digest_day_Asia/Ho_Chi_Minh", "alerts", "leader_messages"} <= set(jobs)
    fire = {
        kind: jobs[f"digest_{kind}_Asia/Ho_Chi_Minh"].trigger.get_next_fire_time(None, AFTER)
        for kind in ("day", "week", "month")
    }
    assert fire == {
        "day": datetime(2026, 3, 14, 17, 30, tzinfo=ZONE),
        "week": datetime(2026, 3, 16, 7, 30, tzinfo=ZONE),
        "month": datetime(2026, 4, 1, 7, 30, tzinfo=ZONE),
    }
    assert jobs["digest_day_Asia/Ho_Chi_Minh"].args[1:] == ("day", "Asia/Ho_Chi_Minh")
    assert jobs["alerts"].trigger.interval <= timedelta(seconds=30)


def test_a_unit_with_its_own_time_zone_gets_jobs_in_that_zone(
    runtime: Runtime, clock: FakeClock
) -> None:
    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session,
            [
                repo.UnitSpec(
                    "BKK",
                    "Bangkok office",
                    [repo.CounterSpec("BKK01", "Desk")],
                    timezone="Asia/Tokyo",
                )
            ],
            now=clock(),
        )
    jobs = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    tokyo = jobs["digest_day_Asia/Tokyo"].trigger.get_next_fire_time(None, AFTER)
    assert tokyo == datetime(2026, 3, 14, 17, 30, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_off_and_cron_settings_shape_the_jobs(runtime: Runtime) -> None:
    configure(runtime, digest_weekly_at="off", digest_daily_at="0 12 * * mon-fri")
    jobs = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    assert "digest_week_Asia/Ho_Chi_Minh" not in jobs
    daily = jobs["digest_day_Asia/Ho_Chi_Minh"].trigger.get_next_fire_time(None, AFTER)
    assert daily == datetime(2026, 3, 16, 12, 0, tzinfo=ZONE)


def test_an_invalid_schedule_stops_the_scheduler_at_start_up(runtime: Runtime) -> None:
    configure(runtime, digest_weekly_at="every monday")
    with pytest.raises(ConfigError, match=r"^DIGEST_WEEKLY_AT 'every monday' is not a schedule"):
        build_scheduler(runtime)


def test_half_configured_smtp_stops_the_scheduler_at_start_up(runtime: Runtime) -> None:
    configure(runtime, smtp_host="mail.example.vn")
    with pytest.raises(ConfigError, match=r"^SMTP_FROM"):
        build_scheduler(runtime)


# --- periods -------------------------------------------------------------------------------


def test_each_digest_covers_its_period() -> None:
    day = digest_period("day", SATURDAY_1730, ZONE)
    week = digest_period("week", MONDAY_0730, ZONE)
    month = digest_period("month", APRIL_1_0730, ZONE)
    assert (day.start, day.end) == (
        datetime(2026, 3, 14, tzinfo=ZONE),
        datetime(2026, 3, 15, tzinfo=ZONE),
    )
    assert (week.first_day.isoformat(), week.last_day.isoformat()) == ("2026-03-09", "2026-03-15")
    assert (month.first_day.isoformat(), month.last_day.isoformat()) == (
        "2026-03-01",
        "2026-03-31",
    )


# --- the text ------------------------------------------------------------------------------


def test_daily_digest_text(runtime: Runtime) -> None:
    seed_typical(runtime)
    text = render(runtime, "day", SATURDAY_1730)
    assert len(text) <= 2000
    check_golden("digest_day.txt", text)


def test_daily_digest_text_in_english(runtime: Runtime) -> None:
    seed_typical(runtime)
    check_golden("digest_day_en.txt", render(runtime, "day", SATURDAY_1730, "en"))


def test_weekly_digest_text(runtime: Runtime) -> None:
    seed_typical(runtime)
    check_golden("digest_week.txt", render(runtime, "week", MONDAY_0730))


def test_monthly_digest_text(runtime: Runtime) -> None:
    seed_typical(runtime)
    check_golden("digest_month.txt", render(runtime, "month", APRIL_1_0730))


def test_a_digest_with_too_few_answers_gives_no_share_nor_weakest(runtime: Runtime) -> None:
    add_response(runtime, local(2026, 3, 14, 10), {1: 2, 2: 5}, comment="Tạm được")
    check_golden("digest_day_few.txt", render(runtime, "day", SATURDAY_1730))


def test_an_empty_digest_says_so(runtime: Runtime) -> None:
    check_golden("digest_day_empty.txt", render(runtime, "day", SATURDAY_1730))


# --- the job at 17:30 ----------------------------------------------------------------------


def test_the_daily_job_at_1730_reaches_a_registered_leader_through_zalo(
    runtime: Runtime,
    leader: str,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
) -> None:
    seed_typical(runtime)
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success("digest-msg"))
    assert runtime.tokens is not None
    runtime.tokens.seed()
    jobs = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    job = jobs["digest_day_Asia/Ho_Chi_Minh"]
    clock.now = job.trigger.get_next_fire_time(None, clock())  # as the scheduler would
    assert clock.now == SATURDAY_1730

    (outcome,) = job.func(*job.args)
    sender = runtime.sender()
    try:
        sender.drain()
    finally:
        sender.close()
    deliver_leader_messages(runtime)

    assert outcome.status == "queued"
    digest_body = sent_bodies(zalo_api)[-1]
    assert digest_body["recipient"] == {"user_id": leader}
    assert digest_body["message"]["text"] == (GOLDEN / "digest_day.txt").read_text("utf-8")
    button, detail = digest_body["message"]["attachment"]["payload"]["buttons"]
    assert button == {
        "title": "Đã nhận",
        "type": "oa.query.hide",
        "payload": f"dg:{outcome.digest_id}:ack",
    }
    # "Xem chi tiết" opens the console with a one-time sign-in link (docs/console.md).
    assert (detail["title"], detail["type"]) == ("Xem chi tiết", "oa.open.url")
    assert detail["payload"]["url"].startswith("https://sipas.example.vn/console/login/link?t=")
    (message,) = leader_messages(runtime)
    assert (message.kind, message.status, message.delivered_at) == ("digest", "sent", clock())
    assert digests(runtime) == [("day", "queued", "1:day:2026-03-14")]


def test_a_second_run_of_the_job_sends_nothing_more(runtime: Runtime, leader: str) -> None:
    seed_typical(runtime)
    runtime.clock.now = SATURDAY_1730  # type: ignore[attr-defined]
    first = run_daily(runtime)
    again = run_daily(runtime)
    assert [o.status for o in first + again] == ["queued", "claimed_elsewhere"]
    assert len(digest_outbox(runtime)) == 1


def test_two_processes_on_one_database_send_the_period_once(
    app: Flask, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    """Two runtimes (as two server processes) fire the same job at the same moment."""
    seed_typical(runtime)
    clock.now = SATURDAY_1730
    other = runtime_of(create_app(runtime.settings, clock=clock))
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def fire(which: Runtime) -> None:
        barrier.wait()
        outcomes.extend(run_daily(which))

    threads = [threading.Thread(target=fire, args=(r,)) for r in (runtime, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    other.engine.dispose()

    assert sorted(o.status for o in outcomes) == ["claimed_elsewhere", "queued"]
    assert len(digest_outbox(runtime)) == 1
    assert len(digests(runtime)) == 1


def test_the_next_day_is_a_new_period(runtime: Runtime, leader: str, clock: FakeClock) -> None:
    seed_typical(runtime)
    clock.now = SATURDAY_1730
    run_daily(runtime)
    add_response(runtime, local(2026, 3, 15, 9), PATTERNS[0])
    clock.advance(days=1)
    run_daily(runtime)
    assert [key for _, _, key in digests(runtime)] == ["1:day:2026-03-14", "1:day:2026-03-15"]
    assert len(digest_outbox(runtime)) == 2


def test_a_period_without_responses_sends_nothing(
    runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    clock.now = SATURDAY_1730
    (outcome,) = run_daily(runtime)
    assert outcome.status == "empty"
    assert digest_outbox(runtime) == []
    assert digests(runtime) == [("day", "empty", "1:day:2026-03-14")]  # claimed: no re-run


def test_digest_send_empty_sends_an_empty_period(
    runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    configure(runtime, digest_send_empty=True)
    clock.now = SATURDAY_1730
    run_daily(runtime)
    (message,) = digest_outbox(runtime)
    assert "Không có phiếu đánh giá nào trong kỳ này." in message.body["text"]


def test_a_unit_without_leaders_claims_nothing(runtime: Runtime, clock: FakeClock) -> None:
    seed_typical(runtime)
    clock.now = SATURDAY_1730
    assert run_daily(runtime) == []
    assert digests(runtime) == []


def test_every_leader_of_the_unit_gets_it_in_their_language(
    runtime: Runtime, signed_post: Post, leader: str, clock: FakeClock
) -> None:
    register(signed_post, user_id=OTHER)
    with runtime.session_factory.begin() as session:
        row = repo.lock_conversation(session, OTHER, now=clock())
        repo.save_conversation(session, row, language="en", open_response_id=row.open_response_id)
    seed_typical(runtime)
    clock.now = SATURDAY_1730
    run_daily(runtime)
    (vi,) = digest_outbox(runtime, LEADER)
    (en,) = digest_outbox(runtime, OTHER)
    assert vi.body["text"] == (GOLDEN / "digest_day.txt").read_text("utf-8")
    assert en.body["text"] == (GOLDEN / "digest_day_en.txt").read_text("utf-8")
    assert en.body["buttons"][0]["title"] == "Received"


def test_weekly_job_on_monday_covers_last_week(
    runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    seed_typical(runtime)
    clock.now = MONDAY_0730
    (outcome,) = send_scheduled_digests(runtime, "week", "Asia/Ho_Chi_Minh")
    assert outcome.period.first_day.isoformat() == "2026-03-09"
    (message,) = digest_outbox(runtime)
    assert message.body["text"] == (GOLDEN / "digest_week.txt").read_text("utf-8")
    assert digests(runtime) == [("week", "queued", "1:week:2026-03-09")]


# --- outside Zalo's window: e-mail ---------------------------------------------------------


def test_a_leader_outside_the_window_gets_the_digest_by_email(
    runtime: Runtime, leader: str, clock: FakeClock, sink: SmtpSink
) -> None:
    with_smtp(runtime, sink)
    set_email(runtime, LEADER, "chu.tich@hvt.gov.vn")
    seed_typical(runtime)
    clock.now = SATURDAY_1730 + timedelta(days=7)  # registered (the last interaction) 7.3 days ago
    add_response(runtime, local(2026, 3, 21, 9), PATTERNS[1], comment="Nhanh gọn")

    (outcome,) = run_daily(runtime)

    assert outcome.channels == {"email_pending": 1}
    assert digest_outbox(runtime) == []  # Zalo would refuse it (-230): not even tried
    (mail,) = sink.messages
    assert mail.recipients == ["chu.tich@hvt.gov.vn"]
    assert mail.sender == "sipas@hvt.gov.vn"
    assert mail.message["Subject"] == "Báo cáo SIPAS ngày 21/03/2026 – UBND phường Hoàng Văn Thụ"
    text = mail.part("plain")
    assert "Số phiếu đánh giá: 1 (cả ngày hôm qua: 0, +1)." in text
    assert "• 09:00 #HVT01: “Nhanh gọn”" in text
    assert "Tin này được gửi qua e-mail vì Zalo chỉ cho phép OA nhắn tin trong 7 ngày" in text
    html = mail.part("html")
    assert "<h2>Báo cáo SIPAS ngày 21/03/2026 – UBND phường Hoàng Văn Thụ</h2>" in html
    assert "<li>09:00 #HVT01: “Nhanh gọn”</li>" in html
    (message,) = leader_messages(runtime)
    assert (message.status, message.delivered_at) == ("emailed", clock())


def test_a_digest_zalo_refuses_for_the_window_goes_by_email(
    runtime: Runtime,
    leader: str,
    clock: FakeClock,
    sink: SmtpSink,
    zalo_api: responses.RequestsMock,
) -> None:
    """Our record says the window is open; Zalo says -230 (its clock, a missed event…)."""
    with_smtp(runtime, sink)
    set_email(runtime, LEADER, "chu.tich@hvt.gov.vn")
    seed_typical(runtime)
    zalo_api.add(
        responses.POST, SEND_URL, json={"error": -230, "message": "User has not interacted"}
    )
    assert runtime.tokens is not None
    runtime.tokens.seed()
    clock.now = SATURDAY_1730

    run_daily(runtime)
    sender = runtime.sender()
    try:
        sender.drain()
    finally:
        sender.close()
    (queued,) = digest_outbox(runtime)
    assert queued.status == "dead"
    assert sink.messages == []

    deliver_leader_messages(runtime)

    (mail,) = sink.messages
    assert mail.message["Subject"].startswith("Báo cáo SIPAS ngày 14/03/2026")
    (message,) = leader_messages(runtime)
    assert message.status == "emailed"
    assert message.outbox_message_id == queued.id


@pytest.mark.parametrize(
    ("error", "transient", "expected"),
    [
        (ZaloWindowClosed("User has not interacted", code=-230), False, DeadReason.WINDOW_CLOSED),
        (ZaloUserUnreachable("not a follower", code=-213), False, DeadReason.REFUSED),
        (ZaloServerError("Zalo server error", http_status=502), True, DeadReason.TOO_OLD),
    ],
)
def test_a_dead_message_records_why_as_a_code(
    error: Exception, transient: bool, expected: DeadReason
) -> None:
    """The e-mail fallback reads the code: only window refusals fall back to e-mail, and
    renaming an exception class or rewording its text changes nothing."""
    assert dead_reason(error, transient=transient) is expected


def test_without_an_email_an_unreachable_digest_is_kept_as_undelivered(
    runtime: Runtime, leader: str, clock: FakeClock, sink: SmtpSink
) -> None:
    with_smtp(runtime, sink)
    seed_typical(runtime)
    clock.now = SATURDAY_1730 + timedelta(days=8)
    add_response(runtime, local(2026, 3, 22, 9), PATTERNS[1])
    (outcome,) = run_daily(runtime)
    assert outcome.channels == {"undelivered": 1}
    (message,) = leader_messages(runtime)
    assert message.status == "undelivered"
    assert message.text.startswith("Báo cáo SIPAS ngày 22/03/2026")  # kept, to read later
    assert sink.messages == []


def test_starttls_is_used_when_set_and_a_failure_is_retried_later(
    runtime: Runtime, leader: str, clock: FakeClock, sink: SmtpSink
) -> None:
    with_smtp(runtime, sink, smtp_starttls=True)
    set_email(runtime, LEADER, "chu.tich@hvt.gov.vn")
    seed_typical(runtime)
    clock.now = SATURDAY_1730 + timedelta(days=8)
    add_response(runtime, local(2026, 3, 22, 9), PATTERNS[1])

    run_daily(runtime)

    assert "STARTTLS" in sink.commands  # the sink cannot do TLS, so nothing was handed over
    assert sink.messages == []
    (message,) = leader_messages(runtime)
    assert (message.status, message.attempts) == ("email_pending", 1)
    assert "454" in (message.last_error or "")

    configure(runtime, smtp_starttls=False)
    deliver_leader_messages(runtime)
    assert len(sink.messages) == 1
    assert leader_messages(runtime)[0].status == "emailed"


# --- `sipas-bot digest send` ---------------------------------------------------------------


def digest_cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, ["digest", *args])


def test_digest_send_dry_run_prints_and_stores_nothing(
    app: Flask, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    seed_typical(runtime)
    clock.now = SATURDAY_1730
    result = digest_cli(app, "send", "--unit", "hvt", "--period", "day", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith((GOLDEN / "digest_day.txt").read_text("utf-8"))
    assert "[Đã nhận]" in result.stdout
    assert digests(runtime) == []
    assert digest_outbox(runtime) == []


def test_digest_send_queues_it_now_without_taking_the_scheduled_slot(
    app: Flask, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    seed_typical(runtime)
    clock.now = local(2026, 3, 14, 12)
    result = digest_cli(app, "send", "--unit", "HVT", "--period", "day")
    assert result.exit_code == 0, result.output
    assert "1 leader(s) by Zalo (outbox)" in result.output
    clock.now = SATURDAY_1730
    run_daily(runtime)
    assert digests(runtime) == [("day", "queued", None), ("day", "queued", "1:day:2026-03-14")]
    noon, evening = digest_outbox(runtime)
    assert "từ 00:00 đến 12:00" in noon.body["text"]
    assert "từ 00:00 đến 17:30" in evening.body["text"]


def test_digest_send_for_an_unknown_unit_or_without_leaders_is_an_operator_error(
    app: Flask,
) -> None:
    result = digest_cli(app, "send", "--unit", "NOPE", "--period", "week")
    assert isinstance(result.exception, OperatorError)
    assert "no unit has the code NOPE" in str(result.exception)
    result = digest_cli(app, "send", "--unit", "HVT", "--period", "week")
    assert isinstance(result.exception, OperatorError)
    assert "has no leaders" in str(result.exception)


# --- one meaning for a period name, in `report` and `digest send` ---------------------------

PERIOD_COVERS = {
    "day": "14/03/2026–14/03/2026 (so far)",
    "yesterday": "13/03/2026–13/03/2026",
    "week": "09/03/2026–14/03/2026 (so far)",
    "last-week": "02/03/2026–08/03/2026",
    "month": "01/03/2026–14/03/2026 (so far)",
    "last-month": "01/02/2026–28/02/2026",
}


@pytest.mark.parametrize(("name", "covers"), PERIOD_COVERS.items())
def test_a_period_name_covers_the_same_dates_in_report_and_digest_send(
    app: Flask, runtime: Runtime, leader: str, clock: FakeClock, name: str, covers: str
) -> None:
    seed_typical(runtime)
    clock.now = SATURDAY_1730  # Saturday 14 March 2026
    digest = digest_cli(app, "send", "--unit", "HVT", "--period", name, "--dry-run")
    assert digest.exit_code == 0, digest.output
    assert f"dry run for {name}: {covers};" in digest.stderr
    report = app.test_cli_runner().invoke(
        cli, ["report", "--unit", "HVT", "--period", name, "--format", "json"]
    )
    assert report.exit_code == 0, report.output
    assert report.stderr.strip().endswith(covers)
    first, last = (covers.split(" ")[0]).split("–")
    data = json.loads(report.stdout)
    day = lambda text: "-".join(reversed(text.split("/")))  # noqa: E731
    assert data["period"]["from"] == day(first)
    if "so far" not in covers:  # a running period's "to" is its calendar end
        assert data["period"]["to"] == day(last)


def test_the_digest_text_says_whether_its_period_is_running_or_over(
    app: Flask, runtime: Runtime, leader: str, clock: FakeClock
) -> None:
    seed_typical(runtime)
    clock.now = SATURDAY_1730
    month = digest_cli(app, "send", "--unit", "HVT", "--period", "month", "--dry-run").stdout
    last = digest_cli(app, "send", "--unit", "HVT", "--period", "last-month", "--dry-run").stdout
    yesterday = digest_cli(app, "send", "--unit", "HVT", "--period", "yesterday", "--dry-run")
    assert "Kỳ báo cáo: tháng này, từ 01/03/2026 đến nay (17:30)." in month
    assert "Kỳ báo cáo: tháng trước, từ 01/02/2026 đến 28/02/2026." in last
    assert "Kỳ báo cáo: ngày 13/03/2026, cả ngày." in yesterday.stdout


def test_the_scheduled_digests_cover_the_named_periods(runtime: Runtime) -> None:
    from bot.reporting.digests import SCHEDULED_PERIOD, digest_period
    from bot.reporting.periods import named_period

    zone = runtime.settings.tz
    assert SCHEDULED_PERIOD == {"day": "day", "week": "last-week", "month": "last-month"}
    for kind, name in SCHEDULED_PERIOD.items():
        assert digest_period(kind, SATURDAY_1730, zone) == named_period(name, SATURDAY_1730, zone)
