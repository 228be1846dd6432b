"""``DbConnectionBuilder``: the fluent way to configure and open a :class:`DbConnection`.

Every ``with_*`` / ``on_*`` method checks its argument at once
(:class:`~spacetime_sched.ConfigurationError` names the option) and returns the builder, so
calls chain. :meth:`build` returns the connection object, not yet connected; it is its own
async context manager, which connects on entry::

    client = (
        DbConnection.builder()
        .with_uri("ws://localhost:3000")
        .with_module_name("game_server")
        .with_scheduling(auto_start=True, max_concurrent_executions=5)
        .build()
    )
    client.scheduler.schedule_in_seconds("tick", [], 5)  # kept until the block starts
    async with client:
        ...

or in one go::

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
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from .._errors import ConfigurationError
from ._credentials import CredentialsFile
from ._options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    Callback,
    Compression,
    ConnectOptions,
    WireProtocol,
    check_max_message_size,
    check_positive_seconds,
    parse_uri,
)
from ._reconnect import ReconnectPolicy, reconnect_policy

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DbConnectionBuilder"]

ConnectionT = TypeVar("ConnectionT")


class DbConnectionBuilder(Generic[ConnectionT]):
    """Collects connection options; see the module docs for an example.

    ``connect`` makes the connection object from the finished options (``DbConnection.builder()``
    passes the class itself), so the builder never imports the connection.
    """

    def __init__(self, connect: Callable[[ConnectOptions], ConnectionT]) -> None:
        self._connect = connect
        self._uri: httpx.URL | None = None
        self._database: str | None = None
        self._token: str | None = None
        self._credentials: CredentialsFile | None = None
        self._compression = Compression.GZIP
        self._protocol = WireProtocol.AUTO
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
        self._reconnect: ReconnectPolicy | None = None

    def __repr__(self) -> str:
        auth = "token=<hidden>" if self._token is not None else "anonymous"
        uri = None if self._uri is None else str(self._uri)
        return f"<DbConnectionBuilder uri={uri!r} database={self._database!r} {auth}>"

    def with_uri(self, uri: str | httpx.URL) -> DbConnectionBuilder[ConnectionT]:
        """The server: ``http://``, ``https://``, ``ws://`` or ``wss://`` and a host."""
        self._uri = parse_uri(uri)
        return self

    def with_database_name(self, name_or_identity: str) -> DbConnectionBuilder[ConnectionT]:
        """The database, by name or by its 64-hex identity."""
        if not isinstance(name_or_identity, str) or not name_or_identity or "/" in name_or_identity:
            raise ConfigurationError(
                f"database: expected a database name or identity, got {name_or_identity!r}"
            )
        self._database = name_or_identity
        return self

    def with_module_name(self, name_or_identity: str) -> DbConnectionBuilder[ConnectionT]:
        """The 1.x name of :meth:`with_database_name`."""
        return self.with_database_name(name_or_identity)

    def with_token(self, token: str | None) -> DbConnectionBuilder[ConnectionT]:
        """Connect as the identity of ``token`` (``None``: anonymous, the server mints one)."""
        if token is not None and (not isinstance(token, str) or not token):
            raise ConfigurationError(
                f"token: expected a non-empty str or None, got a {type(token).__name__}"
            )
        self._token = token
        return self

    def with_credentials_file(
        self, path: str | os.PathLike[str]
    ) -> DbConnectionBuilder[ConnectionT]:
        """Reuse the token saved at ``path`` and save the one from ``InitialConnection`` there
        (JSON, mode 0600, written atomically). An explicit :meth:`with_token` wins."""
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigurationError(f"credentials file: expected a path, got {path!r}")
        self._credentials = CredentialsFile(path)
        return self

    def with_compression(
        self, compression: Compression | str | None
    ) -> DbConnectionBuilder[ConnectionT]:
        """``"none"``, ``"gzip"`` (the default, stdlib only) or ``"brotli"`` (needs the
        ``brotli`` extra)."""
        self._compression = Compression.parse(compression)
        return self

    def with_protocol(self, protocol: WireProtocol | str) -> DbConnectionBuilder[ConnectionT]:
        """Which WebSocket subprotocol to speak: ``"auto"`` (the default: offer
        ``v3.bsatn.spacetimedb`` and ``v2.bsatn.spacetimedb``, the server chooses), ``"v3"``
        (several messages per frame, much faster for many calls in flight) or ``"v2"`` (one
        message per frame, for servers or proxies that only know v2). Forcing one the server
        does not speak fails the upgrade with :class:`~spacetime_sched.ConnectError`."""
        self._protocol = WireProtocol.parse(protocol)
        return self

    def with_confirmed_reads(self, confirmed: bool) -> DbConnectionBuilder[ConnectionT]:
        """Ask for updates only once transactions are durable (``?confirmed=``)."""
        if not isinstance(confirmed, bool):
            raise ConfigurationError(f"confirmed_reads: expected True or False, got {confirmed!r}")
        self._confirmed_reads = confirmed
        return self

    def with_connect_timeout(self, seconds: float) -> DbConnectionBuilder[ConnectionT]:
        """How long to wait for the connection and ``InitialConnection`` (default 10 s)."""
        self._connect_timeout = check_positive_seconds(seconds, "connect_timeout")
        return self

    def with_max_message_size(self, max_bytes: int) -> DbConnectionBuilder[ConnectionT]:
        """The largest message accepted from the server (default 32 MiB, as the server's;
        from 1 KiB to 1 GiB)."""
        self._max_message_size = check_max_message_size(max_bytes)
        return self

    def with_verify(self, verify: bool | ssl.SSLContext) -> DbConnectionBuilder[ConnectionT]:
        """TLS: an :class:`ssl.SSLContext` of your own, or ``False`` to skip verification
        (on by default; turning it off is only for tests against self-signed servers)."""
        if not isinstance(verify, (bool, ssl.SSLContext)):
            raise ConfigurationError(
                f"verify: expected True, False or an ssl.SSLContext, got {verify!r}"
            )
        self._verify = verify
        return self

    def with_transport(
        self, transport: httpx.AsyncBaseTransport
    ) -> DbConnectionBuilder[ConnectionT]:
        """A custom httpx transport, e.g. ``httpx_ws.transport.ASGIWebSocketTransport(app)``
        to talk to an in-process ASGI app in tests."""
        if not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                f"transport: expected an httpx.AsyncBaseTransport, got {type(transport).__name__}"
            )
        self._transport = transport
        return self

    def with_scheduling(
        self, *, auto_start: bool = True, max_concurrent_executions: int = 5
    ) -> DbConnectionBuilder[ConnectionT]:
        """Configure the connection's scheduler (``conn.scheduler``).

        With ``auto_start`` (the default) it starts as soon as the connection is up, in the
        connection's own task group, and stops when the ``async with`` block ends. Without it,
        start it yourself inside the block with ``await conn.scheduler.start()``. Either way,
        schedules added before the block are kept and run once the scheduler starts.
        """
        if not isinstance(auto_start, bool):
            raise ConfigurationError(f"auto_start: expected True or False, got {auto_start!r}")
        if (
            isinstance(max_concurrent_executions, bool)
            or not isinstance(max_concurrent_executions, int)
            or max_concurrent_executions < 1
        ):
            raise ConfigurationError(
                f"max_concurrent_executions: expected >= 1, got {max_concurrent_executions!r}"
            )
        self._auto_scheduler = auto_start
        self._max_concurrent = max_concurrent_executions
        return self

    def with_reconnect(
        self, policy: ReconnectPolicy | bool = True
    ) -> DbConnectionBuilder[ConnectionT]:
        """Come back after the server or the network drops the connection (off by default).

        ``policy`` is ``True`` (a :class:`ReconnectPolicy` with its defaults: 0.5 s doubling
        up to 30 s, for ever), a :class:`ReconnectPolicy` of your own, or ``False`` (off).
        On a drop, ``on_disconnect(conn, error)`` gets the reason; the connection retries with
        the same token (so the same identity), re-applies every live subscription, reconciles
        the cache and calls ``on_connect`` again. Calls made meanwhile wait for it within their
        own timeout; a call whose answer was lost raises
        :class:`~spacetime_sched.ConnectionLostError`. See ``docs/client.md``, "Reconnection".
        """
        self._reconnect = reconnect_policy(policy)
        return self

    def on_connect(self, callback: Callback) -> DbConnectionBuilder[ConnectionT]:
        """``callback(conn, identity, token)`` once connected (sync or async)."""
        self._on_connect.append(_callable(callback, "on_connect"))
        return self

    def on_disconnect(self, callback: Callback) -> DbConnectionBuilder[ConnectionT]:
        """``callback(conn, error)`` when the connection ends: ``error`` is ``None`` when we
        closed it, else why it was lost (sync or async)."""
        self._on_disconnect.append(_callable(callback, "on_disconnect"))
        return self

    def on_connect_error(self, callback: Callback) -> DbConnectionBuilder[ConnectionT]:
        """``callback(error)`` when connecting fails, just before the error is raised."""
        self._on_connect_error.append(_callable(callback, "on_connect_error"))
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
            base_url=self._uri,
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
            reconnect=self._reconnect,
        )

    def build(self) -> ConnectionT:
        """Check the options; return the connection, not yet connected (``async with`` it)."""
        return self._connect(self.options())


def _callable(callback: Callback, what: str) -> Callback:
    if not callable(callback):
        raise ConfigurationError(f"{what}: expected a function, got {callback!r}")
    return callback


def _require_brotli() -> Any:
    try:
        import brotli
    except ImportError:
        raise ConfigurationError(
            "compression 'brotli' needs the brotli package: pip install 'spacetime-sched[brotli]'"
        ) from None
    return brotli
