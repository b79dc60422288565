"""The roll-up of counts (storage/repositories/rollup/): kept with every change, it gives the
figures the raw answers give, for any scope a report asks; `rollup rebuild` and `rollup check`.

The equivalence test seeds random surveys (statuses, counting decisions, review states,
channels, start methods, answers of every kind) around month boundaries in two time zones,
puts each into the roll-up as a writer does, changes some (take out, change, put back;
quarantine review; erasure), then compares the roll-up row by row with a recomputation and
every figure of every scope with storage/stats.py's figures from the raw rows.

The unit-month tables (`rollup_unit_surveys`, `rollup_unit_tallies`) are checked against the
month rows they sum, through every kind of change, a rebuild, `rollup check` and migration
0020's back-fill; the province's per-unit figures read from them against the raw rows.
"""

from __future__ import annotations

import random
import secrets
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import delete, func, inspect, select, text, update
from sqlalchemy.orm import Session

from bot.cli import cli
from bot.errors import BadArguments
from bot.reporting.periods import period_between, period_containing
from bot.reporting.report import (
    Report,
    build_report,
    find_units,
    monthly_reports,
    province_report,
    report_scope,
)
from bot.runtime import Runtime
from storage import migrate, stats
from storage import repositories as repo
from storage.models import (
    Answer,
    Channel,
    Counter,
    QuarantineState,
    RollupSurveys,
    RollupTally,
    RollupUnit,
    RollupUnitSurveys,
    RollupUnitTally,
    SurveyResponse,
    Unit,
)
from survey_flow.engine import StartMethod
from survey_flow.states import SurveyStatus
from tests.conftest import FakeClock, text_event

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
TOKYO = ZoneInfo("Asia/Tokyo")
# Local midnights around which surveys are started (UTC): 1 Feb, 1 Mar, 1 Apr 2026 in Hanoi
# (+7) and Tokyo (+9).
EDGES = [
    datetime(2026, month, 1, tzinfo=zone).astimezone(UTC)
    for month in (2, 3, 4)
    for zone in (HANOI, TOKYO)
]


def _unit_in_tokyo(session: Session, now: datetime) -> None:
    repo.upsert_units(
        session,
        [repo.UnitSpec("TKY", "UBND Tokyo", [repo.CounterSpec("TKY01", "Quầy 1")])],
        now=now,
    )
    session.execute(update(Unit).where(Unit.code == "TKY").values(timezone="Asia/Tokyo"))


def _random_survey(rng: random.Random, counter: Counter) -> SurveyResponse:
    status = rng.choice([*SurveyStatus, SurveyStatus.COMPLETED, SurveyStatus.PARTIAL])
    qualified = rng.random() < 0.85
    repeat = qualified and rng.random() < 0.2
    counted = qualified and not repeat
    quarantine = (
        rng.choice(list(QuarantineState))
        if counted and rng.random() < 0.4
        else QuarantineState.NONE
    )
    started = rng.choice(EDGES) + timedelta(minutes=rng.randint(-26 * 60, 26 * 60))
    response = SurveyResponse(
        token=secrets.token_hex(8),
        respondent_hash=secrets.token_hex(16),
        unit_id=counter.unit_id,
        counter_id=counter.id,
        questionnaire_id="random",
        questionnaire_version="1",
        language="vi",
        status=status.value,
        position=0,
        is_repeat=repeat,
        counted=counted,
        qualified_at=started if qualified else None,
        start_method=rng.choice(list(StartMethod)).value,
        quarantine=quarantine.value,
        quarantine_rule="outside_hours" if quarantine != QuarantineState.NONE else None,
        channel=rng.choice(list(Channel)).value,
        started_at=started,
        updated_at=started,
        completed_at=started if status == SurveyStatus.COMPLETED else None,
    )
    for n in range(rng.randint(0, 7)):
        factor = rng.choice([1, 2, 3, 4, 5, None])
        response.answers.append(
            Answer(
                item_id=f"q{n}",
                factor=factor,
                # full form (a criterion) or short form (the item stands as the criterion)
                criterion=rng.choice([None, factor * 3]) if factor else None,
                value=rng.choice([None, 0, 1, 2, 3, 4, 5, 5, 4]),
                text=rng.choice([None, None, None, "ý kiến"]),
                answered_at=started,
            )
        )
    return response


