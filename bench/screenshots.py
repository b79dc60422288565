"""Screenshots of the console's main pages for docs/console.md, and with `--channels` of each
channel a citizen answers on for docs/channels.md, made the way the browser tests see the
pages (tests/browser.py, tests/channels_browser.py): Debian's chromium, the app on a real
localhost server, a demo database (a year of surveys at the example units for the console).

    python -m bench.screenshots --out docs/img
    python -m bench.screenshots --channels --out docs/img

Every page is checked before it is photographed (no console error, nothing wider than the
window, charts with data), so a broken page fails the command instead of landing in the docs.
The clock is fixed (14/03/2026, as in the tests), so the pictures change only when the pages do.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Browser, sync_playwright

from bot.jobs import dispatch_alerts
from bot.runtime import Runtime
from bot.web import create_app, runtime_of
from storage import repositories as repo
from storage.db import make_engine
from tests.browser import (
    LiveServer,
    Watched,
    launch_chromium,
    open_page,
    sign_in_with_link,
    sign_in_with_password,
    type_paper_line,
)
from tests.channels_browser import COMMENT_KEYS, SurveyPage, open_tablet, visit_code
from tests.conftest import FakeClock, make_settings, make_signed_post, migrate_with_example_units
from tests.console_support import PASSWORD, add_user, seed, sign_in_link
from tests.test_digests import seed_day
from tests.test_leaders import register

NOW = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)
MONTH = "period=month&date=2026-03-14"
OPERATOR = "so-noi-vu@tinh.example.vn"
CLERK = "mot-cua@phuong.example.vn"
PUBLISHED = "https://dichvucong.example.vn"


def seed_demo(runtime: Runtime, post: Callable[..., Any], clock: FakeClock) -> None:
    """The tests' March 2026 (with a low-rated survey that alerts the leader) and one busy
    day in each of the eleven months before it, each month a little different."""
    for months_back in range(11, 0, -1):
        year, month = (2026, 3 - months_back) if months_back < 3 else (2025, 15 - months_back)
        seed_day(runtime, year, month, 12, 12 + months_back % 4, shift=months_back)
    seed(runtime, post, clock)
    dispatch_alerts(runtime)


def photograph(watched: Watched, out: Path, *, charts: int = 0) -> Path:
    """The page as it is now, once checked (no console error, nothing too wide, charts)."""
    watched.check(charts=charts)
    watched.page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")
    return out


def shoot(watched: Watched, url: str, out: Path, *, charts: int = 0) -> Path:
    page = watched.page
    page.goto(url)
    page.wait_for_load_state()
    return photograph(watched, out, charts=charts)


def demo_app(folder: str, server: LiveServer, clock: FakeClock, **settings: Any) -> Flask:
    """The app on a fresh SQLite database of the example units, served by `server` (and
    published at its address unless `settings` say otherwise)."""
    url = f"sqlite:///{Path(folder) / 'demo.db'}"
    engine = make_engine(url)
    migrate_with_example_units(engine, clock())
    engine.dispose()
    published = {"public_base_url": server.url, **settings}
    app = create_app(make_settings(url, **published), clock=clock)
    server.serve(app)
    return app


def make_screenshots(browser: Browser, server: LiveServer, out: Path) -> list[Path]:
    clock = FakeClock(NOW)
    made: list[Path] = []
    with tempfile.TemporaryDirectory() as folder:
        app = demo_app(folder, server, clock)
        runtime = runtime_of(app)
        post = make_signed_post(app.test_client())
        seed_demo(runtime, post, clock)
        base = f"{server.url}/console/units/HVT"

        register(post)
        for name, width in (("desktop", 1280), ("phone", 390)):
            watched = open_page(browser, width)
            sign_in_with_link(watched, sign_in_link(post, runtime))
            made.append(shoot(watched, f"{base}?{MONTH}", out / f"overview-{name}.png", charts=2))
            if name == "desktop":
                pages = {
                    "counter": (f"{base}/counters/HVT02?{MONTH}", 2),
                    "comments": (f"{base}/comments?{MONTH}", 0),
                    "alerts": (f"{base}/alerts?{MONTH}", 0),
                    "print-report": (f"{base}/print/report?{MONTH}", 2),
                    "print-posters": (f"{base}/print/posters?size=a5", 0),
                }
                for page_name, (page_url, charts) in pages.items():
                    target = out / f"{page_name}.png"
                    made.append(shoot(watched, page_url, target, charts=charts))
            watched.page.context.close()

        assert add_user(app, OPERATOR, "operator").exit_code == 0
        watched = open_page(browser, 1280)
        sign_in_with_password(watched, server.url, OPERATOR, PASSWORD)
        made.append(
            shoot(watched, f"{server.url}/console/province?{MONTH}", out / "province.png", charts=1)
        )
        watched.page.context.close()
        runtime.engine.dispose()
    return made


@dataclass
class ChannelScene:
    """What a channel's shots need: the browser, the app on the live server, where to write."""

    browser: Browser
    server: LiveServer
    app: Flask
    out: Path

    def page(self, width: int, height: int) -> Watched:
        return open_page(self.browser, width, height=height)


