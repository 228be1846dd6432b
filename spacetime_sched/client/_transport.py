"""The WebSocket session to ``/v1/database/{name}/subscribe``, over httpx + httpx-ws.

This layer moves whole binary frames and turns every way a socket can fail into one of our
exceptions; it knows nothing about SpacetimeDB messages. httpx-ws is anyio-native, so the same
code runs on asyncio and trio.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Generator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any, Final

import anyio
import httpcore
import httpx
import wsproto
import wsproto.connection
import wsproto.utilities
from httpx_ws import (
    AsyncWebSocketSession,
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)

from .._errors import ConfigurationError, ConnectError, ConnectionClosedError, ProtocolError
from ._http import bearer_headers, describe_transport_error, join_path

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "SUBPROTOCOL_V2",
    "Compression",
    "WebSocket",
    "open_websocket",
    "sole_exception",
    "subscribe_url",
]

SUBPROTOCOL_V2: Final = "v2.bsatn.spacetimedb"

#: The server's own limit on one message: 32 MiB.
DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024

# httpx-ws reads the socket in chunks of this size (it is a read size, not a message limit);
# a huge chunk would make trio allocate that much per read.
_READ_CHUNK: Final = 64 * 1024

# WebSocket close code 1009: "message too big".
_CLOSE_TOO_BIG: Final = 1009


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
        for member in cls:
            if value.lower() == member.value.lower():
                return member
        raise ConfigurationError(f"compression: expected 'none', 'gzip' or 'brotli', got {value!r}")


def subscribe_url(base: httpx.URL, database: str) -> httpx.URL:
    if not database or "/" in database:
        raise ConfigurationError(
            f"database: expected a database name or identity, got {database!r}"
        )
    return join_path(base, f"/v1/database/{database}/subscribe")


class _SizeLimitedConnection(wsproto.connection.Connection):
    """A client-side wsproto connection that refuses a message as soon as the fragments seen so
    far exceed ``limit`` bytes, before httpx-ws assembles it in memory."""

    def __init__(self, limit: int) -> None:
        super().__init__(wsproto.ConnectionType.CLIENT)
        self._limit = limit
        self._partial = 0

    def events(self) -> Generator[wsproto.events.Event, None, None]:
        for event in super().events():
            if isinstance(event, wsproto.events.Message):
                self._partial += len(event.data)
                if self._partial > self._limit:
                    raise ProtocolError(
                        f"the server sent a message of more than {self._limit} bytes, over the "
                        "limit (max_message_size)"
                    )
                if event.message_finished:
                    self._partial = 0
            yield event


class _SizeLimitedSession(AsyncWebSocketSession):
    """httpx-ws's session with the message-size limit enforced while reading (httpx-ws's own
    ``max_message_size_bytes`` is only the size of one socket read)."""

    def __init__(self, stream: Any, *, max_message_size_bytes: int, **options: Any) -> None:
        super().__init__(stream, max_message_size_bytes=_READ_CHUNK, **options)
        self.connection = _SizeLimitedConnection(max_message_size_bytes)


class WebSocket:
    """An open WebSocket carrying binary frames both ways."""

    def __init__(self, session: AsyncWebSocketSession, url: httpx.URL, max_size: int) -> None:
        self._session = session
        self._url = url
        self._max_size = max_size
        self.subprotocol = session.subprotocol
        # Outgoing frames wait here, already framed by wsproto, for the writer task; it writes
        # whatever has piled up in one socket write. With many calls in flight that turns
        # hundreds of small writes (each a syscall) into a few large ones.
        self._outbox: list[bytes] = []
        self._outgoing = anyio.Event()
        self._write_error: BaseException | None = None
        # httpx-ws writes pongs and close frames under this lock; our writes must not interleave.
        self._write_lock: anyio.Lock = getattr(session, "_write_lock", None) or anyio.Lock()

    async def send(self, frame: bytes) -> None:
        """Queue one binary frame for the writer task (:meth:`write_loop`).

        :class:`ConnectionClosedError` if the socket is closing or a write already failed.
        """
        if self._write_error is not None:
            raise ConnectionClosedError(
                f"could not send to {self._url}: {_describe(self._write_error)}"
            ) from self._write_error
        try:
            data = self._session.connection.send(wsproto.events.BytesMessage(frame))
        except wsproto.utilities.LocalProtocolError as exc:
            raise ConnectionClosedError(
                f"could not send to {self._url}: the socket is closing"
            ) from exc
        self._outbox.append(data)
        self._outgoing.set()

    async def write_loop(self) -> None:
        """Write queued frames until cancelled; raise :class:`ConnectionClosedError` if the
        socket fails (run it beside the receive loop)."""
        while True:
            await self._outgoing.wait()
            self._outgoing = anyio.Event()
            await self._flush()

    async def _flush(self) -> None:
        if not self._outbox:
            return
        batch = self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox)
        self._outbox.clear()
        try:
            async with self._write_lock:
                await self._session.stream.write(batch)
        except (httpcore.NetworkError, OSError, anyio.BrokenResourceError) as exc:
            self._write_error = exc
            raise ConnectionClosedError(f"could not send to {self._url}: {_describe(exc)}") from exc

    async def receive(self) -> bytes:
        """The next binary frame from the server.

        Raises :class:`ConnectionClosedError` when the server closes the socket or the network
        fails, and :class:`ProtocolError` for a text frame or a frame over the size limit.
        """
        try:
            event = await self._session.receive()
        except WebSocketDisconnect as exc:
            reason = f": {exc.reason}" if exc.reason else ""
            raise ConnectionClosedError(
                f"the server closed the connection (close code {exc.code}{reason})"
            ) from None
        except WebSocketNetworkError as exc:
            raise ConnectionClosedError(f"the connection to {self._url} was lost") from exc
        if isinstance(event, wsproto.events.BytesMessage):
            frame = bytes(event.data)
            if len(frame) > self._max_size:
                raise ProtocolError(
                    f"the server sent a {len(frame)}-byte message, over the "
                    f"{self._max_size}-byte limit (max_message_size)"
                )
            return frame
        if isinstance(event, wsproto.events.TextMessage):
            raise ProtocolError(
                f"the server sent a text frame ({event.data[:60]!r}); "
                f"{SUBPROTOCOL_V2} frames are binary"
            )
        raise ProtocolError(f"unexpected WebSocket event {type(event).__name__}")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send what is queued and a close frame (best effort), and close the socket."""
        with suppress(ConnectionClosedError):
            await self._flush()
        with suppress(HTTPXWSException, wsproto.utilities.LocalProtocolError, httpx.TransportError):
            await self._session.close(code, reason or None)

    async def close_too_big(self) -> None:
        await self.close(_CLOSE_TOO_BIG, "message too big")


