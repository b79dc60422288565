"""The SIPAS index for officials: the figures of a report over a period and its scope.

How the index is computed (Bộ Nội vụ, QĐ 1001/QĐ-BNV; docs/reports.md):

- per criterion, the share of valid answers (1–5) that are 4 or 5; "not applicable" (stored as
  0) and unanswered items are left out of the denominator. An item that names a factor but no
  criterion (the short form) stands as its factor's only criterion;
- per factor, the mean of its criteria's shares; overall, the mean of the factor shares;
- beside every share, the number of valid answers and the mean score 1–5.

Counted: completed and partial responses whose counting decision is "counted" (the first one
of a citizen at a counter per cooldown that answered its whole rated part:
survey_flow/counting.py), by `started_at`, in the period's local dates of each unit's time
zone; repeat-flagged responses only on request. The counting
is SQL (storage.stats); this module only combines a few dozen aggregate rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.errors import UnknownCode
from bot.reporting.cases import CaseFigures, case_figures
from bot.reporting.periods import RANGE, Period, month_periods, unit_zone
from storage import repositories as repo
from storage import stats
from storage.models import Counter, Unit
from survey_flow.sipas import FACTORS
from zalo_client.text import clean_text

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}

# Short names of the Ministry's 19 criteria (2022 form), for tables; the full wording is in
# each questionnaire (survey_flow/questionnaires/sipas-2022.yaml).
CRITERIA_NAMES: dict[int, str] = {
    1: "Thông tin TTHC dễ tiếp cận, dễ hiểu",
    2: "Biển hiệu, hướng dẫn rõ ràng",
    3: "Trụ sở sạch sẽ, văn minh",
    4: "Trang thiết bị đầy đủ, tốt",
    5: "TTHC niêm yết công khai, dễ hiểu",
    6: "Thành phần hồ sơ đúng quy định",
    7: "Phí, lệ phí đúng quy định",
    8: "Thời hạn giải quyết đúng quy định",
    9: "Thái độ lịch sự, tôn trọng",
    10: "Trả lời kịp thời, đầy đủ",
    11: "Hướng dẫn dễ hiểu, một lần",
    12: "Tuân thủ đúng quy định",
    13: "Tận tình, chu đáo",
    14: "Trả kết quả đúng hẹn",
    15: "Kết quả đầy đủ, chính xác",
    16: "Kết quả công bằng",
    17: "Dễ góp ý, phản ánh, kiến nghị",
    18: "Góp ý được xử lý đúng quy định",
    19: "Kết quả xử lý được báo kịp thời",
}


# --- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One cell of the index.

    `share` is the SIPAS percentage (0–100, not rounded): for a criterion, answers 4–5 over
    valid answers; for a factor, the mean of its criteria's shares; overall, the mean of the
    factor shares. `valid`, `satisfied` and `mean` always count the answers themselves.
    """

    valid: int
    satisfied: int
    mean: float | None
    share: float | None
    enough: bool

    @property
    def rankable(self) -> bool:
        return self.enough and self.share is not None