def _seed(runtime: Runtime, seed: int, clock: FakeClock) -> list[int]:
    """Random surveys, each put into the roll-up as it is stored; then changes."""
    rng = random.Random(seed)
    with runtime.session_factory.begin() as session:
        _unit_in_tokyo(session, clock())
        # A unit's roll-up starts empty, as the migration leaves a unit with no survey.
        for unit in session.scalars(select(Unit)):
            zone = unit.timezone or "Asia/Ho_Chi_Minh"
            repo.rebuild_unit(session, unit.id, zone=zone, span=None, now=clock())
        counters = list(session.scalars(select(Counter).order_by(Counter.id)))
        ids = []
        for _ in range(120):
            response = _random_survey(rng, rng.choice(counters))
            session.add(response)
            session.flush()
            repo.put_in(session, [response.id], default_zone="Asia/Ho_Chi_Minh")
            ids.append(response.id)
    with runtime.session_factory.begin() as session:
        # A writer's change: out of the roll-up, changed, back in.
        for response_id in rng.sample(ids, 30):
            repo.take_out(session, [response_id])
            survey = session.get(SurveyResponse, response_id)
            assert survey is not None
            survey.status = rng.choice(list(SurveyStatus)).value
            for answer in survey.answers[:1]:
                answer.value = rng.choice([None, 0, 1, 5])
            session.flush()
            repo.put_in(session, [response_id], default_zone="Asia/Ho_Chi_Minh")
        held = list(
            session.scalars(
                select(SurveyResponse.id).where(SurveyResponse.quarantine == QuarantineState.HELD)
            )
        )
        half = len(held) // 2
        repo.review_surveys(session, held[:half], QuarantineState.RELEASED, now=clock())
        repo.review_surveys(session, held[half:], QuarantineState.REJECTED, now=clock())
        repo.unlink_surveys(session, rng.sample(ids, 10))
    return ids


PERIODS = [
    period_containing("month", datetime(2026, 2, 10, tzinfo=HANOI), HANOI),
    period_containing("month", datetime(2026, 3, 10, tzinfo=HANOI), HANOI),
    period_containing("week", datetime(2026, 3, 1, tzinfo=HANOI), HANOI),
    period_containing("quarter", datetime(2026, 2, 10, tzinfo=HANOI), HANOI),
    period_between(date(2026, 1, 30), date(2026, 3, 1), HANOI),
    period_between(date(2026, 2, 28), date(2026, 2, 28), HANOI, kind="day"),
]


def _scopes(runtime: Runtime, session: Session, period: Any) -> list[stats.Scope]:
    scopes = []
    for codes, counter in ((["HVT", "TKY"], None), (["HVT"], "HVT01"), (None, None)):
        base = report_scope(session, unit_codes=codes, counter_code=counter, period=period)
        scopes += [base, stats.Scope(base.windows, base.counter_id, include_repeats=True)]
        scopes.append(stats.Scope(base.windows, base.counter_id, verified_only=True))
        scopes += [stats.Scope(base.windows, base.counter_id, channel=c.value) for c in Channel]
    return scopes


def sipas(app: Flask, *args: str) -> Any:
    """`sipas-bot ARGS` in-process; the result has exit_code and output (with stderr)."""
    return app.test_cli_runner().invoke(cli, list(args))


def _sorted(tallies: list[stats.CriterionTally]) -> list[stats.CriterionTally]:
    return sorted(
        tallies, key=lambda t: (t.counter_id, t.factor, t.criterion or 0, t.item_id or "")
    )


def _raw(runtime: Runtime) -> None:
    """Make every report read the raw rows (a unit without a roll-up)."""
    with runtime.session_factory.begin() as session:
        session.execute(delete(RollupUnit))


