"""The plain-HTTP side of SpacetimeDB: identities, the server clock and the module schema.

These calls need no WebSocket. :class:`SpacetimeHttpClient` can be used on its own
(``await SpacetimeHttpClient(uri).create_identity()``) or kept open with ``async with`` to
reuse one connection pool; :class:`~spacetime_sched.client.DbConnection` uses one internally,
sharing its httpx client, token and TLS settings.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Final

import attrs
import httpx

from .._errors import ClientError, ConfigurationError, ConnectError, ProtocolError
from .._identity import Identity
from .._time import TimeDuration, Timestamp

__all__ = [
    "IdentityToken",
    "SpacetimeHttpClient",
    "create_identity",
    "http_base_url",
]

#: Default timeout of one HTTP request, in seconds.
DEFAULT_HTTP_TIMEOUT: Final = 10.0

_SCHEME_TO_HTTP: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}

Verify = bool | ssl.SSLContext


def http_base_url(uri: str | httpx.URL) -> httpx.URL:
    """Normalise a server URI (``http``, ``https``, ``ws`` or ``wss``) to the http(s) base URL.

    httpx only speaks http(s); the WebSocket upgrade is an ordinary GET, so ``ws://`` maps to
    ``http://`` and ``wss://`` to ``https://``. A path prefix (a server behind a reverse proxy)
    is kept; a trailing slash, query or fragment is dropped.
    """
    try:
        url = httpx.URL(str(uri))
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"uri: {uri!r} is not a valid URL ({exc})") from None
    scheme = _SCHEME_TO_HTTP.get(url.scheme.lower())
    if scheme is None or not url.host:
        raise ConfigurationError(
            f"uri: expected http://, https://, ws:// or wss:// followed by a host, got {uri!r}"
        )
    return url.copy_with(scheme=scheme, path=url.path.rstrip("/") or "/", query=None, fragment=None)


def join_path(base: httpx.URL, path: str) -> httpx.URL:
    """``base`` with ``path`` (starting with ``/``) appended to its path prefix."""
    return base.copy_with(path=base.path.rstrip("/") + path)


def bearer_headers(token: str | None) -> dict[str, str]:
    """The ``Authorization`` header for ``token``, or none for an anonymous request."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@attrs.frozen(repr=False)
class IdentityToken:
    """A freshly minted identity and the token (JWT) that proves it. The repr hides the token."""

    identity: Identity
    token: str

    def __repr__(self) -> str:
        return f"IdentityToken(identity={self.identity}, token=<hidden>)"


def describe_http_error(response: httpx.Response, what: str) -> ClientError:
    """A friendly error for a failed HTTP request (never echoing the token we sent)."""
    status = response.status_code
    body = response.text.strip()[:300] if response.content else ""
    detail = f": {body}" if body else ""
    if status in (401, 403):
        return ConnectError(
            f"{what}: the server rejected the token (HTTP {status}); "
            f"get a new one with create_identity() or connect anonymously{detail}"
        )
    if status == 404:
        return ConnectError(f"{what}: not found (HTTP 404){detail}")
    return ClientError(f"{what}: HTTP {status}{detail}")


def describe_transport_error(exc: httpx.TransportError, url: httpx.URL) -> ConnectError:
    kind = type(exc).__name__
    reason = str(exc) or kind
    return ConnectError(f"could not reach {url.copy_with(query=None)}: {reason} ({kind})")


