"""A batched (v3) frame holds a bounded number of messages (issue 8, defect 4).

SpacetimeDB batches at most 4096 messages in a frame; the client accepts up to
``DEFAULT_MAX_MESSAGES_PER_FRAME`` (65,536) and refuses more with a ProtocolError naming the
limit, before decoding the rest. Before the fix a 48,904-byte gzip frame decoded to 6,710,886
messages (13.8 s, 449 MiB).
"""

from __future__ import annotations

import gzip
import time
import tracemalloc

import pytest

from spacetime_sched import ProtocolError
from spacetime_sched._time import Timestamp
from spacetime_sched.protocol import (
    DEFAULT_MAX_MESSAGES_PER_FRAME,
    CallReducer,
    ReducerOkEmpty,
    ReducerResult,
    decode_client_frame,
    decode_server_frame,
    encode_client_message,
    encode_server_frame,
    encode_server_message,
)

RESULT = ReducerResult(7, Timestamp(1), ReducerOkEmpty())


def test_the_default_limit_is_sixteen_times_what_spacetimedb_sends() -> None:
    assert DEFAULT_MAX_MESSAGES_PER_FRAME == 16 * 4096


def test_a_gzip_frame_of_millions_of_tiny_messages_is_refused_quickly_in_bounded_memory() -> None:
    body = encode_server_message(RESULT) * 3_000_000  # 42 MB, within max_size
    frame = b"\x02" + gzip.compress(body, compresslevel=9, mtime=0)
    assert len(frame) < 100_000
    del body
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ProtocolError, match="more than max_messages=65536 messages"):
            decode_server_frame(frame, batched=True)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 30  # generous: about 1 s under tracemalloc; it was 14 s without it
    assert peak < 200 * 2**20  # the 42 MB body, and 65,536 messages at most


def test_exactly_max_messages_decode() -> None:
    frame = encode_server_frame([RESULT] * 5, batched=True)
    assert decode_server_frame(frame, batched=True, max_messages=5) == [RESULT] * 5
    with pytest.raises(ProtocolError, match="v3 server frame holds more than max_messages=4"):
        decode_server_frame(frame, batched=True, max_messages=4)


def test_client_frames_are_bounded_too() -> None:
    call = CallReducer(1, 0, "add", b"")
    frame = encode_client_message(call) * 3
    assert decode_client_frame(frame, batched=True, max_messages=3) == [call] * 3
    with pytest.raises(ProtocolError, match="client frame holds more than max_messages=2"):
        decode_client_frame(frame, batched=True, max_messages=2)
