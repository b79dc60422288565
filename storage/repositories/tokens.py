"""The OAs' token pair rows (one per OA). Each function takes a session; none commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import (
    ENVIRONMENT_OA,
    ZaloToken,
)
from storage.repositories._dialect import dialect_insert


def token_row_id(session: Session, oa: str) -> int:
    """The id a new pair of `oa` gets: 1 for the environment's OA (as before there were many),
    else the next free one (ids are set, not generated, so row 1 stays the environment's)."""
    if oa == ENVIRONMENT_OA:
        return 1
    return max(int(session.scalar(select(func.max(ZaloToken.id))) or 0), 1) + 1


def token_rows(session: Session, oas: Collection[str]) -> dict[str, ZaloToken]:
    """The stored pairs of these OAs, by OA key, in one query (an OA without one is left out)."""
    if not oas:
        return {}
    rows = session.scalars(select(ZaloToken).where(ZaloToken.oa_id.in_(list(oas))))
    return {row.oa_id: row for row in rows}


def insert_token_pair_if_missing(
    session: Session,
    *,
    access_token: str,
    refresh_token: str,
    now: datetime,
    oa: str = ENVIRONMENT_OA,
) -> bool:
    """Store an OA's first token pair unless it has one; safe when processes start together
    (a second insert meets the unique OA, or the id the first one took, and does nothing)."""
    for _ in range(3):
        statement = (
            dialect_insert(session, ZaloToken)
            .values(
                id=token_row_id(session, oa),
                oa_id=oa,
                access_token=access_token,
                refresh_token=refresh_token,
                access_expires_at=None,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(ZaloToken.id)
        )
        if session.execute(statement).first() is not None:
            return True
        if session.scalar(select(ZaloToken.id).where(ZaloToken.oa_id == oa)) is not None:
            return False
        # Another OA's first pair took the id meanwhile: try the next one.
    return False
