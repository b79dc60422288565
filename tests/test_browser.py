"""The console in headless Chromium (tests/browser.py), at a phone's and a desktop's width:
a leader signs in from a one-time link, reads the overview, opens a counter, acknowledges an
alert, downloads an export and prints the month's report; a clerk types two paper forms with
the keyboard only. Every page must show no console
error, nothing wider than the window, and its charts with their data points."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Playwright
from pypdf import PdfReader
from sqlalchemy import select

from bot.config import Settings
from bot.jobs import dispatch_alerts
from bot.runtime import Runtime
from storage.models import AlertAcknowledgement
from tests import browser as browser_support
from tests.browser import (
    WIDTHS,
    LiveServer,
    launch_chromium,
    open_page,
    sign_in_with_link,
    sign_in_with_password,
    type_paper_line,
)
from tests.conftest import FakeClock, make_settings
from tests.console_support import PASSWORD, Post, add_user, seed, sign_in_link
from tests.test_leaders import register
from tests.test_paper import allocate, paper_surveys

MONTH = "period=month&date=2026-03-14"


@pytest.fixture
def settings(database_url: str, server: LiveServer) -> Settings:
    """The app published at the live server's address: sign-in links and cookies follow it."""
    return make_settings(database_url, public_base_url=server.url)


@pytest.fixture
def served(
    app: Flask, server: LiveServer, runtime: Runtime, signed_post: Post, clock: FakeClock
) -> Runtime:
    seed(runtime, signed_post, clock)
    dispatch_alerts(runtime)
    server.serve(app)
    return runtime


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_a_leader_signs_in_reads_acknowledges_downloads_and_prints(
    browser: Browser, server: LiveServer, served: Runtime, signed_post: Post, width: int
) -> None:
    register(signed_post)
    link = sign_in_link(signed_post, served)
    assert link.startswith(server.url)
    watched = open_page(browser, width)
    page = watched.page
    try:
        # The link, "Tiếp tục", and the leader's only unit.
        sign_in_with_link(watched, link)
        assert page.url.startswith(f"{server.url}/console/units/HVT"), page.url
        watched.check(charts=2)

        page.goto(f"{server.url}/console/units/HVT?{MONTH}")
        assert page.locator("[data-index]").inner_text().endswith("%")
        watched.check(charts=2)

        page.get_by_role("link", name="#HVT01 Quầy 1", exact=False).first.click()
        page.wait_for_load_state()
        assert "/counters/HVT01" in page.url
        watched.check(charts=2)

        page.get_by_role("link", name="Cảnh báo").click()
        page.wait_for_load_state()
        watched.check()
        page.locator("form.ack textarea").first.fill("Đã gọi lại cho công dân")
        page.locator("form.ack button").first.click()
        page.wait_for_load_state()
        assert page.locator("[data-ack]").first.inner_text().endswith("Đã gọi lại cho công dân")
        watched.check()
        with served.session_factory() as session:
            assert [a.note for a in session.scalars(select(AlertAcknowledgement))] == [
                "Đã gọi lại cho công dân"
            ]

        page.goto(f"{server.url}/console/units/HVT?{MONTH}")
        with page.expect_download() as download_info:
            page.locator('a[data-export="csv"]').click()
        download = download_info.value
        assert download.suggested_filename == "sipas-HVT-2026-03-01.csv"
        rows = Path(download.path()).read_text("utf-8-sig").splitlines()
        assert len(rows) > 30 and "HVT01" in "\n".join(rows)

        page.locator('a[data-print="report"]').click()
        page.wait_for_load_state()
        assert "/print/report" in page.url
        watched.check(charts=2)
        page.emulate_media(media="print")
        pdf = PdfReader(io.BytesIO(page.pdf(prefer_css_page_size=True)))
        assert len(pdf.pages) == 1
        text = pdf.pages[0].extract_text()
        assert "tháng 03/2026" in text and "#HVT01" in text
    finally:
        page.context.close()


