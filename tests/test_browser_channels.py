"""The counter's tablet and the web link in headless Chromium (tests/browser.py), as people
use them: the tablet at a tablet's size, paired, three citizens in a row, one typing a comment
on the tablet's own keyboard, the network dropped in the middle of a survey; the web link on a
phone. The database must then hold each survey once, with its channel. Every page must show no
console error and nothing wider than the window; time is Playwright's clock, never a sleep."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, expect
from sqlalchemy import func, select

from bot.config import Settings
from bot.runtime import Runtime
from storage.models import Answer, Officer
from tests.browser import LiveServer, open_page
from tests.channels_browser import (
    COMMENT,
    COMMENT_KEYS,
    SurveyPage,
    open_tablet,
    visit_code,
)
from tests.conftest import make_settings
from tests.test_channels import stored

REFERENCE_SHOWN = re.compile(r"^Ý kiến của Ông/Bà đã được ghi nhận, mã PA-\d{4}-\d{6}\.$")
THANKS_MS = 6_000  # kiosk.html's thanks_seconds: the thank-you stays this long
IDLE = "01:01"  # a minute without a touch, and a second


@pytest.fixture
def settings(database_url: str, server: LiveServer) -> Settings:
    """The app published at the live server's address: the pairing link follows it."""
    return make_settings(database_url, public_base_url=server.url)


@pytest.fixture
def served(app: Flask, server: LiveServer) -> Flask:
    server.serve(app)
    return app


def answers_of(runtime: Runtime, survey_id: int) -> dict[str, Any]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(Answer.item_id, Answer.value, Answer.text).where(Answer.response_id == survey_id)
        ).all()
    return {item: text if text is not None else value for item, value, text in rows}


def test_the_keyboard_puts_vietnamese_marks_where_they_belong(
    browser: Browser, served: Flask, server: LiveServer
) -> None:
    watched = open_tablet(browser, served, server.url, 800, 1280).watched
    try:
        cases = {
            ("nguoi", "horn", "grave"): "người",
            ("hoa", "grave"): "hòa",
            ("toan", "grave"): "toàn",
            ("qua", "acute"): "quá",
            ("gia", "grave"): "già",
            ("khuya", "acute"): "khuýa",
            ("tuyen", "hat", "acute"): "tuyến",
            ("duoc", "horn", "dot"): "dược",
            ("ba", "acute", "acute"): "ba",  # a mark tapped twice comes off
            ("cam", "hook", "grave"): "càm",  # another tone replaces the first
            ("Viet", "hat", "dot"): "Việt",
            ("an", "breve"): "ăn",
        }
        got = watched.page.evaluate(
            """cases => cases.map(([word, ...marks]) => {
                 const tones = {acute: "\\u0301", grave: "\\u0300", hook: "\\u0309",
                                tilde: "\\u0303", dot: "\\u0323"};
                 const shapes = {hat: "\\u0302", breve: "\\u0306", horn: "\\u031B"};
                 let chars = Array.from(word);
                 for (const m of marks) {
                   chars = tones[m] ? SipasKeyboard.withTone(chars, tones[m])
                                    : SipasKeyboard.withShape(chars, shapes[m]);
                 }
                 return chars.join("");
               })""",
            [list(case) for case in cases],
        )
        assert dict(zip(cases, got, strict=True)) == cases
        watched.check()
    finally:
        watched.page.context.close()


