"""The split by channel and by officer in reports, digests, exports and the console; the
figures per officer only for the unit's leaders and operators, never public."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select, update

from bot.cli.main import cli
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import Officer, SurveyResponse
from tests.conftest import FakeClock
from tests.console_support import add_user, csrf_token, password_sign_in
from tests.integrity_support import publish
from tests.test_digests import PATTERNS, add_response, local, render
from tests.test_leaders import add_unit

NAMES = ("Nguyễn Văn An", "Trần Thị Bình")


def mark_last(runtime: Runtime, *, channel: str, officer: str | None) -> None:
    """Give the newest stored survey a channel and an officer, as the start would."""
    with runtime.session_factory.begin() as session:
        last = session.scalars(select(SurveyResponse).order_by(SurveyResponse.id.desc())).first()
        assert last is not None
        officer_id = (
            session.scalars(select(Officer.id).where(Officer.code == officer)).one()
            if officer
            else None
        )
        session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.id == last.id)
            .values(channel=channel, officer_id=officer_id)
        )


@pytest.fixture
def split(runtime: Runtime, clock: FakeClock) -> Runtime:
    """Saturday 14/03/2026: CB01 served three kiosk/web/zalo surveys (14 valid answers:
    enough), CB02 one (5: too few to rank); two Zalo surveys and a paper form name nobody."""
    plan = [
        ("kiosk", "CB01"),
        ("web", "CB01"),
        ("zalo", "CB01"),
        ("kiosk", "CB02"),
        ("zalo", None),
        ("zalo", None),
        ("paper", None),
    ]
    with runtime.session_factory.begin() as session:  # keeps the questionnaire, as a start
        counter = repo.find_counter(session, "HVT01")
        assert counter is not None
        runtime.flows.for_counter(session, counter, now=clock())
    for n, (channel, officer) in enumerate(plan):
        at = local(2026, 3, 14, 8) + timedelta(minutes=20 * n)
        add_response(runtime, at, dict(PATTERNS[n % len(PATTERNS)]))
        mark_last(runtime, channel=channel, officer=officer)
    return runtime


def run_cli(app: Flask, *args: str) -> Result:
    result = app.test_cli_runner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def report_json(app: Flask, *extra: str) -> dict:  # type: ignore[type-arg]
    result = run_cli(
        app, "report", "--unit", "HVT", "--period", "month", "--format", "json", *extra
    )
    return json.loads(result.stdout)


def test_the_report_splits_by_channel_and_per_officer_with_the_minimum_sample_rule(
    app: Flask, split: Runtime
) -> None:
    data = report_json(app, "--officers")
    assert {k: v["responses"] for k, v in data["channels"].items()} == {
        "kiosk": 2,
        "paper": 1,
        "web": 1,
        "zalo": 3,
    }
    officers = [(o["code"], o["name"], o["rank"], o["responses"], o["valid"], o["enough"])
                for o in data["officers"]]  # fmt: skip
    assert officers == [
        ("CB01", NAMES[0], 1, 3, 14, True),
        ("CB02", NAMES[1], None, 1, 5, False),
    ]
    # Without --officers nothing per officer, in any format.
    assert report_json(app)["officers"] == []
    text = run_cli(app, "report", "--unit", "HVT", "--period", "month").stdout
    assert "THEO CÁN BỘ" not in text and NAMES[0] not in text
    with_officers = run_cli(app, "report", "--unit", "HVT", "--period", "month", "--officers")
    lines = [line for line in with_officers.stdout.splitlines() if "CB0" in line]
    assert lines[0].startswith(" 1. CB01 Nguyễn Văn An") and not lines[0].endswith("*")
    assert lines[1].startswith(" –  CB02 Trần Thị Bình") and lines[1].endswith("*")


def test_the_xlsx_report_has_the_officer_sheet_only_when_asked(
    app: Flask, split: Runtime, tmp_path: Path
) -> None:
    out = tmp_path / "r.xlsx"
    args = ["report", "--unit", "HVT", "--period", "month", "--format", "xlsx", "--out", str(out)]
    run_cli(app, *args)
    assert "Cán bộ" not in load_workbook(out).sheetnames
    run_cli(app, *args, "--officers")
    sheet = load_workbook(out)["Cán bộ"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (1, "CB01", NAMES[0], 3),
        (None, "CB02", NAMES[1], 1),
    ]
    assert sheet["C3"].font.color.rgb.endswith("808080")  # the thin one greyed


def test_the_digest_has_one_line_per_channel(split: Runtime) -> None:
    text = render(split, "day", local(2026, 3, 14, 17, 30))
    assert "Theo kênh: Zalo 3 · máy 2 · web 1 · giấy 1." in text
    assert len(text) <= 2000 and not any(name in text for name in NAMES)
    english = render(split, "day", local(2026, 3, 14, 17, 30), "en")
    assert "By channel: Zalo 3 · tablet 2 · web 1 · paper 1." in english


def test_a_digest_of_zalo_surveys_only_has_no_channel_line(runtime: Runtime) -> None:
    add_response(runtime, local(2026, 3, 14, 9), dict(PATTERNS[0]))
    assert "Theo kênh" not in render(runtime, "day", local(2026, 3, 14, 17, 30))


def test_the_export_has_the_channel_and_the_officer_only_when_asked(
    app: Flask, split: Runtime
) -> None:
    def rows(*extra: str) -> list[dict[str, str]]:
        result = run_cli(app, "export", "--unit", "HVT", *extra)
        return list(csv.DictReader(io.StringIO(result.stdout)))

    assert [(r["channel"], r["officer"]) for r in rows("--officers")] == [
        ("kiosk", "CB01"),
        ("web", "CB01"),
        ("zalo", "CB01"),
        ("kiosk", "CB02"),
        ("zalo", ""),
        ("zalo", ""),
        ("paper", ""),
    ]
    assert {r["officer"] for r in rows()} == {""}


def test_the_public_page_never_shows_officers(client: FlaskClient, split: Runtime) -> None:
    publish(split)
    page = client.get("/u/HVT/results")
    assert page.status_code == 200
    assert not any(word in page.text for word in (*NAMES, "CB01", "CB02", "Cán bộ"))


# --- the console ---------------------------------------------------------------------------

PERIOD = "period=month&date=2026-03-14"


def test_an_operator_sees_the_split_by_channel_and_by_officer(
    app: Flask, client: FlaskClient, split: Runtime
) -> None:
    add_user(app, "vh@phuong.gov.vn", "operator", "HVT")
    assert password_sign_in(client, "vh@phuong.gov.vn").status_code == 302
    page = client.get(f"/console/units/HVT?{PERIOD}").text
    assert 'id="by-channel"' in page and "Máy tại quầy" in page and "Phiếu giấy" in page
    assert 'id="by-officer"' in page and NAMES[0] in page and NAMES[1] in page
    thin = page.split(NAMES[1])[0].rsplit("<tr", 1)[1]
    assert 'class="thin"' in thin  # too few answers: greyed, unranked
    counter = client.get(f"/console/units/HVT/counters/HVT01?{PERIOD}").text
    assert 'id="by-channel"' in counter and 'id="by-officer"' in counter
    book = client.get(f"/console/units/HVT/report.xlsx?{PERIOD}")
    assert "Cán bộ" in load_workbook(io.BytesIO(book.data)).sheetnames
    export = client.get(f"/console/units/HVT/export.csv?{PERIOD}").text
    assert "CB01" in export


def test_a_viewer_sees_the_channels_but_no_officer(
    app: Flask, client: FlaskClient, split: Runtime
) -> None:
    add_user(app, "xem@phuong.gov.vn", "viewer", "HVT")
    assert password_sign_in(client, "xem@phuong.gov.vn").status_code == 302
    page = client.get(f"/console/units/HVT?{PERIOD}").text
    assert 'id="by-channel"' in page
    assert 'id="by-officer"' not in page and not any(name in page for name in NAMES)
    counter = client.get(f"/console/units/HVT/counters/HVT01?{PERIOD}").text
    assert 'id="by-officer"' not in counter and 'name="officer"' not in counter
    book = client.get(f"/console/units/HVT/report.xlsx?{PERIOD}")
    assert "Cán bộ" not in load_workbook(io.BytesIO(book.data)).sheetnames
    export = client.get(f"/console/units/HVT/export.csv?{PERIOD}").text
    assert "CB01" not in export and "channel,officer" in export


def test_a_viewer_or_operator_of_another_unit_sees_nothing_of_this_one(
    app: Flask, client: FlaskClient, split: Runtime, clock: FakeClock
) -> None:
    add_unit(split, clock, "BDH", "7000-BDH-KQ2M-X9TP")
    add_user(app, "vh@bdh.gov.vn", "operator", "BDH")
    assert password_sign_in(client, "vh@bdh.gov.vn").status_code == 302
    for path in ("", "/counters/HVT01", "/report.xlsx", "/export.csv"):
        assert client.get(f"/console/units/HVT{path}?{PERIOD}").status_code == 404
    page = client.get(f"/console/units/BDH?{PERIOD}").text
    assert not any(name in page for name in NAMES)


def test_an_operator_starts_and_ends_a_shift_on_the_counter_page(
    app: Flask, client: FlaskClient, runtime: Runtime
) -> None:
    add_user(app, "vh@phuong.gov.vn", "operator", "HVT")
    password_sign_in(client, "vh@phuong.gov.vn")
    page = client.get("/console/units/HVT/counters/HVT01").text
    assert "Chưa có cán bộ vào ca" in page
    token = csrf_token(page)
    url = "/console/units/HVT/counters/HVT01/shift"
    assert client.post(url, data={"officer": "CB02", "action": "start"}).status_code == 400
    started = client.post(url, data={"officer": "CB02", "action": "start", "csrf_token": token})
    assert started.status_code == 302
    page = client.get("/console/units/HVT/counters/HVT01").text
    assert "Đang trong ca: CB02 Trần Thị Bình" in page and "trang quản lý" in page
    form = client.get("/kiosk/HVT01")  # the tablet is not paired: the console is enough
    assert form.status_code == 403
    ended = client.post(url, data={"action": "end", "csrf_token": token})
    assert ended.status_code == 302
    assert "Chưa có cán bộ vào ca" in client.get("/console/units/HVT/counters/HVT01").text


def test_a_viewer_cannot_start_a_shift(app: Flask, client: FlaskClient, runtime: Runtime) -> None:
    add_user(app, "xem@phuong.gov.vn", "viewer", "HVT")
    password_sign_in(client, "xem@phuong.gov.vn")
    page = client.get("/console/units/HVT/counters/HVT01").text
    response = client.post(
        "/console/units/HVT/counters/HVT01/shift",
        data={"officer": "CB01", "action": "start", "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 403