def _figures(report: Report) -> tuple[Any, ...]:
    return (
        report.overall,
        report.factors,
        report.criteria,
        report.counters,
        report.units,
        (report.completed, report.partial, report.repeats, report.held),
        report.verified,
        report.verified_responses,
        dict(report.channels),
        report.previous and _figures(report.previous),
    )


def _every_report(session: Session) -> tuple[list[Report], list[Report]]:
    """The reports of every period of PERIODS for HVT and for HVT and TKY, repeats left out
    and counted; and the 4-month trend of both units."""
    reports = [
        build_report(
            session,
            unit_codes=codes,
            period=period,
            min_answers=2,
            include_repeats=repeats,
            comment_limit=0,
        )
        for period in PERIODS
        for codes in (["HVT"], ["HVT", "TKY"])
        for repeats in (False, True)
    ]
    trend = monthly_reports(
        session, unit_codes=["HVT", "TKY"], last=PERIODS[1], months=4, min_answers=2
    )
    return reports, trend


@pytest.mark.parametrize("seed", range(4))
def test_figures_from_the_rollup_equal_those_from_the_raw_answers(
    runtime: Runtime, clock: FakeClock, seed: int
) -> None:
    _seed(runtime, seed, clock)
    with runtime.session_factory() as session:
        for unit in session.scalars(select(Unit)):
            assert repo.compare_unit(session, unit.id, span=None) == [], unit.code
        assert _unit_month_rows(session) == _month_rows_per_unit(session)
        for period in PERIODS:
            for scope in _scopes(runtime, session, period):
                assert repo.rollup_covers(session, scope)
                tallies = repo.rolled_tallies(session, scope)
                surveys = repo.rolled_surveys(session, scope)
                assert _sorted(repo.tallies_of(tallies, scope)) == _sorted(
                    stats.criterion_tallies(session, scope)
                ), (period, scope)
                assert repo.counts_of(surveys, scope) == stats.response_counts(session, scope)
                assert repo.channels_of(surveys, scope) == sorted(
                    stats.split_response_counts(session, scope, "channel")
                )
        reports, trend = _every_report(session)
    _raw(runtime)
    with runtime.session_factory() as session:
        raw_reports, raw_trend = _every_report(session)
    assert [_figures(r) for r in reports] == [_figures(r) for r in raw_reports]
    assert any(r.responses for r in reports)
    assert [(r.overall, r.factors, r.counters, r.responses, r.held) for r in trend] == [
        (r.overall, r.factors, r.counters, r.responses, r.held) for r in raw_trend
    ]


def _province_figures(report: Report) -> tuple[Any, ...]:
    """What the province view shows: the headline, the factors, each unit's line."""
    return (
        report.overall,
        report.factors,
        report.criteria,
        report.units,
        (report.completed, report.partial, report.repeats, report.held),
        report.previous and _province_figures(report.previous),
    )


