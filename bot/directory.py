"""Units and counters looked up by the codes operators type; an unknown code is an
`UnknownCode` naming it, said the same way everywhere."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.errors import UnknownCode
from storage import repositories as repo
from storage.models import Counter, Unit


def require_unit(session: Session, code: str) -> Unit:
    unit = repo.find_unit(session, code)
    if unit is None:
        raise UnknownCode(f"no unit has the code {code.upper()} (see `sipas-bot units list`)")
    return unit


def require_counter(session: Session, code: str, *, unit_code: str | None = None) -> Counter:
    """The counter, checked to belong to `unit_code` when one is given."""
    counter = repo.find_counter(session, code)
    if counter is None:
        raise UnknownCode(f"no counter has the code {code.upper()} (see `sipas-bot units list`)")
    if unit_code and counter.unit.code != unit_code.upper():
        raise UnknownCode(
            f"counter {counter.code} belongs to unit {counter.unit.code}, not {unit_code.upper()}"
        )
    return counter
