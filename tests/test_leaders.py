"""Leaders in the chat, through signed webhooks: DANGKY subscribes with the unit's code,
HUYDANGKY unsubscribes, wrong codes are refused and rate limited, "Đã nhận" is recorded; and
the `sipas-bot leaders` commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select

from bot.cli import cli
from bot.cli.leaders import window_status
from bot.conversation.leader_commands import MAX_WRONG_CODES, parse_command
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import (
    Conversation,
    Leader,
    LeaderMessage,
    OutboxMessage,
    RegistrationFailure,
    SurveyResponse,
)
from tests.cli_runner import assert_one_error_line, run_cli
from tests.conftest import FakeClock, text_event

LEADER = "900000000000000001"
OTHER = "900000000000000002"
CODE = "HVT-7KQ2-M9XD-4TPA"
Post = Callable[..., Any]
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


# --- helpers shared with the digest and alert tests ----------------------------------------


def say(signed_post: Post, text: str, user_id: str = LEADER) -> None:
    assert signed_post(text_event(text, user_id=user_id)).status_code == 200


def replies(runtime: Runtime, user_id: str = LEADER) -> list[str]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage.body["text"].as_string())
                .where(OutboxMessage.user_id == user_id)
                .order_by(OutboxMessage.id)
            )
        )


def subscriptions(runtime: Runtime, user_id: str = LEADER) -> list[str]:
    with runtime.session_factory() as session:
        leader = repo.find_leader(session, user_id)
        return [] if leader is None else sorted(s.unit.code for s in leader.subscriptions)


def add_unit(runtime: Runtime, clock: FakeClock, code: str, registration_code: str) -> None:
    """A second unit with its own counter and registration code."""
    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session,
            [
                repo.UnitSpec(
                    code,
                    f"UBND phường {code}",
                    [repo.CounterSpec(f"{code}01", "Quầy 1")],
                    registration_code=registration_code,
                )
            ],
            now=clock(),
        )


def register(signed_post: Post, user_id: str = LEADER, code: str = CODE) -> None:
    say(signed_post, f"DANGKY {code}", user_id)


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "argument"),
    [
        ("DANGKY 4821-HVT", "register", "4821-hvt"),
        ("  đăngký   4821-hvt ", "register", "4821-hvt"),
        ("Dangky", "register", None),
        ("HUYDANGKY", "unregister", None),
        ("Hủyđăngký HVT", "unregister", "hvt"),
        ("dg:12:ack", "ack_digest", "12"),
        ("al:7:ack", "ack_message", "7"),
    ],
)
def test_leader_commands_are_read_without_case_or_diacritics(
    text: str, kind: str, argument: str | None
) -> None:
    command = parse_command(text)
    assert command is not None
    assert (command.kind, command.argument) == (kind, argument)


@pytest.mark.parametrize(
    "text",
    ["Đăng ký khai sinh rất nhanh", "dang ky 4821-HVT", "DANGKY 4821 HVT", "huy", "#HVT01", "5"],
)
def test_other_texts_are_not_leader_commands(text: str) -> None:
    """ "đăng ký" with a space is everyday Vietnamese: a citizen's comment must stay one."""
    assert parse_command(text) is None


# --- registering ---------------------------------------------------------------------------


def test_dangky_with_the_units_code_subscribes_the_leader_and_starts_no_survey(
    signed_post: Post, runtime: Runtime
) -> None:
    register(signed_post)

    assert subscriptions(runtime) == ["HVT"]
    (reply,) = replies(runtime)
    assert reply.startswith("Đã đăng ký nhận báo cáo SIPAS của UBND phường Hoàng Văn Thụ.")
    assert "HUYDANGKY" in reply
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0
        conversation = session.get(Conversation, (LEADER, ""))
        assert conversation is not None and conversation.last_interaction_at is not None


def test_the_code_matches_whatever_the_case_and_diacritics(
    signed_post: Post, runtime: Runtime
) -> None:
    say(signed_post, "ĐăngKý hvt-7kq2-m9xd-4tpa")
    assert subscriptions(runtime) == ["HVT"]


def test_registering_twice_says_so_and_keeps_one_subscription(
    signed_post: Post, runtime: Runtime
) -> None:
    register(signed_post)
    register(signed_post)
    assert subscriptions(runtime) == ["HVT"]
    assert (
        replies(runtime)[-1]
        == "Ông/Bà đã đăng ký nhận báo cáo của UBND phường Hoàng Văn Thụ từ trước."
    )


