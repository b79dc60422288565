"""Suspicious patterns held apart, never deleted: a burst from new accounts at one counter,
surveys started outside opening hours, one account's many surveys in a day. Held surveys are
out of the index, listed by `sipas-bot integrity list`, and released or rejected by an
operator; reports say how many are held.

Every survey is sent through signed webhooks."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from sqlalchemy import select

from bot.cli import cli
from bot.config import Settings
from bot.reporting.render import render_text, report_dict
from bot.runtime import Runtime
from storage.models import Unit
from tests.conftest import FakeClock, make_settings
from tests.integrity_support import FIVE, Post, alerts, index, say, surveys

ONES = ("1", "1", "1", "1", "1")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Defaults for the quarantine rules; the account limits out of the way (their own tests
    are in tests/test_integrity_limits.py)."""
    return make_settings(
        database_url,
        account_message_burst=1000,
        account_messages_per_minute=1000,
        account_starts_per_day=1000,
    )


def cli_run(app: Flask, *args: str) -> tuple[int, str, str]:
    result = app.test_cli_runner().invoke(cli, list(args))
    return result.exit_code, result.output, str(result.exception or "")


def listed_ids(app: Flask, *args: str) -> list[int]:
    code, output, problem = cli_run(app, "integrity", "list", *args)
    assert code == 0, problem
    return [int(line.split()[0]) for line in output.splitlines() if re.match(r"^\d+  ", line)]


def set_hours(runtime: Runtime, hours: str) -> None:
    with runtime.session_factory.begin() as session:
        session.scalars(select(Unit).where(Unit.code == "HVT")).one().opening_hours = hours


def test_a_burst_from_new_accounts_is_held_out_of_the_index_until_released(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    # A citizen rated the counter in the morning.
    say(signed_post, clock, "100", "#HVT01", *FIVE, "xong")
    clock.advance(hours=1)
    # Then eight fresh accounts rate it 1 within three minutes: the fifth survey from a new
    # account within INTEGRITY_BURST_MINUTES (10) makes a burst (INTEGRITY_BURST_SURVEYS, 5).
    for n in range(4):
        say(signed_post, clock, f"20{n}", "#HVT01", *ONES, "xong")
    before = index(runtime, clock)
    for n in range(4, 8):
        say(signed_post, clock, f"20{n}", "#HVT01", *ONES, "xong")
    after = index(runtime, clock)
    assert (after.responses, after.overall.valid, after.overall.share) == (
        before.responses,
        before.overall.valid,
        before.overall.share,
    )
    assert (after.responses, after.held) == (5, 4)
    stored = surveys(runtime)
    held = [s.id for s in stored if s.quarantine == "held"]
    assert len(stored) == 9 and held == [s.id for s in stored[5:]]
    assert {s.quarantine_rule for s in stored[5:]} == {"new_account_burst"}
    assert all(s.counted for s in stored)  # kept, decided, only held
    assert not set(held) & set(alerts(runtime))  # held surveys alert no one
    # Reports say it.
    assert "4 phiếu chờ xem xét (held for review)" in render_text(after)
    assert json.loads(json.dumps(report_dict(after)))["responses"]["held"] == 4
    # The operator sees them, and releases two.
    assert listed_ids(app) == held
    assert listed_ids(app, "--unit", "hvt") == held
    code, output, _ = cli_run(app, "integrity", "release", str(held[0]), str(held[1]))
    assert code == 0 and "2 survey(s) released" in output
    released = index(runtime, clock)
    assert (released.responses, released.held) == (7, 2)
    assert released.overall.valid == before.overall.valid + 10
    assert released.overall.share is not None and before.overall.share is not None
    assert released.overall.share < before.overall.share
    assert listed_ids(app) == held[2:]
    assert listed_ids(app, "--state", "released") == held[:2]


def test_a_rejected_survey_stays_stored_and_out_and_unknown_ids_change_nothing(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    for n in range(6):
        say(signed_post, clock, f"30{n}", "#HVT02", *ONES, "xong")
    held = listed_ids(app)
    assert len(held) == 2
    not_held = next(s.id for s in surveys(runtime) if s.quarantine == "none")
    code, _, problem = cli_run(app, "integrity", "reject", str(held[0]), str(not_held))
    assert code != 0 and str(not_held) in problem and "nothing was changed" in problem
    assert listed_ids(app) == held
    code, output, _ = cli_run(app, "integrity", "reject", *map(str, held))
    assert code == 0 and "2 survey(s) rejected" in output
    report = index(runtime, clock)
    assert (report.responses, report.held) == (4, 0)
    assert listed_ids(app) == []
    assert listed_ids(app, "--state", "rejected") == held
    assert len(surveys(runtime)) == 6  # nothing deleted
    # An operator who changes their mind may still release one.
    assert cli_run(app, "integrity", "release", str(held[0]))[0] == 0
    assert index(runtime, clock).responses == 5


def test_a_survey_started_outside_opening_hours_is_held(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    # The clock starts on Saturday 14 March 2026, 09:00 in Hanoi.
    set_hours(runtime, "mon-fri 07:30-17:00, sat 07:30-11:30")
    say(signed_post, clock, "400", "#HVT01", *FIVE, "xong")
    clock.advance(hours=3, minutes=20)  # 12:20: inside the hour of grace after closing
    say(signed_post, clock, "401", "#HVT01", *FIVE, "xong")
    clock.advance(hours=1)  # 13:30: outside
    say(signed_post, clock, "402", "#HVT01", *ONES, "xong")
    stored = surveys(runtime)
    assert [(s.quarantine, s.quarantine_rule) for s in stored] == [
        ("none", None),
        ("none", None),
        ("held", "outside_hours"),
    ]
    report = index(runtime, clock)
    assert (report.responses, report.held, report.overall.share) == (2, 1, 100.0)
    assert listed_ids(app) == [stored[2].id]
    assert alerts(runtime) == []


def test_one_account_rating_many_counters_in_a_day_is_held_after_the_third(
    app: Flask, signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    for counter in ("HVT01", "HVT02", "HVT03"):
        say(signed_post, clock, "500", f"#{counter}", *ONES, "xong")
        clock.advance(minutes=20)
    clock.advance(hours=12)  # past the cooldown at HVT01, within 24 hours of all three
    say(signed_post, clock, "500", "#HVT01", *ONES, "xong")
    stored = surveys(runtime)
    assert [s.quarantine_rule for s in stored] == [None, None, None, "account_surveys"]
    assert [s.counted for s in stored] == [True, True, True, True]
    assert index(runtime, clock).held == 1
    clock.advance(hours=13)  # a day after the first three: counts again
    say(signed_post, clock, "500", "#HVT02", *ONES, "xong")
    assert surveys(runtime)[-1].quarantine == "none"


def test_a_held_survey_still_takes_its_place_in_the_cooldown(
    signed_post: Post, runtime: Runtime, clock: FakeClock
) -> None:
    """Holding a survey must not free its account to be counted again at once."""
    set_hours(runtime, "mon-fri 07:30-17:00")  # Saturday: closed
    say(signed_post, clock, "600", "#HVT01", *ONES, "xong")
    say(signed_post, clock, "600", "#HVT01", *ONES, "xong")
    stored = surveys(runtime)
    assert [(s.counted, s.is_repeat, s.quarantine) for s in stored] == [
        (True, False, "held"),
        (False, True, "none"),
    ]
