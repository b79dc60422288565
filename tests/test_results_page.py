"""`GET /u/<unit>/results`: the public monthly figures, only for units that opt in."""

from __future__ import annotations

import re
from datetime import datetime

from flask.testing import FlaskClient
from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import Unit
from tests.test_index import march, seed  # noqa: F401  (the hand-computed March table)


def publish(runtime: Runtime, public: bool = True) -> None:
    with runtime.session_factory.begin() as session:
        unit = session.scalars(select(Unit).where(Unit.code == "HVT")).one()
        unit.public_results = public


def test_a_unit_that_has_not_opted_in_has_no_page(
    client: FlaskClient,
    runtime: Runtime,
    march: None,  # noqa: F811
) -> None:
    response = client.get("/u/HVT/results")
    assert response.status_code == 404
    assert "79" not in response.get_data(as_text=True)


def test_an_unknown_unit_has_no_page(client: FlaskClient) -> None:
    assert client.get("/u/NOPE/results").status_code == 404


def test_the_page_shows_six_months_with_shares_per_factor_and_counts(
    client: FlaskClient,
    runtime: Runtime,
    march: None,  # noqa: F811
) -> None:
    with runtime.session_factory.begin() as session:
        # January: one answer 4 to criterion 9 (factor III) → 100%, 1 answer
        seed(session, "HVT01", datetime(2026, 1, 20, 9), {(3, 9, "c9"): 4})
        # September 2025 is seven months back: not shown
        seed(session, "HVT01", datetime(2025, 9, 20, 9), {(3, 9, "c9"): 1})
    publish(runtime)
    response = client.get("/u/hvt/results")
    assert response.status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    page = response.get_data(as_text=True)
    assert "UBND phường Hoàng Văn Thụ" in page
    months = re.findall(r"<td>(Tháng \d\d/\d{4})", page)
    assert months == [
        "Tháng 03/2026",
        "Tháng 02/2026",
        "Tháng 01/2026",
        "Tháng 12/2025",
        "Tháng 11/2025",
        "Tháng 10/2025",
    ]
    assert "(đến 14/03)" in page  # the running month
    march_card = page[page.index('id="month-1"') : page.index('id="month-2"')]
    # the figures worked out by hand in tests/test_index.py, with a decimal comma
    assert "79,17%" in march_card
    assert "từ 15 câu trả lời của 4 phiếu" in march_card
    assert re.search(r"I\. Tiếp cận dịch vụ</span><span>70,83% <small>\(7\)", march_card)
    assert re.search(
        r"III\. Công chức giải quyết công việc</span><span>66,67% <small>\(6\)", march_card
    )
    assert re.search(r"V\. Tiếp nhận, xử lý góp ý</span><span>100,00% <small>\(2\)", march_card)
    assert "ít hơn 10 câu trả lời" in march_card  # factor V has 2 answers
    january_card = page[page.index('id="month-3"') : page.index('id="month-4"')]
    assert re.search(
        r"III\. Công chức giải quyết công việc</span><span>100,00% <small>\(1\)", january_card
    )
    february_card = page[page.index('id="month-2"') : page.index('id="month-3"')]
    assert "Chưa có phiếu" in february_card
    assert "Cán bộ tận tình" not in page  # comments are not published


def test_turning_the_flag_off_hides_the_page_again(client: FlaskClient, runtime: Runtime) -> None:
    publish(runtime)
    assert client.get("/u/HVT/results").status_code == 200
    publish(runtime, False)
    assert client.get("/u/HVT/results").status_code == 404
