"""The OA's token pair row. Each function takes a session; none commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import (
    ZaloToken,
)
from storage.repositories._dialect import dialect_insert


def insert_token_pair_if_missing(
    session: Session, *, access_token: str, refresh_token: str, now: datetime
) -> bool:
    """Store the first token pair unless one exists; safe when processes start together."""
    statement = (
        dialect_insert(session, ZaloToken)
        .values(
            id=1,
            access_token=access_token,
            refresh_token=refresh_token,
            access_expires_at=None,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(ZaloToken.id)
    )
    return session.execute(statement).first() is not None
