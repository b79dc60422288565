"""Leaders in the chat: `DANGKY <code>` subscribes to a unit's digests and alerts,
`HUYDANGKY [<code>]` unsubscribes, `DANGNHAP` answers with a one-time sign-in link to the
officials' console, and a tap on a digest's or alert's "Đã nhận" is recorded (for an alert,
as the console's acknowledgement is: bot/conversation/acknowledgements.py).

These run before the survey engine (they are not survey answers), in the caller's
transaction, while the user's conversation row is locked: concurrent events of one user are
serialised, which is also what makes the per-account wrong-code count exact.

Guessing is limited three ways, all counted in the database (docs/leaders.md): per account
(5 wrong codes an hour), per unit across all accounts (10 wrong codes naming the unit in an
hour lock its registration for a day) and in all (30 wrong codes an hour lock every unit's
registration for an hour). A lockout is logged at ERROR for the operator and listed by
`sipas-bot leaders list`. While locked, DANGKY is refused without comparing the code, so a
right code cannot be told from a wrong one.

Only the compact words are commands (`DANGKY`, `HUYDANGKY`, in any case, with or without
diacritics): "đăng ký" with a space is everyday Vietnamese ("đăng ký khai sinh") and may well be
a citizen's comment.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.conversation.acknowledgements import acknowledge_alert
from bot.delivery.acks import AckKind, parse_ack
from bot.delivery.sign_in_links import SignInLinks
from bot.privacy import Pseudonymizer
from bot.registration_codes import named_unit_code
from storage import repositories as repo
from storage.models import LeaderMessage, Unit
from storage.repositories import LockedConversation
from survey_flow.matching import fold
from survey_flow.texts import Texts, texts_for

log = logging.getLogger("sipas_bot.leaders")

MAX_WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(hours=1)
MAX_WRONG_CODES_PER_UNIT = 10
UNIT_LOCKOUT = timedelta(hours=24)
MAX_WRONG_CODES_IN_ALL = 30
GLOBAL_LOCKOUT = timedelta(hours=1)

_REGISTER = re.compile(r"^dangky(?:\s+(\S+))?$")
_UNREGISTER = re.compile(r"^huydangky(?:\s+(\S+))?$")
_SIGN_IN = re.compile(r"^dangnhap$")


class CommandKind(StrEnum):
    REGISTER = "register"
    UNREGISTER = "unregister"
    SIGN_IN = "sign_in"
    ACK_DIGEST = "ack_digest"
    ACK_MESSAGE = "ack_message"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    argument: str | None = None


def parse_command(text: str) -> Command | None:
    """The leader command in a text, or None when the text is something else."""
    if ack := parse_ack(text):
        kind = CommandKind.ACK_DIGEST if ack.kind is AckKind.DIGEST else CommandKind.ACK_MESSAGE
        return Command(kind, str(ack.target_id))
    folded = fold(text.strip())
    if match := _REGISTER.match(folded):
        return Command(CommandKind.REGISTER, match.group(1))
    if match := _UNREGISTER.match(folded):
        return Command(CommandKind.UNREGISTER, match.group(1))
    if _SIGN_IN.match(folded):
        return Command(CommandKind.SIGN_IN)
    return None


def same_code(secret: str | None, given: str) -> bool:
    """Whether a typed code is the unit's registration code (case and diacritics aside)."""
    if not secret:
        return False
    return hmac.compare_digest(fold(secret).encode(), fold(given).encode())


def _names(units: Sequence[Unit]) -> str:
    return ", ".join(unit.name for unit in sorted(units, key=lambda u: u.code))


