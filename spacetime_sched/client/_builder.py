"""``DbConnectionBuilder``: the fluent way to configure and open a :class:`DbConnection`.

Every ``with_*`` / ``on_*`` method returns the builder, so calls chain; :meth:`build` checks
the options and returns an async context manager that connects on entry::

    async with (
        DbConnection.builder()
        .with_uri("https://maincloud.spacetimedb.com")
        .with_database_name("quickstart")
        .with_credentials_file("~/.config/myapp/token.json")
        .with_scheduling(max_concurrent_executions=5)
        .on_disconnect(lambda conn, error: print("disconnected:", error))
        .build()
    ) as conn:
        ...
"""

from __future__ import annotations

import os
import ssl
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from .._errors import ConfigurationError
from ._connection import Callback, ConnectOptions, DbConnection
from ._credentials import CredentialsFile
from ._http import http_base_url
from ._transport import DEFAULT_MAX_MESSAGE_SIZE, Compression, Protocol

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DbConnectionBuilder"]

#: Seconds to wait for the WebSocket upgrade and ``InitialConnection``.
DEFAULT_CONNECT_TIMEOUT = 10.0


class DbConnectionBuilder:
    """Collects connection options; see the module docs for an example."""

    def __init__(self) -> None:
        self._uri: str | None = None
        self._database: str | None = None
        self._token: str | None = None
        self._credentials: CredentialsFile | None = None
        self._compression = Compression.GZIP
        self._protocol = Protocol.AUTO
        self._confirmed_reads: bool | None = None
        self._connect_timeout = DEFAULT_CONNECT_TIMEOUT
        self._max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self._verify: bool | ssl.SSLContext = True
        self._transport: httpx.AsyncBaseTransport | None = None
        self._auto_scheduler = False
        self._max_concurrent: int | None = None
        self._on_connect: list[Callback] = []
        self._on_disconnect: list[Callback] = []
        self._on_connect_error: list[Callback] = []

    def __repr__(self) -> str:
        auth = "token=<hidden>" if self._token is not None else "anonymous"
        return f"<DbConnectionBuilder uri={self._uri!r} database={self._database!r} {auth}>"

    def with_uri(self, uri: str | httpx.URL) -> DbConnectionBuilder:
        """The server: ``http://``, ``https://``, ``ws://`` or ``wss://`` and a host."""
        self._uri = str(uri)
        return self

    def with_database_name(self, name_or_identity: str) -> DbConnectionBuilder:
        """The database, by name or by its 64-hex identity."""
        self._database = name_or_identity
        return self

    def with_module_name(self, name_or_identity: str) -> DbConnectionBuilder:
        """The 1.x name of :meth:`with_database_name`."""
        return self.with_database_name(name_or_identity)

    def with_token(self, token: str | None) -> DbConnectionBuilder:
        """Connect as the identity of ``token`` (``None``: anonymous, the server mints one)."""
        self._token = token
        return self

    def with_credentials_file(self, path: str | os.PathLike[str]) -> DbConnectionBuilder:
        """Reuse the token saved at ``path`` and save the one from ``InitialConnection`` there
        (JSON, mode 0600, written atomically). An explicit :meth:`with_token` wins."""
        self._credentials = CredentialsFile(path)
        return self

    def with_compression(self, compression: Compression | str | None) -> DbConnectionBuilder:
        """``"none"``, ``"gzip"`` (the default, stdlib only) or ``"brotli"`` (needs the
        ``brotli`` extra)."""
        self._compression = Compression.parse(compression)
        return self

    def with_protocol(self, protocol: Protocol | str) -> DbConnectionBuilder:
        """Which WebSocket subprotocol to speak: ``"auto"`` (the default: offer
        ``v3.bsatn.spacetimedb`` and ``v2.bsatn.spacetimedb``, the server chooses), ``"v3"``
        (several messages per frame, much faster for many calls in flight) or ``"v2"`` (one
        message per frame, for servers or proxies that only know v2). Forcing one the server
        does not speak fails the upgrade with :class:`~spacetime_sched.ConnectError`."""
        self._protocol = Protocol.parse(protocol)
        return self

    def with_confirmed_reads(self, confirmed: bool) -> DbConnectionBuilder:
        """Ask for updates only once transactions are durable (``?confirmed=``)."""
        self._confirmed_reads = bool(confirmed)
        return self

    def with_connect_timeout(self, seconds: float) -> DbConnectionBuilder:
        """How long to wait for the connection and ``InitialConnection`` (default 10 s)."""
        if not seconds > 0:
            raise ConfigurationError(f"connect_timeout: expected seconds > 0, got {seconds!r}")
        self._connect_timeout = float(seconds)
        return self

    def with_max_message_size(self, max_bytes: int) -> DbConnectionBuilder:
        """The largest message accepted from the server (default 32 MiB, as the server's)."""
        if max_bytes < 1024:
            raise ConfigurationError(f"max_message_size: expected >= 1024, got {max_bytes!r}")
        self._max_message_size = int(max_bytes)
        return self

    def with_verify(self, verify: bool | ssl.SSLContext) -> DbConnectionBuilder:
        """TLS: an :class:`ssl.SSLContext` of your own, or ``False`` to skip verification
        (on by default; turning it off is only for tests against self-signed servers)."""
        self._verify = verify
        return self

    def with_transport(self, transport: httpx.AsyncBaseTransport) -> DbConnectionBuilder:
        """A custom httpx transport, e.g. ``httpx_ws.transport.ASGIWebSocketTransport(app)``
        to talk to an in-process ASGI app in tests."""
        self._transport = transport
        return self

    def with_scheduling(
        self, *, auto_start: bool = True, max_concurrent_executions: int = 5
    ) -> DbConnectionBuilder:
        """Give the connection a scheduler (``conn.scheduler``).

        With ``auto_start`` it is opened on connect, in the connection's structured scope, and
        stopped when the ``async with`` block ends; otherwise it starts on first access.
        """
        if max_concurrent_executions < 1:
            raise ConfigurationError(
                f"max_concurrent_executions: expected >= 1, got {max_concurrent_executions!r}"
            )
        self._auto_scheduler = auto_start
        self._max_concurrent = max_concurrent_executions
        return self

    def on_connect(self, callback: Callback) -> DbConnectionBuilder:
        """``callback(conn, identity, token)`` once connected (sync or async)."""
        self._on_connect.append(callback)
        return self

    def on_disconnect(self, callback: Callback) -> DbConnectionBuilder:
        """``callback(conn, error)`` when the connection ends: ``error`` is ``None`` when we
        closed it, else why it was lost (sync or async)."""
        self._on_disconnect.append(callback)
        return self

    def on_connect_error(self, callback: Callback) -> DbConnectionBuilder:
        """``callback(error)`` when connecting fails, just before the error is raised."""
        self._on_connect_error.append(callback)
        return self

    def options(self) -> ConnectOptions:
        """Check and freeze the options (what :meth:`build` uses)."""
        if self._uri is None:
            raise ConfigurationError("with_uri(...) is required")
        if not self._database:
            raise ConfigurationError("with_database_name(...) is required")
        if self._compression is Compression.BROTLI:
            _require_brotli()
        return ConnectOptions(
            base_url=http_base_url(self._uri),
            database=self._database,
            token=self._token,
            credentials=self._credentials,
            compression=self._compression,
            confirmed_reads=self._confirmed_reads,
            connect_timeout=self._connect_timeout,
            max_message_size=self._max_message_size,
            verify=self._verify,
            transport=self._transport,
            auto_scheduler=self._auto_scheduler,
            max_concurrent_executions=self._max_concurrent,
            on_connect=tuple(self._on_connect),
            on_disconnect=tuple(self._on_disconnect),
            on_connect_error=tuple(self._on_connect_error),
            protocol=self._protocol,
        )

    def build(self) -> AbstractAsyncContextManager[DbConnection]:
        """Check the options; return an async context manager that connects on entry."""
        return DbConnection._open(self.options())


def _require_brotli() -> Any:
    try:
        import brotli
    except ImportError:
        raise ConfigurationError(
            "compression 'brotli' needs the brotli package: pip install 'spacetime-sched[brotli]'"
        ) from None
    return brotli
