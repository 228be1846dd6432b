"""Connection options: what a :class:`~spacetime_sched.client.DbConnection` needs to connect,
checked once, frozen, and nothing else.

Every option is validated where it is given (a builder method or the connection's constructor),
so a bad value fails at the line that set it, with :class:`~spacetime_sched.ConfigurationError`
naming the option, and never later inside the connect path.

Defaults, for a connection made with no options (``ModernSpacetimeDBClient()``):

* the server: ``$SPACETIMEDB_URI``, else :data:`DEFAULT_URI` (``http://127.0.0.1:3000``, where
  ``spacetime start`` and ``python -m spacetime_sched serve`` listen);
* the database: ``$SPACETIMEDB_DATABASE``; with neither it nor a builder name, entering the
  connection raises :class:`~spacetime_sched.ConfigurationError` saying so (the object can still
  be made and its scheduler used before then).
"""

from __future__ import annotations

import enum
import math
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import httpx

from .._errors import ConfigurationError
from ._credentials import CredentialsFile
from ._http import http_base_url
from ._reconnect import ReconnectPolicy

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_URI",
    "MAX_MAX_MESSAGE_SIZE",
    "SUBPROTOCOL_V2",
    "SUBPROTOCOL_V3",
    "Callback",
    "Compression",
    "ConnectOptions",
    "WireProtocol",
    "check_positive_seconds",
    "default_options",
    "parse_uri",
]

Callback = Callable[..., Any]

SUBPROTOCOL_V2: Final = "v2.bsatn.spacetimedb"
SUBPROTOCOL_V3: Final = "v3.bsatn.spacetimedb"

#: Where a connection made without a URI goes when ``$SPACETIMEDB_URI`` is not set.
DEFAULT_URI: Final = "http://127.0.0.1:3000"
#: Seconds to wait for the WebSocket upgrade and ``InitialConnection``.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
#: The server's own limit on one message: 32 MiB.
DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
#: The largest ``max_message_size`` accepted (1 GiB): past that a single message could not be
#: held in memory anyway, and a typo like ``10**20`` should fail where it is written.
MAX_MAX_MESSAGE_SIZE: Final = 1024 * 1024 * 1024
_MIN_MAX_MESSAGE_SIZE: Final = 1024


class Compression(str, enum.Enum):
    """How the server compresses its frames (``?compression=``); small frames are never
    compressed. Gzip needs only the standard library; Brotli needs the ``brotli`` extra."""

    NONE = "None"
    GZIP = "Gzip"
    BROTLI = "Brotli"

    @classmethod
    def parse(cls, value: Compression | str | None) -> Compression:
        if value is None:
            return cls.NONE
        if isinstance(value, Compression):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.lower() == member.value.lower():
                    return member
        raise ConfigurationError(f"compression: expected 'none', 'gzip' or 'brotli', got {value!r}")


class WireProtocol(str, enum.Enum):
    """Which WebSocket subprotocols to offer: ``auto`` (the default) offers v3 and v2 and lets
    the server choose; ``v3`` or ``v2`` offers only that one (the upgrade fails if the server
    does not speak it).

    (Called ``Protocol`` before 0.2, a name that shadowed :class:`typing.Protocol`.)
    """

    AUTO = "auto"
    V3 = "v3"
    V2 = "v2"

    @classmethod
    def parse(cls, value: WireProtocol | str | None) -> WireProtocol:
        if value is None:
            return cls.AUTO
        if isinstance(value, WireProtocol):
            return value
        lowered = str(value).lower()
        for member in cls:
            if lowered in (member.value, _SUBPROTOCOLS[member][0]):
                return member
        raise ConfigurationError(f"protocol: expected 'auto', 'v3' or 'v2', got {value!r}")

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The ``Sec-WebSocket-Protocol`` offer, most preferred first."""
        return _SUBPROTOCOLS[self]


_SUBPROTOCOLS: Final = {
    WireProtocol.AUTO: (SUBPROTOCOL_V3, SUBPROTOCOL_V2),
    WireProtocol.V3: (SUBPROTOCOL_V3,),
    WireProtocol.V2: (SUBPROTOCOL_V2,),
}


def parse_uri(uri: object) -> httpx.URL:
    """``uri`` (a ``str`` or :class:`httpx.URL`) as the server's http(s) base URL, or
    :class:`ConfigurationError` naming ``uri``."""
    if not isinstance(uri, (str, httpx.URL)):
        raise ConfigurationError(
            f"uri: expected a str such as 'ws://localhost:3000', got {type(uri).__name__}"
        )
    return http_base_url(uri)


def check_positive_seconds(seconds: object, what: str) -> float:
    """``seconds`` as a finite float > 0, or :class:`ConfigurationError` naming ``what``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ConfigurationError(f"{what}: expected seconds as a number, got {seconds!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"{what}: expected finite seconds > 0, got {seconds!r}")
    return float(seconds)


def check_max_message_size(max_bytes: object) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise ConfigurationError(f"max_message_size: expected an int, got {max_bytes!r}")
    if not _MIN_MAX_MESSAGE_SIZE <= max_bytes <= MAX_MAX_MESSAGE_SIZE:
        raise ConfigurationError(
            f"max_message_size: expected {_MIN_MAX_MESSAGE_SIZE} to {MAX_MAX_MESSAGE_SIZE} "
            f"bytes, got {max_bytes!r}"
        )
    return max_bytes


@attrs.frozen(repr=False)
class ConnectOptions:
    """Everything a connection needs (validated, immutable); made by
    :meth:`DbConnectionBuilder.options` or ``default_options()``.

    ``database`` is ``""`` only for a connection made without one and without
    ``$SPACETIMEDB_DATABASE``: connecting it raises :class:`ConfigurationError`.
    """

    base_url: httpx.URL
    database: str
    token: str | None = None
    credentials: CredentialsFile | None = None
    compression: Compression = Compression.GZIP
    confirmed_reads: bool | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    verify: bool | ssl.SSLContext = True
    transport: httpx.AsyncBaseTransport | None = None
    #: Start the connection's scheduler as soon as the connection is up.
    auto_scheduler: bool = False
    #: ``max_concurrent_executions`` of the connection's scheduler (None: its own default).
    max_concurrent_executions: int | None = None
    on_connect: tuple[Callback, ...] = ()
    on_disconnect: tuple[Callback, ...] = ()
    on_connect_error: tuple[Callback, ...] = ()
    protocol: WireProtocol = WireProtocol.AUTO
    #: How to come back after a drop (``None``: do not; the connection stays closed).
    reconnect: ReconnectPolicy | None = None

    def __repr__(self) -> str:
        auth = "token=<hidden>" if self.token is not None else "anonymous"
        return f"ConnectOptions({str(self.base_url)!r}, database={self.database!r}, {auth})"

    def query_params(self) -> dict[str, str]:
        params = {"compression": self.compression.value}
        if self.confirmed_reads is not None:
            params["confirmed"] = "true" if self.confirmed_reads else "false"
        return params


def default_options(environ: Mapping[str, str] | None = None) -> ConnectOptions:
    """The options of a connection made with none: the server and database from
    ``$SPACETIMEDB_URI`` and ``$SPACETIMEDB_DATABASE`` (see the module docs)."""
    env = os.environ if environ is None else environ
    return ConnectOptions(
        base_url=parse_uri(env.get("SPACETIMEDB_URI") or DEFAULT_URI),
        database=env.get("SPACETIMEDB_DATABASE", ""),
    )
