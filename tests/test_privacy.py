"""Personal data: keyed pseudonyms, scrubbed comments, redacted errors, retention, erasure and
the privacy notice (docs/privacy.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from bot.config import ConfigError, Settings
from bot.privacy import Pseudonymizer
from bot.privacy.pseudonyms import legacy_respondent_hash
from bot.runtime import Runtime
from storage.models import SurveyResponse
from tests.conftest import make_settings, text_event

Post = Callable[..., Any]
CITIZEN = "246845883529197922"


def survey_hashes(runtime: Runtime) -> list[str]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(SurveyResponse.respondent_hash)))


# --- the keyed respondent hash ----------------------------------------------------------------


def test_the_respondent_hash_is_keyed_by_the_pepper() -> None:
    one, other = Pseudonymizer("pepper-one-0123456789"), Pseudonymizer("pepper-two-0123456789")
    assert one.respondent_hash(CITIZEN) == one.respondent_hash(CITIZEN)
    assert one.respondent_hash(CITIZEN) != other.respondent_hash(CITIZEN)
    assert len(one.respondent_hash(CITIZEN)) == 64
    # Nobody without the pepper can recompute it from the id, as they could the old hash.
    assert one.respondent_hash(CITIZEN) != legacy_respondent_hash(CITIZEN)
    assert one.respondent_hash(CITIZEN) != hashlib.sha256(CITIZEN.encode()).hexdigest()
    assert one.user_tag(CITIZEN) == one.respondent_hash(CITIZEN)[:12]


def test_a_stored_survey_carries_the_keyed_hash(signed_post: Post, runtime: Runtime) -> None:
    assert signed_post(text_event("#HVT01", user_id=CITIZEN)).status_code == 200
    expected = Pseudonymizer("test-pepper-0123456789").respondent_hash(CITIZEN)
    assert survey_hashes(runtime) == [expected]


def test_without_a_pepper_hashing_fails_outside_sandbox_and_works_in_it(
    database_url: str,
) -> None:
    live = Pseudonymizer.from_settings(make_settings(database_url, privacy_pepper=""))
    with pytest.raises(ConfigError, match="PRIVACY_PEPPER"):
        live.respondent_hash(CITIZEN)
    sandbox = Pseudonymizer.from_settings(
        make_settings(database_url, privacy_pepper="", zalo_sandbox=True)
    )
    assert len(sandbox.user_tag(CITIZEN)) == 12


def test_serving_live_requires_a_pepper_and_a_short_one_is_refused(database_url: str) -> None:
    with pytest.raises(ConfigError, match="PRIVACY_PEPPER not set"):
        make_settings(database_url, privacy_pepper="").require_for_serving()
    make_settings(database_url, privacy_pepper="", zalo_sandbox=True).require_for_serving()
    with pytest.raises(ConfigError, match="PRIVACY_PEPPER must be at least 16"):
        Settings.from_env({"PRIVACY_PEPPER": "short"})


def test_the_runtime_hands_one_pseudonymizer_to_everything_that_hashes(app: Flask) -> None:
    from bot.web import runtime_of

    runtime = runtime_of(app)
    assert runtime.service.pseudonyms is runtime.pseudonyms
    assert runtime.service.leaders.pseudonyms is runtime.pseudonyms
    sender = runtime.sender()
    assert sender.pseudonyms is runtime.pseudonyms
    sender.close()


# --- comments are stored without phone numbers, ID numbers, e-mail addresses ------------------

SCRUBBED = [
    ("Gọi lại cho tôi: 0912345678 nhé", "Gọi lại cho tôi: [số điện thoại] nhé"),
    ("sđt 0912 345 678, cảm ơn", "sđt [số điện thoại], cảm ơn"),
    ("SĐT:0912.345.678", "SĐT:[số điện thoại]"),
    ("+84 912 345 678 hoặc 84912345678", "[số điện thoại] hoặc [số điện thoại]"),
    ("máy bàn 024 3825 1234", "máy bàn [số điện thoại]"),
    ("CCCD 001095012345 bị ghi sai", "CCCD [số giấy tờ] bị ghi sai"),
    ("CMND số 123456789", "CMND số [số giấy tờ]"),
    ("email nguyen.van.a@gmail.com", "email [email]"),
    # Everything else is kept as written.
    ("Chờ 30 phút, quầy 2 đông; phí 50.000 đồng", "Chờ 30 phút, quầy 2 đông; phí 50.000 đồng"),
    ("Hẹn ngày 14/03/2026 lúc 9:30, năm 2024", "Hẹn ngày 14/03/2026 lúc 9:30, năm 2024"),
]


@pytest.mark.parametrize(("written", "stored"), SCRUBBED)
def test_scrub_replaces_personal_numbers_and_addresses_only(written: str, stored: str) -> None:
    from bot.privacy.scrub import scrub_personal_data

    assert scrub_personal_data(written) == stored


def finish_with_comment(signed_post: Post, comment: str, *, user_id: str = CITIZEN) -> None:
    for typed in ["#HVT01", "1", "2", "3", "4", "5", comment]:
        assert signed_post(text_event(typed, user_id=user_id)).status_code == 200


def stored_comments(runtime: Runtime) -> list[str | None]:
    from storage.models import Answer

    with runtime.session_factory() as session:
        return list(session.scalars(select(Answer.text).where(Answer.item_id == "comment")))


def test_a_comment_is_stored_scrubbed(signed_post: Post, runtime: Runtime) -> None:
    finish_with_comment(signed_post, "Nhân viên tốt. Gọi 0912 345 678 hoặc a@b.vn")
    assert stored_comments(runtime) == ["Nhân viên tốt. Gọi [số điện thoại] hoặc [email]"]


# --- retention: the daily purge -----------------------------------------------------------------


def cli_privacy(app: Flask, *args: str) -> Any:
    from bot.cli.main import cli

    return app.test_cli_runner().invoke(cli, ["privacy", *args])


def stored_user_ids(runtime: Runtime) -> set[str]:
    from storage.models import Conversation, OutboxMessage

    with runtime.session_factory() as session:
        return set(session.scalars(select(Conversation.user_id))) | set(
            session.scalars(select(OutboxMessage.user_id))
        )


def deliver_all(runtime: Runtime) -> None:
    sender = runtime.sender()
    try:
        sender.drain()
    finally:
        sender.close()


def test_purge_drops_a_citizens_id_after_the_window_and_keeps_their_answers(
    app: Flask, signed_post: Post, runtime: Runtime, clock: Any
) -> None:
    finish_with_comment(signed_post, "Tốt")
    deliver_all(runtime)
    clock.advance(days=6, hours=23)
    assert signed_post(text_event("#HVT02", user_id="246845883529190000")).status_code == 200
    result = cli_privacy(app, "purge")
    assert result.exit_code == 0, result.output
    assert CITIZEN in stored_user_ids(runtime)  # a reply may still be needed

    clock.advance(hours=2)
    result = cli_privacy(app, "purge")

    assert result.exit_code == 0, result.output
    assert "conversations dropped: 1" in result.output
    assert stored_user_ids(runtime) == {"246845883529190000"}
    assert stored_comments(runtime) == ["Tốt"]
    assert len(survey_hashes(runtime)) == 2


def test_purge_deletes_delivered_messages_after_their_retention_but_not_pending_ones(
    app: Flask, signed_post: Post, runtime: Runtime, clock: Any
) -> None:
    from storage.models import OutboxMessage

    assert signed_post(text_event("#HVT01", user_id=CITIZEN)).status_code == 200
    deliver_all(runtime)
    clock.advance(days=3, minutes=1)
    assert signed_post(text_event("5", user_id=CITIZEN)).status_code == 200  # not delivered

    assert cli_privacy(app, "purge").exit_code == 0

    with runtime.session_factory() as session:
        left = list(session.scalars(select(OutboxMessage.status)))
    assert left and set(left) == {"pending"}


def test_purge_rekeys_surveys_stored_under_the_old_unkeyed_hash(
    app: Flask, signed_post: Post, runtime: Runtime, clock: Any
) -> None:
    from sqlalchemy import update

    finish_with_comment(signed_post, "Tốt")
    with runtime.session_factory.begin() as session:
        session.execute(
            update(SurveyResponse).values(respondent_hash=legacy_respondent_hash(CITIZEN))
        )
    clock.advance(days=8)
    result = cli_privacy(app, "purge")
    assert "surveys re-keyed from the old unkeyed hash: 1" in result.output
    assert survey_hashes(runtime) == [runtime.pseudonyms.respondent_hash(CITIZEN)]


def test_leaders_keep_their_conversation_past_the_window(
    app: Flask, signed_post: Post, runtime: Runtime, clock: Any
) -> None:
    from storage.models import Conversation

    leader = "900000000000000001"
    with runtime.session_factory() as session:
        code = repo_unit_code(session)
    assert signed_post(text_event(f"DANGKY {code}", user_id=leader)).status_code == 200
    clock.advance(days=30)
    assert cli_privacy(app, "purge").exit_code == 0
    with runtime.session_factory() as session:
        assert session.get(Conversation, (leader, "")) is not None


def repo_unit_code(session: Any) -> str:
    from storage import repositories as repo

    unit = repo.find_unit(session, "HVT")
    assert unit is not None and unit.registration_code
    return unit.registration_code


def test_the_purge_job_is_scheduled_daily(runtime: Runtime) -> None:
    from bot.jobs import build_scheduler

    jobs = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    assert "purge_personal_data" in jobs


# --- erasure on request -----------------------------------------------------------------------


def everything_stored(runtime: Runtime) -> str:
    """Every value of every row of every table, as one text to search."""
    from sqlalchemy import text

    from storage.models import Base

    chunks: list[str] = []
    with runtime.session_factory() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(text(f"SELECT * FROM {table.name}")):
                chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


@pytest.mark.parametrize("by", ["zalo-user", "pseudonym"])
def test_erase_leaves_nothing_that_names_the_citizen(
    app: Flask, signed_post: Post, runtime: Runtime, clock: Any, by: str
) -> None:
    comment = "Nhân viên Nguyễn Văn Bình rất tận tình"
    finish_with_comment(signed_post, comment)
    other = "246845883529190000"
    finish_with_comment(signed_post, "Chờ hơi lâu", user_id=other)
    deliver_all(runtime)
    keyed = runtime.pseudonyms.respondent_hash(CITIZEN)
    before = everything_stored(runtime)
    assert CITIZEN in before and keyed in before and comment in before

    ref = CITIZEN if by == "zalo-user" else runtime.pseudonyms.user_tag(CITIZEN)
    result = cli_privacy(app, "erase", f"--{by}", ref)

    assert result.exit_code == 0, result.output
    assert "surveys unlinked (ratings kept for the index, linked to nobody): 1" in result.output
    assert "comments deleted: 1" in result.output
    assert "cases unlinked (text erased, contact and phone deleted): 1" in result.output
    after = everything_stored(runtime)
    assert CITIZEN not in after
    assert keyed not in after and runtime.pseudonyms.user_tag(CITIZEN) not in after
    assert legacy_respondent_hash(CITIZEN) not in after
    assert comment not in after
    # The other citizen is untouched, and the erased one's ratings still count.
    assert other in after and "Chờ hơi lâu" in after
    with runtime.session_factory() as session:
        from storage.models import Answer

        assert session.scalar(select(func_count()).select_from(SurveyResponse)) == 2
        assert session.scalar(select(func_count()).select_from(Answer)) == 6 + 5


def func_count() -> Any:
    from sqlalchemy import func

    return func.count()


def test_erase_needs_exactly_one_way_to_find_the_person(app: Flask) -> None:
    result = cli_privacy(app, "erase")
    assert result.exit_code != 0
    assert "--zalo-user" in str(result.exception)
    result = cli_privacy(app, "erase", "--pseudonym", "not-a-tag")
    assert "12 hex digits" in str(result.exception)


def test_privacy_report_says_what_is_stored_and_for_how_long(app: Flask, signed_post: Post) -> None:
    finish_with_comment(signed_post, "Tốt")
    result = cli_privacy(app, "report")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith(
            "conversations (raw Zalo id, language, open survey): 1 row(s); kept "
            "citizens: 7 days after their last message"
        )
        for line in lines
    )
    assert any(line.startswith("comments (scrubbed") and ": 1 row(s)" in line for line in lines)
    assert any("3 days after delivery" in line for line in lines)
    assert CITIZEN not in result.output


# --- consent and the privacy notice -------------------------------------------------------------


def test_the_first_message_of_a_survey_links_to_the_privacy_notice(
    signed_post: Post, runtime: Runtime
) -> None:
    from storage.models import OutboxMessage

    assert signed_post(text_event("#HVT01", user_id=CITIZEN)).status_code == 200
    with runtime.session_factory() as session:
        first, *rest = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
    assert "trả lời tiếp nghĩa là Ông/Bà đồng ý" in first.body["text"]
    assert first.body["text"].endswith("https://sipas.example.vn/privacy")
    assert not any("/privacy" in m.body["text"] for m in rest)  # once, not on every question


def test_the_consent_line_is_in_english_after_english(signed_post: Post, runtime: Runtime) -> None:
    from storage.models import OutboxMessage

    assert signed_post(text_event("English", user_id=CITIZEN)).status_code == 200
    assert signed_post(text_event("#HVT01", user_id=CITIZEN)).status_code == 200
    with runtime.session_factory() as session:
        texts = [m.body["text"] for m in session.scalars(select(OutboxMessage))]
    assert any("by answering you agree" in t and "/privacy" in t for t in texts)


def test_the_privacy_notice_page_says_what_is_kept_and_how_long(client: Any) -> None:
    response = client.get("/privacy")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Thông báo xử lý dữ liệu cá nhân" in html and "Privacy notice" in html
    assert "xoá 7 ngày sau tin nhắn cuối cùng" in html
    assert "deleted 3 days after they were sent" in html
    assert 'name="viewport"' in html  # readable on a phone
