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
