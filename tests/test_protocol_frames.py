"""Frames: the compression tag, gzip and brotli, v3 batching, and hostile input."""

from __future__ import annotations

import builtins
import contextlib
import gzip
import random
import sys
from typing import Any

import brotli
import pytest
from _protocol_support import vectors_named
from hypothesis import given
from hypothesis import strategies as st

from spacetime_sched import EncodeError, ProtocolError
from spacetime_sched._time import Timestamp
from spacetime_sched.protocol import (
    BsatnRowList,
    CallReducer,
    OneOffQuery,
    QueryRows,
    ReducerOkEmpty,
    ReducerResult,
    SingleTableRows,
    SubscribeApplied,
    TransactionUpdate,
    decode_client_frame,
    decode_client_message,
    decode_server_frame,
    decode_server_message,
    decompress_server_frame,
    encode_client_frame,
    encode_client_message,
    encode_server_frame,
    encode_server_message,
)


def _big_message(rows: int = 200) -> SubscribeApplied:
    # Compressible but not trivial: 16-byte rows counting upwards.
    data = b"".join(i.to_bytes(8, "little") * 2 for i in range(rows))
    row_list = BsatnRowList.from_row_bytes(data[i : i + 16] for i in range(0, len(data), 16))
    return SubscribeApplied(1, 2, QueryRows([SingleTableRows("position", row_list)]))


def _result(request_id: int) -> ReducerResult:
    return ReducerResult(request_id, Timestamp(1_700_000_000_000_000), ReducerOkEmpty())


# --- compression --------------------------------------------------------------------------------


def test_an_uncompressed_frame_is_tag_zero_then_the_message() -> None:
    message = _result(5)
    frame = encode_server_frame(message)
    assert frame == b"\x00" + encode_server_message(message)
    assert decode_server_frame(frame) == [message]


@pytest.mark.parametrize(("compression", "tag"), [("gzip", 2), ("brotli", 1), ("Gzip", 2)])
def test_large_frames_are_compressed_and_decode_back(compression: Any, tag: int) -> None:
    message = _big_message()
    frame = encode_server_frame(message, compression)
    assert frame[0] == tag
    assert len(frame) < len(encode_server_message(message))
    assert decode_server_frame(frame) == [message]


@pytest.mark.parametrize("compression", ["gzip", "brotli"])
def test_frames_at_or_below_the_threshold_stay_uncompressed(compression: Any) -> None:
    message = _big_message()
    size = len(encode_server_message(message))
    assert encode_server_frame(message, compression, threshold=size)[0] == 0
    assert encode_server_frame(message, compression, threshold=size - 1)[0] != 0


def test_gzip_frames_from_other_encoders_decode() -> None:
    body = encode_server_message(_big_message())
    frame = b"\x02" + gzip.compress(body, compresslevel=9)
    assert decompress_server_frame(frame) == body


def test_brotli_frames_from_other_encoders_decode() -> None:
    body = encode_server_message(_big_message())
    assert decompress_server_frame(b"\x01" + brotli.compress(body, quality=11)) == body