@pytest.mark.parametrize("seed", range(3))
def test_province_figures_summed_per_unit_equal_those_from_the_raw_answers(
    runtime: Runtime, clock: FakeClock, seed: int
) -> None:
    _seed(runtime, seed, clock)
    rng = random.Random(seed)
    with runtime.session_factory.begin() as session:
        # A third unit with a single survey of two rated answers: thin at 3 answers.
        repo.upsert_units(
            session,
            [repo.UnitSpec("THN", "UBND Thin", [repo.CounterSpec("THN01", "Quầy 1")])],
            now=clock(),
        )
        counter = session.scalars(select(Counter).where(Counter.code == "THN01")).one()
        survey = _random_survey(rng, counter)
        survey.status, survey.counted, survey.is_repeat = "completed", True, False
        survey.quarantine, survey.qualified_at = QuarantineState.NONE.value, survey.started_at
        survey.started_at = datetime(2026, 3, 10, tzinfo=HANOI)
        survey.answers[:] = [
            Answer(item_id=f"t{n}", factor=n, value=5 - n, answered_at=survey.started_at)
            for n in (1, 2)
        ]
        session.add(survey)
        session.flush()
        repo.put_in(session, [survey.id], default_zone="Asia/Ho_Chi_Minh")
    with runtime.session_factory.begin() as session:
        # A rebuild (grouped in SQL on PostgreSQL) makes the rows the writers made.
        for unit in session.scalars(select(Unit)):
            zone = unit.timezone or "Asia/Ho_Chi_Minh"
            repo.rebuild_unit(session, unit.id, zone=zone, span=None, now=clock())
            assert repo.compare_unit(session, unit.id, span=None) == [], unit.code
    codes = ["HVT", "TKY", "THN"]
    with runtime.session_factory() as session:
        rolled = [
            province_report(session, units=find_units(session, codes), period=period, min_answers=3)
            for period in PERIODS
        ]
    _raw(runtime)
    with runtime.session_factory() as session:
        raw = [
            build_report(session, unit_codes=codes, period=period, min_answers=3, comment_limit=0)
            for period in PERIODS
        ]
    assert [_province_figures(r) for r in rolled] == [_province_figures(r) for r in raw]
    # Read from the per-unit sums (no counter figures), with a thin unit and ranked ones.
    assert all(r.counters == [] for r in rolled) and all(r.counters for r in raw)
    march = rolled[1].ranked_units()
    assert [u.code for rank, u in march if rank is None] == ["THN"]
    assert any(rank is not None for rank, _ in march)


# --- the unit-month tables ------------------------------------------------------------------

# Each unit-month table and the table whose month rows it sums.
UNIT_MONTHS: dict[Any, Any] = {RollupUnitSurveys: RollupSurveys, RollupUnitTally: RollupTally}


def _counted_rows(session: Session, model: Any) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """A roll-up table's rows with a count (writers leave rows back at zero), by key."""
    keys = list(model.__table__.primary_key.columns)
    sums = [column for column in model.__table__.columns if not column.primary_key]
    return {
        tuple(row[: len(keys)]): tuple(row[len(keys) :])
        for row in session.execute(select(*keys, *sums))
        if any(row[len(keys) :])
    }


def _unit_month_rows(session: Session) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    return {model.__tablename__: _counted_rows(session, model) for model in UNIT_MONTHS}


def _month_rows_per_unit(session: Session) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    """What the unit-month tables should hold: the month rows summed over counter, channel
    and start method."""
    found = {}
    for unit_model, model in UNIT_MONTHS.items():
        names = [column.name for column in model.__table__.primary_key.columns]
        unit_names = [column.name for column in unit_model.__table__.primary_key.columns]
        sums: dict[tuple[Any, ...], tuple[int, ...]] = {}
        for key, counts in _counted_rows(session, model).items():
            row = dict(zip(names, key, strict=True))
            if row["grain"] == "month":
                unit_key = tuple({**row, "month": row["day"]}[name] for name in unit_names)
                before = sums.get(unit_key, (0,) * len(counts))
                sums[unit_key] = tuple(a + b for a, b in zip(before, counts, strict=True))
        found[unit_model.__tablename__] = {key: n for key, n in sums.items() if any(n)}
    return found


def _survey(runtime: Runtime, counter_code: str, **columns: Any) -> int:
    """A completed, counted survey of 10 March (Hanoi) with two rated answers and a comment,
    put into the roll-up; `columns` change it before."""
    with runtime.session_factory.begin() as session:
        counter = session.scalars(select(Counter).where(Counter.code == counter_code)).one()
        survey = _random_survey(random.Random(1), counter)
        started = datetime(2026, 3, 10, 9, tzinfo=HANOI)
        values = {
            "status": "completed",
            "counted": True,
            "is_repeat": False,
            "quarantine": "none",
            "channel": "zalo",
            "start_method": "static",
            "started_at": started,
            "qualified_at": started,
            **columns,
        }
        for name, value in values.items():
            setattr(survey, name, value)
        survey.answers[:] = [
            Answer(item_id="q1", factor=1, value=5, text="ý kiến", answered_at=started),
            Answer(item_id="q2", factor=2, criterion=6, value=2, answered_at=started),
            Answer(item_id="q3", value=None, text="góp ý", answered_at=started),
        ]
        session.add(survey)
        session.flush()
        repo.put_in(session, [survey.id], default_zone="Asia/Ho_Chi_Minh")
        return survey.id


