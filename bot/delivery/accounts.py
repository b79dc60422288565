"""The Official Accounts this deployment serves, each with its app's webhook verifier, its
client, its token pair and its app's rate limit.

Without an `oas` list in the units file there is one OA, the environment's (ZALO_OA_ID,
ZALO_APP_ID, …; key ENVIRONMENT_OA), exactly as before many were possible. With one, the OAs
are the `oas` rows, their secrets read from where the rows say (`env:NAME`, `file:NAME`).

The rows change only on `units import`; each process reads them again every `reread_every`
(30 s) and at once when an event names an app or OA it does not know yet, so a new OA is
served without a restart. An OA whose secrets cannot be read is kept with its `problem`:
its webhooks fail verification and its messages wait, and `check` names it; the others
are not affected.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import ConfigError, Settings, read_secret
from bot.delivery.sender import (
    Deliver,
    RateLimiter,
    SendingLane,
    zalo_delivery,
)
from bot.delivery.tokens import TokenStore
from storage import repositories as repo
from storage.models import ENVIRONMENT_OA, OfficialAccount
from zalo_client import (
    InboundEvent,
    InvalidSignature,
    SignatureVerifier,
    Transport,
    ZaloClient,
)

log = logging.getLogger("sipas_bot.accounts")

# `"app_id": "360846524940903967"` in a raw body: the app whose secret verifies it. Only the
# first few are tried; the parsed event must then name the same app.
_APP_ID_FIELD = re.compile(rb'"app_id"\s*+:\s*+"?([0-9]{1,32})"?')
_MAX_APP_CANDIDATES = 3


@dataclass(frozen=True)
class ServedOA:
    """One OA as the process uses it. `problem`: why it cannot verify or send (its secrets
    are missing); None when it can."""

    key: str
    oa_id: str
    name: str
    app_id: str
    verifier: SignatureVerifier
    tokens: TokenStore | None
    lane: SendingLane
    problem: str | None = None


@dataclass(frozen=True)
class SignedBody:
    """A webhook body that verified: its signed timestamp, and the OAs of the app whose
    secret verified it (None: the environment's single OA, which takes every event)."""

    timestamp: str
    app_id: str | None
    oas: tuple[ServedOA, ...] = ()


class OfficialAccounts:
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        environment: ServedOA,
        clock: Callable[[], datetime],
        transport: Transport | None,
        env: Mapping[str, str] | None = None,
        reread_every: timedelta = timedelta(seconds=30),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.environment = environment
        self.clock = clock
        self.transport = transport
        self.env = env
        self.reread_every = reread_every.total_seconds()
        self.monotonic = monotonic
        self._lock = threading.RLock()
        self._read_at = float("-inf")
        self._rows: dict[str, tuple[str, str, str, str, str | None, str | None]] = {}
        self._served: dict[str, ServedOA] = {}
        self._limiters: dict[str, RateLimiter] = {}

    # --- which OAs -----------------------------------------------------------------------

    @property
    def multiple(self) -> bool:
        """Whether the OAs come from the units file (else: the environment's one)."""
        return bool(self._current())

    def all(self) -> list[ServedOA]:
        """Every OA served: the units file's, and the environment's when it is set (alone
        when the units file names none)."""
        served = list(self._current().values())
        return [self.environment, *served] if self._environment_set or not served else served

    @property
    def _environment_set(self) -> bool:
        """Whether the environment names an OA of its own (ZALO_OA_ID, ZALO_APP_ID and
        ZALO_OA_SECRET_KEY): it is then served beside the units file's OAs."""
        s = self.settings
        return bool(s.zalo_oa_id and s.zalo_app_id and s.zalo_oa_secret_key)

    def get(self, key: str) -> ServedOA | None:
        """The OA of a key (as stored with conversations and messages), or None."""
        if key == ENVIRONMENT_OA:
            return self.environment
        found = self._current().get(key)
        if found is None:
            found = self._current(reread=True).get(key)
        return found

    def lane(self, key: str) -> SendingLane | None:
        """The sender's way out for an OA's messages (`OutboxSender(lanes=...)`)."""
        served = self.get(key)
        return served.lane if served is not None else None

    def forget(self) -> None:
        """Read the rows again at the next use (after `units import` in this process)."""
        with self._lock:
            self._read_at = float("-inf")

    # --- webhooks ------------------------------------------------------------------------

    def verify_body(self, raw: bytes, header: str | None, *, app_id: str | None) -> SignedBody:
        """Verify a webhook body with the secret of the app it names (or `app_id`, from a
        per-app webhook URL); raises InvalidSignature. One OA from the environment: its
        verifier, exactly as with one OA."""
        if not self._current():
            if app_id is not None and app_id != self.settings.zalo_app_id:
                raise InvalidSignature("the webhook URL names another app than ZALO_APP_ID")
            return SignedBody(self.environment.verifier.verify_body(raw, header), None)
        wanted = [app_id] if app_id is not None else _app_ids_in(raw)
        served = self.all()
        if not any(oa.app_id in wanted for oa in served):
            self._current(reread=True)  # an OA imported by another process since
            served = self.all()
        for candidate in wanted:
            oas = tuple(oa for oa in served if oa.app_id == candidate)
            for oa in oas:
                try:
                    timestamp = oa.verifier.verify_body(raw, header)
                except InvalidSignature:
                    continue
                return SignedBody(timestamp, candidate, oas)
        if any(oa.app_id in wanted for oa in served):
            raise InvalidSignature("signature does not match the app's OA secret key")
        raise InvalidSignature("no served OA is linked to the app this body names")

    def route(self, event: InboundEvent, signed: SignedBody) -> ServedOA | None:
        """The OA an event verified by `signed` is for; None when the body's app is not the
        one that verified it, or its OA is not one of that app's OAs."""
        if signed.app_id is None:
            return self.environment
        if event.app_id != signed.app_id:
            return None
        return next((oa for oa in signed.oas if oa.oa_id == event.oa_id), None)

    # --- the rows ------------------------------------------------------------------------

    def _current(self, *, reread: bool = False) -> dict[str, ServedOA]:
        with self._lock:
            due = self.monotonic() - self._read_at >= self.reread_every
            if reread or due:
                self._read_at = self.monotonic()
                self._reload()
            return self._served

    def _reload(self) -> None:
        try:
            with self.session_factory() as session:
                rows = list(repo.list_oas(session))
        except (OperationalError, ProgrammingError):
            # No `oas` table yet (a database before `db upgrade`): the environment's OA.
            log.debug("event=oas_unreadable", exc_info=True)
            return
        wanted = {row.id: repo.oa_settings(row) for row in rows}
        if wanted == self._rows:
            return
        served: dict[str, ServedOA] = {}
        for row in rows:
            kept = self._served.get(row.id)
            same = kept is not None and self._rows.get(row.id) == wanted[row.id]
            served[row.id] = kept if same and kept is not None else self._build(row)
        self._rows, self._served = wanted, served
        log.info("event=oas_loaded count=%d", len(served))

    def _build(self, row: OfficialAccount) -> ServedOA:
        """An OA's verifier, client, tokens and lane from its row and its secrets."""
        problem: str | None = None
        secrets: dict[str, str] = {}
        for name, ref in (
            ("app_secret", row.app_secret_ref),
            ("oa_secret_key", row.oa_secret_key_ref),
            ("access_token", row.access_token_ref),
            ("refresh_token", row.refresh_token_ref),
        ):
            if ref is None:
                continue
            try:
                secrets[name] = read_secret(
                    ref, secrets_file=self.settings.zalo_secrets_file, env=self.env
                )
            except ConfigError as exc:
                if name in ("app_secret", "oa_secret_key"):
                    problem = problem or f"OA {row.id}: {exc}"
        limiter = self._limiters.setdefault(
            row.app_id, RateLimiter(self.settings.zalo_rate_per_minute)
        )
        verifier = SignatureVerifier(row.app_id, secrets.get("oa_secret_key", ""))
        tokens: TokenStore | None = None
        deliver: Deliver = self.environment.lane.deliver
        if self.transport is not None:
            holder: list[TokenStore] = []
            client = ZaloClient(
                self.transport,
                api_base=self.settings.zalo_api_base,
                oauth_base=self.settings.zalo_oauth_base,
                access_token=lambda: holder[0].access_token(),
                choice_style=self.settings.zalo_choice_style,
            )
            tokens = TokenStore(
                self.session_factory,
                client,
                app_id=row.app_id,
                app_secret=secrets.get("app_secret", ""),
                clock=self.clock,
                seed=(secrets.get("access_token", ""), secrets.get("refresh_token", "")),
                oa=row.id,
            )
            holder.append(tokens)
            deliver = _checked(zalo_delivery(client, tokens), problem)
        if problem is not None:
            log.error("event=oa_unusable oa=%s problem=%s", row.id, problem)
        return ServedOA(
            key=row.id,
            oa_id=row.id,
            name=row.name,
            app_id=row.app_id,
            verifier=verifier,
            tokens=tokens,
            lane=SendingLane(deliver, limiter, row.app_id),
            problem=problem,
        )


def environment_oa(
    settings: Settings,
    *,
    verifier: SignatureVerifier,
    tokens: TokenStore | None,
    deliver: Deliver,
    limiter: RateLimiter | None,
) -> ServedOA:
    """The one OA of the environment (ZALO_OA_ID, ZALO_APP_ID, ZALO_OA_SECRET_KEY, …)."""
    return ServedOA(
        key=ENVIRONMENT_OA,
        oa_id=settings.zalo_oa_id,
        name=settings.zalo_oa_name,
        app_id=settings.zalo_app_id,
        verifier=verifier,
        tokens=tokens,
        lane=SendingLane(deliver, limiter, ENVIRONMENT_OA),
    )


def _checked(deliver: Deliver, problem: str | None) -> Deliver:
    """An OA whose secrets are missing sends nothing; its messages wait (and say why)."""
    if problem is None:
        return deliver

    def refuse(user_id: str, body: dict[str, object]) -> str | None:
        raise ConfigError(problem)

    return refuse


def _app_ids_in(raw: bytes) -> list[str]:
    found: list[str] = []
    for match in _APP_ID_FIELD.finditer(raw):
        app = match.group(1).decode("ascii")
        if app not in found:
            found.append(app)
        if len(found) == _MAX_APP_CANDIDATES:
            break
    return found
