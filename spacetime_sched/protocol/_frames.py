"""WebSocket frames: the compression tag, decompression with a size bound, v3 batching.

Server to client, every binary frame is ``[u8 compression tag][payload]``: tag 0 means the
payload is the BSATN itself, 1 brotli, 2 gzip. The server compresses only bodies longer than
1024 bytes, so tag 0 shows up even on a connection that asked for compression.
Client to server, a frame is just the BSATN, with no tag.

``v2.bsatn.spacetimedb`` carries exactly one message per frame; ``v3.bsatn.spacetimedb`` may
carry several, back to back (``batched=True``), and an empty v3 frame is an error.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from typing import Any, Final, Literal, TypeAlias, cast

from .._errors import ProtocolError
from ._codec import (
    PlainReducerResult,
    decode_client_message_from,
    decode_server_message_from,
    encode_client_message,
    encode_server_message,
    read_plain_reducer_result,
)
from ._messages import (
    CLIENT_MESSAGE_CLASSES,
    SERVER_MESSAGE_CLASSES,
    ClientMessage,
    ServerMessage,
)

__all__ = [
    "COMPRESSION_BROTLI",
    "COMPRESSION_GZIP",
    "COMPRESSION_NONE",
    "COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_MESSAGES_PER_FRAME",
    "Compression",
    "decode_client_frame",
    "decode_server_frame",
    "decode_server_frame_plain",
    "decompress_server_frame",
    "encode_client_frame",
    "encode_server_frame",
]

#: Compression tags: the first byte of every binary server frame.
COMPRESSION_NONE: Final = 0
COMPRESSION_BROTLI: Final = 1
COMPRESSION_GZIP: Final = 2

#: The server compresses a frame only when its BSATN body is longer than this.
COMPRESSION_THRESHOLD: Final = 1024

#: Default bound on a decompressed frame: generous for big subscriptions, small enough that a
#: decompression bomb cannot exhaust memory.
DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024 * 1024

#: Default bound on the messages in one batched (v3) frame. SpacetimeDB puts at most 4096 in a
#: frame (``ClientConnectionReceiver::DEFAULT_RECV_MANY_LIMIT``, crates/core/src/client/
#: client_connection.rs:166, the batch size of ``encode_v3_batch`` in crates/client-api/src/
#: routes/subscribe.rs:1454); without a bound, a 48 KB gzip frame of tiny messages decodes to
#: millions of them, seconds of work and hundreds of MiB before the first one is applied.
DEFAULT_MAX_MESSAGES_PER_FRAME: Final = 65_536

#: A compression name, as in the ``compression`` query parameter (case-insensitive).
Compression: TypeAlias = Literal["none", "gzip", "brotli", "None", "Gzip", "Brotli"]

_COMPRESSION_TAGS: Final = {
    "none": COMPRESSION_NONE,
    "brotli": COMPRESSION_BROTLI,
    "gzip": COMPRESSION_GZIP,
}

# Feed brotli input in pieces, checking the output size after each; brotli >= 1.2 also caps the
# output of each step, older versions get tiny pieces so they cannot overshoot by much.
_CHUNK = 16 * 1024
_SMALL_CHUNK = 64


def _brotli(doing: str) -> Any:
    try:
        import brotli
    except ImportError:
        raise ProtocolError(
            f"{doing} needs the 'brotli' package, which is not installed: install "
            "spacetime-sched[brotli], or use gzip or no compression"
        ) from None
    return brotli


def _too_big(max_size: int) -> ProtocolError:
    return ProtocolError(
        f"frame decompresses to more than max_size={max_size} bytes (raise max_size if this "
        "is a legitimately large message)"
    )


def _gunzip(payload: bytes, max_size: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(payload, max_size + 1)
    except zlib.error as exc:
        raise ProtocolError(f"invalid gzip frame: {exc}") from None
    if len(data) > max_size:
        raise _too_big(max_size)
    if not inflater.eof:
        raise ProtocolError("truncated gzip frame: the compressed stream ends early")
    if inflater.unused_data:
        raise ProtocolError(
            f"gzip frame has {len(inflater.unused_data)} bytes after the compressed stream"
        )
    return data


def _unbrotli(payload: bytes, max_size: int) -> bytes:
    brotli = _brotli("decoding a brotli-compressed frame")
    decompressor = brotli.Decompressor()
    pieces: list[bytes] = []
    size = 0
    chunk = _CHUNK
    limited = True
    try:
        start = 0
        while start < len(payload):
            data = payload[start : start + chunk]
            if limited:
                try:
                    # Ask for at most one byte over the budget: reaching the limit means too big,
                    # and staying under it means this input was fully inflated.
                    piece = decompressor.process(data, output_buffer_limit=max_size + 1 - size)
                except TypeError:  # brotli < 1.2: no output limit, so feed tiny pieces instead
                    limited, chunk = False, _SMALL_CHUNK
                    continue
            else:
                piece = decompressor.process(data)
            start += len(data)
            pieces.append(piece)
            size += len(piece)
            if size > max_size:
                raise _too_big(max_size)
        finished = decompressor.is_finished()
    except brotli.error as exc:
        raise ProtocolError(f"invalid brotli frame: {exc}") from None
    if not finished:
        raise ProtocolError("truncated brotli frame: the compressed stream ends early")
    return b"".join(pieces)


def decompress_server_frame(
    frame: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> bytes:
    """Strip the compression tag of a binary server frame and inflate the payload.

    The result is the BSATN of one message (v2) or of several (v3). It is never allowed to grow
    beyond ``max_size`` bytes (:class:`~spacetime_sched.ProtocolError` otherwise).
    """
    if not frame:
        raise ProtocolError("empty server frame: expected a compression tag byte")
    frame = bytes(frame)
    tag = frame[0]
    payload = frame[1:]
    if tag == COMPRESSION_NONE:
        if len(payload) > max_size:
            raise _too_big(max_size)
        return payload
    if tag == COMPRESSION_GZIP:
        return _gunzip(payload, max_size)
    if tag == COMPRESSION_BROTLI:
        return _unbrotli(payload, max_size)
    raise ProtocolError(
        f"unknown compression tag {tag} in server frame (expected 0 none, 1 brotli, 2 gzip)"
    )


def _too_many(max_messages: int, kind: str) -> ProtocolError:
    return ProtocolError(
        f"{kind} frame holds more than max_messages={max_messages} messages (SpacetimeDB "
        "batches at most 4096 in a frame)"
    )


def decode_server_frame(
    frame: bytes | bytearray | memoryview,
    *,
    batched: bool = False,
    max_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_messages: int = DEFAULT_MAX_MESSAGES_PER_FRAME,
) -> list[ServerMessage]:
    """Decode a binary server frame into its messages.

    ``batched=False`` (protocol v2): the frame holds exactly one message.
    ``batched=True`` (protocol v3): one or more messages back to back; all are returned, and
    more than ``max_messages`` of them is a :class:`~spacetime_sched.ProtocolError`.
    """
    return cast(
        "list[ServerMessage]",
        _decode_server_frame(frame, batched, max_size, max_messages, plain=False),
    )


def decode_server_frame_plain(
    frame: bytes | bytearray | memoryview,
    *,
    batched: bool = False,
    max_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_messages: int = DEFAULT_MAX_MESSAGES_PER_FRAME,
) -> list[ServerMessage | PlainReducerResult]:
    """:func:`decode_server_frame`, except that a ``ReducerResult`` that changed none of the
    caller's rows comes as a :class:`PlainReducerResult` (see there why): what the client
    reads."""
    return _decode_server_frame(frame, batched, max_size, max_messages, plain=True)


def _decode_server_frame(
    frame: bytes | bytearray | memoryview,
    batched: bool,
    max_size: int,
    max_messages: int,
    *,
    plain: bool,
) -> list[ServerMessage | PlainReducerResult]:
    if frame and frame[0] == COMPRESSION_NONE and len(frame) <= max_size + 1:
        # Uncompressed (the common case for small messages): decode in place, no copy.
        body, offset = frame if type(frame) is bytes else bytes(frame), 1
    else:
        body, offset = decompress_server_frame(frame, max_size=max_size), 0
    if offset == len(body):
        kind = "v3 server frame" if batched else "server frame"
        raise ProtocolError(f"empty {kind}: expected at least one message after the tag")
    messages: list[ServerMessage | PlainReducerResult] = []
    while offset < len(body):
        if batched and len(messages) == max_messages:
            raise _too_many(max_messages, "v3 server")
        message: ServerMessage | PlainReducerResult
        found = read_plain_reducer_result(body, offset) if plain else None
        if found is not None:
            message, end = found
        else:
            message, end = decode_server_message_from(body, offset)
        if not batched and end != len(body):
            raise ProtocolError(
                f"ServerMessage.{_kind(message)}: {len(body) - end} unexpected bytes "
                f"after the message (it ends at offset {end - offset} of {len(body) - offset})"
            )
        messages.append(message)
        offset = end
    return messages


def _kind(message: ServerMessage | PlainReducerResult) -> str:
    return "ReducerResult" if type(message) is PlainReducerResult else type(message).__name__


def decode_client_frame(
    data: bytes | bytearray | memoryview,
    *,
    batched: bool = False,
    max_messages: int = DEFAULT_MAX_MESSAGES_PER_FRAME,
) -> list[ClientMessage]:
    """Decode a binary client frame (no compression tag) into its messages (at most
    ``max_messages`` of them)."""
    body = bytes(data)
    if not body:
        raise ProtocolError("empty client frame: expected a ClientMessage")
    messages: list[ClientMessage] = []
    offset = 0
    while offset < len(body):
        if len(messages) == max_messages:
            raise _too_many(max_messages, "client")
        message, offset = decode_client_message_from(body, offset)
        messages.append(message)
        if not batched and offset != len(body):
            raise ProtocolError(
                f"client frame holds {len(body) - offset} bytes after its {type(message).__name__} "
                "message (only protocol v3 batches several messages in a frame)"
            )
    return messages


def _message_list(messages: Any, classes: tuple[type, ...], batched: bool, kind: str) -> list[Any]:
    items = [messages] if isinstance(messages, classes) else list(messages)
    if not items:
        raise ValueError(f"a {kind} frame needs at least one message")
    if not batched and len(items) != 1:
        raise ValueError(
            f"a v2 {kind} frame carries exactly one message, got {len(items)} "
            "(use batched=True for protocol v3)"
        )
    return items


def encode_server_frame(
    messages: ServerMessage | Iterable[ServerMessage],
    compression: Compression = "none",
    *,
    batched: bool = False,
    threshold: int = COMPRESSION_THRESHOLD,
) -> bytes:
    """Encode one message (or, with ``batched=True``, several) as a binary server frame.

    Like the real server, the body is compressed only when it is longer than ``threshold``
    bytes: gzip at its fastest level, brotli at quality 1.
    """
    items = _message_list(messages, SERVER_MESSAGE_CLASSES, batched, "server")
    body = b"".join(encode_server_message(message) for message in items)
    try:
        tag = _COMPRESSION_TAGS[compression.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"compression: expected 'none', 'gzip' or 'brotli', got {compression!r}"
        ) from None
    if tag == COMPRESSION_NONE or len(body) <= threshold:
        return b"\x00" + body
    if tag == COMPRESSION_GZIP:
        return b"\x02" + gzip.compress(body, compresslevel=1, mtime=0)
    compressed: bytes = _brotli("brotli compression").compress(body, quality=1)
    return b"\x01" + compressed


def encode_client_frame(
    messages: ClientMessage | Iterable[ClientMessage], *, batched: bool = False
) -> bytes:
    """Encode one message (or, with ``batched=True``, several) as a binary client frame."""
    items = _message_list(messages, CLIENT_MESSAGE_CLASSES, batched, "client")
    if len(items) == 1:
        return encode_client_message(items[0])
    return b"".join(encode_client_message(message) for message in items)
