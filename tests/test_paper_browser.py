"""The paper forms' entry page in headless Chromium (tests/browser.py), at a phone's and a
desktop's width: a clerk types two forms with the keyboard only (the form number, one digit
per question, Tab between fields, Enter to save) and both are stored once, listed below."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Browser

from bot.runtime import Runtime
from tests.browser import WIDTHS, LiveServer, open_page
from tests.console_support import PASSWORD, add_user
from tests.test_browser import browser, playwright, server, settings  # noqa: F401  (fixtures)
from tests.test_paper import allocate, paper_surveys

LINES = [
    ("1", ["5", "4", "5", "4", "0", "Cán bộ tận tình"]),
    ("HVT-000002", ["3", "4", "", "", "", ""]),  # the citizen stopped after Q2
]


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_a_clerk_types_two_forms_with_the_keyboard_only(
    browser: Browser,  # noqa: F811
    server: LiveServer,  # noqa: F811
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
        page.goto(f"{server.url}/console/login")
        page.fill("input[name=email]", "clerk@phuong.gov.vn")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.goto(f"{server.url}/console/units/HVT/paper?counter=HVT01&questionnaire=sipas-short")
        watched.check()
        for number, cells in LINES:
            # The form number has the focus: nothing is clicked from here on.
            assert page.evaluate("document.activeElement.name") == "number"
            page.keyboard.type(number)
            for cell in cells:
                page.keyboard.press("Tab")
                if cell:
                    page.keyboard.type(cell)
            with page.expect_navigation():
                page.keyboard.press("Enter")
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
        page.screenshot(path=f"/tmp/entry-{width}.png", full_page=True)
    finally:
        page.context.close()
