"""What the console tests share: seeded figures, a leader registered in the chat with a
one-time link, a console user, and reading the CSRF token off a page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bot.cli import cli
from bot.runtime import Runtime
from tests.conftest import FakeClock
from tests.test_alerts import complete_survey
from tests.test_digests import seed_typical
from tests.test_leaders import LEADER, add_unit, register, replies, say

Post = Callable[..., Any]
PASSWORD = "correct horse battery staple"
_LINK = re.compile(r"https?://[^\s]+/console/login/link\?t=[\w-]+")
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def seed(runtime: Runtime, signed_post: Post, clock: FakeClock) -> None:
    """The digest tests' figures of March 2026 for HVT, one low-rated survey with a comment
    that alerts the leader, and a second unit (BDH) with figures of its own."""
    seed_typical(runtime)
    # Later the same day: at 09:00 the seeded surveys of new accounts look like a burst at
    # HVT01, and this one would be held for review (docs/integrity.md).
    clock.advance(hours=5)
    complete_survey(signed_post, "800000000000000099", (1, 2, 5, 5, 5), comment="Chờ quá lâu")
    add_unit(runtime, clock, "BDH", "7000-BDH")


def sign_in_link(signed_post: Post, runtime: Runtime, user_id: str = LEADER) -> str:
    """DANGNHAP in the chat, and the link of the reply."""
    say(signed_post, "DANGNHAP", user_id)
    found = _LINK.search(replies(runtime, user_id)[-1])
    assert found is not None, replies(runtime, user_id)[-1]
    return found.group(0)


def csrf_token(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def follow_link(client: FlaskClient, url: str) -> Any:
    """Open the link and press "Tiếp tục": what a leader does."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = client.get(f"/{path}")
    assert page.status_code == 200, page.status_code
    token = path.split("t=", 1)[1]
    return client.post(
        "/console/login/link", data={"t": token, "csrf_token": csrf_token(page.text)}
    )


def leader_signed_in(client: FlaskClient, signed_post: Post, runtime: Runtime) -> None:
    register(signed_post)
    response = follow_link(client, sign_in_link(signed_post, runtime))
    assert response.status_code == 302, response.status_code


def add_user(app: Flask, email: str, role: str, *units: str, totp: bool = False) -> Any:
    args = ["users", "add", "--email", email, "--role", role, "--password-stdin"]
    for unit in units:
        args += ["--unit", unit]
    if totp:
        args.append("--totp")
    return app.test_cli_runner().invoke(cli, args, input=PASSWORD + "\n")


def password_sign_in(
    client: FlaskClient, email: str, password: str = PASSWORD, totp: str = ""
) -> Any:
    page = client.get("/console/login")
    return client.post(
        "/console/login",
        data={
            "email": email,
            "password": password,
            "totp": totp,
            "csrf_token": csrf_token(page.text),
        },
    )


def post_case_form(client: FlaskClient, reference: str, action: str, **data: str) -> Any:
    """Open a case's page in the console and send one of its forms, as an official does."""
    page = client.get(f"/console/cases/{reference}")
    assert page.status_code == 200, page.status_code
    key = page.text.split('name="key" value="', 1)[1].split('"', 1)[0] if action == "reply" else ""
    fields = {"csrf_token": csrf_token(page.text), **({"key": key} if key else {}), **data}
    return client.post(f"/console/cases/{reference}/{action}", data=fields)
