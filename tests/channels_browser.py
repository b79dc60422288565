"""The counter's tablet and the web link driven as a person does, in the browser of
tests/browser.py: the operator pairs the tablet with the link `sipas-bot devices add` prints,
the officer taps "Mời đánh giá", the citizen taps levels and types on the tablet's keyboard.
Used by tests/test_browser_channels.py and by `python -m bench.screenshots --channels`.

Every step waits on what the page shows (Playwright's `expect`), never on time."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect

from bot.web import runtime_of
from tests.browser import Watched, open_page
from tests.test_channels import cli_ok

PAIRING_LINK = re.compile(r"(\S+/devices/pair/\S+)")
# "Cán bộ nhiệt tình" on the tablet's keyboard: the letters, then the marks after each word.
COMMENT = "Cán bộ nhiệt tình"
COMMENT_KEYS = (
    *("shift", "c", "a", "n", "acute", "space"),
    *("b", "o", "hat", "dot", "space"),
    *("n", "h", "i", "e", "t", "hat", "dot", "space"),
    *("t", "i", "n", "h", "grave"),
)


def pair_tablet(app: Flask, watched: Watched, server_url: str, counter: str = "HVT01") -> None:
    """`sipas-bot devices add --kind kiosk`, and the link it prints opened on the tablet."""
    output = cli_ok(app, "devices", "add", "--counter", counter, "--kind", "kiosk")
    found = PAIRING_LINK.search(output)
    assert found is not None, output
    link = urlsplit(found.group(1))
    assert found.group(1).startswith(runtime_of(app).settings.public_base_url), link
    page = watched.page
    page.goto(f"{server_url}{link.path}")  # the published address is the live server's
    expect(page).to_have_url(f"{server_url}/kiosk/{counter}")
    expect(page.locator("#invite")).to_be_visible()


def visit_code(app: Flask, counter: str = "HVT01") -> str:
    """A one-time visit code from `sipas-bot visits issue` (a verified start)."""
    output = cli_ok(app, "visits", "issue", "--counter", counter, "--format", "csv")
    return output.strip().splitlines()[1].split(",")[1]


class SurveyPage:
    """The survey form both channels share (bot/web/survey_form/static/form.js)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.survey = page.locator("#survey")
        self.question = page.locator("#survey h1")
        self.comment_box = page.locator("#survey textarea")
        self.pending = page.locator("#pending")
        self.reference = page.locator("#survey .reference")  # the case's, on the thank-you

    def expect_state(self, state: str) -> None:
        expect(self.survey).to_have_attribute("data-state", state)

    def rate(self, value: int) -> None:
        """Tap one level and see the next question (or the comment) come."""
        asked = self.question.inner_text()
        self.page.locator(f"#survey .levels button[data-value='{value}']").click()
        expect(self.question).not_to_have_text(asked)

    def rate_until_comment(self, value: int) -> int:
        """Tap `value` on every level question up to the comment; how many were asked."""
        asked = 0
        while self.comment_box.count() == 0:
            self.rate(value)
            asked += 1
        return asked

    def send_comment(self) -> None:
        self.page.locator("#survey .row button.big:not(.secondary)").click()

    def finish(self) -> None:
        """Send the comment, see the thank-you, and see the answers leave the browser."""
        self.send_comment()
        self.expect_state("thanks")
        self.expect_nothing_waiting()

    def outbox(self) -> list[dict[str, Any]]:
        """The answers waiting in the browser to be sent."""
        entries: list[dict[str, Any]] = self.page.evaluate("SipasForm.outbox()")
        return entries

    def expect_nothing_waiting(self) -> None:
        self.page.wait_for_function("() => SipasForm.outbox().length === 0", polling=100)
        expect(self.pending).to_have_text("")


def open_tablet(browser: Browser, app: Flask, server_url: str, width: int, height: int) -> Kiosk:
    """A new tablet of `width`×`height`, its clock Playwright's (no test waits a minute),
    paired to HVT01 and waiting."""
    watched = open_page(browser, width, height=height)
    watched.page.clock.install()
    pair_tablet(app, watched, server_url)
    return Kiosk(watched)


class Kiosk(SurveyPage):
    """The tablet's page (bot/web/kiosk/static/kiosk.js and keyboard.js)."""

    def __init__(self, watched: Watched) -> None:
        super().__init__(watched.page)
        self.watched = watched
        self.invite_button = self.page.locator("#invite")
        self.keyboard = self.page.locator("#survey .keyboard")

    def invite(self) -> None:
        """The officer's tap: a fresh survey, its first question, nothing answered."""
        self.invite_button.click()
        self.expect_state("survey")
        expect(self.question).to_be_visible()

    def start_shift(self, officer: str) -> None:
        """The officer signs in to the counter for the shift on the tablet (the page reloads,
        waiting, with the officer's name shown)."""
        self.page.locator("#kiosk-officer summary").click()
        self.page.select_option("#kiosk-officer-select", officer)
        with self.page.expect_navigation():
            self.page.click("#kiosk-officer-save")
        expect(self.invite_button).to_be_visible()
        expect(self.page.locator("#kiosk-officer-current")).not_to_have_text("")

    def key(self, name: str) -> Locator:
        return self.keyboard.locator(f"button[data-key='{name}']")

    def type(self, keys: Sequence[str]) -> None:
        for name in keys:
            self.key(name).click()

    def expect_reset(self, *, gone: Sequence[str] = ()) -> None:
        """Back to waiting, with nothing of the last citizen's left in the page."""
        self.expect_state("waiting")
        expect(self.invite_button).to_be_visible()
        for selector in ("#survey .levels", "#survey textarea", "#survey .keyboard"):
            expect(self.page.locator(selector)).to_have_count(0)
        shown = self.page.locator("body").inner_text()
        for text in gone:
            assert text not in shown, f"{text!r} is still on the page"
