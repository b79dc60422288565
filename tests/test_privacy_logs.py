"""No raw Zalo id and no comment text in any log line or error column: a whole scripted run
(webhooks, the sender against a Zalo that fails in several ways, an alert, a digest, a
database error) with every logger at DEBUG, then every line and every error column scanned."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import responses
from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.cli.main import cli
from bot.jobs import dispatch_alerts
from bot.runtime import Runtime
from storage.models import LeaderMessage, OutboxMessage, QuestionnaireVersion, ZaloToken
from tests.conftest import API_BASE, FakeClock, text_event, zalo_success
from tests.test_leaders import CODE, manual_digest

Post = Callable[..., Any]
CITIZEN = "246845883529197922"
LEADER = "900000000000000001"
COMMENT = "Chị Lan ở quầy hai làm rất chậm"
SEND_URL = f"{API_BASE}/v3.0/oa/message/cs"


def test_a_full_run_logs_no_raw_id_and_no_comment(
    app: Flask,
    signed_post: Post,
    runtime: Runtime,
    clock: FakeClock,
    zalo_api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Zalo refuses in its own words, quoting the recipient; then fails; then accepts.
    zalo_api.add(
        responses.POST, SEND_URL, json={"error": -213, "message": f"user {CITIZEN} not follower"}
    )
    zalo_api.add(responses.POST, SEND_URL, status=502, body="Bad Gateway")
    zalo_api.add(responses.POST, SEND_URL, json={"error": -32, "message": f"rate {LEADER}"})
    zalo_api.add(responses.POST, SEND_URL, json=zalo_success(user_id=CITIZEN))

    assert signed_post(text_event(f"DANGKY {CODE}", user_id=LEADER)).status_code == 200
    for typed in ["#HVT01", "1", "2", "1", "2", "1", f"{COMMENT}, gọi 0912345678"]:
        assert signed_post(text_event(typed, user_id=CITIZEN)).status_code == 200
    assert dispatch_alerts(runtime) == {"notified": 1}
    manual_digest(runtime)
    sender = runtime.sender()
    try:
        for _ in range(8):
            sender.drain()
            clock.advance(minutes=15)
    finally:
        sender.close()
    listing = app.test_cli_runner().invoke(cli, ["outbox", "list", "--dead"])
    assert listing.exit_code == 0, listing.output

    with runtime.session_factory() as session:
        dead = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "dead")).all()
        errors = [m.last_error for m in session.scalars(select(OutboxMessage))]
        errors += [m.last_error for m in session.scalars(select(LeaderMessage))]
        errors += [t.refresh_error for t in session.scalars(select(ZaloToken))]
        alert_texts = [m.text for m in session.scalars(select(LeaderMessage))]
    assert dead, "the run must have dead-lettered a message, or --dead shows nothing"
    # Zalo's words, without the id (whichever message met which answer, sent concurrently).
    assert any(e and ("<user>" in e or "[id]" in e) for e in errors)
    assert any(COMMENT in t for t in alert_texts)  # the leaders did get the comment
    lines = [record.getMessage() for record in caplog.records]
    lines += [record.exc_text or "" for record in caplog.records]
    lines += [logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info]
    assert len(lines) > 50
    for text in [*lines, *(e or "" for e in errors), listing.output]:
        for secret in (CITIZEN, LEADER, COMMENT, "0912345678"):
            assert secret not in text, f"{secret!r} in {text[:300]!r}"


def test_a_database_error_logs_no_comment(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither SQLAlchemy's parameters nor PostgreSQL's own DETAIL line ("Key (…)=(…) already
    exists", which quotes row values) reach a log line."""
    caplog.set_level(logging.DEBUG)
    row = {"questionnaire_id": "x", "version": "1", "source_text": COMMENT}
    try:
        with runtime.session_factory.begin() as session:
            session.execute(insert(QuestionnaireVersion), [row, row])
    except IntegrityError:
        logging.getLogger("sipas_bot.test").exception("event=database_error")
    else:
        pytest.fail("the duplicate row must fail")
    logged = [r.getMessage() for r in caplog.records]
    logged += [
        logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info
    ]
    assert any("IntegrityError" in line for line in logged)
    assert not any(COMMENT in line for line in logged)