def test_unit_month_rows_are_the_month_rows_summed_through_every_change(
    runtime: Runtime, clock: FakeClock
) -> None:
    with runtime.session_factory.begin() as session:
        hvt = repo.find_unit(session, "HVT")
        assert hvt is not None
        repo.rebuild_unit(session, hvt.id, zone="Asia/Ho_Chi_Minh", span=None, now=clock())

    def check() -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
        with runtime.session_factory() as session:
            assert repo.compare_unit(session, hvt.id, span=None) == []
            rows = _unit_month_rows(session)
            assert rows == _month_rows_per_unit(session)
        return rows

    march = date(2026, 3, 1)
    completed = (hvt.id, march, False, "completed", "none")
    first = _survey(runtime, "HVT01")
    _survey(runtime, "HVT02", channel="web", start_method="link")
    held = _survey(runtime, "HVT02", quarantine="held", quarantine_rule="outside_hours")
    repeat = _survey(runtime, "HVT01", counted=False, is_repeat=True)
    rows = check()
    # Two counters, channels and start methods in one row; the held and the repeat apart.
    assert rows["rollup_unit_surveys"] == {
        completed: (2,),
        (hvt.id, march, False, "completed", "held"): (1,),
        (hvt.id, march, True, "completed", "none"): (1,),
    }
    assert rows["rollup_unit_tallies"][(hvt.id, march, False, 1, 0, "q1")] == (2, 2, 10)
    assert rows["rollup_unit_tallies"][(hvt.id, march, True, 2, 6, "")] == (1, 0, 2)

    with runtime.session_factory.begin() as session:
        repo.review_surveys(session, [held], QuarantineState.REJECTED, now=clock())
    rows = check()
    assert (hvt.id, march, False, "completed", "held") not in rows["rollup_unit_surveys"]

    with runtime.session_factory.begin() as session:
        repo.unlink_surveys(session, [first, repeat])  # erasure: the comments go
        repo.take_out(session, [first])
        session.execute(
            update(SurveyResponse).where(SurveyResponse.id == first).values(status="partial")
        )
        repo.put_in(session, [first], default_zone="Asia/Ho_Chi_Minh")
    rows = check()
    assert rows["rollup_unit_surveys"][completed] == (1,)
    assert rows["rollup_unit_surveys"][(hvt.id, march, False, "partial", "none")] == (1,)

    # A rebuild makes the rows the writers made (grouped in SQL on PostgreSQL).
    with runtime.session_factory.begin() as session:
        repo.rebuild_unit(session, hvt.id, zone="Asia/Ho_Chi_Minh", span=None, now=clock())
    assert check() == rows


def test_check_finds_a_wrong_unit_month_row_and_rebuild_puts_it_right(
    app: Flask, runtime: Runtime, clock: FakeClock
) -> None:
    _seed(runtime, 13, clock)
    with runtime.session_factory.begin() as session:
        hvt = repo.find_unit(session, "HVT")
        assert hvt is not None
        tally = session.scalars(
            select(RollupUnitTally).where(
                RollupUnitTally.unit_id == hvt.id, RollupUnitTally.valid > 0
            )
        ).first()
        assert tally is not None
        tally.valid += 1
        session.execute(delete(RollupUnitSurveys).where(RollupUnitSurveys.unit_id == hvt.id))
    with runtime.session_factory() as session:
        differences = repo.compare_unit(session, hvt.id, span=None)
    assert {d.table for d in differences} == {"rollup_unit_tallies", "rollup_unit_surveys"}
    wrong = next(d for d in differences if d.table == "rollup_unit_tallies")
    assert wrong.stored == (wrong.computed[0] + 1, *wrong.computed[1:])
    result = sipas(app, "rollup", "check")
    assert result.exit_code == 1
    assert "HVT: " in result.output and "TKY: " not in result.output
    assert "rollup_unit_surveys row(s)" in result.output
    assert "1 rollup_unit_tallies row(s)" in result.output
    assert sipas(app, "rollup", "rebuild", "--unit", "HVT").exit_code == 0
    assert sipas(app, "rollup", "check").exit_code == 0


