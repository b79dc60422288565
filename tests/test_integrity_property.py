"""The property behind the index's integrity: for any sequence of messages from any number
of accounts, each account has at most one counted survey per counter per cooldown."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime import Runtime
from tests.conftest import FakeClock
from tests.integrity_support import Post, say, surveys

# A start, the five ratings at once (all 5 or all 1), one answer, a cancel, a comment, waits.
ACTIONS = ["#HVT01", "#HVT02", "rate-5", "rate-1", "4", "Hủy", "xong", "wait-minutes", "wait-hours"]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(ACTIONS)), min_size=1, max_size=60))
def test_each_account_has_at_most_one_counted_survey_per_counter_per_cooldown(
    signed_post: Post, runtime: Runtime, clock: FakeClock, events: list[tuple[int, str]]
) -> None:
    for account, action in events:
        if action == "wait-minutes":
            clock.advance(minutes=7)
        elif action == "wait-hours":
            clock.advance(hours=5)
        elif action.startswith("rate-"):
            say(signed_post, clock, f"90{account}", *[action[-1]] * 5)
        else:
            say(signed_post, clock, f"90{account}", action)
    cooldown = timedelta(hours=runtime.settings.survey_cooldown_hours)
    counted: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for survey in surveys(runtime):
        if survey.counted:
            assert survey.qualified_at is not None and not survey.is_repeat
            counted[survey.respondent_hash, survey.counter_id].append(survey.qualified_at)
        if survey.qualified_at is None:
            assert not survey.counted and not survey.is_repeat
    for times in counted.values():
        times.sort()
        assert all(later - earlier >= cooldown for earlier, later in pairwise(times))
