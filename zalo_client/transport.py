"""HTTP transport under the Zalo API, kept apart so tests and other HTTP stacks can swap it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils

from zalo_client.errors import ZaloConnectionError

__all__ = ["DEFAULT_TIMEOUT", "RequestsTransport", "Transport", "TransportResponse"]

DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10)
"""Connect and read timeouts in seconds."""


@dataclass(frozen=True)
class TransportResponse:
    """An HTTP answer: its status and its parsed JSON body (None when not JSON)."""

    status: int
    body: object


class Transport(Protocol):
    """Sends one HTTP request; raises ZaloConnectionError when no answer arrives."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: object | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> TransportResponse: ...


class RequestsTransport:
    """Transport over a ``requests.Session``, always with a timeout.

    The environment's proxies (HTTPS_PROXY, NO_PROXY…) and CA bundle (REQUESTS_CA_BUNDLE,
    CURL_CA_BUNDLE) are read once per host, at its first call, not by requests on every
    call: that reading cost about half a millisecond of Python per call, a tenth of a
    sender's work per message (docs/benchmarks.md, 2). A proxy set later needs a restart;
    ~/.netrc is not read (every call carries its own token)."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        if timeout is None:
            raise ValueError("a timeout is mandatory")
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._from_environment = self._session.trust_env
        self._session.trust_env = False
        self._per_host: dict[tuple[str, str], dict[str, Any]] = {}

    def keep_connections(self, connections: int) -> None:
        """Keep up to `connections` connections to each host open for reuse. requests keeps
        10: past that, calls made at once open (and then drop) a connection each, against
        Zalo a TCP and TLS handshake per call. Not a limit: more calls still go out at once."""
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(connections, 10))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: object | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        """Send the request and parse the JSON answer; network failures become Zalo errors."""
        try:
            response = self._session.request(
                method,
                url,
                headers=dict(headers),
                json=json,
                data=dict(data) if data is not None else None,
                params=dict(params) if params is not None else None,
                timeout=self._timeout,
                **self._environment(url),
            )
        except (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise ZaloConnectionError(
                f"{method} {url} failed: {type(exc).__name__}",
                may_have_arrived=_may_have_arrived(exc),
            ) from exc
        try:
            body: object = response.json()
        except ValueError:
            body = None
        return TransportResponse(status=response.status_code, body=body)

    def _environment(self, url: str) -> dict[str, Any]:
        """The proxies and CA bundle the environment gives calls to `url`'s host (what
        requests would find; nothing when the session was told not to trust it)."""
        host = urlsplit(url)[:2]
        found = self._per_host.get(host)
        if found is None:
            found = {}
            if self._from_environment:
                found["proxies"] = requests.utils.get_environ_proxies(url)
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                if bundle and self._session.verify is True:
                    found["verify"] = bundle
            self._per_host[host] = found  # two threads may both read it: the same answer
        return found


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """Whether Zalo may have acted on the request although no answer came: it was sent and
    the answer did not come in time (a read timeout) or broke off. A refused, reset or
    never-made connection counts as not arrived (a pooled connection the server had closed
    is the usual reset), so it is retried soon."""
    return isinstance(exc, requests.ReadTimeout | requests.exceptions.ChunkedEncodingError)
