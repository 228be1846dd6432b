"""Every way a value or a buffer can be wrong gives an EncodeError/DecodeError naming the path.

Never an IndexError, KeyError, struct.error or a silently wrapped integer.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from spacetime_sched import TimeDuration, sats

SCORE = sats.product(("name", sats.STRING), ("score", sats.U32))
BOARD = sats.array(SCORE)
POINT = sats.product(("x", sats.I32), ("y", sats.I32))
COLOR = sats.sum("Red", "Green", ("Rgb", sats.U32))
EVENT = sats.product(
    ("id", sats.U64),
    ("where", POINT),
    ("color", COLOR),
    ("tags", sats.array(sats.STRING)),
    ("note", sats.option(sats.STRING)),
    ("ok", sats.BOOL),
)
GOOD_EVENT = {
    "id": 1,
    "where": {"x": 1, "y": 2},
    "color": sats.SumValue(2, "Rgb", 3),
    "tags": ["a", "b"],
    "note": "hi",
    "ok": True,
}


GOOD_JSON = sats.to_json(EVENT, GOOD_EVENT)
FLAGS = sats.array(sats.product(("n", sats.U8), ("ok", sats.BOOL)))


def encode_error(ty: sats.AlgebraicType, value: Any, **kwargs: Any) -> str:
    with pytest.raises(sats.EncodeError) as info:
        sats.encode(ty, value, **kwargs)
    assert type(info.value) is sats.EncodeError
    return str(info.value)


def decode_error(ty: sats.AlgebraicType, data: bytes, **kwargs: Any) -> str:
    with pytest.raises(sats.DecodeError) as info:
        sats.decode(ty, data, **kwargs)
    assert type(info.value) is sats.DecodeError
    return str(info.value)


def test_the_hierarchy() -> None:
    assert issubclass(sats.EncodeError, sats.SatsError)
    assert issubclass(sats.DecodeError, sats.SatsError)
    assert issubclass(sats.SatsError, ValueError)


def test_out_of_range_int_names_the_path_with_the_callers_label() -> None:
    board = [{"name": "a", "score": 1}, {"name": "b", "score": 2}, {"name": "c", "score": -1}]
    assert encode_error(BOARD, board, path="elements") == (
        "elements[2].score: expected u32 in 0..4294967295, got -1"
    )
    assert encode_error(BOARD, board) == "[2].score: expected u32 in 0..4294967295, got -1"
    assert encode_error(sats.U8, 256) == "expected u8 in 0..255, got 256"
    assert encode_error(sats.I128, 2**127) == (
        f"expected i128 in {-(2**127)}..{2**127 - 1}, got {2**127}"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({**GOOD_EVENT, "id": -1}, "id: expected u64 in 0..18446744073709551615, got -1"),
        ({**GOOD_EVENT, "id": True}, "id: expected u64 (an int), got bool True"),
        ({**GOOD_EVENT, "id": 1.0}, "id: expected u64 (an int), got float 1.0"),
        ({**GOOD_EVENT, "where": {"x": 1, "y": 2**31}}, "where.y: expected i32 in"),
        ({**GOOD_EVENT, "where": {"x": "1", "y": 2}}, "where.x: expected i32 (an int), got str"),
        ({**GOOD_EVENT, "where": {"x": 1}}, "where: missing field 'y' (fields: x, y)"),
        ({**GOOD_EVENT, "where": {"x": 1, "y": 2, "z": 3}}, "where: unknown field 'z'"),
        ({**GOOD_EVENT, "where": (1, 2, 3)}, "where: expected 2 fields, got a tuple of 3"),
        ({**GOOD_EVENT, "color": {"Blue": ()}}, "color: unknown variant 'Blue'"),
        ({**GOOD_EVENT, "color": "Rgb"}, "color: variant 'Rgb' has a payload"),
        ({**GOOD_EVENT, "color": {"Rgb": -5}}, "color.Rgb: expected u32 in"),
        ({**GOOD_EVENT, "color": sats.SumValue(7, None, ())}, "color: SumValue tag 7 is not"),
        ({**GOOD_EVENT, "color": sats.SumValue(0, "Green", ())}, "but its name is 'Green'"),
        ({**GOOD_EVENT, "tags": ["a", 2]}, "tags[1]: expected String (a str), got int 2"),
        ({**GOOD_EVENT, "tags": "ab"}, "tags: expected a list"),
        ({**GOOD_EVENT, "note": 5}, "note.some: expected String (a str), got int 5"),
        ({**GOOD_EVENT, "ok": 1}, "ok: expected Bool (True or False), got int 1"),
        ({**GOOD_EVENT, "tags": ["\ud800"]}, "tags[0]: String is not valid Unicode"),
        ([1, 2], "expected 6 fields, got a list of 2"),
        ("event", "expected a mapping by field name or a tuple of 6 fields, got str"),
    ],
)
def test_encode_errors_name_the_path(value: Any, message: str) -> None:
    assert re.search(re.escape(message), encode_error(EVENT, value, path="args"))
    assert encode_error(EVENT, value, path="args").startswith("args")


def test_special_type_errors() -> None:
    assert "expected Timestamp" in encode_error(sats.TIMESTAMP, 5)
    import datetime as dt

    # A naive datetime is local time; one the platform cannot place in the local zone fails.
    assert "naive" in encode_error(sats.TIMESTAMP, dt.datetime(1, 1, 1, 0, 30)).lower()
    assert "64 hex digits" in encode_error(sats.IDENTITY, "c200")
    assert "expected u256 in" in encode_error(sats.IDENTITY, -1)
    assert "expected ScheduleAt" in encode_error(sats.SCHEDULE_AT, 5)
    assert "expected TimeDuration" in encode_error(sats.TIME_DURATION, 5)
    assert "out of range for f32" in encode_error(sats.F32, 1e300)
    assert "expected f64" in encode_error(sats.F64, "1.0")
    assert "expected f64" in encode_error(sats.F64, True)
    assert "expected bytes" in encode_error(sats.BYTES, "abc")
    assert "[1]: expected u8 in 0..255" in encode_error(sats.BYTES, [1, 256])
    assert encode_error(sats.UNIT, 5) == "expected the unit value (), got int 5"
    assert "got a dict" not in encode_error(sats.option(TIME_OPT), {"x": 1})


TIME_OPT = sats.option(sats.TIME_DURATION)


@pytest.mark.parametrize(
    ("ty", "hex_data", "message"),
    [
        (sats.U32, "010203", "unexpected end of input at byte 0"),
        (SCORE, "0300000061", "name: unexpected end of input: String of 3 bytes at byte 4"),
        (SCORE, "0100000061010203", "score: unexpected end of input at byte 5"),
        (BOARD, "020000000100000061010000000100", "an array of 2 elements needs at least 16 bytes"),
        (
            BOARD,
            "02000000050000006161616161010000000500000061",
            "[1].name: unexpected end of input: String of 5 bytes at byte 21",
        ),
        (BOARD, "ffffffff", "array of 4294967295 elements"),
        (sats.STRING, "02000000c328", "invalid UTF-8 in String at byte 4"),
        (sats.BOOL, "02", "invalid Bool byte 0x02 at byte 0"),
        (POINT, "0100000002", "y: unexpected end of input at byte 4"),
        (sats.product(("a", sats.U8), ("b", sats.BOOL)), "0105", "b: invalid Bool byte 0x05"),
        (sats.array(sats.BOOL), "020000000107", "[1]: invalid Bool byte 0x07"),
        (
            sats.array(sats.UNIT),
            "ffffffff",
            "4294967295 zero-size elements at byte 0 takes the value over the limit",
        ),
        (FLAGS, "0200000001010102", "[1].ok: invalid Bool byte 0x02 at byte 7"),
        (FLAGS, "02000000010101", "an array of 2 elements needs at least 4 bytes"),
        (COLOR, "03", "unknown sum tag 3 at byte 0 (variants: Red, Green, Rgb)"),
        (COLOR, "0201", "Rgb: unexpected end of input at byte 1"),
        (sats.option(sats.U8), "02", "unknown sum tag 2 at byte 0 (variants: some, none)"),
        (sats.SCHEDULE_AT, "020000000000000000", "unknown sum tag 2 at byte 0"),
        (sats.SCHEDULE_AT, "00000000", "unexpected end of input"),
        (sats.IDENTITY, "00" * 31, "Identity of 32 bytes at byte 0 runs past the end"),
        (sats.U256, "00" * 31, "u256 of 32 bytes at byte 0 runs past the end"),
        (sats.U8, "", "unexpected end of input at byte 0"),
    ],
)
def test_decode_errors_name_the_path(ty: sats.AlgebraicType, hex_data: str, message: str) -> None:
    text = decode_error(ty, bytes.fromhex(hex_data), path="row")
    assert text.startswith("row")
    assert message in text


def test_trailing_bytes_are_an_error() -> None:
    assert decode_error(sats.U8, b"\x01\x02") == (
        "1 trailing bytes after the value (it ends at byte 1 of 2)"
    )
    assert decode_error(sats.UNIT, b"\x00", path="args").startswith("args: 1 trailing bytes")


def test_decode_rejects_non_buffers() -> None:
    assert "expected bytes" in decode_error(sats.U8, "01")  # type: ignore[arg-type]


def test_decode_from_reports_absolute_offsets() -> None:
    codec = sats.compile(SCORE)
    with pytest.raises(sats.DecodeError, match="score: unexpected end of input at byte 7"):
        codec.decode_from(b"\xee\xee" + bytes.fromhex("0100000061"), 2)


@pytest.mark.parametrize(
    ("ty", "obj", "message"),
    [
        (EVENT, {**GOOD_JSON, "where": {"x": 1, "y": "2"}}, "where.y: expected i32"),
        (EVENT, {**GOOD_JSON, "color": {"Purple": []}}, "color: unknown variant 'Purple'"),
        (EVENT, {**GOOD_JSON, "color": [9, []]}, "color: unknown sum tag 9"),
        (EVENT, {**GOOD_JSON, "color": {"Rgb": 2**40}}, "color.Rgb: expected u32 in"),
        (EVENT, {**GOOD_JSON, "tags": [1]}, "tags[0]: expected String"),
        (EVENT, {**GOOD_JSON, "note": {"some": 1}}, "note.some: expected String"),
        (EVENT, {**GOOD_JSON, "note": {"none": 5}}, "note: expected the unit value []"),
        (sats.BYTES, "abc", "expected bytes as a hex string"),
        (sats.U256, "0xzz", "expected u256 as a decimal or 0x-hex string"),
        (sats.IDENTITY, {"__identity__": "nope"}, "__identity__: expected u256"),
        (sats.TIMESTAMP, {"micros": 5}, "expected Timestamp as"),
        (sats.UNIT, [1], "expected the unit value []"),
    ],
)
def test_from_json_errors_name_the_path(ty: sats.AlgebraicType, obj: Any, message: str) -> None:
    with pytest.raises(sats.DecodeError) as info:
        sats.from_json(ty, obj, path="body")
    assert type(info.value) is sats.DecodeError
    assert str(info.value).startswith("body")
    assert message in str(info.value)


def test_to_json_errors_name_the_path() -> None:
    with pytest.raises(sats.EncodeError, match=r"^args\.where\.x: expected i32"):
        sats.to_json(EVENT, {**GOOD_JSON, "where": {"x": None, "y": 1}}, path="args")
    with pytest.raises(sats.EncodeError, match="f64 nan cannot be written as JSON"):
        sats.to_json(sats.F64, float("nan"))
    with pytest.raises(sats.EncodeError, match="expected TimeDuration"):
        sats.to_json(sats.TIME_DURATION, 5)
    assert sats.to_json(sats.TIME_DURATION, TimeDuration(5)) == {"__time_duration_micros__": 5}