@pytest.mark.parametrize("size", [(800, 1280), (1280, 800)], ids=["portrait", "landscape"])
def test_three_citizens_in_a_row_on_the_tablet_with_the_network_dropped_in_one(
    browser: Browser, served: Flask, server: LiveServer, runtime: Runtime, size: tuple[int, int]
) -> None:
    kiosk = open_tablet(browser, served, server.url, *size)
    watched, page = kiosk.watched, kiosk.page
    try:
        watched.check()
        kiosk.start_shift("CB01")  # who serves at HVT01 (examples/units.yaml lists CB01)
        watched.check()

        # The first citizen rates everything 5 and types a comment on the tablet's keyboard.
        kiosk.invite()
        first_question = kiosk.question.inner_text()
        assert kiosk.rate_until_comment(5) == 5
        expect(kiosk.keyboard).to_be_visible()
        assert kiosk.comment_box.get_attribute("inputmode") == "none"  # no system keyboard
        kiosk.type(COMMENT_KEYS)
        expect(kiosk.comment_box).to_have_value(COMMENT)
        watched.check()
        kiosk.send_comment()
        kiosk.expect_state("thanks")
        # Online: the thank-you shows the reference of the case the comment opened.
        expect(kiosk.reference).to_have_text(REFERENCE_SHOWN)
        page.clock.run_for(THANKS_MS)
        kiosk.expect_reset(gone=[COMMENT])
        kiosk.expect_nothing_waiting()

        # The second citizen: a fresh survey; the network drops after two answers.
        kiosk.invite()
        expect(kiosk.question).to_have_text(first_question)
        expect(page.locator("#survey .levels button[aria-pressed='true']")).to_have_count(0)
        kiosk.rate(4)
        kiosk.rate(4)
        with watched.offline():
            kiosk.rate_until_comment(3)
            expect(kiosk.comment_box).to_have_value("")  # not the first citizen's words
            kiosk.send_comment()
            kiosk.expect_state("thanks")
            expect(kiosk.reference).to_have_count(0)  # offline: the thank-you alone
            waiting = kiosk.outbox()
            assert len(waiting) == 1
            page.clock.run_for(THANKS_MS)
            kiosk.expect_reset()
            expect(kiosk.pending).not_to_have_text("")
            # The officer taps for the next citizen: no survey can be opened offline.
            kiosk.invite_button.click()
            expect(page.locator("#survey .notice")).to_be_visible()
            kiosk.expect_state("waiting")
            assert len(stored(runtime)) == 2 and stored(runtime)[1].status == "active"
        # Back online: the waiting answers go at once.
        kiosk.expect_nothing_waiting()
        assert stored(runtime)[1].status == "completed"

        # The third citizen.
        kiosk.invite()
        expect(kiosk.question).to_have_text(first_question)
        kiosk.rate_until_comment(2)
        kiosk.finish()
        expect(kiosk.reference).to_have_text(REFERENCE_SHOWN)  # a low rating's case
        page.clock.run_for(THANKS_MS)
        kiosk.expect_reset()
        watched.check()

        # The browser retrying the second survey's delivery stores nothing more.
        again = page.evaluate(
            """async entry => {
                 const r = await fetch(entry.url, {method: "POST",
                   headers: {"Content-Type": "application/json"},
                   body: JSON.stringify({token: entry.token, answers: entry.answers})});
                 return [r.status, await r.json()];
               }""",
            waiting[0],
        )
        assert again == [200, {"status": "duplicate", "completed": True, "reference": None}]
        page.evaluate("entry => SipasForm.queue(entry.url, entry.token, entry.answers)", waiting[0])
        page.evaluate("SipasForm.flush()")
        kiosk.expect_nothing_waiting()

        surveys = stored(runtime)
        assert len(surveys) == 3
        assert len({survey.token for survey in surveys}) == 3
        assert [(s.channel, s.status, s.counted) for s in surveys] == [
            ("kiosk", "completed", True)
        ] * 3
        # Each records the officer signed in to HVT01 for the shift.
        with runtime.session_factory() as session:
            officer = session.scalars(select(Officer).where(Officer.code == "CB01")).one()
        assert [s.officer_id for s in surveys] == [officer.id] * 3
        levels = [answers_of(runtime, s.id) for s in surveys]
        assert levels[0]["comment"] == COMMENT and levels[0]["staff"] == 5
        assert [levels[1][item] for item in ("access", "procedure", "staff")] == [4, 4, 3]
        assert levels[1]["comment"] is None and levels[2]["result"] == 2  # skipped
        with runtime.session_factory() as session:
            assert session.scalar(select(func.count()).select_from(Answer)) == 3 * 6
    finally:
        page.context.close()


def test_a_minute_without_a_touch_sends_the_tablet_back_to_waiting(
    browser: Browser, served: Flask, server: LiveServer, runtime: Runtime
) -> None:
    kiosk = open_tablet(browser, served, server.url, 1280, 800)
    watched, page = kiosk.watched, kiosk.page
    try:
        kiosk.invite()
        first_question = kiosk.question.inner_text()
        kiosk.rate_until_comment(5)
        kiosk.type(["o", "k"])
        expect(kiosk.comment_box).to_have_value("ok")
        page.clock.run_for(30_000)  # half a minute: still the same citizen
        kiosk.expect_state("survey")
        kiosk.type(["a"])  # a touch starts the minute again
        page.clock.run_for(45_000)
        kiosk.expect_state("survey")
        page.clock.fast_forward(IDLE)
        kiosk.expect_reset(gone=["oka"])
        kiosk.expect_nothing_waiting()
        # What was answered is kept as a partial survey; the comment never sent is not.
        (survey,) = stored(runtime)
        assert survey.status == "partial"
        assert set(answers_of(runtime, survey.id)) == {
            "access",
            "procedure",
            "staff",
            "result",
            "feedback",
        }
        # The next citizen starts from the first question, with a survey of their own.
        kiosk.invite()
        expect(kiosk.question).to_have_text(first_question)
        page.clock.fast_forward(IDLE)  # and walks away before answering: nothing is stored
        kiosk.expect_reset()
        assert kiosk.outbox() == []
        watched.check()
    finally:
        page.context.close()


