"""The WebSocket session to ``/v1/database/{name}/subscribe``, over httpx + httpx-ws.

This layer moves binary messages and turns every way a socket can fail into one of our
exceptions; it knows nothing about what the messages mean. httpx-ws is anyio-native, so the same
code runs on asyncio and trio.

Two subprotocols: ``v2.bsatn.spacetimedb`` carries one message per frame each way;
``v3.bsatn.spacetimedb`` lets a frame carry several messages back to back. We offer both (v3
first) unless told otherwise, and the server picks. Under v3 the writer task packs every message
queued since its last write into as few frames as it can (each at most
:data:`MAX_BATCH_BYTES`), which is what makes pipelined calls cheap for both sides.

This is the one module that knows httpx-ws from the inside. :class:`WebSocket` is the small
interface the rest of the client uses (``send_nowait``, ``write_loop``, ``receive``, ``close``);
behind it, and nowhere else, are the three uses of httpx-ws internals that make it fast and
safe: the session's ``_write_lock`` (our batched writes must not interleave with its pongs and
close frames), ``session.stream.write`` (one socket write for a whole batch of frames) and
replacing ``session.connection`` (a wsproto connection that enforces ``max_message_size``
while fragments arrive). pyproject.toml pins httpx-ws below the next minor version for that
reason; a new version is taken by re-running the client tests and raising the bound.

It also keeps the token out of logs: httpcore logs the upgrade response's headers at DEBUG,
and the server puts the token in one of them (``spacetime-identity-token``), so
:func:`redact_token_headers` adds a filter to the loggers of the libraries we drive that hides
that header's value (and ``Authorization``'s) in every record they emit.
"""

from __future__ import annotations

import logging
import re
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
from ._options import DEFAULT_MAX_MESSAGE_SIZE, SUBPROTOCOL_V3, WireProtocol

__all__ = [
    "MAX_BATCH_BYTES",
    "WebSocket",
    "open_websocket",
    "redact_token_headers",
    "sole_exception",
    "subscribe_url",
]

# httpx-ws reads the socket in chunks of this size (it is a read size, not a message limit);
# a huge chunk would make trio allocate that much per read.
_READ_CHUNK: Final = 64 * 1024

# WebSocket close code 1009: "message too big".
_CLOSE_TOO_BIG: Final = 1009

#: Under v3, the most client-message bytes packed into one frame (a single bigger message still
#: goes, alone in its frame). Big enough to batch thousands of calls, small enough that one frame
#: never holds up the socket for long.
MAX_BATCH_BYTES: Final = 1024 * 1024


# A header in the repr of a header list, as httpcore logs it: (b'name', b'value').
_SECRET_HEADER: Final = re.compile(
    r"""(b?(['"])(?:spacetime-identity-token|authorization)\2,\s*b?)(['"]).*?\3""",
    re.IGNORECASE,
)
_SECRET_MARKERS: Final = ("identity-token", "authorization")
#: The loggers of the libraries under the client: httpcore logs raw headers at DEBUG.
_LIBRARY_LOGGERS: Final = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "httpx",
    "httpx_ws",
)


class _RedactTokenHeaders(logging.Filter):
    """Rewrite a record that shows a token-bearing header so that its value reads
    ``<hidden>``; every other record passes untouched (one substring test)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report, not ours
            return True
        lowered = message.lower()
        if any(marker in lowered for marker in _SECRET_MARKERS):
            record.msg = _SECRET_HEADER.sub(r"\1\3<hidden>\3", message)
            record.args = None
        return True


_REDACT: Final = _RedactTokenHeaders()


def redact_token_headers() -> None:
    """Install the token-redacting filter on the HTTP libraries' loggers (idempotent, and
    process-wide, since loggers are; every connection calls it before it connects)."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


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
        self._signalled = False  # _outgoing is set (saves a call per message under load)
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
        if not self._signalled:
            self._signalled = True
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
            self._signalled = False
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
    protocol: WireProtocol = WireProtocol.AUTO,
) -> AsyncIterator[WebSocket]:
    """Upgrade ``url`` to a WebSocket speaking one of ``protocol``'s subprotocols (the server
    chooses; ``ws.subprotocol`` says which).

    Failures before the upgrade become :class:`ConnectError`: an unreachable host, a token the
    server rejects (HTTP 401), an unknown database (404), a refused subprotocol (400).
    """
    redact_token_headers()
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
                f"{url}); drop the saved token or mint a new one with create_identity()",
                status=status,
            )
        return ConnectError(
            f"the server refused an anonymous connection (HTTP {status})", status=status
        )
    if status == 404:
        return ConnectError(f"no database at {url} (HTTP 404){detail}", status=status)
    return ConnectError(
        f"the WebSocket upgrade to {url} failed with HTTP {status}{detail}", status=status
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