def test_a_leader_can_follow_several_units(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    add_unit(runtime, clock, "ABC", "7777-ABC")
    register(signed_post)
    register(signed_post, code="7777-abc")
    assert subscriptions(runtime) == ["ABC", "HVT"]


def test_dangky_without_a_code_explains_how(signed_post: Post, runtime: Runtime) -> None:
    say(signed_post, "DANGKY")
    assert replies(runtime) == ["Để đăng ký nhận báo cáo, gửi: DANGKY <mã đăng ký của đơn vị>."]
    assert subscriptions(runtime) == []


def test_an_english_conversation_is_answered_in_english(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    with runtime.session_factory.begin() as session:
        row = repo.lock_conversation(session, LEADER, now=clock())
        repo.save_conversation(session, row, language="en", open_response_id=row.open_response_id)
    register(signed_post)
    assert replies(runtime)[-1].startswith(
        "You are registered for the SIPAS reports of UBND phường Hoàng Văn Thụ."
    )


# --- wrong codes ---------------------------------------------------------------------------


def failures(runtime: Runtime, user_id: str = LEADER) -> int:
    with runtime.session_factory() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(RegistrationFailure)
                .where(RegistrationFailure.user_id == user_id)
            )
            or 0
        )


def test_a_wrong_code_gets_a_polite_refusal_and_no_subscription(
    signed_post: Post, runtime: Runtime
) -> None:
    register(signed_post, code="1234-HVT")
    assert replies(runtime) == [
        "Xin lỗi, mã đăng ký không đúng. Vui lòng kiểm tra lại mã do đơn vị cung cấp."
    ]
    assert subscriptions(runtime) == []
    assert failures(runtime) == 1


def test_the_units_public_code_is_not_a_registration_code(
    signed_post: Post, runtime: Runtime
) -> None:
    register(signed_post, code="HVT")
    assert subscriptions(runtime) == []