def _raw_per_unit(
    session: Session, scope: stats.Scope
) -> tuple[dict[int, list[stats.CriterionTally]], stats.ResponseCounts]:
    """What `unit_tallies` and `unit_counts` give, from storage/stats.py's per-counter
    figures of the raw rows summed per unit."""
    unit_of = dict(session.execute(select(Counter.id, Counter.unit_id)).all())
    sums: dict[tuple[int, int, int | None, str | None], list[int]] = {}
    for t in stats.criterion_tallies(session, scope):
        found = sums.setdefault((unit_of[t.counter_id], t.factor, t.criterion, t.item_id), [0] * 3)
        found[0] += t.valid
        found[1] += t.satisfied
        found[2] += t.total
    tallies: dict[int, list[stats.CriterionTally]] = {}
    for (unit_id, factor, criterion, item_id), (valid, satisfied, total) in sums.items():
        tallies.setdefault(unit_id, []).append(
            stats.CriterionTally(0, factor, criterion, item_id, valid, satisfied, total)
        )
    counts = stats.response_counts(session, scope)
    by_unit: dict[int, int] = {}
    for counter_id, n in counts.by_counter.items():
        if n:
            by_unit[unit_of[counter_id]] = by_unit.get(unit_of[counter_id], 0) + n
    return {u: _sorted(t) for u, t in tallies.items()}, stats.ResponseCounts(
        counts.completed, counts.partial, counts.repeats, counts.held, by_unit
    )


def _per_unit(
    session: Session, scope: stats.Scope
) -> tuple[dict[int, list[stats.CriterionTally]], stats.ResponseCounts]:
    tallies = repo.unit_tallies(session, scope)
    return {u: _sorted(t) for u, t in tallies.items()}, repo.unit_counts(session, scope)


def _province_scopes(session: Session, period: Any) -> dict[str, stats.Scope]:
    """The province's scope of HVT and TKY, and ones the unit-month rows cannot answer."""
    base = report_scope(session, unit_codes=["HVT", "TKY"], period=period)
    hvt01 = report_scope(session, unit_codes=["HVT"], counter_code="HVT01", period=period)
    return {
        "province": base,
        "repeats": stats.Scope(base.windows, include_repeats=True),
        "verified": stats.Scope(base.windows, verified_only=True),
        "zalo": stats.Scope(base.windows, channel=Channel.ZALO.value),
        "counter": hvt01,
    }


@pytest.mark.parametrize("seed", range(2))
def test_unit_figures_from_the_unit_months_equal_those_from_the_raw_answers(
    runtime: Runtime, clock: FakeClock, seed: int
) -> None:
    _seed(runtime, seed, clock)
    # Whole months (not a week, a range of days, a day): read from the unit-month rows.
    whole_months = {0, 1, 3}
    read: dict[tuple[int, str], Any] = {}
    with runtime.session_factory() as session:
        for n, period in enumerate(PERIODS):
            for name, scope in _province_scopes(session, period).items():
                read[(n, name)] = _per_unit(session, scope)
                assert read[(n, name)] == _raw_per_unit(session, scope), (period, name)
    assert all(read[(n, name)][0] for n in whole_months for name in ("province", "repeats"))
    # Without the unit-month rows, only the figures read from them are gone.
    with runtime.session_factory.begin() as session:
        session.execute(delete(RollupUnitTally))
        session.execute(delete(RollupUnitSurveys))
        for n, period in enumerate(PERIODS):
            for name, scope in _province_scopes(session, period).items():
                unread = n in whole_months and name in ("province", "repeats")
                expected = ({}, stats.ResponseCounts()) if unread else read[(n, name)]
                assert _per_unit(session, scope) == expected, (period, name)


