"""How far an attacker with 1, 10 or 100 Zalo accounts can move a counter's month, with and
without verified presence: the table in docs/integrity.md section 5.

    .venv/bin/python -m bench.integrity_simulation [--days 22] [--seed 11]

Every message goes through the real service (`SurveyService.handle`, the same turn a signed
webhook runs) on a fresh SQLite database with the default settings, so the counting,
cooldown, account limits, presence and quarantine rules decide; the figures are read with
`build_report`, as `sipas-bot report` reads them. Nothing is computed by a formula here.

Each scenario is a unit of its own with one counter, open mon-fri 07:30-17:00:
- 40 real citizens a working day at random times in opening hours, each a new account, each
  rating the five questions of the short form (seeded: 45 % 5, 35 % 4, 12 % 3, 5 % 2, 3 % 1);
  the same citizens, times and ratings in every scenario.
- k attacker accounts rating 1 on everything, each once per working day (more would be
  repeats within the 12-hour cooldown, or outside opening hours), spread evenly over the
  opening hours so that no ten minutes hold a burst of them.
- Static presence: everyone starts with the printed counter code. Verified presence
  (`require_verified`): real citizens scan the screen's rotating code; the attacker, away
  from the counter, has only the printed code.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.jobs import expire_idle_surveys
from bot.reporting.periods import period_between
from bot.reporting.report import build_report
from bot.runtime import Runtime
from storage import migrate
from storage import repositories as repo
from storage.models import QUARANTINE_IN_INDEX, QuarantineState, SurveyResponse, Unit
from storage.repositories import CounterSpec, UnitSpec
from zalo_client.events import InboundEvent

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST_DAY = date(2026, 3, 2)  # a Monday
ATTACKERS = (0, 1, 10, 100)
REAL_PER_DAY = 40
RATINGS = (5, 4, 3, 2, 1)
WEIGHTS = (45, 35, 12, 5, 3)
OPEN, CLOSE = time(7, 30), time(17, 0)


@dataclass(frozen=True)
class Scenario:
    attackers: int
    verified: bool

    @property
    def unit(self) -> str:
        return f"S{self.attackers}{'V' if self.verified else 'P'}"

    @property
    def counter(self) -> str:
        return f"{self.unit}-01"


@dataclass(frozen=True)
class Survey:
    at: datetime
    scenario: Scenario
    user: str
    ratings: tuple[int, ...]
    attacker: bool


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def working_days(count: int) -> list[date]:
    days: list[date] = []
    day = FIRST_DAY
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def plan(days: list[date], seed: int, scenarios: list[Scenario]) -> list[Survey]:
    """Every survey of the month, in time order."""
    opening = datetime.combine(days[0], CLOSE) - datetime.combine(days[0], OPEN)
    surveys: list[Survey] = []
    for number, day in enumerate(days):
        start = datetime.combine(day, OPEN, ZONE)
        for citizen in range(REAL_PER_DAY):
            rnd = random.Random(f"{seed}-{number}-{citizen}")
            at = start + timedelta(seconds=rnd.uniform(0, opening.total_seconds() - 600))
            ratings = tuple(rnd.choices(RATINGS, WEIGHTS, k=5))
            for scenario in scenarios:
                user = f"real-{scenario.unit}-{number}-{citizen}"
                surveys.append(Survey(at, scenario, user, ratings, attacker=False))
        for scenario in scenarios:
            gap = (opening - timedelta(minutes=10)) / max(scenario.attackers, 1)
            for account in range(scenario.attackers):
                at = start + timedelta(minutes=2) + gap * account
                user = f"attacker-{scenario.unit}-{account}"
                surveys.append(Survey(at, scenario, user, (1,) * 5, attacker=True))
    return sorted(surveys, key=lambda s: (s.at, s.user))


def run(days: int, seed: int) -> list[dict[str, Any]]:
    scenarios = [Scenario(k, v) for v in (False, True) for k in ATTACKERS]
    # In memory-backed /dev/shm where there is one: the figures are the same, and SQLite's
    # fsync per turn no longer sets the pace.
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="sipas-integrity-", dir=shm if shm.is_dir() else None))
    clock = Clock(datetime.combine(FIRST_DAY, time(0), ZONE).astimezone(UTC))
    settings = Settings(
        zalo_sandbox=True,
        zalo_app_id="simulation",
        zalo_oa_secret_key="simulation",
        database_url=f"sqlite:///{folder / 'simulation.db'}",
        presence_secret="simulation-presence-secret",
        privacy_pepper="simulation-pepper-0123456789",
    )
    runtime = Runtime.build(settings, clock=clock)
    migrate.upgrade(runtime.engine)
    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session,
            [
                UnitSpec(
                    s.unit,
                    f"Scenario {s.unit}",
                    [CounterSpec(s.counter, "Quầy 1")],
                    opening_hours="mon-fri 07:30-17:00",
                    require_verified=s.verified,
                )
                for s in scenarios
            ],
            now=clock(),
        )
    month = working_days(days)
    events = 0
    current_day: date | None = None
    for survey in plan(month, seed, scenarios):
        if survey.at.date() != current_day:
            clock.now = max(clock.now, survey.at.astimezone(UTC))
            expire_idle_surveys(runtime)
            current_day = survey.at.date()
        moment = survey.at.astimezone(UTC)
        if survey.scenario.verified and not survey.attacker:
            code = runtime.rotating.code(survey.scenario.counter, moment)
        else:
            code = survey.scenario.counter
        for offset, text in enumerate([f"#{code}", *map(str, survey.ratings)]):
            clock.now = moment + timedelta(seconds=20 * offset)
            events += 1
            event = InboundEvent(
                name="user_send_text",
                user_id=survey.user,
                text=text,
                msg_id=f"m{events}",
                timestamp_ms=int(clock.now.timestamp() * 1000),
                app_id="simulation",
                oa_id=None,
            )
            with runtime.session_factory.begin() as session:
                runtime.service.handle(session, event, b"", now=clock.now)
    clock.now = datetime.combine(month[-1] + timedelta(days=1), time(0), ZONE).astimezone(UTC)
    expire_idle_surveys(runtime)
    period = period_between(month[0], month[-1], ZONE)
    rows: list[dict[str, Any]] = []
    with runtime.session_factory() as session:
        for scenario in scenarios:
            report = build_report(
                session,
                unit_codes=[scenario.unit],
                period=period,
                min_answers=1,
                with_previous=False,
                comment_limit=0,
            )
            attackers = [
                runtime.pseudonyms.respondent_hash(f"attacker-{scenario.unit}-{n}")
                for n in range(scenario.attackers)
            ]
            rows.append(
                {
                    "scenario": scenario,
                    "share": report.overall.share,
                    "responses": report.responses,
                    "attacker_counted": _count(
                        session,
                        scenario,
                        SurveyResponse.respondent_hash.in_(attackers),
                        SurveyResponse.counted.is_(True),
                        SurveyResponse.quarantine.in_([q.value for q in QUARANTINE_IN_INDEX]),
                    ),
                    "attacker_held": _count(
                        session,
                        scenario,
                        SurveyResponse.respondent_hash.in_(attackers),
                        SurveyResponse.quarantine == QuarantineState.HELD.value,
                    ),
                    "real_held": _count(
                        session,
                        scenario,
                        SurveyResponse.respondent_hash.not_in(attackers),
                        SurveyResponse.quarantine == QuarantineState.HELD.value,
                    ),
                }
            )
    runtime.engine.dispose()
    return rows


def _count(session: Session, scenario: Scenario, *conditions: Any) -> int:
    """How many surveys of the scenario's unit meet the conditions."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .join(Unit, Unit.id == SurveyResponse.unit_id)
            .where(Unit.code == scenario.unit, *conditions)
        )
        or 0
    )


def table(rows: list[dict[str, Any]], days: int) -> str:
    """The rows as the Markdown table of docs/integrity.md."""
    baseline = {
        row["scenario"].verified: row["share"] for row in rows if row["scenario"].attackers == 0
    }
    lines = [
        "| presence | attacker accounts | attacker surveys sent | attacker surveys in the "
        "index | attacker surveys held | real surveys held | month's index (responses) "
        "| moved (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        scenario: Scenario = row["scenario"]
        moved = row["share"] - baseline[scenario.verified]
        lines.append(
            f"| {'verified only' if scenario.verified else 'static code'} "
            f"| {scenario.attackers} | {scenario.attackers * days} | {row['attacker_counted']} "
            f"| {row['attacker_held']} | {row['real_held']} "
            f"| {row['share']:.2f}% ({row['responses']}) | {moved:+.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=22, help="working days (default 22)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(table(run(args.days, args.seed), args.days))


if __name__ == "__main__":
    main()