def test_after_five_wrong_codes_even_the_right_one_is_refused_for_an_hour(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    for attempt in range(MAX_WRONG_CODES):
        register(signed_post, code=f"guess-{attempt}")
        clock.advance(minutes=1)

    register(signed_post)  # the right code, unchecked
    assert subscriptions(runtime) == []
    assert replies(runtime)[-1] == (
        "Mã đăng ký đã bị nhập sai quá nhiều lần. Vui lòng thử lại sau một giờ."
    )
    assert failures(runtime) == MAX_WRONG_CODES  # a refused try is not counted again

    register(signed_post, user_id=OTHER)  # another user is not affected
    assert subscriptions(runtime, OTHER) == ["HVT"]

    clock.advance(minutes=57)  # the first wrong try is now over an hour old
    register(signed_post)
    assert subscriptions(runtime) == ["HVT"]


# --- unsubscribing -------------------------------------------------------------------------


def test_huydangky_unsubscribes_from_every_unit(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    add_unit(runtime, clock, "ABC", "7777-ABC")
    register(signed_post)
    register(signed_post, code="7777-ABC")

    say(signed_post, "huydangky")

    assert subscriptions(runtime) == []
    assert replies(runtime)[-1] == (
        "Đã hủy đăng ký nhận báo cáo của UBND phường ABC, UBND phường Hoàng Văn Thụ."
    )


def test_huydangky_with_a_code_unsubscribes_from_that_unit_only(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    add_unit(runtime, clock, "ABC", "7777-ABC")
    register(signed_post)
    register(signed_post, code="7777-ABC")

    say(signed_post, "HUYDANGKY HVT-7KQ2-M9XD-4TPA")
    assert subscriptions(runtime) == ["ABC"]
    say(signed_post, "HUYDANGKY abc")  # the unit's own code works for leaving
    assert subscriptions(runtime) == []


def test_huydangky_with_a_code_of_no_subscribed_unit_changes_nothing(
    signed_post: Post, runtime: Runtime
) -> None:
    register(signed_post)
    say(signed_post, "HUYDANGKY 7777-ABC")
    assert subscriptions(runtime) == ["HVT"]
    assert replies(runtime)[-1] == "Mã này không khớp với đơn vị nào Ông/Bà đang nhận báo cáo."


def test_huydangky_from_someone_not_registered(signed_post: Post, runtime: Runtime) -> None:
    say(signed_post, "HUYDANGKY")
    assert replies(runtime) == ["Ông/Bà chưa đăng ký nhận báo cáo của đơn vị nào."]


# --- "Đã nhận" -----------------------------------------------------------------------------


def manual_digest(runtime: Runtime) -> int:

    service = runtime.digests
    with runtime.session_factory.begin() as session:
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        outcome = service.send(
            session, unit, "day", now=runtime.clock(), scheduled=False, send_empty=True
        )
    assert outcome.digest_id is not None
    return outcome.digest_id


def acknowledged(runtime: Runtime) -> list[tuple[str, datetime | None]]:
    with runtime.session_factory() as session:
        return [
            (m.leader.user_id, m.acknowledged_at)
            for m in session.scalars(select(LeaderMessage).order_by(LeaderMessage.id))
        ]


def test_a_tap_on_da_nhan_is_recorded_and_counts_as_an_interaction(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    register(signed_post)
    digest_id = manual_digest(runtime)
    (button,) = [
        b
        for body in _bodies(runtime)
        for b in body.get("buttons", [])
        if b.get("payload") == f"dg:{digest_id}:ack"
    ]
    assert button["title"] == "Đã nhận"
    tapped_at = clock.advance(days=6)

    say(signed_post, button["payload"])  # oa.query.hide: the payload comes back as a text

    assert acknowledged(runtime) == [(LEADER, tapped_at)]
    assert replies(runtime)[-1] == "Đã ghi nhận. Cảm ơn Ông/Bà!"
    with runtime.session_factory() as session:
        conversation = session.get(Conversation, (LEADER, ""))
        assert conversation is not None and conversation.last_interaction_at == tapped_at
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0

    clock.advance(minutes=1)
    count = len(replies(runtime))
    say(signed_post, button["payload"])  # a second tap keeps the first time, and is quiet
    assert acknowledged(runtime) == [(LEADER, tapped_at)]
    assert len(replies(runtime)) == count


def test_digest_list_shows_who_acknowledged(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    tag = runtime.pseudonyms.user_tag
    register(signed_post)
    register(signed_post, user_id=OTHER)
    digest_id = manual_digest(runtime)
    clock.advance(hours=1)
    say(signed_post, f"dg:{digest_id}:ack")

    result = app.test_cli_runner().invoke(cli, ["digest", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{digest_id:>6}  2026-03-14 09:00  HVT  day    2026-03-14..2026-03-14  queued (manual)"
        "  0 response(s)",
        f"        leader 1 {tag(LEADER)}  queued         acknowledged 2026-03-14 10:00",
        f"        leader 2 {tag(OTHER)}  queued         acknowledged -",
    ]


def test_a_tap_by_someone_else_records_nothing(signed_post: Post, runtime: Runtime) -> None:
    register(signed_post)
    digest_id = manual_digest(runtime)
    say(signed_post, f"dg:{digest_id}:ack", user_id=OTHER)
    assert acknowledged(runtime) == [(LEADER, None)]
    assert replies(runtime, OTHER) == []


def _bodies(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(OutboxMessage.body).order_by(OutboxMessage.id)))


# --- the window and `sipas-bot leaders` ----------------------------------------------------


NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (None, "unknown (no interaction recorded)"),
        (NOW - timedelta(hours=1), "open, closes in 6 days"),
        (NOW - timedelta(days=5, hours=12), "open, closes in 1 day"),
        (NOW - timedelta(days=6, hours=20), "open, closes in 4 h"),
        (NOW - timedelta(days=9), "closed since 2026-03-12 17:00"),
    ],
)
def test_window_status(last: datetime | None, expected: str) -> None:
    assert window_status(last, NOW, ZONE) == expected


def leaders_cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, ["leaders", *args])


def test_leaders_list_shows_pseudonym_units_email_and_window(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    tag = runtime.pseudonyms.user_tag
    register(signed_post)
    clock.advance(days=8)
    register(signed_post, user_id=OTHER)

    assert (
        leaders_cli(
            app,
            "email",
            "--leader",
            tag(LEADER),
            "--email",
            "ct@hvt.gov.vn",
        ).exit_code
        == 0
    )
    assert leaders_cli(app, "name", "--leader", "2", "--name", "Trần Thị B").exit_code == 0
    result = leaders_cli(app, "list")

    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first.startswith(f"   1  {tag(LEADER)}  -  units HVT  e-mail ct@hvt.gov.vn  ")
    assert first.endswith("window closed since 2026-03-21 09:00")
    assert second == (
        f"   2  {tag(OTHER)}  Trần Thị B  units HVT  e-mail -  window open, closes in 7 days"
    )
    assert LEADER not in result.output  # the raw Zalo id is never shown


def test_leaders_email_refuses_a_bad_address(app: Flask, signed_post: Post) -> None:
    register(signed_post)
    result = leaders_cli(app, "email", "--leader", "1", "--email", "not-an-address")
    assert result.exit_code != 0
    assert "is not an e-mail address" in str(result.exception)


def test_leaders_remove_unsubscribes(app: Flask, signed_post: Post, runtime: Runtime) -> None:
    tag = runtime.pseudonyms.user_tag
    register(signed_post)
    result = leaders_cli(app, "remove", "--leader", tag(LEADER))
    assert result.exit_code == 0, result.output
    assert subscriptions(runtime) == []
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Leader)) == 1  # e-mail kept


def test_an_unknown_leader_is_one_error_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    result = run_cli("leaders", "email", "--leader", "42", "--email", "a@b.vn", env=env)
    assert_one_error_line(result, "no leader", "42", "leaders list")


# --- hardening: lockouts across accounts, approval ---------------------------------------------


def test_wrong_codes_naming_a_unit_from_many_accounts_lock_its_registration(
    app: Flask, signed_post: Post, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.conversation.leader_commands import MAX_WRONG_CODES_PER_UNIT

    for n in range(MAX_WRONG_CODES_PER_UNIT):
        say(signed_post, f"DANGKY HVT-GUESS-{n:04d}", user_id=f"80000000000000{n:04d}")
    # The right code, from a new account, is now refused without being compared.
    say(signed_post, f"DANGKY {CODE}")
    assert subscriptions(runtime) == []
    assert replies(runtime)[-1] == (  # the unit's lockout lasts a day, and the reply says so
        "Đăng ký nhận báo cáo đang tạm khóa vì mã đăng ký bị nhập sai quá nhiều lần. Vui lòng"
        " thử lại sau 24 giờ hoặc liên hệ quản trị viên của đơn vị."
    )
    assert any(
        r.levelname == "ERROR" and "event=registration_locked scope=unit unit=HVT" in r.message
        for r in caplog.records
    )
    listed = leaders_cli(app, "list").output
    assert "registration locked for HVT until 2026-03-15 09:00 after 10 wrong codes" in listed


def test_a_unit_lockout_leaves_other_units_open_and_ends(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    from bot.conversation.leader_commands import MAX_WRONG_CODES_PER_UNIT

    add_unit(runtime, clock, "ABC", "ABC-7KQ2-M9XD-4TPB")
    for n in range(MAX_WRONG_CODES_PER_UNIT):
        say(signed_post, f"DANGKY HVT-GUESS-{n:04d}", user_id=f"80000000000000{n:04d}")
    say(signed_post, "DANGKY ABC-7KQ2-M9XD-4TPB")
    assert subscriptions(runtime) == ["ABC"]
    clock.advance(hours=24, minutes=1)
    say(signed_post, f"DANGKY {CODE}")
    assert subscriptions(runtime) == ["ABC", "HVT"]


def test_too_many_wrong_codes_in_all_lock_every_registration(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    from bot.conversation.leader_commands import MAX_WRONG_CODES_IN_ALL

    for n in range(MAX_WRONG_CODES_IN_ALL):
        say(signed_post, f"DANGKY nothing-{n:04d}", user_id=f"81000000000000{n:04d}")
    say(signed_post, f"DANGKY {CODE}")
    assert subscriptions(runtime) == []
    assert "thử lại sau 1 giờ" in replies(runtime)[-1]  # every unit's lockout lasts an hour
    clock.advance(hours=1, minutes=1)
    say(signed_post, f"DANGKY {CODE}")
    assert subscriptions(runtime) == ["HVT"]


def test_a_unit_asking_for_approval_sends_nothing_until_an_operator_approves(
    app: Flask, signed_post: Post, runtime: Runtime
) -> None:
    with runtime.session_factory.begin() as session:
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        unit.leader_approval = True
    register(signed_post)
    assert "duyệt" in replies(runtime)[-1]
    with runtime.session_factory() as session:
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        assert list(repo.subscribed_leaders(session, unit.id)) == []
    assert "units HVT (pending approval)" in leaders_cli(app, "list").output

    result = leaders_cli(app, "approve", "--leader", "1")

    assert result.exit_code == 0, result.output
    assert "approved for HVT" in result.output
    with runtime.session_factory() as session:
        unit = repo.find_unit(session, "HVT")
        assert unit is not None
        assert [leader.user_id for leader in repo.subscribed_leaders(session, unit.id)] == [LEADER]


def test_units_new_code_prints_a_strong_code(app: Flask) -> None:
    from bot.registration_codes import weakness

    result = app.test_cli_runner().invoke(cli, ["units", "new-code", "--unit", "hvt"])
    assert result.exit_code == 0, result.output
    code = result.output.strip()
    assert code.startswith("HVT-") and weakness(code, unit_code="HVT") is None
