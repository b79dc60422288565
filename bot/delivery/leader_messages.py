"""Getting a digest or an alert to a leader: Zalo while its 7-day window is open, e-mail after.

Zalo refuses a consultation message (-230/-232) to a user whose last interaction is more than
7 days old. Each message to a leader is a `LeaderMessage` row, whose status says where it is:

    queued         in the outbox (linked by outbox_message_id) → sent
                   or, when the sender dead-letters it for the window → email_pending
                   (the leader has an e-mail and SMTP is set) or undelivered
    email_pending  chosen at queue time when the window is known to be closed → emailing
                   (claimed by one process) → emailed; SMTP failures retry, then undelivered
    undelivered    Zalo could not take it and no e-mail could be sent

`LeaderMail.deliver` (settling, then e-mail) runs every minute (bot/jobs.py); the digest
and alert jobs also e-mail right after queuing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.delivery.acks import digest_ack_payload, message_ack_payload
from bot.delivery.mailer import Mailer, MailError, render_html
from bot.delivery.sign_in_links import SignInLinks
from bot.delivery.window import window_closed
from storage import repositories as repo
from storage.models import (
    ENVIRONMENT_OA,
    DeadReason,
    Leader,
    LeaderMessage,
    LeaderMessageStatus,
    OutboxStatus,
    Unit,
)
from survey_flow.texts import LocalTexts, Texts

log = logging.getLogger("sipas_bot.leader_delivery")

MAX_EMAIL_ATTEMPTS = 5
EMAILING_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class Post:
    """What to send one leader, already in their language."""

    kind: str  # digest | alert | alert_summary
    unit_id: int
    subject: str
    text: str
    zalo_text: str
    digest_id: int | None = None
    alert_id: int | None = None
    # The console page the "Xem chi tiết" button opens (signed in), when the console is set up.
    detail_path: str | None = None


def post_to_leader(
    session: Session,
    leader: Leader,
    post: Post,
    t: Texts,
    *,
    email_ready: bool,
    now: datetime,
    links: SignInLinks | None = None,
) -> LeaderMessage:
    """Record the message and queue it on the right channel, in the caller's transaction.
    With `links` and a `detail_path`, the Zalo message also carries a "Xem chi tiết" button
    with a one-time sign-in link to that console page."""
    message = LeaderMessage(
        leader_id=leader.id,
        unit_id=post.unit_id,
        kind=post.kind,
        digest_id=post.digest_id,
        alert_id=post.alert_id,
        subject=post.subject[:300],
        text=post.text,
        status=LeaderMessageStatus.QUEUED,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    # The leader registered in the chat of the unit's OA (DANGKY takes only that OA's units).
    unit = session.get(Unit, post.unit_id)
    oa = unit.oa_key if unit is not None else ENVIRONMENT_OA
    seen = repo.last_interactions(session, {leader.user_id}, oa=oa).get(leader.user_id)
    if window_closed(seen, now):
        message.status = (
            LeaderMessageStatus.EMAIL_PENDING
            if email_ready and leader.email
            else LeaderMessageStatus.UNDELIVERED
        )
        message.last_error = "window closed: no interaction with the OA for 7 days"
        log.info(
            "event=leader_message kind=%s leader=%s channel=%s",
            post.kind,
            leader.id,
            "email" if message.status == LeaderMessageStatus.EMAIL_PENDING else "none",
        )
        return message
    payload = (
        digest_ack_payload(post.digest_id)
        if post.digest_id is not None
        else message_ack_payload(message.id)
    )
    buttons: list[dict[str, str]] = [{"title": t("leader_ack_button"), "payload": payload}]
    if links is not None and post.detail_path is not None:
        url = links.for_button(session, leader.id, next_path=post.detail_path, now=now)
        buttons.append({"title": t("leader_detail_button"), "url": url})
    outbox_id = repo.enqueue_message(
        session, leader.user_id, {"text": post.zalo_text, "buttons": buttons}, now=now, oa=oa
    )
    message.outbox_message_id = outbox_id
    log.info(
        "event=leader_message kind=%s leader=%s channel=zalo outbox_id=%d",
        post.kind,
        leader.id,
        outbox_id,
    )
    return message


def settle_leader_messages(session: Session, *, email_ready: bool, now: datetime) -> int:
    """Follow queued leader messages whose outbox message is sent or dead; returns how many."""
    messages = repo.messages_awaiting_outbox(session)
    for message in messages:
        outbox = message.outbox_message
        assert outbox is not None
        message.updated_at = now
        if outbox.status == OutboxStatus.SENT:
            message.status = LeaderMessageStatus.SENT
            message.delivered_at = outbox.sent_at or now
            continue
        message.last_error = outbox.last_error
        if outbox.dead_reason == DeadReason.WINDOW_CLOSED and email_ready and message.leader.email:
            message.status = LeaderMessageStatus.EMAIL_PENDING
        else:
            message.status = LeaderMessageStatus.UNDELIVERED
        log.warning(
            "event=leader_message_not_on_zalo message=%d leader=%s next=%s reason=%s",
            message.id,
            message.leader_id,
            message.status,
            outbox.last_error,
        )
    return len(messages)


class LeaderMail:
    """E-mail for leaders whom Zalo cannot reach, and the settling of their messages; built
    once by the Runtime. Without SMTP settings (`mailer` None) nothing is e-mailed and
    window-closed messages end as undelivered."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        mailer: Mailer | None,
        texts: LocalTexts,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.session_factory = session_factory
        self.mailer = mailer
        self.texts = texts
        self.clock = clock

    @property
    def ready(self) -> bool:
        return self.mailer is not None

    def deliver(self) -> int:
        """The job: settle what the sender finished, then e-mail what needs it."""
        with self.session_factory.begin() as session:
            settle_leader_messages(session, email_ready=self.ready, now=self.clock())
        return self.send_pending()

    def send_pending(self) -> int:
        """E-mail every leader message waiting for it, each claimed by one process; returns
        how many were e-mailed."""
        if self.mailer is None:
            return 0
        now = self.clock()
        stale = now - EMAILING_LEASE
        with self.session_factory.begin() as session:
            due = repo.emails_due(session, stale_before=stale)
        return sum(self._send_one(message_id, stale, now) for message_id in due)

    def _send_one(self, message_id: int, stale: datetime, now: datetime) -> bool:
        assert self.mailer is not None
        with self.session_factory.begin() as session:
            if not repo.claim_email(session, message_id, stale_before=stale, now=now):
                return False
            message = session.get(LeaderMessage, message_id)
            assert message is not None
            leader = message.leader
            language = repo.conversation_languages(session, {leader.user_id}).get(leader.user_id)
            t = self.texts.of(language)
            address, subject = leader.email, message.subject
            body = f"{message.text}\n\n{t('leader_email_note')}"
            attempts = message.attempts
        error: str | None = None
        if address:
            try:
                self.mailer.send(address, subject, body, render_html(subject, body))
            except MailError as exc:
                error = str(exc)
        else:
            error = "the leader has no e-mail address"
        with self.session_factory.begin() as session:
            message = session.get(LeaderMessage, message_id)
            assert message is not None
            message.updated_at = self.clock()
            if error is None:
                message.status = LeaderMessageStatus.EMAILED
                message.delivered_at = message.updated_at
                message.last_error = None
                log.info("event=leader_emailed message=%d kind=%s", message_id, message.kind)
                return True
            retry = attempts < MAX_EMAIL_ATTEMPTS and address is not None
            message.status = (
                LeaderMessageStatus.EMAIL_PENDING if retry else LeaderMessageStatus.UNDELIVERED
            )
            message.last_error = error
            log.warning(
                "event=leader_email_failed message=%d attempts=%d next=%s error=%s",
                message_id,
                attempts,
                message.status,
                error,
            )
            return False
