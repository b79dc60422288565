"""Driving the console in a real browser: Debian's chromium (/usr/bin/chromium, never a
browser `playwright install` would download) through Playwright, against the app served by a
real HTTP server on a free localhost port. Used by tests/test_browser.py and by
`python -m bench.screenshots`.

A page is checked as a person would notice: nothing in the browser's console (an error, a
refused script or style), nothing wider than the window, and every chart drawn with its data
points."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WIDTHS = {"phone": 390, "desktop": 1280}
OFFLINE = "net::ERR_INTERNET_DISCONNECTED"  # what chromium says of a request while offline
REFUSED = "net::ERR_CONNECTION_REFUSED"  # ... and of one to a server that is down

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless; RuntimeError with the one line to fix it when missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


class LiveServer:
    """A threaded HTTP server on 127.0.0.1 at a free port, serving whichever app `serve`
    was last given: the port is known before the app is built (the app's PUBLIC_BASE_URL
    names it, and sign-in links and cookies follow it)."""

    def __init__(self) -> None:
        self._app: WSGIApp | None = None
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self._app is not None, "LiveServer.serve(app) first"
        return self._app(environ, start_response)

    def serve(self, app: WSGIApp) -> None:
        self._app = app

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def live_server() -> Iterator[LiveServer]:
    server = LiveServer()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Watched:
    """A page with what its browser console said (errors and refused resources)."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def check(self, *, charts: int = 0) -> None:
        """No console error, nothing wider than the window, and `charts` charts with data."""
        assert not self.problems, f"{self.page.url}: {self.problems}"
        too_wide = self.page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth")
        assert not too_wide, f"{self.page.url}: content wider than {self.width()} px"
        drawn = self.page.evaluate(
            """() => [...document.querySelectorAll('figure[data-chart]')].map(figure => {
                 const svg = figure.querySelector('svg');
                 if (!svg || svg.getBoundingClientRect().width < 50) return 0;
                 return svg.querySelectorAll('.series .dot, .series .rect').length;
               })"""
        )
        assert len(drawn) >= charts, f"{self.page.url}: {len(drawn)} charts, {charts} expected"
        assert all(points > 0 for points in drawn), f"{self.page.url}: a chart without data"

    def width(self) -> int:
        return int(self.page.evaluate("window.innerWidth"))

    @contextmanager
    def offline(self) -> Iterator[None]:
        """The browser's network is down for the block (`context.set_offline`): the requests
        refused meanwhile for want of a network, and the console lines saying so, are what a
        page that copes with it expects, not problems; anything else still is."""
        context = self.page.context
        with self._expecting(OFFLINE):
            context.set_offline(True)
            try:
                yield
            finally:
                # Back online before the lines are sorted: the round trip lets the browser
                # report what failed while offline.
                context.set_offline(False)

    @contextmanager
    def cut_off(self, server: LiveServer) -> Iterator[None]:
        """The server stops for good at the start of the block (the tablet's network works
        but nothing answers: a server down, a cable out at the office's end). As with
        `offline`, the requests refused for it are expected, not problems. Unlike it, no
        browser emulation is involved: a service worker's own fetches fail as a real
        tablet's would."""
        server.stop()
        with self._expecting(REFUSED):
            yield

    @contextmanager
    def _expecting(self, failure: str) -> Iterator[None]:
        """Lines mentioning `failure` during the block are expected, not problems."""
        before = len(self.problems)
        try:
            yield
        finally:
            self.problems[before:] = [
                problem for problem in self.problems[before:] if failure not in problem
            ]


def watch(page: Page) -> Watched:
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.problems.append(f"console: {message.text}")

    def on_error(error: Error) -> None:
        watched.problems.append(f"page error: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.on(
        "requestfailed",
        lambda r: watched.problems.append(f"request failed: {r.url} {r.failure or ''}".strip()),
    )
    return watched


def open_page(browser: Browser, width: int, *, height: int = 900) -> Watched:
    """A new browser context (no cookies) with a window `width` px wide."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True, locale="vi-VN"
    )
    return watch(context.new_page())


def sign_in_with_password(watched: Watched, server_url: str, email: str, password: str) -> None:
    """Sign in at the console's sign-in page with an account's e-mail and password."""
    page = watched.page
    page.goto(f"{server_url}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def type_paper_line(page: Page, number: str, cells: Sequence[str]) -> None:
    """One paper form on the entry page, with the keyboard only: the number (which has the
    focus), Tab, a cell, … then Enter to save."""
    page.keyboard.type(number)
    for cell in cells:
        page.keyboard.press("Tab")
        if cell:
            page.keyboard.type(cell)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def sign_in_with_link(watched: Watched, link: str) -> None:
    """Open a one-time link and press "Tiếp tục", as a leader does."""
    page = watched.page
    page.goto(link)
    page.get_by_role("button", name="Tiếp tục").click()
    page.wait_for_load_state()
