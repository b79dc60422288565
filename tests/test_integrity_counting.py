"""One counted survey per citizen per counter per cooldown, whatever its status; which partial
surveys count; a survey without an answer counts nowhere; alerts follow the same rule.

Every case is an abuse tried with ordinary chat messages (issue 11), sent through signed
webhooks, and checked on the index (build_report) and on the public results page."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from bot.config import Settings
from bot.jobs import expire_idle_surveys
from bot.runtime import Runtime
from tests.conftest import FakeClock, make_settings
from tests.integrity_support import (
    FIVE,
    Post,
    alerts,
    index,
    public_month,
    publish,
    say,
    surveys,
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The account limits out of the way: these tests are about the counting rule alone
    (tests/test_integrity_limits.py has the limits)."""
    return make_settings(
        database_url,
        account_message_burst=1000,
        account_messages_per_minute=1000,
        account_starts_per_day=1000,
    )


def test_partial_survey_stuffing_by_switching_counters_counts_once_per_counter(
    signed_post: Post, runtime: Runtime, clock: FakeClock, client: FlaskClient
) -> None:
    publish(runtime)
    # Twenty surveys from one account: the five ratings, then another counter's code closes
    # the survey as partial and starts the next one.
    for n in range(20):
        say(signed_post, clock, "666", f"#HVT0{1 + n % 2}", *FIVE)
    report = index(runtime, clock)
    counters = {c.code: c.responses for c in report.counters}
    assert counters == {"HVT01": 1, "HVT02": 1, "HVT03": 0}
    assert (report.completed, report.partial) == (0, 2)
    assert report.repeats == 17  # the twentieth is still open: in no figure until it closes
    assert report.overall.valid == 10  # two surveys × five ratings
    assert public_month(client).surveys == 2
    assert public_month(client).answers == 10
    stored = surveys(runtime)
    assert len(stored) == 20  # all kept, for the auditor
    assert [s.counted for s in stored[:4]] == [True, True, False, False]
    assert all(s.is_repeat for s in stored[2:])


def test_a_repeat_is_decided_whatever_the_earlier_surveys_status(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    say(signed_post, clock, "666", "#HVT01", *FIVE)  # partial once the next code comes
    say(signed_post, clock, "666", "#HVT02", "#HVT01", *FIVE, "xong")  # completed
    report = index(runtime, clock)
    assert {c.code: c.responses for c in report.counters}["HVT01"] == 1
    assert report.repeats == 1
    clock.advance(hours=13)  # past SURVEY_COOLDOWN_HOURS (12): counts again
    say(signed_post, clock, "666", "#HVT01", *FIVE, "xong")
    assert {c.code: c.responses for c in index(runtime, clock).counters}["HVT01"] == 2


def test_code_only_starts_count_in_no_figure(
    signed_post: Post, runtime: Runtime, clock: FakeClock, client: FlaskClient
) -> None:
    publish(runtime)
    for n in range(10):
        say(signed_post, clock, f"70{n}", f"#HVT0{1 + n % 3}", "#HVT01" if n % 3 else "#HVT02")
    clock.advance(minutes=31)
    expire_idle_surveys(runtime)
    report = index(runtime, clock, include_repeats=True)
    assert (report.responses, report.repeats, report.overall.valid) == (0, 0, 0)
    assert public_month(client).surveys == 0
    assert len(surveys(runtime)) == 20


def test_a_partial_survey_counts_only_with_its_rated_part_whole(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    say(signed_post, clock, "801", "#HVT01", "5", "5", "5", "5", "#HVT02")  # four of five
    say(signed_post, clock, "802", "#HVT01", *FIVE, "#HVT02")  # all five, no comment
    report = index(runtime, clock)
    assert {c.code: c.responses for c in report.counters}["HVT01"] == 1
    assert report.overall.valid == 5
    assert [s.counted for s in surveys(runtime)] == [False, False, True, False]


def test_low_ratings_in_a_counted_partial_survey_alert_and_repeats_do_not(
    signed_post: Post, runtime: Runtime, clock: FakeClock, client: FlaskClient
) -> None:
    publish(runtime)
    # Six all-"1" partials from one account: one counts, and alerts; the rest are repeats.
    for _ in range(6):
        say(signed_post, clock, "666", "#HVT01", "1", "1", "1", "1", "1", "#HVT03")
    stored = surveys(runtime)
    hvt01 = stored[0].counter_id
    counted = [s.id for s in stored if s.counted and s.counter_id == hvt01]
    assert len(counted) == 1
    assert alerts(runtime) == counted
    report = index(runtime, clock)
    assert {c.code: c.responses for c in report.counters}["HVT01"] == 1
    assert public_month(client).surveys == 1


def test_a_counted_survey_left_idle_alerts_when_the_expiry_job_closes_it(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    say(signed_post, clock, "901", "#HVT01", "2", "4", "4", "4", "4")
    assert alerts(runtime) == []  # still open
    clock.advance(minutes=31)
    assert expire_idle_surveys(runtime) == 1
    (survey,) = surveys(runtime)
    assert (survey.status, survey.counted) == ("partial", True)
    assert alerts(runtime) == [survey.id]
    say(signed_post, clock, "901", "xin chào")  # told it expired; no second alert
    assert alerts(runtime) == [survey.id]
    assert index(runtime, clock).partial == 1


def test_a_cancelled_survey_is_withdrawn_and_leaves_the_place_to_the_next(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    say(signed_post, clock, "902", "#HVT01", "1", "1", "1", "1", "1", "Hủy")
    say(signed_post, clock, "902", "#HVT01", *FIVE, "xong")
    stored = surveys(runtime)
    assert [(s.status, s.counted, s.is_repeat) for s in stored] == [
        ("cancelled", False, False),
        ("completed", True, False),
    ]
    assert alerts(runtime) == []
    report = index(runtime, clock)
    assert (report.responses, report.overall.share) == (1, 100.0)