def test_migration_0020_back_fills_the_unit_month_rows_from_the_month_rows(
    runtime: Runtime, clock: FakeClock
) -> None:
    _seed(runtime, 5, clock)
    unit_tables = {model.__tablename__ for model in UNIT_MONTHS}
    with runtime.session_factory() as session:
        written = _unit_month_rows(session)
    assert all(written.values())
    command.downgrade(migrate.alembic_config(runtime.engine), "0019")
    assert not unit_tables & set(inspect(runtime.engine).get_table_names())
    migrate.upgrade(runtime.engine)
    with runtime.session_factory() as session:
        assert _unit_month_rows(session) == written
        for unit in session.scalars(select(Unit)):
            assert repo.compare_unit(session, unit.id, span=None) == [], unit.code


def test_a_unit_kept_in_another_zone_is_read_raw_and_check_says_so(
    app: Flask, runtime: Runtime, clock: FakeClock
) -> None:
    _seed(runtime, 7, clock)
    with runtime.session_factory.begin() as session:
        session.execute(update(RollupUnit).values(zone="Asia/Tokyo"))
    with runtime.session_factory() as session:
        scope = report_scope(session, unit_codes=["HVT"], period=PERIODS[1])
        assert not repo.rollup_covers(session, scope)
    result = sipas(app, "rollup", "check", "--unit", "HVT")
    assert result.exit_code == 1
    assert "kept in Asia/Tokyo, its time zone is Asia/Ho_Chi_Minh" in result.output
    # (TKY is in Tokyo: its roll-up is right)
    assert "WARN  roll-up of counts: 1 unit(s) read from the raw rows (HVT)" in (
        sipas(app, "check").output
    )
    assert sipas(app, "rollup", "rebuild", "--unit", "HVT").exit_code == 0
    assert sipas(app, "rollup", "check", "--unit", "HVT").exit_code == 0
    assert "OK    roll-up of counts kept in every unit's time zone" in (sipas(app, "check").output)


