"""Proposed changes to the webhook's database work, tried without editing the product: each
is a patch applied in a benchmark process only (in-process profiling, or the gunicorn app
`bench.experiments:create_app()`), so that before/after can be measured on the same machine.
None of this is used by the service; the proposals themselves are in docs/benchmarks.md.

- `reuse_loaded_response`: `_write_survey` looks the open response up again by token
  (`get_response_by_token`: a SELECT of survey_responses and one of its answers), although
  `_load` loaded it in the same session a moment earlier. Take it from the session.
- `join_counter_unit`: `get_response` loads counter and unit with two extra SELECTs
  (`selectinload`); a joined load brings them in the same query.
- `joined_answers`: the answers too (one SELECT for the whole survey instead of two).
- `one_conversation_update`: `last_interaction_at` is flushed (autoflush before the next
  query) in one UPDATE and `updated_at` in a second one at commit; setting both at once
  makes it one UPDATE.

    export SIPAS_BENCH_PATCHES=reuse_loaded_response,join_counter_unit,joined_answers,\
        one_conversation_update
    gunicorn --worker-class gthread --workers 2 --threads 8 'bench.experiments:create_app()'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

ALL = ("reuse_loaded_response", "join_counter_unit", "joined_answers", "one_conversation_update")
# what bench/ingest.py's `postgresql+patches` target applies (BENCH_PATCHES overrides it)
RECOMMENDED = ("reuse_loaded_response", "join_counter_unit", "one_conversation_update")
_enabled: set[str] = set()


def apply(names: Iterable[str]) -> list[str]:
    """Enable the named patches (once patched, the functions consult `_enabled`)."""
    wanted = [n.strip() for n in names if n.strip()]
    unknown = [n for n in wanted if n not in ALL]
    if unknown:
        raise ValueError(f"unknown patch(es) {unknown}; known: {', '.join(ALL)}")
    if wanted and not _enabled:
        _install()
    _enabled.update(wanted)
    return wanted


def _install() -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session, joinedload, selectinload

    from storage import repositories as repo
    from storage.models import Conversation, Counter, SurveyResponse

    original_by_token = repo.get_response_by_token
    original_lock = repo.lock_conversation

    def get_response(session: Session, response_id: int) -> SurveyResponse | None:
        if "join_counter_unit" in _enabled:
            counter = joinedload(SurveyResponse.counter).joinedload(Counter.unit)
        else:
            counter = selectinload(SurveyResponse.counter).selectinload(Counter.unit)
        if "joined_answers" in _enabled:
            answers = joinedload(SurveyResponse.answers)
        else:
            answers = selectinload(SurveyResponse.answers)
        response = (
            session.execute(
                select(SurveyResponse)
                .where(SurveyResponse.id == response_id)
                .options(answers, counter)
            )
            .unique()
            .scalar_one_or_none()
        )
        if response is not None and "reuse_loaded_response" in _enabled:
            # The session holds unchanged objects by weak reference only: without a strong
            # one, the row is gone again by the time _write_survey asks for it.
            session.info.setdefault("bench_loaded", {})[response.token] = response
        return response

    def get_response_by_token(session: Session, token: str) -> SurveyResponse | None:
        kept = session.info.get("bench_loaded", {}).get(token)
        return kept if kept is not None else original_by_token(session, token)

    def lock_conversation(session: Session, user_id: str, *, now: datetime) -> Conversation:
        row = original_lock(session, user_id, now=now)
        if "one_conversation_update" in _enabled:
            row.updated_at = now  # flushed with last_interaction_at, set next: one UPDATE
        return row

    repo.get_response = get_response
    repo.get_response_by_token = get_response_by_token
    repo.lock_conversation = lock_conversation


def create_app(*args: Any, **kwargs: Any) -> Any:
    """bot.create_app with the patches named in SIPAS_BENCH_PATCHES applied first, logging
    as `sipas-bot serve` sets it up (one INFO line per event, to stderr)."""
    import logging
    import sys

    from bot import create_app as product_create_app

    apply(os.environ.get("SIPAS_BENCH_PATCHES", "").split(","))
    app = product_create_app(*args, **kwargs)
    logging.basicConfig(
        level=app.extensions["sipas_bot"].settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    return app
