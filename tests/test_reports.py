"""Periods, and `sipas-bot report` in every format: the numbers worked out by hand in
tests/test_index.py come out the same as text, JSON, CSV and XLSX; plus one run through
signed webhooks, the way surveys really arrive."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from flask import Flask
from openpyxl import load_workbook

from bot.cli import cli
from bot.cli.reports import choose_period
from bot.config import Settings
from bot.errors import OperatorError
from bot.reporting.periods import Period, period_between, period_containing
from bot.runtime import Runtime
from tests.cli_runner import assert_one_error_line, run_cli
from tests.conftest import FakeClock, text_event
from tests.test_index import march  # noqa: F401  (the hand-computed table, as a fixture)

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
Post = Callable[..., Any]


def at(*args: int, zone: ZoneInfo = HANOI) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def days(period: Period) -> tuple[date, date]:
    return period.first_day, period.last_day


# --- periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "moment", "first", "last", "label", "previous"),
    [
        ("day", at(2026, 3, 14, 23, 59), date(2026, 3, 14), date(2026, 3, 14),
         "ngày 14/03/2026", (date(2026, 3, 13), date(2026, 3, 13))),
        ("week", at(2026, 3, 14, 9), date(2026, 3, 9), date(2026, 3, 15),
         "tuần 09/03–15/03/2026", (date(2026, 3, 2), date(2026, 3, 8))),
        ("week", at(2026, 1, 1, 9), date(2025, 12, 29), date(2026, 1, 4),
         "tuần 29/12/2025–04/01/2026", (date(2025, 12, 22), date(2025, 12, 28))),
        ("month", at(2026, 3, 31, 23, 59), date(2026, 3, 1), date(2026, 3, 31),
         "tháng 03/2026", (date(2026, 2, 1), date(2026, 2, 28))),
        ("month", at(2026, 1, 15), date(2026, 1, 1), date(2026, 1, 31),
         "tháng 01/2026", (date(2025, 12, 1), date(2025, 12, 31))),
        ("quarter", at(2026, 5, 20), date(2026, 4, 1), date(2026, 6, 30),
         "quý 2/2026", (date(2026, 1, 1), date(2026, 3, 31))),
        ("year", at(2026, 5, 20), date(2026, 1, 1), date(2026, 12, 31),
         "năm 2026", (date(2025, 1, 1), date(2025, 12, 31))),
    ],
)  # fmt: skip
def test_calendar_periods_and_the_one_before(
    kind: str,
    moment: datetime,
    first: date,
    last: date,
    label: str,
    previous: tuple[date, date],
) -> None:
    period = period_containing(kind, moment, HANOI)
    assert (period.kind, days(period), period.label) == (kind, (first, last), label)
    assert period.start == at(first.year, first.month, first.day)
    assert days(period.previous()) == previous
    assert period.previous().end == period.start


def test_a_moment_is_placed_in_the_zone_given_not_in_utc() -> None:
    # 17:30 UTC on 31 March is 00:30 on 1 April in Hanoi
    moment = datetime(2026, 3, 31, 17, 30, tzinfo=ZoneInfo("UTC"))
    assert period_containing("month", moment, HANOI).label == "tháng 04/2026"


def test_a_date_range_includes_both_days_and_compares_with_as_many_days_before() -> None:
    period = period_between(date(2026, 3, 10), date(2026, 3, 16), HANOI)
    assert period.label == "từ 10/03/2026 đến 16/03/2026"
    assert period.end == at(2026, 3, 17)
    assert days(period.previous()) == (date(2026, 3, 3), date(2026, 3, 9))
    with pytest.raises(OperatorError):
        period_between(date(2026, 3, 16), date(2026, 3, 10), HANOI)


def test_a_month_across_a_daylight_saving_change_starts_and_ends_at_local_midnight() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    period = period_containing("month", at(2026, 3, 14, zone=berlin), berlin)
    assert period.start.utcoffset() == timedelta(hours=1)
    assert period.end.utcoffset() == timedelta(hours=2)
    utc = ZoneInfo("UTC")
    assert period.end.astimezone(utc) - period.start.astimezone(utc) == timedelta(days=31, hours=-1)


NOW = at(2026, 3, 14, 9)


@pytest.mark.parametrize(
    ("kind", "date_from", "date_to", "expected"),
    [
        (None, None, None, ("month", date(2026, 3, 1), date(2026, 3, 31))),
        ("week", None, None, ("week", date(2026, 3, 9), date(2026, 3, 15))),
        ("month", "2026-02-10", None, ("month", date(2026, 2, 1), date(2026, 2, 28))),
        (None, "2026-03-01", None, ("range", date(2026, 3, 1), date(2026, 3, 14))),
        (None, "2026-01-05", "2026-02-04", ("range", date(2026, 1, 5), date(2026, 2, 4))),
    ],
)
def test_the_options_choose_a_period(
    kind: str | None, date_from: str | None, date_to: str | None, expected: tuple[Any, ...]
) -> None:
    period = choose_period(kind, date_from, date_to, now=NOW, zone=HANOI)
    assert (period.kind, *days(period)) == expected


@pytest.mark.parametrize(
    ("kind", "date_from", "date_to", "words"),
    [
        (None, "2026-03-10", "2026-03-01", ["--from", "after", "--to"]),
        (None, "2026-02-30", "2026-03-01", ["--from", "2026-02-30"]),
        (None, "14/03/2026", None, ["--from", "14/03/2026"]),
        (None, None, "2026-03-01", ["--to", "--from"]),
        ("month", "2026-03-01", "2026-03-05", ["--period"]),
    ],
)
def test_bad_period_options_are_one_line_errors(
    kind: str | None, date_from: str | None, date_to: str | None, words: list[str]
) -> None:
    with pytest.raises(OperatorError) as raised:
        choose_period(kind, date_from, date_to, now=NOW, zone=HANOI)
    for word in words:
        assert word in str(raised.value)


# --- the command on the hand-computed table (tests/test_index.py) --------------------------


def report(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, ["report", *args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def settings(database_url: str) -> Settings:
    """REPORT_MIN_ANSWERS=6: HVT01 (10 valid answers) is ranked, HVT02 (5) is not."""
    from tests.conftest import make_settings

    return make_settings(database_url, report_min_answers=6)


def test_json_carries_the_hand_computed_figures(app: Flask, march: None) -> None:  # noqa: F811
    data = json.loads(ok(report(app, "--unit", "HVT", "--format", "json")).stdout)
    assert data["period"]["label"] == "tháng 03/2026"
    assert (data["period"]["from"], data["period"]["to"]) == ("2026-03-01", "2026-03-31")
    assert data["responses"] == {"completed": 3, "partial": 1, "repeats": 1, "held": 0}
    assert data["overall"] == {
        "share": 79.17,
        "mean": 3.93,
        "valid": 15,
        "satisfied": 11,
        "enough": True,
    }
    assert [(f["factor"], f["share"], f["valid"]) for f in data["factors"]] == [
        (1, 70.83, 7),
        (2, None, 0),
        (3, 66.67, 6),
        (4, None, 0),
        (5, 100.0, 2),
    ]
    criteria = {c["criterion"]: (c["share"], c["valid"]) for c in data["criteria"]}
    assert criteria == {
        1: (75.0, 4),
        2: (66.67, 3),
        9: (66.67, 3),
        10: (66.67, 3),
        17: (100.0, 1),
        18: (100.0, 1),
    }
    counters = {
        c["code"]: (c["share"], c["valid"], c["rank"], c["enough"]) for c in data["counters"]
    }
    assert counters == {
        "HVT01": (83.33, 10, 1, True),
        "HVT02": (62.5, 5, None, False),
        "HVT03": (None, 0, None, False),
    }
    assert data["weakest_factor"] == 3
    assert data["weakest_counter"] is None  # only one counter has enough answers
    assert [c["text"] for c in data["comments"]] == ["Cán bộ tận tình"]
    assert data["previous"]["period"]["label"] == "tháng 02/2026"
    assert data["previous"]["overall"]["valid"] == 0


def test_include_repeats_changes_the_figures(app: Flask, march: None) -> None:  # noqa: F811
    data = json.loads(
        ok(report(app, "--unit", "hvt", "--format", "json", "--include-repeats")).stdout
    )
    assert data["overall"]["share"] == 51.67
    assert data["responses"] == {"completed": 4, "partial": 1, "repeats": 1, "held": 0}


def test_text_shows_each_figure_with_its_count(app: Flask, march: None) -> None:  # noqa: F811
    text = ok(report(app, "--unit", "HVT")).stdout
    assert "tháng 03/2026 (01/03/2026–14/03/2026, đến nay)" in text
    assert "3 hoàn thành (completed), 1 dở dang (partial); 1 phiếu lặp" in text
    assert "CHUNG (overall): 79,17%  điểm TB (mean) 3,93  n=15" in text
    lines = text.splitlines()

    def cells(start: str) -> list[str]:
        """The columns after a row's label: share, mean, valid, previous share [, *]."""
        line = next(line for line in lines if line.lstrip().startswith(start))
        return line.lstrip()[len(start) :].split()

    assert cells("I   Tiếp cận dịch vụ") == ["70,83%", "4,00", "7", "—"]
    assert cells("V   Tiếp nhận, xử lý góp ý") == ["100,00%", "4,50", "2", "—", "*"]  # too few
    # means by hand: HVT01 (5+4+3+5 + 4+2+4+4+5+4) / 10 = 4.00; HVT02 (3+5+5+1 + 5) / 5 = 3.80
    assert cells("1. HVT01 Quầy 1 – Tư pháp, hộ tịch") == ["83,33%", "4,00", "10", "—"]
    assert cells("–  HVT02 Quầy 2 – Địa chính, xây dựng") == ["62,50%", "3,80", "5", "—", "*"]
    assert "Yếu tố thấp nhất (weakest factor): III" in text
    assert "Quầy thấp nhất" not in text
    assert "9. Thái độ lịch sự, tôn trọng" in text  # criteria named
    assert "#HVT01  Cán bộ tận tình" in text


