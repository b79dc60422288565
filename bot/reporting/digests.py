"""Digests for a unit's leaders: when they go out, what period they cover, their text, and
how a period is sent exactly once.

Schedules (DIGEST_DAILY_AT, DIGEST_WEEKLY_AT, DIGEST_MONTHLY_AT), in each unit's time zone:

    daily     "HH:MM"           17:30
    weekly    "<day> HH:MM"     mon 07:30      (mon tue wed thu fri sat sun)
    monthly   "<day> HH:MM"     1 07:30        (day of the month, 1–28)
    any kind  a 5-field cron    "30 17 * * 1-5" (minute hour day month weekday; weekday 0 or
                                7 = Sunday as in crontab)
    any kind  off

Periods: the daily digest covers its day from 00:00 to the moment it is made; the weekly one
the previous Monday–Sunday; the monthly one the previous calendar month. Each is compared with
the period before (the daily one with the whole previous day); the text says which.

Exactly once: a scheduled digest first inserts its `Digest` row with the unique claim key
"<unit id>:<kind>:<first day>" (INSERT … ON CONFLICT DO NOTHING). The transaction that gets the
row also builds the report and queues the leaders' messages; any other process or re-run gets
nothing and sends nothing. If it fails before committing, the claim goes with it, and the next
run (or another process) may send the period.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session

from bot.config import ConfigError, Settings
from bot.delivery.leader_messages import Post, post_to_leader
from bot.delivery.sign_in_links import SignInLinks, overview_path
from bot.errors import BadPeriod
from bot.reporting import numbers
from bot.reporting.periods import PERIOD_NAMES, Period, named_period, unit_zone
from bot.reporting.report import Report, build_report, change
from storage import repositories as repo
from storage.models import Channel, DigestStatus, Leader, Unit
from survey_flow.sipas import FACTORS
from survey_flow.texts import LocalTexts, Texts
from zalo_client.limits import MAX_TEXT_CHARS

log = logging.getLogger("sipas_bot.digests")

KINDS = ("day", "week", "month")
SETTING_OF_KIND = {
    "day": "digest_daily_at",
    "week": "digest_weekly_at",
    "month": "digest_monthly_at",
}
COMMENTS = 3
COMMENT_CHARS = 160

_OFF = frozenset({"off", "none", "no", "0", "false"})
_TIME = r"([01]?\d|2[0-3]):([0-5]\d)"
_DAILY = re.compile(rf"^{_TIME}$")
_WEEKLY = re.compile(rf"^(mon|tue|wed|thu|fri|sat|sun)\s+{_TIME}$")
_MONTHLY = re.compile(rf"^(\d{{1,2}})\s+{_TIME}$")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHAPES = {
    "day": '"HH:MM" (e.g. 17:30)',
    "week": '"<day> HH:MM" (e.g. mon 07:30)',
    "month": '"<day of month> HH:MM" (e.g. 1 07:30)',
}


# --- schedules -----------------------------------------------------------------------------


def parse_schedule(kind: str, value: str, zone: ZoneInfo, *, variable: str) -> CronTrigger | None:
    """The trigger for one digest kind's setting, None for `off`; ConfigError naming the
    variable for anything else that is not a schedule."""
    text = " ".join(value.strip().lower().split())
    if text in _OFF:
        return None
    try:
        if len(text.split()) == 5:
            minute, hour, day, month, weekday = text.split()
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=_cron_weekdays(weekday),
                timezone=zone,
            )
        if kind == "day" and (match := _DAILY.match(text)):
            return CronTrigger(hour=int(match[1]), minute=int(match[2]), timezone=zone)
        if kind == "week" and (match := _WEEKLY.match(text)):
            return CronTrigger(
                day_of_week=match[1], hour=int(match[2]), minute=int(match[3]), timezone=zone
            )
        if kind == "month" and (match := _MONTHLY.match(text)) and 1 <= int(match[1]) <= 28:
            return CronTrigger(
                day=int(match[1]), hour=int(match[2]), minute=int(match[3]), timezone=zone
            )
    except ValueError as exc:
        raise ConfigError(f"{variable} {value!r} is not a valid cron schedule: {exc}") from None
    raise ConfigError(
        f"{variable} {value!r} is not a schedule: use {_SHAPES[kind]}, "
        'a 5-field cron string (e.g. "30 17 * * 1-5") or off'
    )


def _cron_weekdays(field_text: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) as APScheduler 3 names (it counts 0 = Monday)."""
    if field_text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field_text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in weekday {part!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _cron_day(low), _cron_day(high)
            if high.strip() == "7":
                last = 7
        else:
            first = last = _cron_day(base)
            if step_text:
                last = 6
        if first > last:
            raise ValueError(f"weekday range {base!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _cron_day(text: str) -> int:
    text = text.strip()
    if text in _CRON_DAYS:
        return _CRON_DAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    raise ValueError(f"unknown weekday {text!r}")


def schedules(settings: Settings, zone: ZoneInfo) -> dict[str, CronTrigger]:
    """The trigger of every digest kind that is not off, in `zone`."""
    triggers: dict[str, CronTrigger] = {}
    for kind in KINDS:
        name = SETTING_OF_KIND[kind]
        trigger = parse_schedule(kind, getattr(settings, name), zone, variable=name.upper())
        if trigger is not None:
            triggers[kind] = trigger
    return triggers


# --- periods and text ----------------------------------------------------------------------


# What a scheduled digest of each kind covers, by the period names every command shares.
SCHEDULED_PERIOD = {"day": "day", "week": "last-week", "month": "last-month"}
# The period names `digest send --period` takes: those of a digest's kinds.
DIGEST_PERIOD_NAMES = tuple(name for name, (kind, _) in PERIOD_NAMES.items() if kind in KINDS)


def digest_period(kind: str, now: datetime, zone: ZoneInfo) -> Period:
    """What the scheduled digest of `kind` covers: today so far, last week, last month."""
    if kind not in KINDS:
        raise BadPeriod(f"unknown digest kind {kind}: use day, week or month")
    return named_period(SCHEDULED_PERIOD[kind], now, zone)


@dataclass(frozen=True)
class DigestText:
    subject: str
    text: str  # without the "tap Đã nhận" line, which only the Zalo message has
    zalo_text: str


def _percent(value: float | None, t: Texts) -> str:
    return numbers.percent(value, t.language)


def _points(delta: float, t: Texts) -> str:
    if round(delta, 2) == 0:
        return t("digest_unchanged")
    return t("digest_points", value=numbers.signed(delta, t.language))


def _count_change(delta: int, t: Texts) -> str:
    return t("digest_unchanged") if delta == 0 else f"{delta:+d}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_digest(
    report: Report,
    *,
    kind: str,
    unit_name: str,
    made_at: datetime,
    min_answers: int,
    t: Texts,
) -> DigestText:
    """The digest as a short text (at most Zalo's 2,000 characters with its last line)."""
    subject, span = _digest_heading(report.period, kind, unit_name, made_at, t)
    lines = [subject, span]
    cases = report.cases
    if cases.received or cases.overdue:
        lines.append(t("digest_cases", received=cases.received, overdue=cases.overdue))
    if report.responses == 0:
        lines.append(t("digest_empty"))
        return _finish(subject, lines, [], t)
    running = report.period.contains(made_at)
    lines += _digest_figures(report, kind, running, min_answers, t)
    when = "%H:%M" if kind == "day" else "%d/%m %H:%M"
    comments = [
        t(
            "digest_comment",
            time=f"{c.at.astimezone(report.period.zone):{when}}",
            counter=c.counter_code,
            text=_clip(c.text, COMMENT_CHARS),
        )
        for c in report.comments[:COMMENTS]
    ]
    return _finish(subject, lines, comments, t)


def _digest_heading(
    period: Period, kind: str, unit_name: str, made_at: datetime, t: Texts
) -> tuple[str, str]:
    """The subject and the span line; a period still running (today, this week, this month)
    says "to now", one that is over its end."""
    first, last = period.first_day, period.last_day
    running = period.contains(made_at)
    time = f"{made_at.astimezone(period.zone):%H:%M}"
    if kind == "day":
        subject = t("digest_title_day", date=f"{first:%d/%m/%Y}", unit=unit_name)
        span = (
            t("digest_period_day", time=time)
            if running
            else t("digest_period_day_past", date=f"{first:%d/%m/%Y}")
        )
    elif kind == "week":
        subject = t(
            "digest_title_week", start=f"{first:%d/%m}", end=f"{last:%d/%m/%Y}", unit=unit_name
        )
        span = (
            t("digest_period_week_running", start=f"{first:%d/%m/%Y}", time=time)
            if running
            else t("digest_period_week", start=f"{first:%d/%m/%Y}", end=f"{last:%d/%m/%Y}")
        )
    else:
        subject = t("digest_title_month", month=f"{first:%m/%Y}", unit=unit_name)
        span = (
            t("digest_period_month_running", start=f"{first:%d/%m/%Y}", time=time)
            if running
            else t("digest_period_month", start=f"{first:%d/%m/%Y}", end=f"{last:%d/%m/%Y}")
        )
    return subject, span


def _digest_figures(
    report: Report, kind: str, running: bool, min_answers: int, t: Texts
) -> list[str]:
    """The counts against the period before, the index, the weakest factor and counter."""
    lines = []
    previous = report.previous
    before = t(
        "digest_previous_day_past" if kind == "day" and not running else f"digest_previous_{kind}"
    )
    if previous is not None:
        lines.append(
            t(
                "digest_responses",
                count=report.responses,
                previous=before,
                previous_count=previous.responses,
                change=_count_change(report.responses - previous.responses, t),
            )
        )
    channels = channel_line(report, t)
    if channels is not None:
        lines.append(channels)
    overall = report.overall
    if overall.rankable:
        prior = previous.overall if previous is not None and previous.overall.rankable else None
        delta = change(overall, prior)
        share = _percent(overall.share, t)
        lines.append(
            t("digest_share_first", share=share)
            if delta is None
            else t("digest_share", share=share, change=_points(delta, t), previous=before)
        )
    else:
        lines.append(t("digest_share_not_enough", valid=overall.valid, minimum=min_answers))
    weakest = report.weakest_factor()
    if weakest is not None:
        number, figure = weakest
        lines.append(
            t(
                "digest_weakest_factor",
                name=FACTORS[number].get(t.language, FACTORS[number]["vi"]),
                share=_percent(figure.share, t),
                satisfied=figure.satisfied,
                valid=figure.valid,
            )
        )
    counter = report.weakest_counter()
    if counter is not None:
        lines.append(
            t(
                "digest_weakest_counter",
                name=counter.name,
                code=counter.code,
                share=_percent(counter.overall.share, t),
                satisfied=counter.overall.satisfied,
                valid=counter.overall.valid,
            )
        )
    return lines


def channel_line(report: Report, t: Texts) -> str | None:
    """The counted surveys per channel in one short line ("Theo kênh: Zalo 40 · máy 12 · web
    3 · giấy 5."), when any came through another channel than Zalo."""
    if set(report.channels) <= {Channel.ZALO.value}:
        return None
    parts = [
        f"{t(f'channel_{channel.value}')} {report.channels[channel.value].responses}"
        for channel in Channel
        if channel.value in report.channels
    ]
    return t("digest_channels", channels=" · ".join(parts))


def _finish(subject: str, lines: list[str], comments: list[str], t: Texts) -> DigestText:
    hint = t("digest_ack_hint")
    while True:
        body = lines + ([t("digest_comments"), *comments] if comments else [])
        text = "\n".join(body)
        zalo_text = f"{text}\n\n{hint}"
        if len(zalo_text) <= MAX_TEXT_CHARS or not comments:
            break
        comments = comments[:-1]
    if len(zalo_text) > MAX_TEXT_CHARS:  # a very long unit name: cut, never fail
        text = text[: MAX_TEXT_CHARS - len(hint) - 3].rstrip() + "…"
        zalo_text = f"{text}\n\n{hint}"
    return DigestText(subject=subject, text=text, zalo_text=zalo_text)


# --- sending -------------------------------------------------------------------------------


class DigestResult(StrEnum):
    QUEUED = "queued"
    EMPTY = "empty"  # no survey in the period, and DIGEST_SEND_EMPTY is off
    CLAIMED_ELSEWHERE = "claimed_elsewhere"  # another process sends this period
    NO_LEADERS = "no_leaders"


@dataclass
class DigestOutcome:
    unit_code: str
    kind: str
    status: DigestResult
    period: Period | None = None
    digest_id: int | None = None
    channels: dict[str, int] = field(default_factory=dict)  # queued | email_pending | undelivered
    text: str = ""


class DigestService:
    """Makes and queues digests; every method works in the session it is given."""

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
        self.email_ready = email_ready
        self.links = links

    def zone_of(self, unit: Unit) -> ZoneInfo:
        return unit_zone(unit, self.settings.tz)

    def period(self, unit: Unit, kind: str, *, now: datetime, name: str | None = None) -> Period:
        """The scheduled period of `kind`, or the one `name`d (PERIOD_NAMES) of that kind."""
        zone = self.zone_of(unit)
        if name is None:
            return digest_period(kind, now, zone)
        if PERIOD_NAMES.get(name, ("", 0))[0] != kind:
            raise BadPeriod(f"period {name} is not a {kind} period")
        return named_period(name, now, zone)

    def report(
        self, session: Session, unit: Unit, kind: str, *, now: datetime, name: str | None = None
    ) -> Report:
        return build_report(
            session,
            unit_codes=[unit.code],
            period=self.period(unit, kind, now=now, name=name),
            min_answers=self.settings.report_min_answers,
            comment_limit=COMMENTS,
        )

    def render(
        self, report: Report, unit: Unit, kind: str, *, now: datetime, language: str
    ) -> DigestText:
        return render_digest(
            report,
            kind=kind,
            unit_name=unit.name,
            made_at=now,
            min_answers=self.settings.report_min_answers,
            t=self.texts.of(language),
        )

    def send(
        self,
        session: Session,
        unit: Unit,
        kind: str,
        *,
        now: datetime,
        scheduled: bool,
        send_empty: bool | None = None,
        name: str | None = None,
    ) -> DigestOutcome:
        """Queue the digest to every leader of the unit. A scheduled one is claimed first
        (see the module docstring); a manual one (the CLI) is not, and is sent even when
        empty unless `send_empty` says otherwise. `name` picks another period of the kind
        than the scheduled one (`month` for this month so far)."""
        leaders: Sequence[Leader] = repo.subscribed_leaders(session, unit.id)
        if not leaders:
            return DigestOutcome(unit.code, kind, DigestResult.NO_LEADERS)
        period = self.period(unit, kind, now=now, name=name)
        digest = repo.claim_digest(
            session,
            unit_id=unit.id,
            kind=kind,
            period_start=period.start,
            period_end=period.end,
            claim_key=f"{unit.id}:{kind}:{period.first_day.isoformat()}" if scheduled else None,
            now=now,
        )
        if digest is None:
            log.info("event=digest outcome=claimed_elsewhere unit=%s kind=%s", unit.code, kind)
            return DigestOutcome(unit.code, kind, DigestResult.CLAIMED_ELSEWHERE, period)
        report = self.report(session, unit, kind, now=now, name=name)
        digest.responses = report.responses
        empty_ok = self.settings.digest_send_empty if send_empty is None else send_empty
        if report.responses == 0 and not empty_ok:
            digest.status = DigestStatus.EMPTY
            log.info("event=digest outcome=empty unit=%s kind=%s", unit.code, kind)
            return DigestOutcome(unit.code, kind, DigestResult.EMPTY, period, digest.id)
        languages = repo.conversation_languages(session, {leader.user_id for leader in leaders})
        rendered: dict[str, DigestText] = {}
        outcome = DigestOutcome(unit.code, kind, DigestResult.QUEUED, period, digest.id)
        for leader in leaders:
            language = languages.get(leader.user_id, "vi")
            if language not in self.texts:
                language = "vi"
            if language not in rendered:
                rendered[language] = self.render(report, unit, kind, now=now, language=language)
            text = rendered[language]
            message = post_to_leader(
                session,
                leader,
                Post(
                    "digest",
                    unit.id,
                    text.subject,
                    text.text,
                    text.zalo_text,
                    digest.id,
                    detail_path=overview_path(unit.code),
                ),
                self.texts[language],
                email_ready=self.email_ready,
                now=now,
                links=self.links,
            )
            outcome.channels[message.status] = outcome.channels.get(message.status, 0) + 1
        vi = rendered.get("vi") or self.render(report, unit, kind, now=now, language="vi")
        digest.status, digest.text = DigestStatus.QUEUED, vi.text
        outcome.text = vi.zalo_text
        log.info(
            "event=digest outcome=queued unit=%s kind=%s digest=%d leaders=%d channels=%s",
            unit.code,
            kind,
            digest.id,
            len(leaders),
            ",".join(f"{k}:{v}" for k, v in sorted(outcome.channels.items())),
        )
        return outcome
