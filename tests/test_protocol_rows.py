"""``BsatnRowList``: choosing the size hint, splitting rows, and refusing inconsistent hints."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_sched import ProtocolError, sats
from spacetime_sched.protocol import BsatnRowList, FixedSize, RowOffsets, RowSizeHint


class U32Codec:
    """A stand-in row codec: one u32 per row."""

    def encode(self, value: Any) -> bytes:
        return struct.pack("<I", value)

    def decode(self, data: bytes) -> Any:
        (value,) = struct.unpack("<I", data)
        return value


class StrCodec:
    """A stand-in row codec: one length-prefixed string per row (variable size)."""

    def encode(self, value: Any) -> bytes:
        raw = value.encode()
        return struct.pack("<I", len(raw)) + raw

    def decode(self, data: bytes) -> Any:
        return data[4:].decode()


def test_rows_of_equal_length_use_fixed_size() -> None:
    rows = BsatnRowList.from_rows(U32Codec(), [1, 2, 3])
    assert rows.size_hint == FixedSize(4)
    assert rows.rows_data == struct.pack("<3I", 1, 2, 3)
    assert rows.decode_rows(U32Codec()) == [1, 2, 3]
    assert len(rows) == 3


def test_rows_of_different_lengths_use_offsets() -> None:
    rows = BsatnRowList.from_rows(StrCodec(), ["a", "bcd", ""])
    assert rows.size_hint == RowOffsets([0, 5, 12])
    assert rows.decode_rows(StrCodec()) == ["a", "bcd", ""]
    assert list(rows) == [b"\x01\x00\x00\x00a", b"\x03\x00\x00\x00bcd", b"\x00\x00\x00\x00"]


def test_no_rows_is_empty_offsets() -> None:
    rows = BsatnRowList.from_rows(U32Codec(), [])
    assert rows == BsatnRowList.EMPTY == BsatnRowList(RowOffsets(()), b"")
    assert rows.rows_bytes() == []
    assert len(rows) == 0


def test_zero_size_rows_always_use_offsets() -> None:
    rows = BsatnRowList.from_row_bytes([b"", b""])
    assert rows.size_hint == RowOffsets([0, 0])
    assert rows.rows_bytes() == [b"", b""]


def test_rows_longer_than_u16_use_offsets() -> None:
    row = bytes(70_000)
    rows = BsatnRowList.from_row_bytes([row, row])
    assert rows.size_hint == RowOffsets([0, 70_000])
    assert rows.rows_bytes() == [row, row]


def test_the_reference_layout_example() -> None:
    # RowOffsets [0, 5] over 10 data bytes: two 5-byte rows.
    rows = BsatnRowList(RowOffsets([0, 5]), b"abcdeFGHIJ")
    assert rows.rows_bytes() == [b"abcde", b"FGHIJ"]


def test_fixed_size_with_empty_data_is_zero_rows_whatever_the_size() -> None:
    assert BsatnRowList(FixedSize(0), b"").rows_bytes() == []
    assert BsatnRowList(FixedSize(12), b"").rows_bytes() == []
    assert len(BsatnRowList(FixedSize(0), b"")) == 0


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (BsatnRowList(FixedSize(0), b"abc"), r"FixedSize\(0\) does not divide the 3 bytes"),
        (BsatnRowList(FixedSize(2), b"abc"), r"FixedSize\(2\) does not divide the 3 bytes"),
        (BsatnRowList(RowOffsets([]), b"abc"), r"RowOffsets\(\[\]\) but rows_data holds 3"),
        (BsatnRowList(RowOffsets([1]), b"abc"), "first row offset is 1, expected 0"),
        (BsatnRowList(RowOffsets([0, 2, 1]), b"abc"), r"RowOffsets\[1\] = 2 is out of order"),
        (BsatnRowList(RowOffsets([0, 9]), b"abc"), r"RowOffsets\[0\] = 0 is out of order or past"),
    ],
)
def test_inconsistent_size_hints_raise_protocol_error(rows: BsatnRowList, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        rows.rows_bytes()
    with pytest.raises(ProtocolError):
        len(rows)


def test_a_row_the_codec_cannot_decode_is_a_protocol_error_naming_the_row() -> None:
    rows = BsatnRowList(RowOffsets([0, 4]), b"\x01\x00\x00\x00\x02\x00")
    with pytest.raises(ProtocolError, match="BsatnRowList row 1"):
        rows.decode_rows(sats.U32)


def test_size_hints_match_positionally() -> None:
    hint: RowSizeHint = BsatnRowList.from_row_bytes([b"ab", b"cd"]).size_hint
    match hint:
        case RowSizeHint.FixedSize(size):
            assert size == 2
        case _:
            pytest.fail(f"expected FixedSize, got {hint!r}")


@given(st.lists(st.binary(max_size=20), max_size=20))
def test_packing_and_splitting_round_trip(rows: list[bytes]) -> None:
    packed = BsatnRowList.from_row_bytes(rows)
    assert packed.rows_bytes() == rows
    assert len(packed) == len(rows)
    if rows and len(set(map(len, rows))) == 1 and rows[0]:
        assert packed.size_hint == FixedSize(len(rows[0]))
    else:
        assert isinstance(packed.size_hint, RowOffsets)