def test_csv_has_one_row_per_figure(app: Flask, march: None) -> None:  # noqa: F811
    rows = list(
        csv.DictReader(io.StringIO(ok(report(app, "--unit", "HVT", "--format", "csv")).stdout))
    )
    overall = rows[0]
    assert (overall["level"], overall["share"], overall["valid"]) == ("overall", "79.17", "15")
    factors = {r["factor"]: r["share"] for r in rows if r["level"] == "factor"}
    assert factors == {"1": "70.83", "2": "", "3": "66.67", "4": "", "5": "100.00"}
    counters = {r["counter"]: (r["share"], r["enough"]) for r in rows if r["level"] == "counter"}
    assert counters["HVT02"] == ("62.50", "no")


def test_xlsx_has_the_same_numbers_as_json(
    app: Flask,
    march: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "reports" / "march.xlsx"
    result = ok(report(app, "--unit", "HVT", "--format", "xlsx", "--out", str(out)))
    assert "march.xlsx" in result.stderr
    assert [p.name for p in out.parent.iterdir()] == ["march.xlsx"]  # no temporary left
    data = json.loads(ok(report(app, "--unit", "HVT", "--format", "json")).stdout)

    book = load_workbook(out)
    assert book.sheetnames == ["Tổng hợp", "Yếu tố", "Tiêu chí", "Quầy", "Kênh", "Góp ý", "Ý kiến"]

    def table(name: str) -> list[dict[str, Any]]:
        sheet = book[name]
        rows = list(sheet.iter_rows(values_only=True))
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:] if any(row)]

    def pct(value: float | None) -> float | None:
        """The cell holds the fraction, rounded to what `0.00%` shows."""
        if value is None:
            return None
        assert round(value, 4) == value
        return round(value * 100, 2)

    share, valid = "Tỷ lệ hài lòng (share)", "Câu trả lời hợp lệ (valid)"
    overall = table("Tổng hợp")[0]
    assert (pct(overall[share]), overall[valid]) == (data["overall"]["share"], 15)
    assert overall["Kỳ (period)"] == "tháng 03/2026"
    assert overall["Phiếu hoàn thành (completed)"] == 3
    assert book["Tổng hợp"]["E2"].number_format == "0.00%"

    factors = table("Yếu tố")
    assert [(pct(r[share]), r[valid]) for r in factors] == [
        (f["share"], f["valid"]) for f in data["factors"]
    ]
    assert len(book["Yếu tố"]._charts) == 1
    criteria = table("Tiêu chí")
    assert [(r["Tiêu chí (criterion)"], pct(r[share])) for r in criteria] == [
        (c["criterion"], c["share"]) for c in data["criteria"]
    ]
    counters = table("Quầy")
    assert [(r["Hạng (rank)"], r["Quầy (counter)"], pct(r[share])) for r in counters] == [
        (1, "HVT01", 83.33),
        (None, "HVT02", 62.5),
        (None, "HVT03", None),
    ]
    channels = table("Kênh")
    assert [(r["Kênh (channel)"], r["Phiếu (responses)"], pct(r[share])) for r in channels] == [
        (name, c["responses"], c["share"]) for name, c in data["channels"].items()
    ]
    (comment,) = table("Góp ý")
    assert comment["Quầy (counter)"] == "HVT01"
    assert comment["Thời gian (time)"] == datetime(2026, 3, 2, 9)
    assert book["Quầy"].column_dimensions["D"].width >= 30
    assert book["Quầy"].freeze_panes == "A2"