class LeaderCommands:
    """Answers leader commands; `handle` returns the reply bodies, or None for other texts."""

    def __init__(
        self,
        texts: Mapping[str, Texts],
        pseudonyms: Pseudonymizer,
        *,
        links: SignInLinks | None = None,
    ) -> None:
        self.texts = texts
        self.pseudonyms = pseudonyms
        self.links = links

    def handle(
        self, session: Session, row: LockedConversation, text: str, *, now: datetime
    ) -> list[dict[str, Any]] | None:
        command = parse_command(text)
        if command is None:
            return None
        t = texts_for(self.texts, row.language)
        reply: str | None
        if command.kind is CommandKind.REGISTER:
            reply = self._register(session, row.user_id, command.argument, t, now, oa=row.oa_id)
        elif command.kind is CommandKind.UNREGISTER:
            reply = self._unregister(session, row.user_id, command.argument, t, now)
        elif command.kind is CommandKind.SIGN_IN:
            reply = self._sign_in(session, row.user_id, t, now)
        else:
            reply = self._acknowledge(session, row.user_id, command, t, now)
        return [] if reply is None else [{"text": reply, "buttons": []}]

    def _register(
        self,
        session: Session,
        user_id: str,
        code: str | None,
        t: Texts,
        now: datetime,
        *,
        oa: str,
    ) -> str:
        if code is None:
            return t("leader_code_missing")
        tag = self.pseudonyms.user_tag(user_id)
        failures = repo.registration_failures_since(session, user_id, since=now - WRONG_CODE_WINDOW)
        if failures >= MAX_WRONG_CODES:
            # Refused without comparing: the answer must not tell a right code from a wrong one.
            log.warning("event=leader_register outcome=rate_limited user=%s", tag)
            return t("leader_rate_limited")
        candidates = repo.units_with_registration_code(session)
        named = named_unit_code(code)
        target = next((u for u in candidates if fold(u.code) == named), None)
        lockout = repo.active_lockout(session, unit_id=None, now=now) or (
            repo.active_lockout(session, unit_id=target.id, now=now) if target else None
        )
        if lockout is not None:
            log.warning(
                "event=leader_register outcome=locked user=%s unit=%s",
                tag,
                target.code if target else "-",
            )
            # A unit's lockout lasts a day, the one of every unit an hour: say which.
            hours = math.ceil((lockout.locked_until - now) / timedelta(hours=1))
            return t("leader_registration_locked", hours=hours)
        # A leader reads their digests in the chat of the OA they registered on: only the
        # units of that OA (with many OAs, another OA's code counts as a wrong one).
        units = [u for u in candidates if same_code(u.registration_code, code) and u.oa_key == oa]
        if not units:
            self._wrong_code(session, user_id, target, failures, now)
            return t("leader_code_wrong")
        leader = repo.get_or_create_leader(session, user_id, now=now)
        added = [
            unit
            for unit in units
            if repo.subscribe(session, leader, unit, now=now, pending=unit.leader_approval)
        ]
        pending = [unit for unit in added if unit.leader_approval]
        log.info(
            "event=leader_register outcome=%s user=%s units=%s",
            "pending" if pending else "subscribed" if added else "already",
            tag,
            ",".join(u.code for u in units),
        )
        if not added:
            return t("leader_already_registered", units=_names(units))
        if pending:
            return t("leader_pending_approval", units=_names(pending))
        return t("leader_registered", units=_names(added))

    def _wrong_code(
        self,
        session: Session,
        user_id: str,
        target: Unit | None,
        failures: int,
        now: datetime,
    ) -> None:
        """Count a wrong code, and close registration when too many came from all accounts
        (for the unit it named, or for every unit)."""
        repo.record_registration_failure(
            session, user_id, unit_id=target.id if target else None, now=now
        )
        log.warning(
            "event=leader_register outcome=wrong_code user=%s unit=%s failures=%d",
            self.pseudonyms.user_tag(user_id),
            target.code if target else "-",
            failures + 1,
        )
        since = now - WRONG_CODE_WINDOW
        if target is not None:
            on_unit = repo.all_registration_failures_since(session, since=since, unit_id=target.id)
            if on_unit >= MAX_WRONG_CODES_PER_UNIT:
                repo.add_lockout(
                    session, unit_id=target.id, failures=on_unit, now=now, until=now + UNIT_LOCKOUT
                )
                log.error(
                    "event=registration_locked scope=unit unit=%s failures=%d hours=%d "
                    "action=operator_check",
                    target.code,
                    on_unit,
                    UNIT_LOCKOUT // timedelta(hours=1),
                )
        in_all = repo.all_registration_failures_since(session, since=since)
        if in_all >= MAX_WRONG_CODES_IN_ALL:
            repo.add_lockout(
                session, unit_id=None, failures=in_all, now=now, until=now + GLOBAL_LOCKOUT
            )
            log.error(
                "event=registration_locked scope=all failures=%d hours=%d action=operator_check",
                in_all,
                GLOBAL_LOCKOUT // timedelta(hours=1),
            )

    def _unregister(
        self, session: Session, user_id: str, code: str | None, t: Texts, now: datetime
    ) -> str:
        leader = repo.find_leader(session, user_id)
        if leader is None or not leader.subscriptions:
            return t("leader_not_registered")
        unit_ids: list[int] | None = None
        if code is not None:
            # The unit's public code works too: a leader leaving needs no secret.
            unit_ids = [
                s.unit_id
                for s in leader.subscriptions
                if same_code(s.unit.registration_code, code) or fold(s.unit.code) == fold(code)
            ]
            if not unit_ids:
                return t("leader_unsubscribe_unknown")
        dropped = repo.unsubscribe(session, leader, unit_ids, now=now)
        log.info(
            "event=leader_unregister user=%s units=%s",
            self.pseudonyms.user_tag(user_id),
            ",".join(u.code for u in dropped),
        )
        return t("leader_unsubscribed", units=_names(dropped))

    def _sign_in(self, session: Session, user_id: str, t: Texts, now: datetime) -> str:
        leader = repo.find_leader(session, user_id)
        if leader is None or not leader.subscriptions:
            return t("leader_not_registered")
        if self.links is None:
            return t("leader_sign_in_unavailable")
        url = self.links.for_chat(session, leader.id, now=now)
        log.info("event=leader_sign_in_link user=%s", self.pseudonyms.user_tag(user_id))
        minutes = int(self.links.chat_lifetime.total_seconds() // 60)
        return t("leader_sign_in_link", url=url, minutes=minutes)

    def _acknowledge(
        self, session: Session, user_id: str, command: Command, t: Texts, now: datetime
    ) -> str | None:
        assert command.argument is not None
        message: LeaderMessage | None
        if command.kind is CommandKind.ACK_DIGEST:
            message = repo.digest_message(session, int(command.argument), user_id)
        else:
            message = repo.leader_message(session, int(command.argument), user_id)
        if message is None:
            log.info("event=leader_ack outcome=unknown user=%s", self.pseudonyms.user_tag(user_id))
            return None
        first = message.acknowledged_at is None
        if message.alert_id is not None:
            acknowledge_alert(session, message.alert_id, leader=message.leader, now=now)
        elif first:
            message.acknowledged_at = now
        log.info(
            "event=leader_ack outcome=%s user=%s message=%d",
            "recorded" if first else "again",
            self.pseudonyms.user_tag(user_id),
            message.id,
        )
        return t("leader_ack_thanks") if first else None
