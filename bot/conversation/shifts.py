"""Officers' shifts at counters (docs/channels.md, "Who served the citizen"): one open shift
per counter (starting one ends the one before) and per officer (signing in at another
counter ends the shift at the first), and none past the end of the unit's day. The
kiosk's "Cán bộ" control, the console's counter page and `POST /api/shifts` all come here."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.units import unit_zone
from storage import repositories as repo
from storage.models import Counter, Officer, Shift, ShiftSource

log = logging.getLogger("sipas_bot.shifts")


def end_of_day(now: datetime, zone: ZoneInfo) -> datetime:
    """The next local midnight in `zone` after `now`: a shift ends then at the latest."""
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)


def start_shift(
    session: Session,
    counter: Counter,
    officer: Officer,
    *,
    via: ShiftSource,
    now: datetime,
    zone: ZoneInfo,
) -> Shift:
    """Sign `officer` in at `counter` from `now` until the end of the day in `zone`, ending
    the counter's open shift (whoever held it) and the officer's open shift at any other
    counter (one person serves at one counter at a time). The officer must be of the
    counter's unit."""
    if officer.unit_id != counter.unit_id:
        raise ValueError("an officer signs in only at a counter of their own unit")
    # The counter's row lock, then the officer's (always in this order): two starts at one
    # counter, or of one officer at two counters, on any processes, run one after the other
    # and leave one open shift per counter and per officer.
    repo.lock_counter(session, counter.id)
    repo.lock_officer(session, officer.id)
    repo.end_shifts(session, counter.id, now=now)
    repo.end_officer_shifts(session, officer.id, now=now)
    shift = repo.add_shift(
        session,
        officer_id=officer.id,
        counter_id=counter.id,
        started_at=now,
        ended_at=end_of_day(now, zone),
        opened_via=via,
    )
    log.info("event=shift_start counter=%s officer=%d via=%s", counter.code, officer.id, via.value)
    return shift


def sign_in(
    session: Session,
    counter: Counter,
    officer_code: str,
    *,
    via: ShiftSource,
    now: datetime,
    default_zone: ZoneInfo,
) -> Shift | None:
    """Start the shift at `counter` of the officer of its unit with this code (any case), in
    the unit's day (its `timezone`, else `default_zone`); None when no listed officer of the
    unit has the code."""
    officer = repo.find_officer(session, counter.unit_id, officer_code[:32])
    if officer is None:
        return None
    zone = unit_zone(counter.unit, default_zone)
    return start_shift(session, counter, officer, via=via, now=now, zone=zone)


def end_shift(session: Session, counter: Counter, *, now: datetime) -> bool:
    """End the counter's open shift now; whether there was one."""
    ended = repo.end_shifts(session, counter.id, now=now) > 0
    log.info("event=shift_end counter=%s ended=%s", counter.code, ended)
    return ended