def test_missing_brotli_package_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = encode_server_frame(_big_message(), "brotli")
    monkeypatch.delitem(sys.modules, "brotli")
    real_import = builtins.__import__

    def no_brotli(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "brotli":
            raise ImportError("No module named 'brotli'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_brotli)
    with pytest.raises(ProtocolError, match=r"spacetime-sched\[brotli\]"):
        decode_server_frame(frame)


def test_unknown_compression_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="compression: expected 'none', 'gzip' or 'brotli'"):
        encode_server_frame(_result(1), "zstd")  # type: ignore[arg-type]


# --- hostile frames -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"", "empty server frame"),
        (b"\x07" + b"\x06" * 10, "unknown compression tag 7"),
        (b"\x02not gzip at all", "invalid gzip frame"),
        (b"\x01\xff\xff\xff\xff", "invalid brotli frame"),
        (b"\x00", "empty server frame: expected at least one message"),
        (b"\x00\x09", "unknown message tag 9"),
        (b"\x00\x06\x01\x00", "truncated ServerMessage.ReducerResult"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_server_frame(frame)


@pytest.mark.parametrize("compression", ["gzip", "brotli"])
def test_truncated_compressed_frames_raise_protocol_error(compression: Any) -> None:
    frame = encode_server_frame(_big_message(), compression)
    with pytest.raises(ProtocolError, match=r"truncated|invalid"):
        decode_server_frame(frame[: len(frame) // 2])


def test_gzip_with_trailing_garbage_is_rejected() -> None:
    frame = encode_server_frame(_big_message(), "gzip") + b"junk"
    with pytest.raises(ProtocolError, match="after the compressed stream"):
        decode_server_frame(frame)


@pytest.mark.parametrize("compression", ["gzip", "brotli"])
def test_decompression_bombs_are_stopped_at_max_size(compression: str) -> None:
    # 16 MiB of zeros compress to a few kB; inflating is refused once it passes max_size.
    zeros = bytes(16 * 1024 * 1024)
    if compression == "gzip":
        frame = b"\x02" + gzip.compress(zeros, compresslevel=9)
    else:
        frame = b"\x01" + brotli.compress(zeros, quality=5)
    assert len(frame) < 1024 * 1024
    with pytest.raises(ProtocolError, match="more than max_size=1048576"):
        decode_server_frame(frame, max_size=1024 * 1024)


def test_max_size_also_bounds_uncompressed_frames() -> None:
    frame = encode_server_frame(_big_message())
    with pytest.raises(ProtocolError, match="max_size"):
        decode_server_frame(frame, max_size=len(frame) - 2)
    assert decode_server_frame(frame, max_size=len(frame) - 1) == [_big_message()]


@given(st.binary(max_size=64))
def test_garbage_either_decodes_or_raises_protocol_error(data: bytes) -> None:
    for decode in (decode_server_message, decode_client_message):
        try:
            message = decode(data)
        except ProtocolError:
            continue
        encode = encode_server_message if decode is decode_server_message else encode_client_message
        assert encode(message) == data  # type: ignore[operator]


def test_random_garbage_frames_never_escape_as_other_errors() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        frame = bytes([rng.choice((0, 1, 2))]) + rng.randbytes(rng.randrange(0, 40))
        for batched in (False, True):
            with contextlib.suppress(ProtocolError):
                decode_server_frame(frame, batched=batched)


# --- v3 batching --------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "brotli"])
def test_v3_frames_carry_several_server_messages(compression: Any) -> None:
    messages = [_result(1), _big_message(), _result(2), TransactionUpdate([])]
    frame = encode_server_frame(messages, compression, batched=True)
    assert decode_server_frame(frame, batched=True) == messages
    with pytest.raises(ProtocolError, match="unexpected bytes after the message"):
        decode_server_frame(frame)  # a v2 reader sees trailing bytes


def test_an_empty_v3_frame_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="empty v3 server frame"):
        decode_server_frame(b"\x00", batched=True)
    with pytest.raises(ProtocolError, match="empty client frame"):
        decode_client_frame(b"", batched=True)


def test_v2_frames_carry_exactly_one_message() -> None:
    with pytest.raises(ValueError, match="exactly one message, got 2"):
        encode_server_frame([_result(1), _result(2)])
    with pytest.raises(ValueError, match="at least one message"):
        encode_server_frame([], batched=True)
    with pytest.raises(ValueError, match="exactly one message, got 2"):
        encode_client_frame([OneOffQuery(1, "SELECT 1"), OneOffQuery(2, "SELECT 2")])


def test_v3_client_frames_carry_several_client_messages() -> None:
    messages = [
        CallReducer(1, 0, "add", b"\x01"),
        OneOffQuery(2, "SELECT * FROM player"),
        CallReducer(3, 0, "add", b""),
    ]
    frame = encode_client_frame(messages, batched=True)
    assert frame == b"".join(encode_client_message(m) for m in messages)
    assert decode_client_frame(frame, batched=True) == messages
    with pytest.raises(ProtocolError, match="only protocol v3 batches"):
        decode_client_frame(frame)


def test_client_vectors_are_client_frames_as_is() -> None:
    for vector in vectors_named("v2.ClientMessage."):
        data = bytes.fromhex(vector["bsatn"])
        assert encode_client_frame(decode_client_frame(data)) == data


# --- encoding errors name the field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (
            CallReducer(-1, 0, "add", b""),
            r"CallReducer\.request_id: expected u32 in 0\.\.4294967295, got -1",
        ),
        (CallReducer(1, 256, "add", b""), r"CallReducer\.flags: expected u8 in 0\.\.255, got 256"),
        (CallReducer(1, 0, 42, b""), r"CallReducer\.reducer: expected str, got 42"),  # type: ignore[arg-type]
        (CallReducer(1, 0, "add", "x"), r"CallReducer\.args: expected bytes, got 'x'"),  # type: ignore[arg-type]
        (CallReducer(True, 0, "add", b""), r"CallReducer\.request_id: expected u32, got True"),
        (OneOffQuery(2**32, "SELECT 1"), r"OneOffQuery\.request_id: expected u32 in"),
        (OneOffQuery(1, "\ud800"), r"OneOffQuery\.query_string: not encodable as UTF-8"),
    ],
)
def test_unencodable_client_messages_name_the_field(message: Any, match: str) -> None:
    with pytest.raises(EncodeError, match=match):
        encode_client_message(message)