def kiosk_shots(scene: ChannelScene) -> list[Path]:
    """The counter's tablet (portrait): waiting, a question, the comment typed on its
    keyboard, the thank-you."""
    kiosk = open_tablet(scene.browser, scene.app, scene.server.url, 800, 1280)
    watched = kiosk.watched
    made = []
    made.append(photograph(watched, scene.out / "kiosk-waiting.png"))
    kiosk.invite()
    made.append(photograph(watched, scene.out / "kiosk-question.png"))
    kiosk.rate_until_comment(5)
    kiosk.type(COMMENT_KEYS)
    made.append(photograph(watched, scene.out / "kiosk-comment.png"))
    kiosk.finish()
    made.append(photograph(watched, scene.out / "kiosk-thanks.png"))
    watched.page.context.close()
    return made


def weblink_shots(scene: ChannelScene) -> list[Path]:
    """The web link on a phone, from a visit code: the start, a question, the thank-you."""
    watched = scene.page(390, 844)
    form = SurveyPage(watched.page)
    made = [
        shoot(watched, f"{scene.server.url}/s/{visit_code(scene.app)}", scene.out / "web-start.png")
    ]
    watched.page.get_by_role("button", name="Bắt đầu đánh giá").click()
    form.expect_state("survey")
    made.append(photograph(watched, scene.out / "web-question.png"))
    form.rate_until_comment(4)
    form.finish()
    made.append(photograph(watched, scene.out / "web-thanks.png"))
    watched.page.context.close()
    return made


def zalo_shots(scene: ChannelScene) -> list[Path]:
    """The Zalo chat as sandbox mode plays it (bot/web/sandbox): a citizen sends the counter's
    code and answers (typing the levels, as the chat allows: a tapped button would show its
    payload, which holds the survey's random token); the page shows the conversation."""
    watched = scene.page(1280, 900)
    page = watched.page
    page.goto(f"{scene.server.url}/sandbox?user=an")
    for text in ("#HVT01", "5", "4", "5"):
        page.fill("#text", text)
        page.locator("#chat button.send").click()
        page.wait_for_load_state()
    made = [photograph(watched, scene.out / "zalo-sandbox.png")]
    watched.page.context.close()
    return made


def paper_shots(scene: ChannelScene) -> list[Path]:
    """The paper forms' entry page in the console, at a desktop's width: two forms typed with
    the keyboard only, then a line with a level out of range, refused with its problem."""
    runtime = runtime_of(scene.app)
    with runtime.session_factory.begin() as db:
        unit = repo.find_unit(db, "HVT")
        assert unit is not None
        runtime.paper.allocate(db, unit, 3)
    assert add_user(scene.app, CLERK, "operator", "HVT").exit_code == 0
    watched = scene.page(1280, 900)
    page = watched.page
    sign_in_with_password(watched, scene.server.url, CLERK, PASSWORD)
    page.goto(f"{scene.server.url}/console/units/HVT/paper?counter=HVT01&questionnaire=sipas-short")
    type_paper_line(page, "1", ["5", "4", "5", "4", "0", "Cán bộ tận tình"])
    type_paper_line(page, "2", ["3", "4", "", "", "", ""])
    made = [photograph(watched, scene.out / "paper-entry.png")]
    type_paper_line(page, "3", ["5", "6", "", "", "", ""])
    assert page.locator(".paper-problems").count() == 1
    watched.problems.clear()  # the refused line's answer is a 422, as it should be
    made.append(photograph(watched, scene.out / "paper-refused.png"))
    watched.page.context.close()
    return made


# The channels' shots, in the order docs/channels.md shows them: add a channel's function here.
CHANNEL_SHOTS: list[Callable[[ChannelScene], list[Path]]] = [
    zalo_shots,
    kiosk_shots,
    weblink_shots,
    paper_shots,
]


def make_channel_screenshots(browser: Browser, server: LiveServer, out: Path) -> list[Path]:
    made: list[Path] = []
    with tempfile.TemporaryDirectory() as folder:
        # Published at a fixed address (the pages show it), served at the live server's.
        app = demo_app(folder, server, FakeClock(NOW), zalo_sandbox=True, public_base_url=PUBLISHED)
        scene = ChannelScene(browser, server, app, out)
        for shots in CHANNEL_SHOTS:
            made += shots(scene)
        runtime_of(app).engine.dispose()
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="Folder for the PNGs.")
    parser.add_argument(
        "--channels",
        action="store_true",
        help="The channels' pages (docs/channels.md) instead of the console's.",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    with sync_playwright() as playwright:
        try:
            browser = launch_chromium(playwright)
        except RuntimeError as exc:
            print(f"screenshots: error: {exc}")
            return 2
        server = LiveServer()
        try:
            make = make_channel_screenshots if args.channels else make_screenshots
            make(browser, server, args.out)
        finally:
            server.stop()
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
