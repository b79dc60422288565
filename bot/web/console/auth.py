"""Signing in and out: a console user with e-mail, password (and TOTP when turned on),
rate-limited per account and per address in the database; a leader with a one-time link
from the chat (bot/delivery/sign_in_links.py); the language switch."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from bot.delivery.sign_in_links import token_hash
from bot.web.console.accounts import (
    Principal,
    PrincipalKind,
    check_password,
    check_totp,
    dummy_password_check,
)
from bot.web.console.base import LANGUAGES, blueprint, console_runtime, set_language, text
from storage import repositories as repo

log = logging.getLogger("sipas_bot.console")

ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20


class PasswordForm(FlaskForm):
    email = EmailField(validators=[DataRequired(), Length(max=254)])
    password = PasswordField(validators=[DataRequired(), Length(max=1000)])
    totp = StringField(validators=[Length(max=10)])


class LinkForm(FlaskForm):
    t = HiddenField(validators=[DataRequired(), Length(max=100)])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (sign-out)."""


def _sign_in(principal: Principal) -> None:
    chosen = session.get("lang")
    session.clear()  # a fresh session: nothing from before signing in carries over
    if chosen in LANGUAGES:
        set_language(chosen)
    login_user(principal)
    session.permanent = True
    session["signed_in_at"] = console_runtime().clock().isoformat()


def _safe_next(path: str | None) -> str:
    """Only a path inside the console: never an address elsewhere (an open redirect)."""
    if path and path.startswith("/console/") and not path.startswith("//") and "\\" not in path:
        return path
    return url_for("console.home")


def _address() -> str:
    return (request.remote_addr or "unknown")[:64]


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = PasswordForm()
    message = text("session_expired") if request.args.get("expired") else None
    status = 200
    if form.validate_on_submit():
        runtime = console_runtime()
        now = runtime.clock()
        email = form.email.data.strip().lower()
        address = _address()
        with runtime.session_factory.begin() as db:
            since = now - ATTEMPT_WINDOW
            limited = (
                repo.failed_sign_ins_since(db, since=since, email=email) >= MAX_FAILURES_PER_ACCOUNT
                or repo.failed_sign_ins_since(db, since=since, address=address)
                >= MAX_FAILURES_PER_ADDRESS
            )
            user = None if limited else repo.find_console_user(db, email)
            ok = False
            if limited:
                message, status = text("sign_in_limited"), 429
            elif user is None:
                dummy_password_check(form.password.data)
            else:
                ok = check_password(user.password_hash, form.password.data) and (
                    user.totp_secret is None
                    or check_totp(user.totp_secret, form.totp.data or "", now=now)
                )
            if not limited:
                repo.record_sign_in_attempt(db, email=email, address=address, succeeded=ok, now=now)
            principal = Principal.of_user(user) if ok and user is not None else None
        log.info(
            "event=console_sign_in method=password outcome=%s",
            "ok" if principal else ("limited" if limited else "refused"),
        )
        if principal is not None:
            _sign_in(principal)
            return redirect(_safe_next(request.args.get("next")))
        if not limited:
            message, status = text("sign_in_failed"), 401
    elif request.method == "POST":
        message, status = text("sign_in_failed"), 400
    return render_template("console/login.html", form=form, message=message), status


@blueprint.get("/login/link")
def link() -> ResponseReturnValue:
    """The page a sign-in link opens: one button that signs in (a POST, so that a link
    previewer fetching the URL does not use the link up)."""
    token = request.args.get("t", "")[:100]
    runtime = console_runtime()
    with runtime.session_factory() as db:
        found = repo.usable_sign_in_link(db, token_hash(token), now=runtime.clock())
        leader = None if found is None else repo.get_leader(db, found.leader_id)
        if found is None or leader is None:
            return render_template("console/link_invalid.html"), 410
        principal = Principal.of_leader(leader)
        next_path = found.next_path
    if (
        current_user.is_authenticated
        and current_user.get_id() == principal.get_id()
        and session.get("signed_in_at")
    ):
        return redirect(_safe_next(next_path))  # already signed in: the link stays unused
    form = LinkForm(t=token)
    return render_template("console/link.html", form=form, name=principal.name)


@blueprint.post("/login/link")
def link_use() -> ResponseReturnValue:
    form = LinkForm()
    if not form.validate_on_submit():
        abort(400)
    runtime = console_runtime()
    with runtime.session_factory.begin() as db:
        used = repo.consume_sign_in_link(db, token_hash(form.t.data), now=runtime.clock())
        leader = None if used is None else repo.get_leader(db, used[0])
        principal = None if leader is None else Principal.of_leader(leader)
    log.info("event=console_sign_in method=link outcome=%s", "ok" if principal else "refused")
    if used is None or principal is None:
        return render_template("console/link_invalid.html"), 410
    _sign_in(principal)
    return redirect(_safe_next(used[1]))


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    return redirect(url_for("console.login"))


@blueprint.get("/lang/<code>")
def choose_language(code: str) -> ResponseReturnValue:
    if code not in LANGUAGES:
        abort(404)
    set_language(code)
    return redirect(_safe_next(request.args.get("next")))


def is_leader() -> bool:
    return bool(current_user.is_authenticated and current_user.kind is PrincipalKind.LEADER)