def test_the_tablet_installs_as_a_full_screen_app_whose_shell_works_offline(
    browser: Browser, served: Flask, server: LiveServer
) -> None:
    watched = open_tablet(browser, served, server.url, 800, 1280).watched
    page = watched.page
    # What the service worker itself writes to the console.
    worker_said: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if message.page is None:
            worker_said.append(message.text)

    page.context.on("console", heard)
    try:
        href = page.locator("link[rel=manifest]").get_attribute("href")
        assert href is not None
        response = page.request.get(f"{server.url}{href}")
        assert response.ok
        assert response.headers["content-type"].startswith("application/manifest+json")
        manifest = json.loads(response.text())
        assert manifest["display"] in ("fullscreen", "standalone")
        assert manifest["start_url"] == "/kiosk/HVT01" and manifest["name"]
        for icon in manifest["icons"]:
            assert page.request.get(f"{server.url}{icon['src']}").ok
        scope = page.evaluate(
            "navigator.serviceWorker.ready.then(registration => registration.scope)"
        )
        assert scope == f"{server.url}/kiosk/"
        # The worker keeps the page once it is active (the page asks it to), and it has
        # taken the page over.
        page.wait_for_function(
            """async () => !!navigator.serviceWorker.controller &&
                 (await caches.keys()).length > 0 &&
                 !!(await caches.match(location.pathname))"""
        )
        # Nothing answers any more (the server stopped): the page reloads from what the
        # worker kept, and a tap says no survey can be opened.
        with watched.cut_off(server):
            page.reload()
            expect(page.locator("#invite")).to_be_visible()
            page.locator("#invite").click()
            expect(page.locator("#survey .notice")).to_be_visible()
            # A page of the kiosk the worker never kept: its own offline page, which tries
            # again by itself, not the browser's error page.
            said = f"kiosk: {server.url}/kiosk/HVT02 failed (TypeError: Failed to fetch)"
            with (
                page.expect_console_message(lambda m: m.text.startswith(said)),
                page.expect_console_message(lambda m: "status of 503" in m.text),
            ):
                page.goto(f"{server.url}/kiosk/HVT02")
            expect(page.locator("#offline")).to_be_visible()
            expect(page.locator("meta[http-equiv=refresh]")).to_have_attribute("content", "15")
        said += " and no copy is kept"
        assert worker_said == [said]
        # The page's console shows the worker's line and the 503 the page came with.
        for expected in (
            f"console: {said}",
            "console: Failed to load resource: the server responded with a status of 503 ()",
        ):
            watched.problems.remove(expected)
        watched.check()
    finally:
        page.context.close()


def test_a_citizen_answers_the_web_link_on_a_phone_through_a_network_drop(
    browser: Browser, served: Flask, server: LiveServer, runtime: Runtime
) -> None:
    code = visit_code(served)
    watched = open_page(browser, 390, height=844)
    page = watched.page
    form = SurveyPage(page)
    try:
        page.goto(f"{server.url}/s/{code}")
        watched.check()
        page.get_by_role("button", name="Bắt đầu đánh giá").click()
        form.expect_state("survey")
        watched.check()
        form.rate(5)
        with watched.offline():
            form.rate_until_comment(4)
            assert page.locator("#survey .keyboard").count() == 0  # the phone's own keyboard
            form.comment_box.fill("Nhanh, gọn")
            watched.check()
            form.send_comment()
            form.expect_state("thanks")
            expect(form.pending).not_to_have_text("")
            expect(form.reference).to_have_count(0)
            (waiting,) = form.outbox()
            assert stored(runtime)[0].status == "active"
        form.expect_nothing_waiting()
        # Sent once the network is back: the thank-you, still up, gets the reference.
        expect(form.reference).to_have_text(REFERENCE_SHOWN)
        watched.check()
        again = page.evaluate(
            """async entry => (await fetch(entry.url, {method: "POST",
                 headers: {"Content-Type": "application/json"},
                 body: JSON.stringify({token: entry.token, answers: entry.answers})})).status""",
            waiting,
        )
        assert again == 200
        (survey,) = stored(runtime)
        assert (survey.channel, survey.start_method, survey.status, survey.counted) == (
            "web",
            "visit",
            "completed",
            True,
        )
        assert answers_of(runtime, survey.id)["comment"] == "Nhanh, gọn"
        # The visit code started its one survey: a second start from it is refused.
        page.goto(f"{server.url}/s/{code}")
        page.get_by_role("button", name="Bắt đầu đánh giá").click()
        expect(page.locator(".card p")).to_be_visible()
        assert len(stored(runtime)) == 1
    finally:
        page.context.close()