class SpacetimeHttpClient:
    """SpacetimeDB's HTTP API: ``POST /v1/identity``, the server clock and the module schema.

    ``client`` lets a caller share an existing :class:`httpx.AsyncClient` (its TLS settings and
    transport are used as they are); otherwise one is opened per call, or once for the whole
    ``async with`` block. TLS certificates are verified unless ``verify=False`` or an explicit
    :class:`ssl.SSLContext` says otherwise.
    """

    def __init__(
        self,
        uri: str | httpx.URL,
        *,
        token: str | None = None,
        verify: Verify = True,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = http_base_url(uri)
        self._token = token
        self._verify = verify
        self._timeout = timeout
        self._transport = transport
        self._client = client
        self._owns_client = False

    def __repr__(self) -> str:
        auth = "token=<hidden>" if self._token is not None else "anonymous"
        return f"SpacetimeHttpClient({str(self.base_url)!r}, {auth})"

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, token: str | None) -> None:
        self._token = token

    async def __aenter__(self) -> SpacetimeHttpClient:
        if self._client is None:
            self._client = self._new_client()
            self._owns_client = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_client and self._client is not None:
            client, self._client, self._owns_client = self._client, None, False
            await client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=self._verify, timeout=self._timeout, transport=self._transport
        )

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
        else:
            async with self._new_client() as client:
                yield client

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        url = join_path(self.base_url, path)
        headers = bearer_headers(self._token) if auth else {}
        async with self._session() as client:
            try:
                response = await client.request(method, url, params=params, headers=headers)
            except httpx.TransportError as exc:
                raise describe_transport_error(exc, url) from None
        if not response.is_success:
            raise describe_http_error(response, what)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProtocolError(f"{what}: the response is not JSON ({exc})") from None

    async def create_identity(self) -> IdentityToken:
        """Mint a new identity and its token (``POST /v1/identity``); no token is sent."""
        what = "POST /v1/identity"
        body = self._json(await self._request("POST", "/v1/identity", what, auth=False), what)
        try:
            return IdentityToken(Identity.from_hex(body["identity"]), str(body["token"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(
                f"{what}: expected {{'identity': hex, 'token': jwt}}, got a response without "
                f"a valid {exc}"
            ) from None

    async def server_timestamp(self, database: str) -> Timestamp:
        """The server's clock (``GET /v1/database/{database}/unstable/timestamp``)."""
        path = f"/v1/database/{_segment(database)}/unstable/timestamp"
        what = f"GET {path}"
        body = self._json(await self._request("GET", path, what), what)
        try:
            return Timestamp(int(body["__timestamp_micros_since_unix_epoch__"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"{what}: unexpected body {body!r} ({exc})") from None

    async def estimate_clock_skew(self, database: str, *, samples: int = 5) -> TimeDuration:
        """How far the server's clock is ahead of ours (negative: behind), NTP style.

        Each sample reads the server clock and assumes it was taken halfway between sending the
        request and receiving the answer; the sample with the shortest round trip wins, since its
        midpoint is the least uncertain.
        """
        if samples < 1:
            raise ConfigurationError(f"samples: expected at least 1, got {samples}")
        best: tuple[int, int] | None = None  # (round trip, skew) in µs
        for _ in range(samples):
            sent = time.time_ns() // 1000
            server = await self.server_timestamp(database)
            received = time.time_ns() // 1000
            round_trip = received - sent
            skew = server.micros_since_epoch - (sent + received) // 2
            if best is None or round_trip < best[0]:
                best = (round_trip, skew)
        assert best is not None
        return TimeDuration(best[1])

    async def schema_json(self, database: str, *, version: int = 9) -> dict[str, Any]:
        """The module schema as SATS-JSON (``GET /v1/database/{database}/schema?version=9``)."""
        path = f"/v1/database/{_segment(database)}/schema"
        what = f"GET {path}?version={version}"
        response = await self._request("GET", path, what, params={"version": str(version)})
        body = self._json(response, what)
        if not isinstance(body, dict):
            raise ProtocolError(f"{what}: expected a JSON object, got {type(body).__name__}")
        return body


async def create_identity(
    uri: str | httpx.URL, *, verify: Verify = True, timeout: float = DEFAULT_HTTP_TIMEOUT
) -> IdentityToken:
    """Mint a new identity and token on the server at ``uri`` (``POST /v1/identity``)."""
    return await SpacetimeHttpClient(uri, verify=verify, timeout=timeout).create_identity()


def _segment(name: str) -> str:
    """A database name or identity as one URL path segment (no slashes sneak in)."""
    if not name or "/" in name:
        raise ConfigurationError(f"database: expected a database name or identity, got {name!r}")
    return name
