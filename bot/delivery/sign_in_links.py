"""One-time sign-in links to the officials' console for leaders registered in the chat.

A link is `<PUBLIC_BASE_URL>/console/login/link?t=<token>`: 256 random bits, of which only the
SHA-256 is stored, bound to one leader, valid for a limited time and used once (the console
consumes it with one UPDATE, see storage.repositories.console). Two lifetimes:

- the reply to DANGNHAP: CONSOLE_LINK_MINUTES (a few minutes; the leader asked just now);
- the "Xem chi tiết" button of a digest or an alert: CONSOLE_BUTTON_LINK_HOURS, because the
  button's URL is fixed when the message is queued and the leader may read it hours later.
  Once used or expired it leads to a page saying to send DANGNHAP (docs/console.md).

Opening a link shows a page with one button that signs in (a POST): a link previewer that
fetches the URL does not use the link up.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Settings
from storage import repositories as repo

LINK_PATH = "/console/login/link"


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def overview_path(unit_code: str) -> str:
    return f"/console/units/{unit_code}"


def alerts_path(unit_code: str) -> str:
    return f"/console/units/{unit_code}/alerts"


@dataclass(frozen=True)
class SignInLinks:
    """Mints sign-in links; None from `from_settings` when the console is not set up."""

    base_url: str
    chat_lifetime: timedelta
    button_lifetime: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInLinks | None:
        if not settings.console_secret_key:
            return None
        return cls(
            base_url=settings.public_base_url.rstrip("/"),
            chat_lifetime=timedelta(minutes=settings.console_link_minutes),
            button_lifetime=timedelta(hours=settings.console_button_link_hours),
        )

    def mint(
        self,
        session: Session,
        leader_id: int,
        *,
        next_path: str,
        lifetime: timedelta,
        now: datetime,
    ) -> str:
        """Store a new link for the leader and return its URL (the only place the token is)."""
        token = secrets.token_urlsafe(32)
        repo.add_sign_in_link(
            session,
            token_hash=token_hash(token),
            leader_id=leader_id,
            next_path=next_path,
            now=now,
            expires_at=now + lifetime,
        )
        return f"{self.base_url}{LINK_PATH}?t={token}"

    def for_chat(self, session: Session, leader_id: int, *, now: datetime) -> str:
        return self.mint(
            session, leader_id, next_path="/console/", lifetime=self.chat_lifetime, now=now
        )

    def for_button(self, session: Session, leader_id: int, *, next_path: str, now: datetime) -> str:
        return self.mint(
            session, leader_id, next_path=next_path, lifetime=self.button_lifetime, now=now
        )