def test_check_finds_a_wrong_row_and_rebuild_puts_it_right(
    app: Flask, runtime: Runtime, clock: FakeClock
) -> None:
    _seed(runtime, 11, clock)
    assert sipas(app, "rollup", "check").exit_code == 0
    with runtime.session_factory.begin() as session:
        session.execute(update(RollupTally).where(RollupTally.grain == "day").values(valid=999))
        session.execute(delete(RollupSurveys).where(RollupSurveys.grain == "month"))
        tallies_before = session.scalar(select(func.count()).select_from(RollupTally))
    result = sipas(app, "rollup", "check")
    assert result.exit_code == 1
    assert "row(s) differ from the stored surveys" in result.output
    assert "rollup_tallies" in result.output and "rollup_surveys" in result.output
    # A rebuild of February only leaves the other months as wrong as they were.
    feb = sipas(app, "rollup", "rebuild", "--from", "2026-02-10", "--to", "2026-02-11")
    assert feb.exit_code == 0, feb.output
    assert (
        sipas(app, "rollup", "check", "--from", "2026-02-01", "--to", "2026-02-28").exit_code == 0
    )
    assert (
        sipas(app, "rollup", "check", "--from", "2026-03-01", "--to", "2026-03-31").exit_code == 1
    )
    rebuilt = sipas(app, "rollup", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt the roll-up of" in rebuilt.output
    assert sipas(app, "rollup", "check").exit_code == 0
    with runtime.session_factory() as session:
        # The writers leave rows that came back to zero; a rebuild has none.
        rows = session.scalar(select(func.count()).select_from(RollupTally))
        assert 0 < rows <= tallies_before
        assert not session.scalar(
            select(func.count()).select_from(RollupTally).where(RollupTally.valid == 0)
        )


def test_rebuild_refuses_half_options(app: Flask) -> None:
    result = sipas(app, "rollup", "rebuild", "--from", "2026-02-01")
    assert result.exit_code != 0
    assert isinstance(result.exception, BadArguments)
    assert "give both --from and --to" in str(result.exception)


def test_a_survey_answered_in_the_chat_enters_the_rollup_in_its_turn(
    runtime: Runtime, signed_post: Any, clock: FakeClock
) -> None:
    for n, body in enumerate(["#HVT01", "5", "4", "2", "5", "5", "bỏ qua"]):
        assert signed_post(text_event(body, user_id="700000000000000001")).status_code == 200
        with runtime.session_factory() as session:
            rolled = session.scalar(select(func.sum(RollupSurveys.surveys)))
        # Nothing until the survey ends (its last answer), then the survey, in both grains.
        assert rolled == (2 if n == 6 else None), n
    with runtime.session_factory() as session:
        hvt = repo.find_unit(session, "HVT")
        assert hvt is not None
        assert repo.compare_unit(session, hvt.id, span=None) == []
        month = period_containing("month", clock(), HANOI)
        scope = report_scope(session, unit_codes=["HVT"], period=month)
        assert repo.rollup_covers(session, scope)
        report = build_report(session, unit_codes=["HVT"], period=month, min_answers=1)
    assert report.completed == 1
    assert report.factors[3].satisfied == 0 and report.factors[3].valid == 1


def test_two_writers_add_to_the_same_rows_at_once(runtime: Runtime, clock: FakeClock) -> None:
    """Two transactions put surveys of the same counter and day in at once: on PostgreSQL
    the second waits on the first's rows and adds to them; neither is lost."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.xfail("SQLite has one writer at a time: nothing runs at once to test")
    with runtime.session_factory.begin() as session:
        hvt = repo.find_unit(session, "HVT")
        assert hvt is not None
        repo.rebuild_unit(session, hvt.id, zone="Asia/Ho_Chi_Minh", span=None, now=clock())
        counter = session.scalars(select(Counter).where(Counter.code == "HVT01")).one()
        rng = random.Random(3)
        ids = []
        for _ in range(2):
            response = _random_survey(rng, counter)
            response.status, response.quarantine = "completed", "none"
            response.channel, response.start_method = "zalo", "static"
            response.counted, response.is_repeat = True, False
            response.qualified_at = response.started_at = EDGES[0] + timedelta(hours=3)
            session.add(response)
            session.flush()
            ids.append(response.id)
    first = runtime.session_factory()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with runtime.session_factory.begin() as session:
                repo.put_in(session, [ids[1]], default_zone="Asia/Ho_Chi_Minh")
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=second)
    try:
        first.begin()
        holder = first.scalar(text("SELECT pg_backend_pid()"))
        repo.put_in(first, [ids[0]], default_zone="Asia/Ho_Chi_Minh")
        thread.start()
        # Wait (no fixed sleep) until the second writer is blocked on the first one's rows.
        # Each look in a transaction of its own: PostgreSQL keeps one snapshot of
        # pg_stat_activity per transaction, so a second writer whose connection was opened
        # after the first look would never be seen (the test failed that way under load).
        waiting = 0
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            for _ in range(4000):
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE CAST(:holder AS integer) = ANY(pg_blocking_pids(pid))"
                    ),
                    {"holder": holder},
                ).scalar_one()
                if waiting or not thread.is_alive():
                    break
                watcher.execute(text("SELECT pg_sleep(0.005)"))
        assert waiting, "the second writer never waited on the first"
        first.commit()
    finally:
        first.close()
        thread.join(timeout=60)
    assert not errors, errors
    with runtime.session_factory() as session:
        assert repo.compare_unit(session, hvt.id, span=None) == []
        assert (
            session.scalar(
                select(RollupSurveys.surveys).where(
                    RollupSurveys.grain == "day", RollupSurveys.counter_id == counter.id
                )
            )
            == 2
        )
