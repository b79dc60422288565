"""The case desk: opening a case in a citizen's turn, answering its status, and the officials'
work on it (assign, reply, close) that the CLI and the console both call; then following each
reply to the citizen and alerting leaders of overdue cases. Every function works in the
caller's transaction and writes a line of the case's audit trail for each change.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.cases.deadlines import WorkingCalendar
from bot.cases.kinds import KIND_LABELS
from bot.delivery.leader_messages import Post, post_to_leader
from bot.delivery.window import window_closed
from bot.errors import BadArguments, CaseClosed, NoReplyChannel, UnknownCode
from storage import repositories as repo
from storage.models import (
    ENVIRONMENT_OA,
    Case,
    CaseAction,
    CaseKind,
    CaseStatus,
    Channel,
    DeadReason,
    OutboxStatus,
    ReplyDelivery,
)
from storage.repositories import NewCase
from survey_flow.texts import LocalTexts, Texts
from zalo_client.limits import MAX_TEXT_CHARS

log = logging.getLogger("sipas_bot.cases")

STATUS_LABELS: dict[CaseStatus, str] = {
    CaseStatus.NEW: "mới",
    CaseStatus.IN_PROGRESS: "đang xử lý",
    CaseStatus.ANSWERED: "đã trả lời",
    CaseStatus.CLOSED: "đã đóng",
}
# Where a survey answered on a form came from, as a refused reply names it.
FORM_CHANNELS: dict[Channel, str] = {
    Channel.KIOSK: "the counter's tablet",
    Channel.WEB: "the web link",
    Channel.PAPER: "a paper form",
}
_REPLY_ROOM = 1600  # of Zalo's 2000 characters: the rest is the line naming the case
_NAME_MAX = 200


@dataclass(frozen=True)
class CaseRules:
    """A deployment's case rules (CASES_* settings; a unit's `case_due_days` wins)."""

    due_days: int
    overdue_alert_days: int
    calendar: WorkingCalendar
    zone: ZoneInfo


@dataclass(frozen=True)
class ReplyOutcome:
    case: Case
    created: bool  # False: this very reply was given before; nothing was sent again
    delivery: ReplyDelivery


class CaseDesk:
    def __init__(self, rules: CaseRules, texts: LocalTexts, *, email_ready: bool) -> None:
        self.rules = rules
        self.texts = texts
        self.email_ready = email_ready

    # --- the citizen's side ----------------------------------------------------------------

    def open(self, session: Session, new: NewCase, *, now: datetime) -> Case | None:
        """Open a case with a fresh reference and its deadline; None when its survey opened
        one already."""
        local = now.astimezone(self.rules.zone)
        number = repo.allocate_case_number(session, local.year)
        days = (
            repo.due_days_of(session, new.unit_id) if new.unit_id else None
        ) or self.rules.due_days
        case = repo.insert_case(
            session,
            new,
            reference=repo.format_reference(local.year, number),
            due_on=self.rules.calendar.add_working_days(local.date(), days),
            now=now,
        )
        if case is not None:
            log.info(
                "event=case_opened case=%s unit_id=%s source=%s kind=%s",
                case.reference,
                case.unit_id,
                case.source,
                case.kind,
            )
        return case

    def acknowledgement(self, case: Case) -> dict[str, object]:
        """The message that gives the citizen the reference and offers to be called back."""
        text = self._t(case.language)("case_opened", reference=case.reference)
        return {"text": text, "buttons": []}

    def status_text(
        self, session: Session, reference: str, *, respondent_hash: str, language: str
    ) -> str:
        """What a citizen is told who sends a reference: only their own case's status."""
        t = self._t(language)
        case = repo.find_case(session, reference)
        if case is None or case.respondent_hash != respondent_hash:
            return t("case_unknown", reference=reference)
        return t(
            "case_status",
            reference=case.reference,
            kind=t(f"case_kind_{case.kind}"),
            status=t(f"case_status_{case.status}"),
            due=f"{case.due_on:%d/%m/%Y}",
        )

    def keep_phone(
        self, session: Session, user_id: str, phone: str, *, language: str, now: datetime
    ) -> str | None:
        """Store a phone number the citizen sent on their latest open case; the reply to
        send, or None when they have no open case (the number is then not kept at all)."""
        cases = repo.open_cases_of_user(session, user_id)
        if not cases:
            return None
        case = cases[0]
        contact = repo.contact_of(session, case.id)
        assert contact is not None
        contact.phone, contact.updated_at = phone, now
        repo.add_case_event(session, case, actor="citizen", action=CaseAction.CONTACT_GIVEN, at=now)
        return self._t(language)("case_phone_saved", reference=case.reference)

    # --- the officials' side ---------------------------------------------------------------

    def assign(
        self, session: Session, reference: str, *, to: str, actor: str, now: datetime
    ) -> Case:
        case = self._open_case(session, reference)
        name = _clean_line(to, "the assignee's name")
        case.assignee = name
        if case.status == CaseStatus.NEW:
            case.status = CaseStatus.IN_PROGRESS
        case.updated_at = now
        repo.add_case_event(
            session, case, actor=actor, action=CaseAction.ASSIGNED, detail=name, at=now
        )
        return case

    def reply(
        self,
        session: Session,
        reference: str,
        *,
        text: str,
        author: str,
        now: datetime,
        key: str | None = None,
    ) -> ReplyOutcome:
        """Answer the citizen: the reply row and its outbox message in this one transaction,
        once (the key, by default the case and the text, is unique: a retry, a double click
        or a second worker finds the reply written and sends nothing)."""
        case = self._open_case(session, reference)
        channel = repo.case_origin(session, case).channel
        if channel in FORM_CHANNELS:
            raise NoReplyChannel(
                f"case {case.reference} came from {FORM_CHANNELS[channel]}: no channel to reply"
                " to its citizen; close it with a resolution"
            )
        body = _clean_text(text, "the reply", _REPLY_ROOM)
        author = _clean_line(author, "the author")
        reply_key = key or hashlib.sha256(f"{case.id}\n{body}".encode()).hexdigest()
        reply = repo.insert_reply(
            session,
            case,
            reply_key=reply_key,
            author=author,
            text=body,
            delivery=ReplyDelivery.QUEUED,
            now=now,
        )
        if reply is None:
            return ReplyOutcome(case, False, ReplyDelivery.QUEUED)
        contact = repo.contact_of(session, case.id)
        user_id = contact.user_id if contact else None
        if case.unit is not None:
            oa = case.unit.oa_key
        else:  # answered in the chat it came from (a Zalo user id is one OA's)
            latest = repo.latest_oa_of_user(session, user_id) if user_id else None
            oa = ENVIRONMENT_OA if latest is None else latest
        seen = repo.last_interactions(session, {user_id}, oa=oa).get(user_id) if user_id else None
        if user_id is None or window_closed(seen, now):
            reply.delivery, reply.settled_at = ReplyDelivery.UNDELIVERABLE, now
            self._undeliverable(session, case, now)
        else:
            t = self._t(case.language)
            message = t("case_reply", reference=case.reference, text=body)
            reply.outbox_message_id = repo.enqueue_message(
                session, user_id, {"text": message}, now=now, oa=oa
            )
        case.status = CaseStatus.ANSWERED
        case.answered_at = case.answered_at or now
        case.updated_at = now
        repo.add_case_event(
            session, case, actor=author, action=CaseAction.REPLIED, detail=body, at=now
        )
        log.info("event=case_replied case=%s delivery=%s", case.reference, reply.delivery)
        return ReplyOutcome(case, True, ReplyDelivery(reply.delivery))

    def close(
        self, session: Session, reference: str, *, resolution: str, actor: str, now: datetime
    ) -> Case:
        case = self._open_case(session, reference)
        case.resolution = _clean_text(resolution, "the resolution", MAX_TEXT_CHARS)
        case.status = CaseStatus.CLOSED
        case.closed_at = case.updated_at = now
        repo.add_case_event(
            session,
            case,
            actor=_clean_line(actor, "the actor"),
            action=CaseAction.CLOSED,
            detail=case.resolution,
            at=now,
        )
        return case

    def withdraw(
        self, session: Session, response_id: int, *, actor: str, resolution: str, now: datetime
    ) -> Case | None:
        """Close the case of a survey taken back (a paper form undone by the clerk who entered
        it) with `resolution`; the trail says it was withdrawn. None when the survey opened
        no case or its case is closed already. A withdrawn case leaves the published figures
        (`repo.cases_received`)."""
        case = repo.case_of_response(session, response_id, for_update=True)
        if case is None or case.status == CaseStatus.CLOSED:
            return None
        case.resolution = resolution
        case.status = CaseStatus.CLOSED
        case.closed_at = case.updated_at = now
        repo.add_case_event(
            session, case, actor=actor, action=CaseAction.WITHDRAWN, detail=resolution, at=now
        )
        log.info("event=case_withdrawn case=%s", case.reference)
        return case

    def _open_case(self, session: Session, reference: str) -> Case:
        case = repo.find_case(session, reference.strip().upper(), for_update=True)
        if case is None:
            raise UnknownCode(f"no case has the reference {reference.strip()!r}")
        if case.status == CaseStatus.CLOSED:
            raise CaseClosed(f"case {case.reference} is closed")
        return case

    # --- following replies and deadlines ---------------------------------------------------

    def settle_replies(self, session: Session, *, now: datetime) -> int:
        """Follow queued replies whose outbox message was sent or given up; a reply Zalo's
        window kept from the citizen marks its case undeliverable. Returns how many settled."""
        settled = 0
        for reply in repo.replies_awaiting_outbox(session):
            outbox = reply.outbox_message
            if outbox is not None and outbox.status == OutboxStatus.PENDING:
                continue
            settled += 1
            reply.settled_at = now
            if outbox is None:
                # Purged unsent with the citizen's Zalo id, once their window had closed.
                reply.delivery = ReplyDelivery.UNDELIVERABLE
                self._undeliverable(session, reply.case, now)
            elif outbox.status == OutboxStatus.SENT:
                reply.delivery = ReplyDelivery.SENT
                repo.add_case_event(
                    session, reply.case, actor="zalo", action=CaseAction.REPLY_SENT, at=now
                )
            elif outbox.dead_reason == DeadReason.WINDOW_CLOSED:
                reply.delivery = ReplyDelivery.UNDELIVERABLE
                self._undeliverable(session, reply.case, now)
            else:
                reply.delivery = ReplyDelivery.FAILED
                repo.add_case_event(
                    session,
                    reply.case,
                    actor="zalo",
                    action=CaseAction.REPLY_UNDELIVERABLE,
                    detail=outbox.dead_reason,
                    at=now,
                )
        return settled

    def _undeliverable(self, session: Session, case: Case, now: datetime) -> None:
        case.undeliverable = True
        case.updated_at = now
        repo.add_case_event(
            session,
            case,
            actor="zalo",
            action=CaseAction.REPLY_UNDELIVERABLE,
            detail=DeadReason.WINDOW_CLOSED.value,
            at=now,
        )

    def working_days_late(self, case: Case, today: date) -> int:
        return self.rules.calendar.working_days_between(case.due_on, today)

    def is_overdue(self, case: Case, today: date) -> bool:
        open_ = case.status in (CaseStatus.NEW, CaseStatus.IN_PROGRESS)
        return open_ and case.due_on < today

    def alert_overdue(self, session: Session, *, now: datetime) -> int:
        """Tell the unit's leaders of each case overdue by CASES_OVERDUE_ALERT_DAYS working
        days or more, once per case; returns how many cases were alerted."""
        today = now.astimezone(self.rules.zone).date()
        alerted = 0
        for case in repo.cases_past_due(session, before=today):
            late = self.working_days_late(case, today)
            if late < self.rules.overdue_alert_days or case.unit is None:
                continue
            for leader in repo.subscribed_leaders(session, case.unit.id):
                t = self.texts.of(None)
                subject = t("case_overdue_title", reference=case.reference, unit=case.unit.name)
                text = "\n".join(
                    [
                        subject,
                        t(
                            "case_overdue_body",
                            kind=KIND_LABELS[CaseKind(case.kind)],
                            due=f"{case.due_on:%d/%m/%Y}",
                            days=late,
                            assignee=case.assignee or "—",
                        ),
                    ]
                )
                post = Post("case_overdue", case.unit.id, subject, text, text)
                post_to_leader(session, leader, post, t, email_ready=self.email_ready, now=now)
            case.overdue_alerted_at = now
            repo.add_case_event(
                session,
                case,
                actor="sipas-bot",
                action=CaseAction.OVERDUE_ALERT,
                detail=str(late),
                at=now,
            )
            alerted += 1
        return alerted

    def _t(self, language: str | None) -> Texts:
        return self.texts.of(language)


def _clean_text(text: str, what: str, limit: int) -> str:
    """An official's text as the citizen will read it: no control characters (but line
    breaks), no lone surrogates, trimmed, not empty, not over `limit` characters."""
    kept = "".join(
        ch
        for ch in text.replace("\r\n", "\n")
        if ch == "\n" or (unicodedata.category(ch) not in ("Cc", "Cs", "Cf"))
    ).strip()
    if not kept:
        raise BadArguments(f"{what} is empty")
    if len(kept) > limit:
        raise BadArguments(f"{what} is {len(kept)} characters long; at most {limit} fit")
    return kept


def _clean_line(text: str, what: str) -> str:
    return " ".join(_clean_text(text, what, _NAME_MAX).split())
