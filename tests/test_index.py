"""The SIPAS index against tables of answers worked out by hand (bot/reports.py, storage/stats.py).

Responses are seeded with the ORM so every value, status, flag and start time is exactly
what the table says; the expected percentages are literals computed by hand in comments.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import UnknownCode
from bot.reporting.periods import period_between, period_containing
from bot.reporting.report import Figure, Report, build_report
from bot.runtime import Runtime
from storage.models import Answer, Counter, SurveyResponse, Unit

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
MARCH = period_containing("month", datetime(2026, 3, 14, 12, tzinfo=HANOI), HANOI)

# (factor, criterion, item_id) -> value; a str value is a free-text answer.
Answers = dict[tuple[int | None, int | None, str], int | str | None]


def seed(
    session: Session,
    counter_code: str,
    local_start: datetime,
    answers: Answers,
    *,
    status: str = "completed",
    repeat: bool = False,
    questionnaire: tuple[str, str] = ("test-form", "1"),
) -> None:
    """One response started at `local_start` (wall time in Hanoi) with these answers."""
    counter = session.scalars(select(Counter).where(Counter.code == counter_code)).one()
    started = local_start.replace(tzinfo=HANOI)
    response = SurveyResponse(
        token=secrets.token_hex(8),
        respondent_hash=secrets.token_hex(16),
        unit_id=counter.unit_id,
        counter_id=counter.id,
        questionnaire_id=questionnaire[0],
        questionnaire_version=questionnaire[1],
        language="vi",
        status=status,
        position=len(answers),
        is_repeat=repeat,
        started_at=started,
        updated_at=started,
        completed_at=started if status == "completed" else None,
    )
    for (factor, criterion, item_id), value in answers.items():
        response.answers.append(
            Answer(
                item_id=item_id,
                factor=factor,
                criterion=criterion,
                value=value if not isinstance(value, str) else None,
                text=value if isinstance(value, str) else None,
                answered_at=started,
            )
        )
    session.add(response)
    session.flush()


def full(c1: int | None, c2: int | None, c9: int, c10: int, c17: int, c18: int) -> Answers:
    """Answers to criteria 1, 2 (factor I), 9, 10 (factor III) and 17, 18 (factor V)."""
    answers: Answers = {
        (1, 1, "c1"): c1,
        (1, 2, "c2"): c2,
        (3, 9, "c9"): c9,
        (3, 10, "c10"): c10,
        (5, 17, "c17"): c17,
        (5, 18, "c18"): c18,
    }
    return {key: value for key, value in answers.items() if value != -1}


def report(
    runtime: Runtime,
    *,
    period: object = MARCH,
    min_answers: int = 5,
    units: Sequence[str] | None = ("HVT",),
    **kwargs: object,
) -> Report:
    with runtime.session_factory() as session:
        return build_report(
            session,
            unit_codes=units,
            period=period,  # type: ignore[arg-type]
            min_answers=min_answers,
            **kwargs,  # type: ignore[arg-type]
        )


def shares(report: Report) -> dict[int, float | None]:
    return {n: None if f.share is None else round(f.share, 2) for n, f in report.factors.items()}


# --- the full form: criteria, not applicable, partial, repeats ------------------------------
#
#        counter  status     repeat  c1  c2  c9 c10 c17 c18   (0 = không áp dụng, - = skipped)
#   R1   HVT01    completed          5   4   3   5   0   0    + comment "Cán bộ tận tình"
#   R2   HVT01    completed          4   2   4   4   5   4
#   R3   HVT02    completed          3   5   5   1   0   0
#   R4   HVT02    partial            5   -                     (stopped after c2, which he skipped)
#   R5   HVT01    completed   yes    1   1   1   1   1   1    + comment "lặp"
#   R6   HVT01    active             1                         (never counted)
#   R7   HVT01    cancelled          1                         (never counted)
#   R1–R5 also answer a choice question (no factor) with 2: never in the index.
#
# Default (repeats left out): R1–R4.
#   c1: 5 4 3 5   valid 4, satisfied 3 → 75.00%       mean 17/4 = 4.25
#   c2: 4 2 5     valid 3, satisfied 2 → 66.67%       mean 11/3
#   factor I   = (75 + 66.667) / 2   = 70.83%   valid 7,  satisfied 5, mean 28/7 = 4.00
#   c9: 3 4 5     valid 3, satisfied 2 → 66.67%
#   c10: 5 4 1    valid 3, satisfied 2 → 66.67%
#   factor III = 66.67%                          valid 6,  satisfied 4, mean 22/6 = 3.67
#   c17: 5 (NA, NA left out)  valid 1 → 100%;  c18: 4  valid 1 → 100%
#   factor V   = 100.00%                         valid 2,  satisfied 2, mean 9/2 = 4.50
#   factors II and IV: no answers
#   overall    = (70.833 + 66.667 + 100) / 3 = 237.5 / 3 = 79.17%
#                valid 15, satisfied 11 (11/15 would be 73.33%: not the SIPAS rule), mean 59/15
#   responses: completed 3, partial 1, repeats 1
#
# Per counter (repeats left out):
#   HVT01 (R1, R2): c1 5 4 → 100; c2 4 2 → 50; I = 75.  c9 3 4 → 50; c10 5 4 → 100; III = 75.
#                   c17 5 → 100; c18 4 → 100; V = 100.  overall (75+75+100)/3 = 83.33%, valid 10
#   HVT02 (R3, R4): c1 3 5 → 50; c2 5 → 100; I = 75.  c9 5 → 100; c10 1 → 0; III = 50.
#                   V: no valid answer.                 overall (75+50)/2 = 62.50%, valid 5
#   HVT03: nothing.
#
# With repeats (R5 added, all 1s):
#   c1 valid 5 sat 3 → 60; c2 valid 4 sat 2 → 50; I = 55.00
#   c9 4/2 → 50; c10 4/2 → 50; III = 50.00.  c17 2/1 → 50; c18 2/1 → 50; V = 50.00
#   overall (55 + 50 + 50) / 3 = 51.67%, valid 21, satisfied 11; completed 4, partial 1

CHOICE = (None, None, "channel")
COMMENT = (None, None, "comment")


@pytest.fixture
def march(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        seed(session, "HVT01", datetime(2026, 3, 2, 9), {**full(5, 4, 3, 5, 0, 0), CHOICE: 2,
             COMMENT: "Cán bộ tận tình"})  # fmt: skip
        seed(session, "HVT01", datetime(2026, 3, 5, 10), {**full(4, 2, 4, 4, 5, 4), CHOICE: 2})
        seed(session, "HVT02", datetime(2026, 3, 9, 14), {**full(3, 5, 5, 1, 0, 0), CHOICE: 2})
        seed(session, "HVT02", datetime(2026, 3, 10, 8), {(1, 1, "c1"): 5, (1, 2, "c2"): None},
             status="partial")  # fmt: skip
        seed(session, "HVT01", datetime(2026, 3, 11, 8), {**full(1, 1, 1, 1, 1, 1), CHOICE: 2,
             COMMENT: "lặp"}, repeat=True)  # fmt: skip
        seed(session, "HVT01", datetime(2026, 3, 12, 8), {(1, 1, "c1"): 1}, status="active")
        seed(session, "HVT01", datetime(2026, 3, 13, 8), {(1, 1, "c1"): 1}, status="cancelled")


def test_criterion_shares_leave_out_not_applicable_and_skipped(
    runtime: Runtime, march: None
) -> None:
    result = report(runtime)
    by_criterion = {c.criterion: c.figure for c in result.criteria}
    assert sorted(by_criterion) == [1, 2, 9, 10, 17, 18]
    assert by_criterion[1] == Figure(valid=4, satisfied=3, mean=4.25, share=75.0, enough=False)
    assert (by_criterion[2].valid, by_criterion[2].satisfied) == (3, 2)
    assert round(by_criterion[2].share or 0, 2) == 66.67
    assert round(by_criterion[2].mean or 0, 4) == 3.6667
    # criteria 17 and 18: two of three respondents said "not applicable"
    assert (by_criterion[17].valid, by_criterion[17].share) == (1, 100.0)
    assert (by_criterion[18].valid, by_criterion[18].share) == (1, 100.0)


def test_factor_shares_are_the_mean_of_their_criteria(runtime: Runtime, march: None) -> None:
    result = report(runtime)
    assert shares(result) == {1: 70.83, 2: None, 3: 66.67, 4: None, 5: 100.0}
    f1 = result.factors[1]
    assert (f1.valid, f1.satisfied, f1.mean) == (7, 5, 4.0)
    assert (result.factors[3].valid, result.factors[3].satisfied) == (6, 4)
    assert (result.factors[5].valid, result.factors[5].mean) == (2, 4.5)
    assert result.factors[2] == Figure(valid=0, satisfied=0, mean=None, share=None, enough=False)


def test_the_overall_share_is_the_mean_of_the_factor_shares(runtime: Runtime, march: None) -> None:
    result = report(runtime)
    assert round(result.overall.share or 0, 2) == 79.17  # not 11/15 = 73.33
    assert (result.overall.valid, result.overall.satisfied) == (15, 11)
    assert round(result.overall.mean or 0, 2) == 3.93
    assert (result.completed, result.partial, result.repeats) == (3, 1, 1)


def test_repeats_are_counted_only_when_asked(runtime: Runtime, march: None) -> None:
    result = report(runtime, include_repeats=True)
    assert shares(result) == {1: 55.0, 2: None, 3: 50.0, 4: None, 5: 50.0}
    assert round(result.overall.share or 0, 2) == 51.67
    assert (result.overall.valid, result.overall.satisfied) == (21, 11)
    assert (result.completed, result.partial, result.repeats) == (4, 1, 1)


def test_counters_and_the_too_few_to_rank_rule(runtime: Runtime, march: None) -> None:
    result = report(runtime, min_answers=6)
    counters = {c.code: c for c in result.counters}
    assert sorted(counters) == ["HVT01", "HVT02", "HVT03"]
    assert round(counters["HVT01"].overall.share or 0, 2) == 83.33
    assert counters["HVT01"].overall.valid == 10
    assert counters["HVT02"].overall.share == 62.5
    assert counters["HVT02"].overall.valid == 5
    assert counters["HVT02"].factors[5].share is None
    assert counters["HVT03"].overall.valid == 0
    assert (counters["HVT01"].responses, counters["HVT02"].responses) == (2, 2)
    # HVT02 has 5 valid answers, fewer than 6: shown but not ranked, so no "lowest counter".
    assert not counters["HVT02"].overall.enough
    assert [(rank, c.code) for rank, c in result.ranked_counters()] == [
        (1, "HVT01"),
        (None, "HVT02"),
        (None, "HVT03"),
    ]
    assert result.weakest_counter() is None

    ranked = report(runtime, min_answers=5)
    lowest = ranked.weakest_counter()
    assert lowest is not None and lowest.code == "HVT02"


@pytest.mark.parametrize(
    ("min_answers", "weakest"),
    [
        (2, 3),  # V (100%, 2 answers) counts, III at 66.67% is lowest
        (6, 3),  # I (7) and III (6) count
        (7, 1),  # only I (7 answers) has enough
        (8, None),
    ],
)
def test_the_weakest_factor_needs_enough_answers(
    runtime: Runtime, march: None, min_answers: int, weakest: int | None
) -> None:
    found = report(runtime, min_answers=min_answers).weakest_factor()
    assert (found[0] if found else None) == weakest


def test_comments_are_newest_first_without_repeats(runtime: Runtime, march: None) -> None:
    (comment,) = report(runtime).comments
    assert (comment.counter_code, comment.text) == ("HVT01", "Cán bộ tận tình")
    assert comment.at == datetime(2026, 3, 2, 9, tzinfo=HANOI)
    texts = [c.text for c in report(runtime, include_repeats=True).comments]
    assert texts == ["lặp", "Cán bộ tận tình"]


def test_one_counter(runtime: Runtime, march: None) -> None:
    result = report(runtime, counter_code="hvt02")
    assert result.counter_code == "HVT02"
    assert [c.code for c in result.counters] == ["HVT02"]
    # HVT02 alone, by hand above: I = 75, III = 50, V none, overall 62.50
    assert shares(result) == {1: 75.0, 2: None, 3: 50.0, 4: None, 5: None}
    assert result.overall.share == 62.5
    assert (result.completed, result.partial) == (1, 1)


def test_unknown_unit_or_counter_is_an_unknown_code(runtime: Runtime) -> None:
    with pytest.raises(UnknownCode, match="NOPE"):
        report(runtime, units=["nope"])
    with pytest.raises(UnknownCode, match="XYZ99"):
        report(runtime, counter_code="XYZ99")


# --- the short form: items with a factor and no criterion -----------------------------------
#
#   factor I has two items without a criterion, "access" and "signs": each is a criterion.
#   access: 5 5 5 1  → valid 4, satisfied 3 → 75%
#   signs:  1 1      → valid 2, satisfied 0 → 0%
#   factor I = (75 + 0) / 2 = 37.50%   (pooling the six answers would give 3/6 = 50%)
#   feedback (factor V): 4, không áp dụng, 2 → valid 2, satisfied 1 → 50%
#   overall = (37.5 + 50) / 2 = 43.75%


def test_an_item_without_a_criterion_is_its_factors_criterion(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        for access, signs, feedback in [(5, 1, 4), (5, 1, 0), (5, None, 2), (1, None, None)]:
            seed(
                session,
                "HVT03",
                datetime(2026, 3, 20, 10),
                {(1, None, "access"): access, (1, None, "signs"): signs,
                 (5, None, "feedback"): feedback},
            )  # fmt: skip
    result = report(runtime)
    assert [(c.factor, c.criterion, c.item_id) for c in result.criteria] == [
        (1, None, "access"),
        (1, None, "signs"),
        (5, None, "feedback"),
    ]
    assert shares(result) == {1: 37.5, 2: None, 3: None, 4: None, 5: 50.0}
    assert result.overall.share == 43.75
    assert (result.overall.valid, result.overall.satisfied) == (8, 4)


# --- periods: midnight in Hanoi ----------------------------------------------------------------
#
#   A: 28/02/2026 23:59 in Hanoi (16:59 UTC), c1 = 5   → February
#   B: 01/03/2026 00:00 in Hanoi (17:00 UTC on 28/02), c1 = 1   → March
#   Both are on 28/02 in UTC: a report that cut months in UTC would put both in February.
#   February: c1 valid 1, share 100%.  March: c1 valid 1, share 0%.


def test_a_response_belongs_to_the_month_it_started_in_local_time(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        seed(session, "HVT01", datetime(2026, 2, 28, 23, 59), {(1, 1, "c1"): 5})
        seed(session, "HVT01", datetime(2026, 3, 1, 0, 0), {(1, 1, "c1"): 1})
        starts = sorted(session.scalars(select(SurveyResponse.started_at)))
    assert [s.date() for s in starts] == [date(2026, 2, 28), date(2026, 2, 28)]  # in UTC

    march = report(runtime)
    assert (march.overall.valid, march.overall.share) == (1, 0.0)
    assert march.previous is not None
    assert march.previous.period.label == "tháng 02/2026"
    assert (march.previous.overall.valid, march.previous.overall.share) == (1, 100.0)

    february = report(runtime, period=MARCH.previous())
    assert (february.overall.valid, february.overall.share) == (1, 100.0)
    # the last day of February alone, and the first of March alone
    last_day = period_between(date(2026, 2, 28), date(2026, 2, 28), HANOI)
    assert report(runtime, period=last_day).factors[1].share == 100.0
    first_day = period_containing("day", datetime(2026, 3, 1, 0, 0, tzinfo=HANOI), HANOI)
    assert report(runtime, period=first_day).factors[1].share == 0.0


def test_a_unit_with_its_own_time_zone_uses_its_local_dates(runtime: Runtime) -> None:
    """The period is March in Hanoi, but a unit set to UTC counts March in UTC."""
    with runtime.session_factory.begin() as session:
        seed(session, "HVT01", datetime(2026, 3, 1, 0, 0), {(1, 1, "c1"): 1})  # 28/02 17:00 UTC
        unit = session.scalars(select(Unit).where(Unit.code == "HVT")).one()
        unit.timezone = "UTC"
    assert report(runtime).overall.valid == 0
    assert report(runtime, period=MARCH.previous()).overall.valid == 1


def test_the_previous_period_has_its_own_figures(runtime: Runtime, march: None) -> None:
    with runtime.session_factory.begin() as session:
        # February: one answer 4 to c1 → 100%
        seed(session, "HVT01", datetime(2026, 2, 10, 9), {(1, 1, "c1"): 4})
    result = report(runtime)
    assert result.previous is not None
    assert result.previous.previous is None
    assert result.previous.factors[1] == Figure(1, 1, 4.0, 100.0, enough=False)
    assert result.previous.comments == []
    assert report(runtime, with_previous=False).previous is None


def test_periods_hold_utc_instants_of_local_midnights() -> None:
    assert MARCH.start == datetime(2026, 2, 28, 17, tzinfo=UTC)
    assert MARCH.end == datetime(2026, 3, 31, 17, tzinfo=UTC)
