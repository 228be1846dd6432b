"""The WebSocket session to ``/v1/database/{name}/subscribe``, over httpx + httpx-ws.

This layer moves binary messages and turns every way a socket can fail into one of our
exceptions; it knows nothing about what the messages mean. httpx-ws is anyio-native, so the same
code runs on asyncio and trio.

Two subprotocols: ``v2.bsatn.spacetimedb`` carries one message per frame each way;
``v3.bsatn.spacetimedb`` lets a frame carry several messages back to back. We offer both (v3
first) unless told otherwise, and the server picks. Under v3 the writer task packs every message
queued since its last write into as few frames as it can (each at most
:data:`MAX_BATCH_BYTES`), which is what makes pipelined calls cheap for both sides.
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
    "MAX_BATCH_BYTES",
    "SUBPROTOCOL_V2",
    "SUBPROTOCOL_V3",
    "Compression",
    "Protocol",
    "WebSocket",
    "open_websocket",
    "sole_exception",
    "subscribe_url",
]

SUBPROTOCOL_V2: Final = "v2.bsatn.spacetimedb"
SUBPROTOCOL_V3: Final = "v3.bsatn.spacetimedb"

#: Under v3, the most client-message bytes packed into one frame (a single bigger message still
#: goes, alone in its frame). Big enough to batch thousands of calls, small enough that one frame
#: never holds up the socket for long.
MAX_BATCH_BYTES: Final = 1024 * 1024

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


class Protocol(str, enum.Enum):
    """Which WebSocket subprotocols to offer: ``auto`` (the default) offers v3 and v2 and lets
    the server choose; ``v3`` or ``v2`` offers only that one (the upgrade fails if the server
    does not speak it)."""

    AUTO = "auto"
    V3 = "v3"
    V2 = "v2"

    @classmethod
    def parse(cls, value: Protocol | str | None) -> Protocol:
        if value is None:
            return cls.AUTO
        if isinstance(value, Protocol):
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
    Protocol.AUTO: (SUBPROTOCOL_V3, SUBPROTOCOL_V2),
    Protocol.V3: (SUBPROTOCOL_V3,),
    Protocol.V2: (SUBPROTOCOL_V2,),
}


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
    """An open WebSocket carrying binary BSATN messages both ways.

    :attr:`batched` tells how to read a server frame: one message (v2) or several (v3).
    """

    def __init__(self, session: AsyncWebSocketSession, url: httpx.URL, max_size: int) -> None:
        self._session = session
        self._url = url
        self._max_size = max_size
        self.subprotocol: str = session.subprotocol or ""
        #: True under v3: frames each way may hold several messages.
        self.batched = self.subprotocol == SUBPROTOCOL_V3
        self._connection = session.connection
        # Outgoing messages wait here for the writer task, which sends whatever has piled up in
        # one socket write. With many calls in flight that turns hundreds of small writes (each
        # a syscall) into a few large ones; under v3 also into a few frames, which the server
        # decodes and answers in one go. Under v2 each entry is already a framed message.
        self._outbox: list[bytes] = []
        self._outgoing = anyio.Event()
        self._write_error: BaseException | None = None
        # httpx-ws writes pongs and close frames under this lock; our writes must not interleave.
        self._write_lock: anyio.Lock = getattr(session, "_write_lock", None) or anyio.Lock()

    def send_nowait(self, message: bytes) -> None:
        """Queue one client message for the writer task (:meth:`write_loop`); never blocks.

        :class:`ConnectionClosedError` if the socket is closing or a write already failed.
        """
        if self._write_error is not None:
            raise ConnectionClosedError(
                f"could not send to {self._url}: {_describe(self._write_error)}"
            ) from self._write_error
        if self.batched:
            if self._connection.state is not wsproto.connection.ConnectionState.OPEN:
                raise ConnectionClosedError(f"could not send to {self._url}: the socket is closing")
            self._outbox.append(message)
        else:
            self._outbox.append(self._frame(message))
        self._outgoing.set()

    async def send(self, message: bytes) -> None:
        """:meth:`send_nowait`, for callers that want an ``await`` (it does not checkpoint)."""
        self.send_nowait(message)

    def _frame(self, payload: bytes) -> bytes:
        try:
            return self._connection.send(wsproto.events.BytesMessage(payload))
        except wsproto.utilities.LocalProtocolError as exc:
            raise ConnectionClosedError(
                f"could not send to {self._url}: the socket is closing"
            ) from exc

    async def write_loop(self) -> None:
        """Write queued messages until cancelled; raise :class:`ConnectionClosedError` if the
        socket fails (run it beside the receive loop)."""
        while True:
            await self._outgoing.wait()
            self._outgoing = anyio.Event()
            await self._flush()

    def _take_batch(self) -> bytes:
        """Everything queued, as the bytes of one socket write (v3: packed into frames)."""
        outbox = self._outbox
        if not self.batched:
            data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
            outbox.clear()
            return data
        frames: list[bytes] = []
        start = 0
        while start < len(outbox):
            end, size = start, 0
            while end < len(outbox) and (
                end == start or size + len(outbox[end]) <= MAX_BATCH_BYTES
            ):
                size += len(outbox[end])
                end += 1
            payload = outbox[start] if end == start + 1 else b"".join(outbox[start:end])
            frames.append(self._frame(payload))
            start = end
        outbox.clear()
        return frames[0] if len(frames) == 1 else b"".join(frames)

    async def _flush(self) -> None:
        if not self._outbox:
            return
        try:
            batch = self._take_batch()
        except ConnectionClosedError as exc:
            self._write_error = exc
            raise
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
                f"{self.subprotocol} frames are binary"
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
    protocol: Protocol = Protocol.AUTO,
) -> AsyncIterator[WebSocket]:
    """Upgrade ``url`` to a WebSocket speaking one of ``protocol``'s subprotocols (the server
    chooses; ``ws.subprotocol`` says which).

    Failures before the upgrade become :class:`ConnectError`: an unreachable host, a token the
    server rejects (HTTP 401), an unknown database (404), a refused subprotocol (400).
    """
    target = url.copy_with(params=dict(params))
    offered = protocol.subprotocols
    try:
        connecting: AbstractAsyncContextManager[AsyncWebSocketSession] = aconnect_ws(
            str(target),
            client,
            subprotocols=list(offered),
            headers=bearer_headers(token),
            max_message_size_bytes=max_message_size,
            session_class=_SizeLimitedSession,
        )
        async with connecting as session:
            if session.subprotocol not in offered:
                raise ConnectError(
                    f"the server at {url} did not accept the {' or '.join(offered)} "
                    f"subprotocol (it chose {session.subprotocol!r})"
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