def test_a_missing_chromium_fails_with_the_line_that_installs_it(
    playwright: Playwright, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser_support, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(RuntimeError, match=r"missing: apt-get install chromium$"):
        launch_chromium(playwright)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_a_leader_filters_cases_opens_one_replies_and_closes_it(
    browser: Browser, server: LiveServer, served: Runtime, signed_post: Post, width: int
) -> None:
    register(signed_post)
    watched = open_page(browser, width)
    page = watched.page
    try:
        sign_in_with_link(watched, sign_in_link(signed_post, served))
        page.locator("nav.tabs").get_by_role("link", name="Ý kiến, phản ánh").click()
        page.wait_for_load_state()
        assert "/console/cases" in page.url
        watched.check()

        page.locator('select[name="status"]').select_option("moi")
        page.locator('select[name="kind"]').select_option("phan_anh")
        page.locator("[data-case-filters] button").click()
        page.wait_for_load_state()
        assert "status=moi" in page.url
        assert page.locator("[data-case]").count() == 1
        watched.check()

        page.locator("[data-case] a").first.click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text().endswith("PA-2026-000001")
        watched.check()

        page.locator('[data-form="reply"] textarea').fill("Đã bố trí thêm cán bộ giờ cao điểm.")
        page.locator('[data-form="reply"] button').click()
        page.wait_for_load_state()
        assert "Đã đưa trả lời vào hàng gửi" in page.locator("[data-flash]").inner_text()
        assert page.locator('[data-reply="queued"]').count() == 1
        watched.check()

        page.locator('[data-form="close"] textarea').fill("Đã giải quyết.")
        page.locator('[data-form="close"] button').click()
        page.wait_for_load_state()
        assert page.locator("[data-case-status]").inner_text() == "Đã đóng"
        assert page.locator("[data-resolution]").inner_text() == "Đã giải quyết."
        watched.check()

        page.get_by_role("link", name="English").click()
        page.wait_for_load_state()
        assert page.locator("[data-case-status]").inner_text() == "Closed"
        watched.check()
    finally:
        page.context.close()


# --- paper forms: the entry page typed with the keyboard only (docs/channels.md) ----------

PAPER_LINES = [
    ("1", ["5", "4", "5", "4", "0", "Cán bộ tận tình"]),
    ("HVT-000002", ["3", "4", "", "", "", ""]),  # the citizen stopped after Q2
]


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_a_clerk_types_two_forms_with_the_keyboard_only(
    browser: Browser,
    server: LiveServer,
    app: Flask,
    runtime: Runtime,
    width: int,
) -> None:
    allocate(runtime, 5)
    assert add_user(app, "clerk@phuong.gov.vn", "operator", "HVT").exit_code == 0
    server.serve(app)
    watched = open_page(browser, width)
    page = watched.page
    try:
        sign_in_with_password(watched, server.url, "clerk@phuong.gov.vn", PASSWORD)
        page.goto(f"{server.url}/console/units/HVT/paper?counter=HVT01&questionnaire=sipas-short")
        watched.check()
        for number, cells in PAPER_LINES:
            # The form number has the focus: nothing is clicked from here on. (Waited for:
            # Chromium applies `autofocus` at a rendering update, which may come after load.)
            page.wait_for_function("document.activeElement?.name === 'number'")
            type_paper_line(page, number, cells)
            assert page.locator(".paper-problems").count() == 0, page.content()
            watched.check()
        rows = page.locator("table.paper-saved tbody tr")
        assert rows.count() == 2
        assert rows.nth(0).get_attribute("data-number") == "HVT-000002"
        assert rows.nth(1).get_attribute("data-number") == "HVT-000001"
        surveys = paper_surveys(runtime)
        assert [s.counter.code for s in surveys] == ["HVT01", "HVT01"]
        assert [s.status for s in surveys] == ["completed", "partial"]
        assert [s.counted for s in surveys] == [True, False]
    finally:
        page.context.close()
