"""An OA's access token: kept in the database, refreshed once at a time across processes.

One store per OA (`oa`: its key; ENVIRONMENT_OA is the environment's, row 1): each OA's
pair has its own row and its own lock, so OAs refresh independently.

Zalo's refresh token works once. Two processes refreshing with the same one lose the pair for
good (a person must re-authorise the app in a browser). So a refresh happens inside one
transaction that holds the token row locked from before the OAuth call until the new pair is
committed; whoever waited on the lock then finds the pair already renewed and uses it.

The sender asks for the access token once per message, from many threads: the store keeps it
for `cache_for` (30 s) instead of reading the row each time. A token refused by Zalo is
replaced at once (`refresh(failed_token=...)` reads the row under its lock and renews the
pair only if nobody did), and the threads of one process refresh one at a time, so a burst of
-216 answers costs one database transaction and at most one OAuth call. A pair renewed by
another process is picked up within `cache_for`, or at once if Zalo refuses the old token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage import repositories as repo
from storage.models import ENVIRONMENT_OA, ZaloToken
from zalo_client import TokenPair, ZaloClient, ZaloError

log = logging.getLogger("sipas_bot.tokens")


class NoToken(Exception):
    """No token pair is stored and none was given to seed one."""


@dataclass(frozen=True)
class TokenStatus:
    stored: bool
    access_expires_at: datetime | None
    updated_at: datetime | None
    refresh_failed_at: datetime | None
    refresh_error: str | None

    @property
    def failing(self) -> bool:
        return self.refresh_failed_at is not None

    @classmethod
    def of(cls, row: ZaloToken | None) -> TokenStatus:
        """The status of a stored pair (None: none stored)."""
        if row is None:
            return cls(False, None, None, None, None)
        return cls(
            True, row.access_expires_at, row.updated_at, row.refresh_failed_at, row.refresh_error
        )


def token_statuses(
    session_factory: sessionmaker[Session], stores: Sequence[TokenStore]
) -> list[TokenStatus]:
    """Each store's `status()`, the OAs' rows read in one query (`/healthz` asks for every
    OA's); a store whose OA has no row yet asks on its own, which first stores the pair
    given at start, as `status()` does."""
    with session_factory() as session:
        rows = repo.token_rows(session, [store.oa for store in stores])
        found = [TokenStatus.of(rows[store.oa]) if store.oa in rows else None for store in stores]
    return [status or store.status() for store, status in zip(stores, found, strict=True)]


class TokenStore:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: ZaloClient,
        *,
        app_id: str,
        app_secret: str,
        clock: Callable[[], datetime],
        refresh_before: timedelta = timedelta(hours=5),
        seed: tuple[str, str] | None = None,
        cache_for: timedelta = timedelta(seconds=30),
        monotonic: Callable[[], float] = time.monotonic,
        oa: str = ENVIRONMENT_OA,
    ) -> None:
        self.oa = oa
        self.session_factory = session_factory
        self.client = client
        self.app_id = app_id
        self.app_secret = app_secret
        self.clock = clock
        self.refresh_before = refresh_before
        self._seed = seed if seed and all(seed) else None
        self.cache_for = cache_for.total_seconds()
        self.monotonic = monotonic
        self._cached: str | None = None
        self._cached_at = 0.0
        # One thread at a time reads the row or refreshes; the others then use its answer.
        self._lock = threading.RLock()

    def seed(self) -> bool:
        """Store the pair given at start (ZALO_ACCESS_TOKEN / ZALO_REFRESH_TOKEN) if the
        database holds none yet; True if stored now. Later refreshes never read the env."""
        if self._seed is None:
            return False
        access_token, refresh_token = self._seed
        with self.session_factory.begin() as session:
            stored = repo.insert_token_pair_if_missing(
                session,
                access_token=access_token,
                refresh_token=refresh_token,
                now=self.clock(),
                oa=self.oa,
            )
        if stored:
            log.info("event=token_seeded source=environment oa=%s", self.oa or "-")
        return stored

    def set_pair(self, access_token: str, refresh_token: str, *, expires_in: int | None) -> None:
        """Replace the pair (after an operator re-authorised the app)."""
        now = self.clock()
        with self.session_factory.begin() as session:
            row = self._locked(session)
            expires = now + timedelta(seconds=expires_in) if expires_in else None
            if row is None:
                session.add(
                    ZaloToken(
                        id=repo.token_row_id(session, self.oa),
                        oa_id=self.oa,
                        access_token=access_token,
                        refresh_token=refresh_token,
                        access_expires_at=expires,
                        updated_at=now,
                    )
                )
            else:
                row.access_token, row.refresh_token = access_token, refresh_token
                row.access_expires_at, row.updated_at = expires, now
                row.refresh_failed_at = row.refresh_error = None
        with self._lock:
            self._remember(access_token)
        log.info("event=token_set source=operator oa=%s", self.oa or "-")

    def access_token(self) -> str:
        """The access token to send with; read from the database at most every `cache_for`."""
        with self._lock:
            if self._cached is not None and self.monotonic() - self._cached_at < self.cache_for:
                return self._cached
            return self._remember(self._read_access_token())

    def _read_access_token(self) -> str:
        for first_try in (True, False):
            with self.session_factory() as session:
                row = self._row(session)
                if row is not None:
                    return row.access_token
            # Seeding opens its own transaction: never while the read above is open (on
            # SQLite that would wait for itself).
            if not (first_try and self.seed()):
                break
        raise NoToken("no Zalo access token is stored: run `sipas-bot tokens set`")

    def status(self) -> TokenStatus:
        self.seed()
        with self.session_factory() as session:
            return TokenStatus.of(self._row(session))

    def refresh(self, *, failed_token: str | None = None, force: bool = False) -> str:
        """Renew the pair and return the access token to use.

        `failed_token`: the token Zalo just refused; if the stored one differs, another process
        renewed it meanwhile and it is returned without spending the refresh token.
        Without it, the pair is renewed only when due (or when `force`).
        """
        with self._lock:
            cached = self._cached
            if failed_token is not None and cached is not None and cached != failed_token:
                # Another thread of this process has already replaced the refused token.
                return cached
            try:
                return self._remember(self._refresh(failed_token=failed_token, force=force))
            except BaseException:
                self._cached = None  # read the row again next time: an operator may fix it
                raise

    def _remember(self, access_token: str) -> str:
        self._cached, self._cached_at = access_token, self.monotonic()
        return access_token

    def _refresh(self, *, failed_token: str | None, force: bool) -> str:
        failure: ZaloError | None = None
        self.seed()
        with self.session_factory.begin() as session:
            row = self._locked(session)
            if row is None:
                raise NoToken("no Zalo token pair is stored: run `sipas-bot tokens set`")
            now = self.clock()
            if failed_token is not None and row.access_token != failed_token:
                return row.access_token
            if failed_token is None and not force and not self._due(row, now):
                return row.access_token
            try:
                pair = self.client.refresh_access_token(
                    app_id=self.app_id,
                    app_secret=self.app_secret,
                    refresh_token=row.refresh_token,
                )
            except ZaloError as exc:
                # The stored pair stays as it was: a failed answer never overwrites it.
                row.refresh_failed_at = now
                row.refresh_error = f"{type(exc).__name__}: {exc}"[:500]
                failure = exc
            else:
                self._store(row, pair, now)
                log.info(
                    "event=token_refreshed oa=%s expires_at=%s",
                    self.oa or "-",
                    row.access_expires_at,
                )
                return pair.access_token
        log.error(
            "event=token_refresh_failed oa=%s error=%s action=%s",
            self.oa or "-",
            type(failure).__name__,
            "re-authorise the app in the Zalo console, then `sipas-bot tokens set"
            + (f" --oa {self.oa}`" if self.oa else "`"),
        )
        assert failure is not None
        raise failure

    def _due(self, row: ZaloToken, now: datetime) -> bool:
        return row.access_expires_at is None or row.access_expires_at - now <= self.refresh_before

    @staticmethod
    def _store(row: ZaloToken, pair: TokenPair, now: datetime) -> None:
        row.access_token = pair.access_token
        row.refresh_token = pair.refresh_token
        row.access_expires_at = now + timedelta(seconds=pair.expires_in)
        row.updated_at = now
        row.refresh_failed_at = None
        row.refresh_error = None

    def _row(self, session: Session) -> ZaloToken | None:
        return session.scalar(select(ZaloToken).where(ZaloToken.oa_id == self.oa))

    def _locked(self, session: Session) -> ZaloToken | None:
        return session.scalar(
            select(ZaloToken)
            .where(ZaloToken.oa_id == self.oa)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