@asynccontextmanager
async def open_websocket(
    client: httpx.AsyncClient,
    url: httpx.URL,
    *,
    params: Mapping[str, str],
    token: str | None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AsyncIterator[WebSocket]:
    """Upgrade ``url`` to a WebSocket speaking ``v2.bsatn.spacetimedb``.

    Failures before the upgrade become :class:`ConnectError`: an unreachable host, a token the
    server rejects (HTTP 401), an unknown database (404), a refused subprotocol (400).
    """
    target = url.copy_with(params=dict(params))
    try:
        connecting: AbstractAsyncContextManager[AsyncWebSocketSession] = aconnect_ws(
            str(target),
            client,
            subprotocols=[SUBPROTOCOL_V2],
            headers=bearer_headers(token),
            max_message_size_bytes=max_message_size,
            session_class=_SizeLimitedSession,
        )
        async with connecting as session:
            if session.subprotocol != SUBPROTOCOL_V2:
                raise ConnectError(
                    f"the server at {url} did not accept the {SUBPROTOCOL_V2} subprotocol "
                    f"(it chose {session.subprotocol!r})"
                )
            ws = WebSocket(session, url, max_message_size)
            async with anyio.create_task_group() as writer:
                writer.start_soon(ws.write_loop)
                yield ws
                writer.cancel_scope.cancel()
    except Exception as exc:
        # httpx-ws runs the session in a task group, which wraps errors in an ExceptionGroup;
        # a group of one is unwrapped so callers see the real error.
        leaf = sole_exception(exc)
        if isinstance(leaf, WebSocketUpgradeError):
            raise _upgrade_error(leaf.response, url, token is not None) from None
        if isinstance(leaf, httpx.TransportError):
            raise describe_transport_error(leaf, url) from None
        if leaf is exc:
            raise
        leaf.__suppress_context__ = True
        raise leaf


def sole_exception(exc: BaseException) -> BaseException:
    """The one real error inside nested single-member exception groups, else ``exc`` itself."""
    while True:
        members = getattr(exc, "exceptions", None)
        if not isinstance(members, tuple) or len(members) != 1:
            return exc
        exc = members[0]


def _upgrade_error(response: httpx.Response, url: httpx.URL, had_token: bool) -> ConnectError:
    status = response.status_code
    try:
        body = response.text.strip()[:300]
    except (httpx.ResponseNotRead, httpx.StreamError):
        body = ""
    detail = f": {body}" if body else ""
    if status in (401, 403):
        if had_token:
            return ConnectError(
                f"the server rejected the token (HTTP {status} on the WebSocket upgrade to "
                f"{url}); drop the saved token or mint a new one with create_identity()"
            )
        return ConnectError(f"the server refused an anonymous connection (HTTP {status})")
    if status == 404:
        return ConnectError(f"no database at {url} (HTTP 404){detail}")
    return ConnectError(f"the WebSocket upgrade to {url} failed with HTTP {status}{detail}")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
