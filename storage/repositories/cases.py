"""Cases: citizens' feedback from receipt to closing, their replies, audit trail and contacts.
Each function takes a session; none commits. The rules (kinds, deadlines, who may do what)
are bot.cases'."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    ENVIRONMENT_OA,
    Case,
    CaseAction,
    CaseContact,
    CaseEvent,
    CaseReply,
    CaseSequence,
    CaseStatus,
    Channel,
    Conversation,
    PaperForm,
    ReplyDelivery,
    SurveyResponse,
    Unit,
)
from storage.repositories._dialect import dialect_insert

REFERENCE_PREFIX = "PA"


def format_reference(year: int, number: int) -> str:
    """`PA-2026-000123`: the year the case was received and its number in that year."""
    return f"{REFERENCE_PREFIX}-{year}-{number:06d}"


def allocate_case_number(session: Session, year: int) -> int:
    """The next number of `year`, taken by one UPDATE of the year's row.

    The row is created once (INSERT … ON CONFLICT DO NOTHING: two processes creating it at
    once make one row); the UPDATE … RETURNING then holds the row's lock (PostgreSQL) or the
    database's write lock (SQLite) until the turn commits, so no two cases share a number.
    """
    session.execute(
        dialect_insert(session, CaseSequence)
        .values(year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    number = session.execute(
        update(CaseSequence)
        .where(CaseSequence.year == year)
        .values(last_number=CaseSequence.last_number + 1)
        .returning(CaseSequence.last_number)
    ).scalar_one()
    return int(number)


@dataclass(frozen=True)
class NewCase:
    """What a new case is opened with (the reference and deadline are the caller's)."""

    unit_id: int | None
    counter_id: int | None
    response_id: int | None
    source: str
    kind: str
    text: str
    scores: dict[str, Any] | None
    respondent_hash: str
    language: str
    user_id: str | None


def insert_case(
    session: Session, new: NewCase, *, reference: str, due_on: date, now: datetime
) -> Case | None:
    """Store a case, its contact and the first line of its trail; None when a case of the
    same survey exists already (a survey opens one case at most, whoever gets there first)."""
    if new.response_id is not None:
        inserted = session.execute(
            dialect_insert(session, Case)
            .values(**_case_values(new, reference, due_on, now))
            .on_conflict_do_nothing(index_elements=["response_id"])
            .returning(Case.id)
        ).scalar_one_or_none()
        if inserted is None:
            return None
        case = session.get(Case, inserted)
        assert case is not None
    else:
        case = Case(**_case_values(new, reference, due_on, now))
        session.add(case)
        session.flush()
    session.add(CaseContact(case_id=case.id, user_id=new.user_id, phone=None, updated_at=now))
    add_case_event(
        session, case, actor="citizen", action=CaseAction.OPENED, detail=new.source, at=now
    )
    return case


def _case_values(new: NewCase, reference: str, due_on: date, now: datetime) -> dict[str, Any]:
    return {
        "reference": reference,
        "unit_id": new.unit_id,
        "counter_id": new.counter_id,
        "response_id": new.response_id,
        "source": new.source,
        "kind": new.kind,
        "text": new.text,
        "scores": new.scores,
        "respondent_hash": new.respondent_hash,
        "language": new.language,
        "status": CaseStatus.NEW.value,
        "received_at": now,
        "due_on": due_on,
        "undeliverable": False,
        "updated_at": now,
    }


def add_case_event(
    session: Session,
    case: Case,
    *,
    actor: str,
    action: CaseAction,
    detail: str | None = None,
    at: datetime,
) -> None:
    session.add(CaseEvent(case_id=case.id, at=at, actor=actor, action=action.value, detail=detail))


def find_case(session: Session, reference: str, *, for_update: bool = False) -> Case | None:
    """A case by its reference, with its unit, trail and replies."""
    query = (
        select(Case)
        .where(Case.reference == reference)
        .options(selectinload(Case.events), selectinload(Case.replies), selectinload(Case.unit))
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def list_cases(
    session: Session,
    *,
    unit_id: int | None = None,
    statuses: Collection[str] | None = None,
    due_before: date | None = None,
    unit_ids: Collection[int] | None = None,
    kinds: Collection[str] | None = None,
    counter_id: int | None = None,
    received_from: datetime | None = None,
    received_before: datetime | None = None,
    reference: str | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> Sequence[Case]:
    """Cases, oldest first (or newest first), filtered by unit (`unit_ids`: only these units'
    cases, None: any case, with or without a unit), status, kind, counter, a due date before
    `due_before`, receipt in [received_from, received_before) and reference."""
    order = (
        (Case.received_at.desc(), Case.id.desc()) if newest_first else (Case.received_at, Case.id)
    )
    query = (
        select(Case).options(selectinload(Case.unit), selectinload(Case.counter)).order_by(*order)
    )
    if unit_id is not None:
        query = query.where(Case.unit_id == unit_id)
    if unit_ids is not None:
        query = query.where(Case.unit_id.in_(list(unit_ids)))
    if statuses:
        query = query.where(Case.status.in_(list(statuses)))
    if kinds:
        query = query.where(Case.kind.in_(list(kinds)))
    if counter_id is not None:
        query = query.where(Case.counter_id == counter_id)
    if due_before is not None:
        query = query.where(Case.due_on < due_before)
    if received_from is not None:
        query = query.where(Case.received_at >= received_from)
    if received_before is not None:
        query = query.where(Case.received_at < received_before)
    if reference is not None:
        query = query.where(Case.reference == reference)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def case_of_response(
    session: Session, response_id: int, *, for_update: bool = False
) -> Case | None:
    """The case a survey opened, if any (locked for the caller's change with `for_update`)."""
    query = select(Case).where(Case.response_id == response_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def case_references_of(session: Session, response_ids: Collection[int]) -> dict[int, str]:
    """The references of the cases these surveys opened: response id → reference."""
    if not response_ids:
        return {}
    rows = session.execute(
        select(Case.response_id, Case.reference).where(Case.response_id.in_(list(response_ids)))
    ).all()
    return {row[0]: row[1] for row in rows if row[0] is not None}


@dataclass(frozen=True)
class CaseOrigin:
    """Where a case's survey was answered: its channel (None: no survey, a chat message),
    and the number of its paper form while the form stays entered."""

    channel: Channel | None
    paper_number: int | None


def case_origin(session: Session, case: Case) -> CaseOrigin:
    if case.response_id is None:
        return CaseOrigin(None, None)
    row = session.execute(
        select(SurveyResponse.channel, PaperForm.number)
        .outerjoin(PaperForm, PaperForm.response_id == SurveyResponse.id)
        .where(SurveyResponse.id == case.response_id)
    ).first()
    if row is None:
        return CaseOrigin(None, None)
    return CaseOrigin(Channel(row[0]), row[1])


def latest_place_of(session: Session, respondent_hash: str) -> tuple[int, int] | None:
    """(unit id, counter id) of the citizen's most recent survey, if any."""
    row = session.execute(
        select(SurveyResponse.unit_id, SurveyResponse.counter_id)
        .where(SurveyResponse.respondent_hash == respondent_hash)
        .order_by(SurveyResponse.started_at.desc(), SurveyResponse.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def chat_surveys(
    session: Session, response_ids: Collection[int]
) -> list[tuple[SurveyResponse, str, datetime | None, str]]:
    """These surveys, with their answers, that a chat conversation still points at: each with
    the citizen's Zalo id, their last interaction and the OA they talk to."""
    if not response_ids:
        return []
    rows = session.execute(
        select(
            SurveyResponse,
            Conversation.user_id,
            Conversation.last_interaction_at,
            Conversation.oa_id,
        )
        .join(Conversation, Conversation.open_response_id == SurveyResponse.id)
        .where(SurveyResponse.id.in_(list(response_ids)))
        .options(selectinload(SurveyResponse.answers))
        .order_by(SurveyResponse.id)
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def sole_unit_id(session: Session, *, oa: str | None = None) -> int | None:
    """The unit's id when the deployment has exactly one; with `oa` (a key of
    `Unit.oa_key`), when that OA serves exactly one (a ward on its own OA, beside others)."""
    query = select(Unit.id)
    if oa is not None:
        query = query.where(Unit.oa_id.is_(None) if oa == ENVIRONMENT_OA else Unit.oa_id == oa)
    ids = session.scalars(query.limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def due_days_of(session: Session, unit_id: int) -> int | None:
    value: int | None = session.scalar(select(Unit.case_due_days).where(Unit.id == unit_id))
    return value


def contact_of(session: Session, case_id: int) -> CaseContact | None:
    return session.get(CaseContact, case_id)


def open_cases_of_user(session: Session, user_id: str) -> Sequence[Case]:
    """The cases of this Zalo user not closed yet, newest first."""
    return session.scalars(
        select(Case)
        .join(CaseContact, CaseContact.case_id == Case.id)
        .where(CaseContact.user_id == user_id, Case.status != CaseStatus.CLOSED.value)
        .order_by(Case.id.desc())
    ).all()


def insert_reply(
    session: Session,
    case: Case,
    *,
    reply_key: str,
    author: str,
    text: str,
    delivery: ReplyDelivery,
    now: datetime,
) -> CaseReply | None:
    """Write the reply row once: None when a reply with this key exists (the same reply
    already given, by a retry or another process; the unique key decides)."""
    reply_id = session.execute(
        dialect_insert(session, CaseReply)
        .values(
            case_id=case.id,
            reply_key=reply_key,
            author=author,
            text=text,
            delivery=delivery.value,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["reply_key"])
        .returning(CaseReply.id)
    ).scalar_one_or_none()
    if reply_id is None:
        return None
    return session.get(CaseReply, reply_id)


def replies_awaiting_outbox(session: Session) -> Sequence[CaseReply]:
    """Queued replies, with their outbox message and case, locked (one process settles each)."""
    return session.scalars(
        select(CaseReply)
        .where(CaseReply.delivery == ReplyDelivery.QUEUED.value)
        .options(selectinload(CaseReply.outbox_message), selectinload(CaseReply.case))
        .order_by(CaseReply.id)
        .with_for_update(skip_locked=True)
    ).all()


def cases_past_due(session: Session, *, before: date) -> Sequence[Case]:
    """Open cases (new or in progress) due before `before`, not yet alerted, with their unit."""
    return session.scalars(
        select(Case)
        .where(
            Case.status.in_((CaseStatus.NEW.value, CaseStatus.IN_PROGRESS.value)),
            Case.due_on < before,
            Case.overdue_alerted_at.is_(None),
            Case.unit_id.is_not(None),
        )
        .options(selectinload(Case.unit))
        .order_by(Case.id)
        .with_for_update(skip_locked=True)
    ).all()


def cases_received(
    session: Session, *, unit_ids: Collection[int] | None, start: datetime, end: datetime
) -> Sequence[Case]:
    """The cases received in [start, end), of these units (None: all); a case withdrawn
    with its survey (a paper form undone: it was never the citizen's) is not one."""
    withdrawn = select(CaseEvent.id).where(
        CaseEvent.case_id == Case.id, CaseEvent.action == CaseAction.WITHDRAWN.value
    )
    query = select(Case).where(
        Case.received_at >= start, Case.received_at < end, ~withdrawn.exists()
    )
    if unit_ids is not None:
        query = query.where(Case.unit_id.in_(list(unit_ids)))
    return session.scalars(query.order_by(Case.id)).all()


def count_overdue_cases(session: Session, *, unit_ids: Collection[int] | None, before: date) -> int:
    """How many cases of these units (None: all) are open (new or in progress) and due
    before `before`."""
    query = (
        select(func.count())
        .select_from(Case)
        .where(
            Case.status.in_((CaseStatus.NEW.value, CaseStatus.IN_PROGRESS.value)),
            Case.due_on < before,
        )
    )
    if unit_ids is not None:
        query = query.where(Case.unit_id.in_(list(unit_ids)))
    return int(session.scalar(query) or 0)


def open_cases_of_unit(session: Session, unit_id: int) -> Sequence[Case]:
    return session.scalars(
        select(Case)
        .where(
            Case.unit_id == unit_id,
            Case.status.in_((CaseStatus.NEW.value, CaseStatus.IN_PROGRESS.value)),
        )
        .order_by(Case.due_on, Case.id)
    ).all()


# --- personal data -------------------------------------------------------------------------


def forget_case_user_ids(session: Session, user_ids: Collection[str]) -> int:
    """Drop the Zalo ids of these users from case contacts (their window has closed)."""
    if not user_ids:
        return 0
    result = session.execute(
        update(CaseContact).where(CaseContact.user_id.in_(list(user_ids))).values(user_id=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def purge_case_contacts(session: Session, *, closed_before: datetime) -> int:
    """Delete the contacts (Zalo id, phone) of cases closed before `closed_before`, and those
    left with neither; returns how many."""
    closed = select(Case.id).where(Case.closed_at < closed_before)
    result = session.execute(
        delete(CaseContact).where(
            CaseContact.case_id.in_(closed)
            | (CaseContact.user_id.is_(None) & CaseContact.phone.is_(None))
        )
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def erase_cases_of(
    session: Session,
    *,
    user_ids: Collection[str],
    hashes: Collection[str],
    tag: str | None,
    text: str,
) -> int:
    """Unlink the cases of one person: their contacts deleted, their texts replaced by
    `text`, their respondent hash by one that stands for nobody; returns how many cases."""
    condition: ColumnElement[bool] = Case.respondent_hash.in_(list(hashes))
    if tag:
        condition = condition | Case.respondent_hash.startswith(tag, autoescape=True)
    by_contact = select(CaseContact.case_id).where(CaseContact.user_id.in_(list(user_ids)))
    ids = list(session.scalars(select(Case.id).where(condition | Case.id.in_(by_contact))))
    if not ids:
        return 0
    session.execute(delete(CaseContact).where(CaseContact.case_id.in_(ids)))
    for case_id in ids:
        session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(text=text, respondent_hash="erased:" + secrets.token_hex(16))
        )
    return len(ids)


def case_contact_counts(session: Session) -> dict[str, int]:
    return {
        "case_contacts": int(session.scalar(select(func.count()).select_from(CaseContact)) or 0),
        "case_phones": int(
            session.scalar(
                select(func.count()).select_from(CaseContact).where(CaseContact.phone.is_not(None))
            )
            or 0
        ),
    }