def test_a_counter_and_a_date_range(app: Flask, march: None) -> None:  # noqa: F811
    data = json.loads(
        ok(
            report(app, "--unit", "HVT", "--counter", "hvt02", "--from", "2026-03-09",
                   "--to", "2026-03-09", "--format", "json")
        ).stdout
    )  # fmt: skip
    # only R3 (9 March, HVT02): c1 3, c2 5 → I = (0 + 100)/2 = 50; c9 5, c10 1 → III = 50
    assert data["counter"] == "HVT02"
    assert data["period"]["label"] == "ngày 09/03/2026"
    assert [f["share"] for f in data["factors"]] == [50.0, None, 50.0, None, None]
    assert data["responses"] == {"completed": 1, "partial": 0, "repeats": 0, "held": 0}


def test_out_writes_text_atomically(app: Flask, march: None, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "report.txt"
    out.write_text("old", "utf-8")
    ok(report(app, "--unit", "HVT", "--out", str(out)))
    assert "CHUNG (overall): 79,17%" in out.read_text("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_several_units_and_all(app: Flask, runtime: Runtime, clock: FakeClock, march: None) -> None:  # noqa: F811
    from storage import repositories as repo
    from storage.repositories import CounterSpec, UnitSpec
    from tests.test_index import full, seed

    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session, [UnitSpec("LQD", "UBND phường Lê Quý Đôn", [CounterSpec("LQD01", "Quầy 1")])],
            now=clock(),
        )  # fmt: skip
        seed(session, "LQD01", datetime(2026, 3, 3, 9), full(1, 1, 1, 1, 1, 1))
    both = json.loads(ok(report(app, "--unit", "HVT", "--unit", "LQD", "--format", "json")).stdout)
    everything = json.loads(ok(report(app, "--unit", "all", "--format", "json")).stdout)
    assert both == everything
    assert [u["code"] for u in both["units"]] == ["HVT", "LQD"]
    units = {u["code"]: (u["share"], u["valid"]) for u in both["unit_figures"]}
    assert units == {"HVT": (79.17, 15), "LQD": (0.0, 6)}
    # overall over both: c1 5 4 3 5 1 → 60; c2 4 2 5 1 → 50; I 55.  c9 3 4 5 1 → 50;
    # c10 5 4 1 1 → 50; III 50.  c17 5 1 → 50; c18 4 1 → 50; V 50.  (55+50+50)/3 = 51.67
    assert both["overall"]["share"] == 51.67
    text = ok(report(app, "--unit", "HVT", "--unit", "LQD")).stdout
    assert "THEO ĐƠN VỊ (units)" in text


def test_unknown_unit_or_counter_and_xlsx_without_out(app: Flask, tmp_path: Path) -> None:
    for args, word in [
        (["--unit", "NOPE"], "NOPE"),
        (["--unit", "HVT", "--counter", "XYZ01"], "XYZ01"),
        (["--unit", "HVT", "--format", "xlsx"], "--out"),
    ]:
        result = report(app, *args)
        assert isinstance(result.exception, OperatorError), result.output
        assert word in str(result.exception)


def test_the_console_script_prints_one_error_line(app: Flask, settings: Settings) -> None:
    env = {"DATABASE_URL": settings.database_url}
    assert_one_error_line(run_cli("report", "--unit", "NOPE", env=env), "NOPE")
    assert_one_error_line(
        run_cli("report", "--unit", "HVT", "--from", "2026-03-05", "--to", "2026-03-01", env=env),
        "--from",
        "--to",
    )
    assert_one_error_line(
        run_cli("report", "--unit", "HVT", "--from", "2026-3-x", env=env), "2026-3-x"
    )


# --- the real path: signed webhooks, then `report --format json` ---------------------------


def take_survey(signed_post: Post, clock: FakeClock, user_id: str, *texts: str) -> None:
    for text in texts:
        assert signed_post(text_event(text, user_id=user_id)).status_code == 200
        clock.advance(minutes=1)


def test_surveys_taken_through_the_webhook_are_counted(
    app: Flask, signed_post: Post, clock: FakeClock
) -> None:
    # Short form: access (I), procedure (II), staff (III), result (IV), feedback (V, may be
    # "0" = không áp dụng), comment.
    take_survey(signed_post, clock, "1001", "#hvt01", "5", "4", "3", "2", "0", "Cán bộ tốt")
    take_survey(signed_post, clock, "1002", "#hvt02", "4", "4", "5", "1", "2", "bỏ qua")
    # The five ratings at HVT01, then a scan at HVT03: HVT01 kept as partial and counted (its
    # rated part is whole), HVT03 still active. Two ratings, then a scan: partial, not counted.
    take_survey(signed_post, clock, "1003", "#hvt01", "1", "5", "3", "2", "4", "#hvt03", "3")
    take_survey(signed_post, clock, "1004", "#hvt02", "1", "1", "#hvt03")
    #   I:   5 4 1  → 2/3 = 66.67%      II: 4 4 5 → 100%      III: 3 5 3 → 1/3 = 33.33%
    #   IV:  2 1 2  → 0%                V:  (NA) 2 4 → 1/2 = 50%
    #   overall (66.667 + 100 + 33.333 + 0 + 50) / 5 = 50%; valid 3+3+3+3+2 = 14, satisfied 7,
    #   mean (10 + 13 + 11 + 5 + 6) / 14 = 3.21
    #   HVT01: I 5 1 → 50, II 4 5 → 100, III 3 3 → 0, IV 2 2 → 0, V 4 → 100 → 50.00%, valid 9
    #   HVT02: 100, 100, 100, 0, 0 → 60.00%, valid 5
    data = json.loads(ok(report(app, "--unit", "HVT", "--format", "json")).stdout)
    assert data["responses"] == {"completed": 2, "partial": 1, "repeats": 0, "held": 0}
    assert data["overall"] == {
        "share": 50.0,
        "mean": 3.21,
        "valid": 14,
        "satisfied": 7,
        "enough": True,
    }
    assert [(f["share"], f["valid"]) for f in data["factors"]] == [
        (66.67, 3),
        (100.0, 3),
        (33.33, 3),
        (0.0, 3),
        (50.0, 2),
    ]
    assert [(c["factor"], c["item_id"]) for c in data["criteria"]] == [
        (1, "access"),
        (2, "procedure"),
        (3, "staff"),
        (4, "result"),
        (5, "feedback"),
    ]
    counters = {c["code"]: (c["share"], c["valid"]) for c in data["counters"]}
    assert counters == {"HVT01": (50.0, 9), "HVT02": (60.0, 5), "HVT03": (None, 0)}
    assert [c["text"] for c in data["comments"]] == ["Cán bộ tốt"]


def test_a_province_report_costs_the_same_statements_for_3_or_40_units(
    runtime: Runtime, clock: FakeClock
) -> None:
    """The units (and the previous period's) are read in one query whatever their number: a
    province's report names a thousand units, and one query per unit took seconds."""
    from sqlalchemy import event

    from bot.reporting.report import build_report
    from storage import repositories as repo
    from storage.repositories import CounterSpec, UnitSpec
    from tests.test_index import MARCH, full, seed

    codes = [f"U{n:02d}" for n in range(40)]
    with runtime.session_factory.begin() as session:
        repo.upsert_units(
            session,
            [UnitSpec(code, code, [CounterSpec(f"{code}A", "A"), CounterSpec(f"{code}B", "B")])
             for code in codes],
            now=clock(),
        )  # fmt: skip
        for code in codes:
            seed(session, f"{code}A", datetime(2026, 3, 3, 9), full(5, 4, 3, 5, 1, 4))

    def statements(unit_codes: list[str]) -> tuple[int, int]:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(runtime.engine, "before_cursor_execute", count)
        try:
            with runtime.session_factory() as session:
                result = build_report(session, unit_codes=unit_codes, period=MARCH, min_answers=1)
        finally:
            event.remove(runtime.engine, "before_cursor_execute", count)
        return len(seen), len(result.units)

    few, many = statements(codes[:3]), statements(codes)
    assert (few[1], many[1]) == (3, 40)
    assert few[0] == many[0]


def test_a_last_period_with_from_is_one_clear_error(app: Flask) -> None:
    result = report(app, "--unit", "HVT", "--period", "last-month", "--from", "2026-02-10")
    assert isinstance(result.exception, OperatorError)
    assert "give the kind (month)" in str(result.exception)