def test_call_reducer_accepts_bytearray_and_memoryview_args() -> None:
    expected = encode_client_message(CallReducer(1, 0, "add", b"\x01\x02"))
    assert encode_client_message(CallReducer(1, 0, "add", bytearray(b"\x01\x02"))) == expected
    assert encode_client_message(CallReducer(1, 0, "add", memoryview(b"\x01\x02"))) == expected


def test_unencodable_server_messages_name_the_field() -> None:
    bad = ReducerResult(1, 12345, ReducerOkEmpty())  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match=r"ReducerResult\.timestamp: expected Timestamp"):
        encode_server_message(bad)
    with pytest.raises(EncodeError, match="ServerMessage: expected one of the v2 server"):
        encode_server_message(CallReducer(1, 0, "x", b""))  # type: ignore[arg-type]


# --- every sum tag is checked -------------------------------------------------------------------

_QS = b"\x02\x00\x00\x00"  # query_set_id 2
_RID = b"\x01\x00\x00\x00"  # request_id 1


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x02" + _RID + _QS + b"\x05", r"UnsubscribeApplied: rows: unknown Option tag 5"),
        (b"\x03\x02", r"SubscriptionError: request_id: unknown Option tag 2"),
        (b"\x05" + _RID + b"\x02", r"OneOffQueryResult: result: unknown Result tag 2"),
        (
            b"\x06" + _RID + bytes(8) + b"\x04",
            r"ReducerResult: result: unknown ReducerOutcome tag 4",
        ),
        (b"\x07\x02", r"ProcedureResult: status: unknown ProcedureStatus tag 2"),
        (
            b"\x01" + _RID + _QS + b"\x01\x00\x00\x00" + b"\x01\x00\x00\x00p" + b"\x03" + bytes(8),
            r"rows\.tables\[\]\.rows\.size_hint: unknown RowSizeHint tag 3",
        ),
        (
            b"\x04\x01\x00\x00\x00"
            + _QS
            + b"\x01\x00\x00\x00"
            + b"\x01\x00\x00\x00p"
            + b"\x01\x00\x00\x00\x09",
            r"query_sets\[\]\.tables\[\]\.rows\[\]: unknown TableUpdateRows tag 9",
        ),
        (b"\x00" + bytes(48) + b"\x02\x00\x00\x00\xff\xfe", r"token: invalid UTF-8 at offset 53"),
        (
            b"\x01" + _RID + _QS + b"\xff\xff\xff\xff",
            r"rows\.tables: 4294967295 elements at offset 9 cannot fit",
        ),
    ],
)
def test_bad_tags_and_lengths_in_server_messages_are_named(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_server_message(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x05", r"unknown message tag 5 at offset 0 \(expected 0\.\.4\)"),
        (b"\x01" + _RID + _QS + b"\x02", r"Unsubscribe: flags: unknown UnsubscribeFlags tag 2"),
        (b"\x03" + _RID + b"\x00\x09\x00\x00\x00add", r"CallReducer: reducer: length 9"),
        (b"\x00" + _RID + _QS + b"\x00\x00\x00\x40", r"Subscribe: query_strings: 1073741824 elem"),
    ],
)
def test_bad_tags_and_lengths_in_client_messages_are_named(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_client_message(data)


_RealBrotliDecompressor = brotli.Decompressor


class _OldBrotliDecompressor:
    """brotli < 1.2: ``process`` takes no output limit."""

    def __init__(self) -> None:
        self._inner = _RealBrotliDecompressor()

    def process(self, data: bytes) -> bytes:
        return bytes(self._inner.process(data))

    def is_finished(self) -> bool:
        return bool(self._inner.is_finished())


def test_old_brotli_without_an_output_limit_still_bounds_the_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(brotli, "Decompressor", _OldBrotliDecompressor)
    message = _big_message()
    assert decode_server_frame(encode_server_frame(message, "brotli")) == [message]
    bomb = b"\x01" + brotli.compress(bytes(16 * 1024 * 1024), quality=5)
    with pytest.raises(ProtocolError, match="more than max_size=65536"):
        decode_server_frame(bomb, max_size=65536)
