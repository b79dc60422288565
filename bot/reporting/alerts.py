"""Real-time alerts: a counted survey that rates any factor 1–2 tells the unit's leaders.

A survey that closes counted (completed, or partial under the rule of survey_flow/counting.py)
gets an `Alert` row in its own transaction (bot/conversation/service.py, or the expiry job in
storage/repositories/surveys.py), so none is missed; repeats and surveys that do not count
alert no one; this job, every 20 seconds, turns pending alerts into leader messages.

The cap: at most ALERT_MAX_PER_HOUR alerts per unit in each clock hour. Alerts beyond it are
held, and once the hour is over one summary message tells the leaders how many more came and at
which counters. The unit's row is locked while its alerts are counted, so two processes cannot
both send the last alert allowed.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.delivery.leader_messages import Post, post_to_leader
from bot.delivery.sign_in_links import SignInLinks, alerts_path
from bot.reporting.periods import unit_zone
from storage import repositories as repo
from storage.models import Alert, AlertStatus, Leader, Unit
from survey_flow.sipas import FACTORS, LOW_RATINGS
from survey_flow.texts import LocalTexts, Texts

log = logging.getLogger("sipas_bot.alerts")

COMMENT_CHARS = 300


def hour_start(moment: datetime) -> datetime:
    """The clock hour holding `moment` (hours are whole in every zone we serve, so UTC will do)."""
    return moment.replace(minute=0, second=0, microsecond=0)


class AlertService:
    """Turns pending alerts into leader messages; built once by the Runtime."""

    def __init__(
        self,
        settings: Settings,
        texts: LocalTexts,
        *,
        email_ready: bool,
        links: SignInLinks | None = None,
    ) -> None:
        self.settings = settings
        self.texts = texts
        self.cap = settings.alert_max_per_hour
        self.email_ready = email_ready
        self.links = links

    def dispatch(self, session: Session, *, now: datetime) -> dict[str, int]:
        """Notify or hold every pending alert, then summarise the held ones of ended hours."""
        counts: Tally[str] = Tally()
        by_unit: dict[int, list[Alert]] = defaultdict(list)
        for alert in repo.pending_alerts(session):
            by_unit[alert.unit_id].append(alert)
        held: dict[tuple[int, datetime], list[Alert]] = defaultdict(list)
        for alert in repo.held_alerts(session, hour_before=hour_start(now)):
            assert alert.hour_start is not None
            held[(alert.unit_id, alert.hour_start)].append(alert)
        # Every unit row this run needs, locked up front in one order: two processes never
        # wait for each other in a circle.
        units = {
            unit_id: repo.lock_unit(session, unit_id)
            for unit_id in sorted(set(by_unit) | {unit_id for unit_id, _ in held})
        }
        for unit_id, alerts in sorted(by_unit.items()):
            unit = units[unit_id]
            leaders = repo.subscribed_leaders(session, unit_id)
            languages = repo.conversation_languages(session, {le.user_id for le in leaders})
            for alert in alerts:
                alert.handled_at = now
                alert.hour_start = hour_start(alert.created_at)
                if not leaders:
                    alert.status = AlertStatus.NO_LEADERS
                elif (
                    repo.notified_alerts(session, unit_id, hour_start=alert.hour_start) >= self.cap
                ):
                    alert.status = AlertStatus.HELD
                else:
                    alert.status = AlertStatus.NOTIFIED
                    for leader in leaders:
                        t = self._texts(languages.get(leader.user_id))
                        self._post(session, leader, unit, self._alert_post(alert, unit, t), t, now)
                session.flush()
                counts[alert.status] += 1
        for (unit_id, hour), alerts in sorted(held.items()):
            unit = units[unit_id]
            leaders = repo.subscribed_leaders(session, unit_id)
            languages = repo.conversation_languages(session, {le.user_id for le in leaders})
            for leader in leaders:
                t = self._texts(languages.get(leader.user_id))
                self._post(session, leader, unit, self._summary_post(unit, hour, alerts, t), t, now)
            for alert in alerts:
                alert.status = AlertStatus.SUMMARISED
            counts["summaries"] += 1
        if counts:
            log.info(
                "event=alerts %s",
                " ".join(f"{key}={value}" for key, value in sorted(counts.items())),
            )
        return dict(counts)

    def _texts(self, language: str | None) -> Texts:
        return self.texts.of(language)

    def _post(
        self, session: Session, leader: Leader, unit: Unit, post: Post, t: Texts, now: datetime
    ) -> None:
        post_to_leader(
            session, leader, post, t, email_ready=self.email_ready, now=now, links=self.links
        )

    def _alert_post(self, alert: Alert, unit: Unit, t: Texts) -> Post:
        response = alert.response
        zone = unit_zone(unit, self.settings.tz)
        at = (response.completed_at or alert.created_at).astimezone(zone)
        lowest: dict[int, int] = {}
        comment = None
        for answer in response.answers:
            if answer.factor is not None and answer.value in LOW_RATINGS:
                lowest[answer.factor] = min(answer.value, lowest.get(answer.factor, 5))
            elif answer.factor is None and answer.text and comment is None:
                comment = " ".join(answer.text.split())
        subject = t("alert_title", unit=unit.name)
        lines = [
            subject,
            t(
                "alert_intro",
                time=f"{at:%H:%M %d/%m/%Y}",
                counter=alert.counter.name,
                code=alert.counter.code,
            ),
        ]
        for factor in sorted(lowest):
            value = lowest[factor]
            lines.append(
                t(
                    "alert_factor",
                    name=FACTORS[factor].get(t.language, FACTORS[factor]["vi"]),
                    value=value,
                    label=t.scale[value],
                )
            )
        if comment:
            if len(comment) > COMMENT_CHARS:
                comment = comment[: COMMENT_CHARS - 1].rstrip() + "…"
            lines.append(t("alert_comment", text=comment))
        text = "\n".join(lines)
        return Post(
            "alert",
            unit.id,
            subject,
            text,
            text,
            alert_id=alert.id,
            detail_path=alerts_path(unit.code),
        )

    def _summary_post(self, unit: Unit, hour: datetime, alerts: Sequence[Alert], t: Texts) -> Post:
        zone = unit_zone(unit, self.settings.tz)
        start = hour.astimezone(zone)
        end = (hour + timedelta(hours=1)).astimezone(zone)
        by_counter = Tally(alert.counter.code for alert in alerts)
        subject = t("alert_summary_title", unit=unit.name)
        text = "\n".join(
            [
                subject,
                t(
                    "alert_summary",
                    start=f"{start:%H:%M}",
                    end=f"{end:%H:%M %d/%m/%Y}",
                    count=len(alerts),
                    unit=unit.name,
                    cap=self.cap,
                    counters=", ".join(f"#{code} × {n}" for code, n in sorted(by_counter.items())),
                ),
            ]
        )
        return Post(
            "alert_summary", unit.id, subject, text, text, detail_path=alerts_path(unit.code)
        )