def _figure(
    valid: int, satisfied: int, total: int, min_answers: int, share: float | None = None
) -> Figure:
    """The figure of these counts; `share` given for a factor or overall (a mean of shares)."""
    if valid == 0:
        return Figure(0, 0, None, None, enough=min_answers <= 0)
    return Figure(
        valid=valid,
        satisfied=satisfied,
        mean=total / valid,
        share=100 * satisfied / valid if share is None else share,
        enough=valid >= min_answers,
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class CriterionFigure:
    """A criterion's figure; `item_id` is set when an item stands as its factor's criterion."""

    factor: int
    criterion: int | None
    item_id: str | None
    figure: Figure

    @property
    def name(self) -> str:
        if self.criterion is not None:
            return f"{self.criterion}. {CRITERIA_NAMES.get(self.criterion, '')}".rstrip(". ")
        return f"{ROMAN[self.factor]} ({self.item_id})"


@dataclass(frozen=True)
class _Index:
    overall: Figure
    factors: dict[int, Figure]
    criteria: list[CriterionFigure]


def _index(
    rows: Iterable[stats.CriterionTally], min_answers: int, *, criteria: bool = True
) -> _Index:
    """Combine per-criterion tallies (of any set of counters) into the SIPAS figures;
    `criteria=False` leaves out the criteria's figures (a counter's or unit's row shows its
    factors and overall, and the shares they need are computed all the same).

    Called for every counter and unit of a report (4,000 times for a province's month and
    the month before), hence plain lists of counts rather than objects, and the means of
    shares summed as they come (in the criteria's order, so that the figure does not depend
    on which rows were asked for).
    """
    tallies: dict[tuple[int, int, str], list[int]] = {}
    for row in rows:
        key = (row.factor, row.criterion or 0, row.item_id or "")
        counts = tallies.get(key)
        if counts is None:
            tallies[key] = [row.valid, row.satisfied, row.total]
        else:
            counts[0] += row.valid
            counts[1] += row.satisfied
            counts[2] += row.total
    figures: list[CriterionFigure] = []
    # per factor: valid, satisfied, total, the sum of its criteria's shares and their number
    by_factor: dict[int, list[Any]] = {}
    for key in sorted(tallies):
        valid, satisfied, total = tallies[key]
        sums = by_factor.get(key[0])
        if sums is None:
            sums = by_factor[key[0]] = [0, 0, 0, 0.0, 0]
        sums[0] += valid
        sums[1] += satisfied
        sums[2] += total
        if valid:
            sums[3] += 100 * satisfied / valid
            sums[4] += 1
        if criteria:
            figure = _figure(valid, satisfied, total, min_answers)
            figures.append(CriterionFigure(key[0], key[1] or None, key[2] or None, figure))
    factors: dict[int, Figure] = {}
    everything = [0, 0, 0]
    share_sum, shares = 0.0, 0
    for factor in FACTORS:
        valid, satisfied, total, criteria_sum, criteria_n = by_factor.get(factor, _NO_COUNTS)
        figure = _figure(
            valid, satisfied, total, min_answers, criteria_sum / criteria_n if criteria_n else None
        )
        factors[factor] = figure
        everything[0] += valid
        everything[1] += satisfied
        everything[2] += total
        if figure.share is not None:
            share_sum += figure.share
            shares += 1
    valid, satisfied, total = everything
    overall = _figure(valid, satisfied, total, min_answers, share_sum / shares if shares else None)
    return _Index(overall, factors, figures)


_NO_COUNTS = (0, 0, 0, 0.0, 0)


def _weakest_key(figure: Figure) -> tuple[float, float]:
    return (figure.share or 0.0, figure.mean or 0.0)


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CounterFigure:
    code: str
    name: str
    unit_code: str
    overall: Figure
    factors: Mapping[int, Figure] = field(default_factory=dict)
    responses: int = 0


@dataclass(frozen=True)
class UnitFigure:
    code: str
    name: str
    overall: Figure
    factors: Mapping[int, Figure] = field(default_factory=dict)
    responses: int = 0


@dataclass(frozen=True)
class ChannelFigure:
    """The index over the surveys answered on one channel (Zalo, kiosk, web, paper)."""

    channel: str
    overall: Figure
    responses: int = 0


@dataclass(frozen=True)
class OfficerFigure:
    """The index over the surveys started during an officer's shifts (docs/channels.md):
    staff's personal data, for the unit's leaders and operators only, never public."""

    code: str
    name: str
    unit_code: str
    overall: Figure
    factors: Mapping[int, Figure] = field(default_factory=dict)
    responses: int = 0


def rank_figures(items: Iterable[Any]) -> list[tuple[int | None, Any]]:
    """The minimum-sample rule of every ranking (counters, units, officers): items whose
    `overall` has enough answers ranked by share (then mean, then code), best first; the
    others after them, unranked, in the order given."""
    items = list(items)
    ranked = sorted(
        (i for i in items if i.overall.rankable),
        key=lambda i: (-(i.overall.share or 0), -(i.overall.mean or 0), i.code),
    )
    rest = [i for i in items if not i.overall.rankable]
    return [(n, i) for n, i in enumerate(ranked, start=1)] + [(None, i) for i in rest]


@dataclass(frozen=True)
class Comment:
    """A free-text answer; `at` is when it was given, in the period's time zone."""

    at: datetime
    counter_code: str
    text: str


@dataclass(frozen=True)
class Report:
    """The index of some units (or one counter) over a period, with the previous period.

    `overall.valid`/`.satisfied`/`.mean` sum every rated answer; `overall.share` follows the
    SIPAS rule, the mean of the factor shares (factors with no valid answer left out), so it
    is not `satisfied / valid`. `completed` and `partial` count the responses in the index;
    `repeats` counts the period's repeat-flagged responses, left out unless `include_repeats`;
    `held` the counted ones held for review (docs/integrity.md), left out until released.
    """

    unit_codes: tuple[str, ...]
    counter_code: str | None
    period: Period
    overall: Figure
    factors: dict[int, Figure]
    criteria: list[CriterionFigure]
    counters: list[CounterFigure]
    completed: int
    partial: int
    repeats: int
    comments: list[Comment]
    previous: Report | None
    units: list[UnitFigure] = field(default_factory=list)
    unit_names: Mapping[str, str] = field(default_factory=dict)
    min_answers: int = 0
    include_repeats: bool = False
    # The same index over the surveys started with a rotating or visit code only.
    verified: Figure = field(default_factory=lambda: _figure(0, 0, 0, 1))
    verified_responses: int = 0
    held: int = 0
    # The same index per channel, for the channels that have counted surveys; `overall` is
    # the one rule over all of them together, not a mean of these (docs/reports.md).
    channels: Mapping[str, ChannelFigure] = field(default_factory=dict)
    # The feedback received in the period and how it was handled (bot/reporting/cases.py).
    cases: CaseFigures = field(default_factory=CaseFigures)
    # The same index per officer recorded on the surveys, only when asked for (leaders and
    # operators; never the public page): `build_report(with_officers=True)`.
    officers: list[OfficerFigure] = field(default_factory=list)

    @property
    def responses(self) -> int:
        return self.completed + self.partial

    @cached_property
    def figures_by_key(self) -> dict[tuple[str, Any], Figure]:
        """Each counter's, unit's and criterion's figure by ("counter", code), ("unit", code)
        and ("criterion", (factor, criterion, item_id)). Renderings look the previous period up
        here: a province has thousands of counters."""
        found: dict[tuple[str, Any], Figure] = {}
        for c in self.counters:
            found["counter", c.code] = c.overall
        for u in self.units:
            found["unit", u.code] = u.overall
        for crit in self.criteria:
            found["criterion", (crit.factor, crit.criterion, crit.item_id)] = crit.figure
        return found

    def weakest_factor(self) -> tuple[int, Figure] | None:
        """The factor with the lowest share among those with enough answers."""
        ranked = [(n, f) for n, f in self.factors.items() if f.rankable]
        return min(ranked, key=lambda nf: (*_weakest_key(nf[1]), nf[0])) if ranked else None

    def weakest_counter(self) -> CounterFigure | None:
        """The counter with the lowest share among those with enough answers (one counter
        alone is not "the lowest")."""
        ranked = [c for c in self.counters if c.overall.rankable]
        if len(ranked) < 2:
            return None
        return min(ranked, key=lambda c: (*_weakest_key(c.overall), c.code))

    def ranked_counters(self) -> list[tuple[int | None, CounterFigure]]:
        """Counters with enough answers ranked by share (then mean), best first; the others
        after them, unranked, by code (`rank_figures`)."""
        return rank_figures(self.counters)

    def ranked_units(self) -> list[tuple[int | None, UnitFigure]]:
        """Units ranked as `ranked_counters` ranks counters (the same minimum-sample rule)."""
        return rank_figures(self.units)

    def ranked_officers(self) -> list[tuple[int | None, OfficerFigure]]:
        """Officers ranked as counters are (the same minimum-sample rule)."""
        return rank_figures(self.officers)

    @property
    def title(self) -> str:
        names = [f"{self.unit_names.get(code, code)} ({code})" for code in self.unit_codes]
        if len(names) > 3:
            names = [f"{len(names)} đơn vị"]
        title = ", ".join(names)
        return f"{title}, quầy {self.counter_code}" if self.counter_code else title


def find_units(session: Session, unit_codes: Sequence[str] | None) -> list[Unit]:
    """The units with these codes (None: all of them); UnknownCode for an unknown code."""
    if unit_codes is None:
        return list(repo.list_units(session))
    by_code = repo.find_units_by_code(session, unit_codes)
    units: list[Unit] = []
    seen: set[int] = set()
    for code in unit_codes:
        unit = by_code.get(code.upper())
        if unit is None:
            raise UnknownCode(f"no unit has the code {code.upper()} (see `sipas-bot units list`)")
        if unit.id not in seen:
            seen.add(unit.id)
            units.append(unit)
    return units


def _scope(
    units: Sequence[Unit], counter: Counter | None, period: Period, include_repeats: bool
) -> stats.Scope:
    by_zone: dict[str, list[int]] = defaultdict(list)
    for unit in units:
        by_zone[unit_zone(unit, period.zone).key].append(unit.id)
    windows = []
    for key, unit_ids in by_zone.items():
        local = period.in_zone(ZoneInfo(key))
        windows.append(stats.Window(unit_ids, local.start, local.end, zone=key))
    return stats.Scope(
        windows,
        counter_id=counter.id if counter is not None else None,
        include_repeats=include_repeats,
    )


def _units_and_counter(
    session: Session, unit_codes: Sequence[str] | None, counter_code: str | None
) -> tuple[list[Unit], Counter | None]:
    units = find_units(session, unit_codes)
    counter: Counter | None = None
    if counter_code is not None:
        counter = next(
            (c for u in units for c in u.counters if c.code == counter_code.upper()), None
        )
        if counter is None:
            found = repo.find_counter(session, counter_code)
            where = f" (it belongs to unit {found.unit.code})" if found else ""
            raise UnknownCode(
                f"no counter {counter_code.upper()} in unit(s) "
                f"{', '.join(u.code for u in units) or '(none)'}{where}"
            )
        units = [next(u for u in units if u.id == counter.unit_id)]
    return units, counter


def report_scope(
    session: Session,
    *,
    unit_codes: Sequence[str] | None,
    counter_code: str | None = None,
    period: Period,
    include_repeats: bool = False,
) -> stats.Scope:
    """The responses `build_report` counts for the same arguments, for the queries that list
    them (storage.stats.feedback, status_counts)."""
    units, counter = _units_and_counter(session, unit_codes, counter_code)
    return _scope(units, counter, period, include_repeats)


def build_report(
    session: Session,
    *,
    unit_codes: Sequence[str] | None,
    counter_code: str | None = None,
    period: Period,
    min_answers: int,
    include_repeats: bool = False,
    with_previous: bool = True,
    comment_limit: int | None = 20,
    with_officers: bool = False,
) -> Report:
    """The index of these units (None: every unit), or of one of their counters, over
    `period`, with the same for the period before unless `with_previous` is False; per
    officer too with `with_officers` (only for the unit's leaders and operators).

    A unit with its own time zone is counted over the period's local dates in that zone;
    units without one use the period's zone. Comments are the newest `comment_limit`
    free-text answers (None: all of them, 0: none). Raises UnknownCode for an unknown unit
    or counter.
    """
    units, counter = _units_and_counter(session, unit_codes, counter_code)
    return _build(
        session,
        units,
        counter,
        period,
        min_answers=min_answers,
        include_repeats=include_repeats,
        with_previous=with_previous,
        comment_limit=comment_limit,
        with_officers=with_officers,
    )


class _Counts:
    """Where a report's counts come from: the roll-up of counts when it covers the scope
    (storage/repositories/rollup/: a few hundred rows), else the raw answers
    (storage/stats.py); both give the same figures for the same scope. Narrower scopes
    (verified presence, one channel) are read from the same rows."""

    def __init__(
        self,
        session: Session,
        rolled: tuple[list[repo.RolledTally], list[repo.RolledSurveys]] | None,
        response_ids: tuple[int, int] | None,
    ) -> None:
        self.session = session
        self.rolled = rolled
        self.response_ids = response_ids

    @classmethod
    def of(cls, session: Session, scope: stats.Scope) -> _Counts:
        if repo.rollup_covers(session, scope):
            rolled = (repo.rolled_tallies(session, scope), repo.rolled_surveys(session, scope))
            return cls(session, rolled, None)
        return cls(session, None, stats.response_id_range(session, scope))

    def tallies(self, scope: stats.Scope) -> list[stats.CriterionTally]:
        if self.rolled is not None:
            return repo.tallies_of(self.rolled[0], scope)
        if self.response_ids is None:
            return []
        return stats.criterion_tallies(
            self.session,
            scope,
            # the range of the report's own scope bounds its narrower ones too
            response_ids=self.response_ids,
        )

    def counts(self, scope: stats.Scope) -> stats.ResponseCounts:
        if self.rolled is not None:
            return repo.counts_of(self.rolled[1], scope)
        return stats.response_counts(self.session, scope)

    def channels(self, scope: stats.Scope, min_answers: int) -> dict[str, ChannelFigure]:
        """The index and count per channel of `scope`: from the rows read, or in two grouped
        statements over the raw answers (`channel_figures`)."""
        if self.rolled is None:
            return channel_figures(self.session, scope, self.response_ids, min_answers)
        figures = {}
        for channel in repo.channels_of(self.rolled[1], scope):
            channel_scope = replace(scope, channel=channel)
            channel_counts = self.counts(channel_scope)
            figures[channel] = ChannelFigure(
                channel,
                _index(self.tallies(channel_scope), min_answers, criteria=False).overall,
                channel_counts.completed + channel_counts.partial,
            )
        return figures


def _build(
    session: Session,
    units: Sequence[Unit],
    counter: Counter | None,
    period: Period,
    *,
    min_answers: int,
    include_repeats: bool,
    with_previous: bool,
    comment_limit: int | None,
    with_officers: bool = False,
) -> Report:
    """`build_report` once the units (and the counter) are known: the previous period reuses
    them rather than looking the units up again."""
    scope = _scope(units, counter, period, include_repeats)
    source = _Counts.of(session, scope)
    rows = source.tallies(scope)
    counts = source.counts(scope)
    verified_scope = replace(scope, verified_only=True)
    verified_counts = source.counts(verified_scope)
    verified = _index(
        source.tallies(verified_scope)
        if verified_counts.completed + verified_counts.partial
        else [],
        min_answers,
        criteria=False,
    ).overall

    channels = source.channels(scope, min_answers)

    comments = (
        []
        if comment_limit == 0 or counts.completed + counts.partial == 0
        else [
            Comment(
                at=row.at.astimezone(period.zone),
                counter_code=row.counter_code,
                # Stored before the webhook cleaned text, it may hold control characters.
                text=clean_text(row.text),
            )
            for row in stats.comments(
                session, scope, limit=comment_limit, response_ids=source.response_ids
            )
        ]
    )
    previous = (
        _build(
            session,
            units,
            counter,
            period.previous(),
            min_answers=min_answers,
            include_repeats=include_repeats,
            with_previous=False,
            comment_limit=0,
        )
        if with_previous
        else None
    )
    return _report(
        units,
        counter,
        period,
        rows,
        counts,
        min_answers=min_answers,
        include_repeats=include_repeats,
        comments=comments,
        previous=previous,
        verified=verified,
        verified_responses=verified_counts.completed + verified_counts.partial,
        channels=channels,
        cases=case_figures(session, unit_ids=[u.id for u in units], period=period),
        officers=(
            # the roll-up keeps no officer: theirs are counted from the surveys
            officer_figures(session, units, scope, source.response_ids, min_answers)
            if with_officers
            else []
        ),
    )


def channel_figures(
    session: Session,
    scope: stats.Scope,
    response_ids: tuple[int, int] | None,
    min_answers: int,
) -> dict[str, ChannelFigure]:
    """The index per channel of the scope's counted surveys, in two grouped statements
    whatever the number of channels (storage.stats.split_tallies)."""
    if response_ids is None:
        return {}
    counts = stats.split_response_counts(session, scope, "channel")
    tallies = stats.split_tallies(session, scope, "channel", response_ids=response_ids)
    return {
        channel: ChannelFigure(
            channel,
            _index(tallies.get(channel, []), min_answers, criteria=False).overall,
            counts[channel],
        )
        for channel in sorted(counts)
    }


def officer_figures(
    session: Session,
    units: Sequence[Unit],
    scope: stats.Scope,
    response_ids: tuple[int, int] | None,
    min_answers: int,
) -> list[OfficerFigure]:
    """The index per officer recorded on the scope's counted surveys (two grouped
    statements, and one for the officers' names), by unit and code. `response_ids` bounds
    the answers read; None: split_tallies looks it up, once an officer is found (most units
    record none)."""
    counts = stats.split_response_counts(session, scope, "officer")
    if not counts:
        return []
    tallies = stats.split_tallies(session, scope, "officer", response_ids=response_ids)
    unit_codes = {u.id: u.code for u in units}
    figures = []
    for officer in repo.officers_by_id(session, counts).values():
        index = _index(tallies.get(officer.id, []), min_answers, criteria=False)
        figures.append(
            OfficerFigure(
                code=officer.code,
                name=officer.name,
                unit_code=unit_codes.get(officer.unit_id, ""),
                overall=index.overall,
                factors=index.factors,
                responses=counts[officer.id],
            )
        )
    return sorted(figures, key=lambda f: (f.unit_code, f.code))


def _counter_and_unit_figures(
    units: Sequence[Unit],
    counter: Counter | None,
    rows: Sequence[stats.CriterionTally],
    per_counter: Mapping[int, int],
    min_answers: int,
) -> tuple[list[CounterFigure], list[UnitFigure]]:
    """Each counter's figures (only `counter`'s when one is given) and each unit's, from the
    same tallies: a unit's index is computed from its counters' rows, not fetched again."""
    rows_by_counter: dict[int, list[stats.CriterionTally]] = defaultdict(list)
    for row in rows:
        rows_by_counter[row.counter_id].append(row)
    counters: list[CounterFigure] = []
    unit_figures: list[UnitFigure] = []
    for unit in units:
        unit_rows: list[stats.CriterionTally] = []
        for c in unit.counters:
            if counter is not None and c.id != counter.id:
                continue
            counter_index = _index(rows_by_counter.get(c.id, []), min_answers, criteria=False)
            unit_rows += rows_by_counter.get(c.id, [])
            counters.append(
                CounterFigure(
                    code=c.code,
                    name=c.name,
                    unit_code=unit.code,
                    overall=counter_index.overall,
                    factors=counter_index.factors,
                    responses=per_counter.get(c.id, 0),
                )
            )
        responses = sum(per_counter.get(c.id, 0) for c in unit.counters)
        unit_figures.append(_unit_figure(unit, unit_rows, responses, min_answers))
    return counters, unit_figures


def _unit_figure(
    unit: Unit, rows: Iterable[stats.CriterionTally], responses: int, min_answers: int
) -> UnitFigure:
    """A unit's figure from the tallies of its counters (or of the unit as a whole)."""
    index = _index(rows, min_answers, criteria=False)
    return UnitFigure(
        code=unit.code,
        name=unit.name,
        overall=index.overall,
        factors=index.factors,
        responses=responses,
    )


def change(current: Figure, previous: Figure | None) -> float | None:
    """Percentage points since the previous period (None when either has no share)."""
    if previous is None or current.share is None or previous.share is None:
        return None
    return current.share - previous.share


# --- the public page -----------------------------------------------------------------------


def recent_months(
    session: Session,
    unit: Unit,
    *,
    now: datetime,
    default_zone: ZoneInfo,
    months: int,
    min_answers: int,
) -> list[Report]:
    """One report per month for the last `months` months (this one so far), newest first."""
    zone = unit_zone(unit, default_zone)
    return [
        build_report(
            session,
            unit_codes=[unit.code],
            period=period,
            min_answers=min_answers,
            with_previous=False,
            comment_limit=0,
        )
        for period in month_periods(now, zone, months)
    ]


def monthly_reports(
    session: Session,
    *,
    unit_codes: Sequence[str],
    counter_code: str | None = None,
    last: Period,
    months: int,
    min_answers: int,
) -> list[Report]:
    """One report per month for the `months` months ending with the month holding `last`'s
    first day, oldest first: the trend of the index and of each factor.

    Read from the roll-up when it covers the units (two queries for all the months); each
    month's report then holds the index, factors, criteria, counters and counts, not the
    verified-presence figure, the channel split, comments or cases, which a trend does not
    show. Otherwise one `build_report` per month."""
    periods = list(reversed(month_periods(last.start, last.zone, months)))
    units, counter = _units_and_counter(session, unit_codes, counter_code)
    whole = Period(RANGE, periods[0].start, periods[-1].end)
    scope = _scope(units, counter, whole, False)
    if not repo.rollup_covers(session, scope):
        return [
            _build(
                session,
                units,
                counter,
                period,
                min_answers=min_answers,
                include_repeats=False,
                with_previous=False,
                comment_limit=0,
            )
            for period in periods
        ]
    tallies = repo.rolled_tallies(session, scope, by_month=True)
    surveys = repo.rolled_surveys(session, scope, by_month=True)
    reports = []
    for period in periods:
        month = period.first_day
        rows = repo.tallies_of((t for t in tallies if t.month == month), scope)
        counts = repo.counts_of((c for c in surveys if c.month == month), scope)
        reports.append(
            _report(
                units,
                counter,
                period,
                rows,
                counts,
                min_answers=min_answers,
                include_repeats=False,
                comments=[],
                previous=None,
            )
        )
    return reports


def _report(
    units: Sequence[Unit],
    counter: Counter | None,
    period: Period,
    rows: Sequence[stats.CriterionTally],
    counts: stats.ResponseCounts,
    *,
    min_answers: int,
    include_repeats: bool,
    **extra: Any,
) -> Report:
    """A period's report from its tallies and counts (raw or rolled up): the index, the
    counters' and units' figures and the counts; `extra` holds what only a full report has
    (comments, the previous period, the verified figure, channels, cases, officers)."""
    index = _index(rows, min_answers)
    counters, unit_figures = _counter_and_unit_figures(
        units, counter, rows, counts.by_counter, min_answers
    )
    return Report(
        unit_codes=tuple(u.code for u in units),
        counter_code=counter.code if counter is not None else None,
        period=period,
        overall=index.overall,
        factors=index.factors,
        criteria=index.criteria,
        counters=counters,
        completed=counts.completed,
        partial=counts.partial,
        repeats=counts.repeats,
        units=unit_figures,
        unit_names={u.code: u.name for u in units},
        min_answers=min_answers,
        include_repeats=include_repeats,
        held=counts.held,
        **extra,
    )


def province_report(
    session: Session,
    *,
    units: Sequence[Unit],
    period: Period,
    min_answers: int,
) -> Report:
    """The index of these units over `period` with each unit's figure, and the same for the
    period before: the province view, which ranks units and shows no counter (the units are
    the page's own: a province has a thousand, not looked up twice).

    Read from the roll-up when it covers the units, summed per unit in SQL (two queries a
    period, a few rows per unit); the report then holds the index, factors, criteria, units
    and counts, not the counters, the verified-presence figure, the channel split, comments
    or cases, which the province view does not show. Otherwise `build_report`'s figures."""
    return _province(session, units, period, min_answers=min_answers, with_previous=True)


def _province(
    session: Session,
    units: Sequence[Unit],
    period: Period,
    *,
    min_answers: int,
    with_previous: bool,
) -> Report:
    scope = _scope(units, None, period, False)
    if not repo.rollup_covers(session, scope):
        return _build(
            session,
            units,
            None,
            period,
            min_answers=min_answers,
            include_repeats=False,
            with_previous=with_previous,
            comment_limit=0,
        )
    by_unit = repo.unit_tallies(session, scope)
    counts = repo.unit_counts(session, scope)
    rows = [tally for unit in units for tally in by_unit.get(unit.id, [])]
    index = _index(rows, min_answers)
    unit_figures = [
        _unit_figure(unit, by_unit.get(unit.id, []), counts.by_counter.get(unit.id, 0), min_answers)
        for unit in units
    ]
    return Report(
        unit_codes=tuple(u.code for u in units),
        counter_code=None,
        period=period,
        overall=index.overall,
        factors=index.factors,
        criteria=index.criteria,
        counters=[],
        completed=counts.completed,
        partial=counts.partial,
        repeats=counts.repeats,
        comments=[],
        previous=(
            _province(
                session, units, period.previous(), min_answers=min_answers, with_previous=False
            )
            if with_previous
            else None
        ),
        units=unit_figures,
        unit_names={u.code: u.name for u in units},
        min_answers=min_answers,
        held=counts.held,
    )
