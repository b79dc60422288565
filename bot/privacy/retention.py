"""How long what names a person is kept, and the erasure of one person on request
(docs/privacy.md). Used by the daily job (bot/jobs.py) and `sipas-bot privacy …`.

- A citizen's raw Zalo id (their conversation row and the messages to them) is kept while a
  reply may still be sent: Zalo's 7-day window after their last message (ZALO_WINDOW, whose
  home is the sender). Leaders keep theirs: it is how their reports reach them.
- A delivered or given-up message is kept OUTBOX_RETENTION_DAYS, then deleted.
- Surveys keep only the keyed respondent hash. Surveys stored before the pepper existed carry
  the old unkeyed hash: when the purge drops a conversation, it re-keys that person's surveys
  first (the last moment their id is known).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.privacy.pseudonyms import Pseudonymizer, legacy_respondent_hash
from storage import repositories as repo
from zalo_client.limits import INTERACTION_WINDOW as ZALO_WINDOW

log = logging.getLogger("sipas_bot.privacy")

ERASED_TEXT = "[đã xoá theo yêu cầu]"


@dataclass(frozen=True)
class Retention:
    """How long each kind of personal data is kept."""

    raw_user_id: timedelta
    delivered_message: timedelta
    closed_case_contact: timedelta = timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            raw_user_id=ZALO_WINDOW,
            delivered_message=timedelta(days=settings.outbox_retention_days),
            closed_case_contact=timedelta(days=settings.cases_contact_retention_days),
        )


@dataclass(frozen=True)
class Purged:
    conversations: int
    messages_to_them: int
    delivered_messages: int
    surveys_rekeyed: int


def purge_personal_data(
    session: Session, *, now: datetime, retention: Retention, pseudonyms: Pseudonymizer
) -> Purged:
    """Drop what is past its retention, in the caller's transaction."""
    stale = repo.stale_citizen_conversations(session, seen_before=now - retention.raw_user_id)
    rekeyed = repo.rekey_surveys(
        session, {legacy_respondent_hash(u): pseudonyms.respondent_hash(u) for u in stale}
    )
    conversations, messages_to_them = repo.drop_user_ids(session, stale)
    # A case keeps its author's Zalo id no longer than the conversation: past the window no
    # reply could reach them on Zalo anyway. A phone number goes with the closed case.
    repo.forget_case_user_ids(session, stale)
    repo.purge_case_contacts(session, closed_before=now - retention.closed_case_contact)
    delivered = repo.purge_outbox(session, settled_before=now - retention.delivered_message)
    purged = Purged(conversations, messages_to_them, delivered, rekeyed)
    log.info(
        "event=privacy_purge conversations=%d messages_to_them=%d delivered_messages=%d "
        "surveys_rekeyed=%d",
        purged.conversations,
        purged.messages_to_them,
        purged.delivered_messages,
        purged.surveys_rekeyed,
    )
    return purged


@dataclass(frozen=True)
class Erased:
    user_ids: int
    conversations: int
    messages: int
    surveys_unlinked: int
    comments_deleted: int
    quotes_redacted: int
    leaders_removed: int
    registration_attempts: int
    cases_unlinked: int = 0

    def lines(self) -> list[str]:
        return [
            f"people found: {self.user_ids} Zalo id(s)",
            f"conversations deleted: {self.conversations}",
            f"outbox messages deleted: {self.messages}",
            f"surveys unlinked (ratings kept for the index, linked to nobody): "
            f"{self.surveys_unlinked}",
            f"comments deleted: {self.comments_deleted}",
            f"quotes of those comments removed from digests and leader messages: "
            f"{self.quotes_redacted}",
            f"leader registrations removed (with their messages): {self.leaders_removed}",
            f"registration attempts deleted: {self.registration_attempts}",
            f"cases unlinked (text erased, contact and phone deleted): {self.cases_unlinked}",
        ]


def erase_person(
    session: Session,
    *,
    pseudonyms: Pseudonymizer,
    zalo_user_id: str | None = None,
    pseudonym: str | None = None,
) -> Erased:
    """Remove or unlink everything that names one person, found by Zalo id or by the
    pseudonym shown in logs and listings (a prefix of their respondent hash).

    Their ratings stay, under a random hash that stands for nobody, because the index of
    their unit counts them; what they wrote is deleted, because free text can name them
    (docs/privacy.md explains the choice under Decree 13).
    """
    if (zalo_user_id is None) == (pseudonym is None):
        raise ValueError("give exactly one of zalo_user_id and pseudonym")
    tag: str | None = None
    if zalo_user_id is not None:
        user_ids = {zalo_user_id}
    else:
        tag = (pseudonym or "").strip().lower()
        user_ids = repo.find_user_ids(session, lambda u: pseudonyms.user_tag(u) == tag)
    hashes = {pseudonyms.respondent_hash(u) for u in user_ids}
    hashes |= {legacy_respondent_hash(u) for u in user_ids}
    surveys = repo.surveys_of(session, hashes=hashes, tag=tag)
    comments = repo.unlink_surveys(session, surveys)
    quotes = repo.redact_quotes(session, comments, replacement=ERASED_TEXT)
    leaders = 0
    attempts = 0
    for user_id in user_ids:
        leaders += repo.remove_leader(session, user_id)
        attempts += repo.forget_registration_attempts(session, user_id)
    cases = repo.erase_cases_of(
        session, user_ids=user_ids, hashes=hashes, tag=tag, text=ERASED_TEXT
    )
    conversations, messages = repo.drop_user_ids(session, user_ids)
    erased = Erased(
        user_ids=len(user_ids),
        conversations=conversations,
        messages=messages,
        surveys_unlinked=len(surveys),
        comments_deleted=len(comments),
        quotes_redacted=quotes,
        leaders_removed=leaders,
        registration_attempts=attempts,
        cases_unlinked=cases,
    )
    log.warning(
        "event=privacy_erase people=%d surveys=%d comments=%d leaders=%d",
        erased.user_ids,
        erased.surveys_unlinked,
        erased.comments_deleted,
        erased.leaders_removed,
    )
    return erased
