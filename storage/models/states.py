"""The stored states: string enums kept as their values in String columns. Compare and assign
the members, never string literals. (Survey states belong to the engine:
survey_flow.engine.SurveyStatus.)"""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent (or to be retried at next_attempt_at)
    SENT = "sent"
    DEAD = "dead"  # given up; `dead_reason` says why


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored by the webhook, its turn not run yet (or to be retried)
    DONE = "done"  # its turn ran (kept while a re-delivery may come, as processed_events)
    DEAD = "dead"  # its turn failed every attempt; logged, the user's later events go on


class DeadReason(StrEnum):
    """Why the sender gave a message up; the e-mail fallback to leaders reads this."""

    WINDOW_CLOSED = "window_closed"  # Zalo's 7-day window (-230/-232, or known beforehand)
    REFUSED = "refused"  # a permanent Zalo error (bad parameter, blocked user, …)
    TOO_OLD = "too_old"  # retried until OUTBOX_MAX_AGE_HOURS
    MAYBE_DELIVERED = "maybe_delivered"  # twice no answer after sending: a third try could copy


class LeaderMessageStatus(StrEnum):
    QUEUED = "queued"  # in the outbox
    SENT = "sent"
    EMAIL_PENDING = "email_pending"
    EMAILING = "emailing"  # claimed by one process
    EMAILED = "emailed"
    UNDELIVERED = "undelivered"


class AlertStatus(StrEnum):
    PENDING = "pending"
    NOTIFIED = "notified"
    HELD = "held"  # over the hourly cap, waiting for the summary
    SUMMARISED = "summarised"
    NO_LEADERS = "no_leaders"


class QuarantineState(StrEnum):
    """Where a survey stands in review (docs/integrity.md): out of the index while HELD or
    REJECTED; NONE (never flagged) and RELEASED (flagged, let in by an operator) count."""

    NONE = "none"
    HELD = "held"
    RELEASED = "released"
    REJECTED = "rejected"


# The review states whose counted surveys are in the index.
QUARANTINE_IN_INDEX = (QuarantineState.NONE, QuarantineState.RELEASED)


class QuarantineRule(StrEnum):
    """Which suspicious pattern held a survey (bot/conversation/quarantine.py)."""

    OUTSIDE_HOURS = "outside_hours"  # started outside the unit's opening hours
    ACCOUNT_SURVEYS = "account_surveys"  # one account, too many counted surveys in a day
    NEW_ACCOUNT_BURST = "new_account_burst"  # a burst at one counter from new accounts


class DigestStatus(StrEnum):
    CLAIMED = "claimed"
    QUEUED = "queued"
    EMPTY = "empty"


class Channel(StrEnum):
    """Where a citizen answered a survey (docs/channels.md); every channel is counted by the
    same rule into the same index."""

    ZALO = "zalo"  # the chat with the Official Account
    KIOSK = "kiosk"  # the tablet paired to the counter
    WEB = "web"  # the web link /s/<code>, in the citizen's browser
    PAPER = "paper"  # a paper form entered by staff


class DeviceKind(StrEnum):
    """What a device paired to a counter is for."""

    DISPLAY = "display"  # shows the counter's rotating code
    KIOSK = "kiosk"  # takes surveys at the counter


class CaseKind(StrEnum):
    """What a citizen's feedback is (docs/cases.md says how it is told)."""

    SUGGESTION = "gop_y"  # góp ý
    COMPLAINT = "phan_anh"  # phản ánh
    RECOMMENDATION = "kien_nghi"  # kiến nghị
    QUESTION = "cau_hoi"  # câu hỏi


class CaseStatus(StrEnum):
    NEW = "moi"  # mới
    IN_PROGRESS = "dang_xu_ly"  # đang xử lý (assigned)
    ANSWERED = "da_tra_loi"  # đã trả lời
    CLOSED = "da_dong"  # đã đóng (resolved, with a resolution)


class CaseSource(StrEnum):
    """What opened a case."""

    COMMENT = "comment"  # a survey's free-text answer
    LOW_RATING = "low_rating"  # a counted survey with a factor rated 1–2, and no comment
    MESSAGE = "message"  # a message to the OA outside a survey
    NOTE = "note"  # a message typed during a survey that answered no question


class CaseAction(StrEnum):
    """One line of a case's audit trail."""

    OPENED = "opened"
    ASSIGNED = "assigned"
    REPLIED = "replied"
    REPLY_SENT = "reply_sent"
    REPLY_UNDELIVERABLE = "reply_undeliverable"
    CLOSED = "closed"
    CONTACT_GIVEN = "contact_given"
    OVERDUE_ALERT = "overdue_alert"
    WITHDRAWN = "withdrawn"  # closed because its survey was taken back (a paper form undone)


class ReplyDelivery(StrEnum):
    QUEUED = "queued"  # in the outbox
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # Zalo's window closed (or the citizen's id is gone)
    FAILED = "failed"  # Zalo refused it for another reason


class ShiftSource(StrEnum):
    """How an officer's shift at a counter was started (docs/channels.md, "Who served the
    citizen")."""

    KIOSK = "kiosk"  # the "Cán bộ" control on the counter's paired tablet
    CONSOLE = "console"  # the counter's page in the console, by a leader or an operator
    API = "api"  # the one-stop case system, POST /api/shifts
