"""Personal data: dropping raw Zalo ids once no reply can be needed, purging delivered
messages, and erasing (or unlinking) one person's rows. Each function takes a session; none
commits. What is kept and why is bot.privacy's business (docs/privacy.md)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from storage.models import (
    Answer,
    CaseContact,
    CaseReply,
    Conversation,
    Digest,
    InboxEvent,
    Leader,
    LeaderMessage,
    LeaderMessageStatus,
    Officer,
    OutboxMessage,
    OutboxStatus,
    RegistrationFailure,
    ReplyDelivery,
    Shift,
    SurveyResponse,
)
from storage.repositories.cases import case_contact_counts
from storage.repositories.rollup import put_in, take_out

ERASED_HASH_PREFIX = "erased:"


def stale_citizen_conversations(session: Session, *, seen_before: datetime) -> list[str]:
    """Zalo ids of citizens (not leaders: their id is how reports reach them) whose last
    message is older than `seen_before`."""
    last_seen = func.coalesce(Conversation.last_interaction_at, Conversation.updated_at)
    return list(
        session.scalars(
            select(Conversation.user_id).where(
                last_seen < seen_before, Conversation.user_id.not_in(select(Leader.user_id))
            )
        )
    )


def rekey_surveys(session: Session, new_hash_of: Mapping[str, str]) -> int:
    """Replace respondent hashes (old → new); returns how many surveys changed."""
    changed = 0
    for old, new in new_hash_of.items():
        result = session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.respondent_hash == old)
            .values(respondent_hash=new)
        )
        changed += result.rowcount or 0  # type: ignore[attr-defined]
    return changed


def drop_user_ids(session: Session, user_ids: Collection[str]) -> tuple[int, int]:
    """Delete the conversations of `user_ids`, every outbox message to them (linked leader
    messages keep their own text) and their inbox events; returns (conversations, outbox
    messages) deleted."""
    if not user_ids:
        return 0, 0
    ids = list(user_ids)
    outbox_ids = select(OutboxMessage.id).where(OutboxMessage.user_id.in_(ids))
    for model in (LeaderMessage, CaseReply):
        session.execute(
            update(model)
            .where(model.outbox_message_id.in_(outbox_ids))
            .values(outbox_message_id=None)
        )
    messages = session.execute(delete(OutboxMessage).where(OutboxMessage.user_id.in_(ids)))
    # Events not run yet, or given up, still hold what they said (a done one holds no id).
    session.execute(delete(InboxEvent).where(InboxEvent.user_id.in_(ids)))
    conversations = session.execute(delete(Conversation).where(Conversation.user_id.in_(ids)))
    return conversations.rowcount or 0, messages.rowcount or 0  # type: ignore[attr-defined]


def purge_outbox(session: Session, *, settled_before: datetime) -> int:
    """Delete sent and dead messages settled (sent, or created when never sent) before
    `settled_before`, but none a leader message still waits on; returns how many."""
    waited_on = select(LeaderMessage.outbox_message_id).where(
        LeaderMessage.status == LeaderMessageStatus.QUEUED,
        LeaderMessage.outbox_message_id.is_not(None),
    )
    reply_waits = select(CaseReply.outbox_message_id).where(
        CaseReply.delivery == ReplyDelivery.QUEUED, CaseReply.outbox_message_id.is_not(None)
    )
    old = select(OutboxMessage.id).where(
        OutboxMessage.status.in_(("sent", "dead")),
        func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at) < settled_before,
        OutboxMessage.id.not_in(waited_on),
        OutboxMessage.id.not_in(reply_waits),
    )
    ids = list(session.scalars(old))
    if not ids:
        return 0
    for model in (LeaderMessage, CaseReply):
        session.execute(
            update(model).where(model.outbox_message_id.in_(ids)).values(outbox_message_id=None)
        )
    session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    return len(ids)


def surveys_of(session: Session, *, hashes: Collection[str], tag: str | None) -> list[int]:
    """Ids of the surveys stored under any of `hashes`, or whose hash starts with `tag`."""
    condition: ColumnElement[bool] = SurveyResponse.respondent_hash.in_(list(hashes))
    if tag:
        condition = condition | SurveyResponse.respondent_hash.startswith(tag, autoescape=True)
    return list(session.scalars(select(SurveyResponse.id).where(condition)))


def unlink_surveys(session: Session, response_ids: Sequence[int]) -> list[str]:
    """Give each survey a random respondent hash that stands for nobody and delete its
    free-text answers; returns the deleted texts (to take them out of messages too)."""
    if not response_ids:
        return []
    texts = list(
        session.scalars(
            select(Answer.text).where(
                Answer.response_id.in_(response_ids), Answer.text.is_not(None)
            )
        )
    )
    # A free-text answer is in no tally, but a rated item may carry a typed text too: the
    # surveys leave the roll-up and come back as they are left.
    take_out(session, response_ids)
    session.execute(
        delete(Answer).where(Answer.response_id.in_(response_ids), Answer.text.is_not(None))
    )
    put_in(session, response_ids, default_zone=None)
    for response_id in response_ids:
        session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.id == response_id)
            .values(respondent_hash=ERASED_HASH_PREFIX + secrets.token_hex(16))
        )
    session.execute(
        update(Conversation)
        .where(Conversation.open_response_id.in_(response_ids))
        .values(open_response_id=None)
    )
    return [t for t in texts if t]


def redact_quotes(session: Session, texts: Collection[str], *, replacement: str) -> int:
    """Replace `texts` wherever a digest, a leader message or a queued message quotes them;
    returns how many rows changed."""
    changed = 0
    for text in {t for t in texts if len(t) >= 3}:
        for model in (Digest, LeaderMessage):
            result = session.execute(
                update(model)
                .where(model.text.contains(text, autoescape=True))
                .values(text=func.replace(model.text, text, replacement))
            )
            changed += result.rowcount or 0  # type: ignore[attr-defined]
        for message in session.scalars(select(OutboxMessage)):
            body_text = str(message.body.get("text", ""))
            if text in body_text:
                message.body = {**message.body, "text": body_text.replace(text, replacement)}
                changed += 1
    return changed


def forget_registration_attempts(session: Session, user_id: str) -> int:
    result = session.execute(
        delete(RegistrationFailure).where(RegistrationFailure.user_id == user_id)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def find_user_ids(session: Session, matches: Callable[[str], bool]) -> set[str]:
    """Every Zalo id held in conversations, the outbox, the inbox, the leaders or case
    contacts, for which `matches(user_id)` is true (a scan: erasure by pseudonym only)."""
    found: set[str] = set()
    for column in (
        Conversation.user_id,
        OutboxMessage.user_id,
        InboxEvent.user_id,
        Leader.user_id,
        CaseContact.user_id,
    ):
        found |= {u for u in session.scalars(select(column).distinct()) if u and matches(u)}
    return found


def row_counts(session: Session) -> dict[str, int]:
    """How many rows of each kind that holds personal data, for `privacy report`."""
    counts = {
        "conversations": select(func.count()).select_from(Conversation),
        "outbox_messages": select(func.count()).select_from(OutboxMessage),
        "outbox_pending": select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING),
        "survey_responses": select(func.count()).select_from(SurveyResponse),
        "comments": select(func.count()).select_from(Answer).where(Answer.text.is_not(None)),
        "leaders": select(func.count()).select_from(Leader),
        "leader_messages": select(func.count()).select_from(LeaderMessage),
        "registration_failures": select(func.count()).select_from(RegistrationFailure),
        "officers": select(func.count()).select_from(Officer),
        "shifts": select(func.count()).select_from(Shift),
    }
    counted = {name: int(session.scalar(query) or 0) for name, query in counts.items()}
    return {**counted, **case_contact_counts(session)}


def oldest_conversation(session: Session) -> datetime | None:
    last_seen = func.coalesce(Conversation.last_interaction_at, Conversation.updated_at)
    value: datetime | None = session.scalar(select(func.min(last_seen)))
    return value


def remove_leader(session: Session, user_id: str) -> int:
    """Delete a leader, their subscriptions and the messages sent to them; returns 1 or 0."""
    leader = session.scalar(select(Leader).where(Leader.user_id == user_id))
    if leader is None:
        return 0
    session.execute(delete(LeaderMessage).where(LeaderMessage.leader_id == leader.id))
    session.delete(leader)  # its subscriptions go with it (cascade)
    session.flush()
    return 1
