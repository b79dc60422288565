"""What the integrity tests share: sending a citizen's messages through signed webhooks, and
reading back what the index and the public results page show."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from bot.reporting.periods import period_containing
from bot.reporting.report import Report, build_report
from bot.runtime import Runtime
from storage import repositories as repo
from storage.models import SurveyResponse, Unit
from tests.conftest import FakeClock, text_event

Post = Callable[..., Any]
FIVE = ("5", "5", "5", "5", "5")  # the short form's five rated questions


def say(signed_post: Post, clock: FakeClock, user: str, *texts: str) -> None:
    """One citizen's messages, a few seconds apart, each through a signed webhook."""
    for text in texts:
        assert signed_post(text_event(text, user_id=user)).status_code == 200
        clock.advance(seconds=2)


def index(runtime: Runtime, clock: FakeClock, **kwargs: Any) -> Report:
    """This month's report of unit HVT, as `sipas-bot report` builds it."""
    with runtime.session_factory() as session:
        return build_report(
            session,
            unit_codes=["HVT"],
            period=period_containing("month", clock(), runtime.settings.tz),
            min_answers=1,
            with_previous=False,
            **kwargs,
        )


def publish(runtime: Runtime) -> None:
    """Make unit HVT's results page public."""
    with runtime.session_factory.begin() as session:
        unit = session.scalars(select(Unit).where(Unit.code == "HVT")).one()
        unit.public_results = True


@dataclass(frozen=True)
class PublicMonth:
    share: str
    answers: int
    surveys: int


def public_month(client: FlaskClient) -> PublicMonth:
    """This month's row of the public page's table: share, answers, "Phiếu"."""
    page = client.get("/u/HVT/results")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1), re.S)
    return PublicMonth(cells[0].strip(), int(cells[1]), int(cells[2]))


def surveys(runtime: Runtime) -> list[SurveyResponse]:
    with runtime.session_factory() as session:
        return list(
            session.scalars(select(SurveyResponse).order_by(SurveyResponse.id)).unique().all()
        )


def alerts(runtime: Runtime) -> list[int]:
    """The response ids with an alert."""
    with runtime.session_factory() as session:
        return sorted(alert.response_id for alert in repo.pending_alerts(session))
