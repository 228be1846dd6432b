"""The Python value of every SATS type (docs/architecture.md), and the other forms encoders take."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched._identity import ConnectionId, Identity

POINT = sats.product(("x", sats.I32), ("y", sats.I32))
PAIR = sats.product((None, sats.U8), (None, sats.STRING))
COLOR = sats.sum("Red", "Green", ("Rgb", sats.U32))
OPT_OPT = sats.option(sats.option(sats.U8))


def round_trip(ty: sats.AlgebraicType, value: Any) -> Any:
    return sats.decode(ty, sats.encode(ty, value))


@pytest.mark.parametrize(
    ("ty", "value"),
    [
        (sats.BOOL, True),
        (sats.I8, -128),
        (sats.U64, 2**64 - 1),
        (sats.I128, -(2**127)),
        (sats.U256, 2**256 - 1),
        (sats.F64, -0.5),
        (sats.F32, 1.5),
        (sats.STRING, "héllo 🌍"),
        (sats.BYTES, b"\x00\xff"),
        (sats.array(sats.U16), [1, 2, 65535]),
        (POINT, {"x": 1, "y": -2}),
        (PAIR, (7, "seven")),
        (sats.UNIT, ()),
        (sats.option(sats.STRING), "x"),
        (sats.option(sats.STRING), None),
        (COLOR, sats.SumValue(2, "Rgb", 0xFF00FF)),
        (COLOR, sats.SumValue(0, "Red", ())),
        (sats.IDENTITY, Identity(12345)),
        (sats.CONNECTION_ID, ConnectionId(99)),
        (sats.TIMESTAMP, Timestamp(1_700_000_000_000_000)),
        (sats.TIME_DURATION, TimeDuration(-5)),
        (sats.SCHEDULE_AT, ScheduleAt.Interval(TimeDuration(10))),
        (sats.SCHEDULE_AT, ScheduleAt.Time(Timestamp(10))),
        (sats.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ],
)
def test_decoding_gives_the_documented_python_value(ty: sats.AlgebraicType, value: Any) -> None:
    decoded = round_trip(ty, value)
    assert decoded == value
    assert type(decoded) is type(value)


def test_floats_accept_ints_and_f32_rounds_to_single_precision() -> None:
    assert round_trip(sats.F64, 3) == 3.0
    assert round_trip(sats.F32, 0.1) == pytest.approx(0.1, rel=1e-7)
    assert round_trip(sats.F32, 0.1) != 0.1
    assert sats.encode(sats.F32, -0.0).hex() == "00000080"


@pytest.mark.parametrize(
    "value", [3.4025001647762064e38, 3.4028234663852886e38, -3.4028234663852886e38]
)
def test_f32_json_near_the_f32_limit_is_the_shortest_decimal_that_reads_back(value: float) -> None:
    # Shorter decimals such as 3.403e38 round past the largest f32; they are skipped, not errors.
    obj = sats.to_json(sats.F32, value)
    assert sats.from_json(sats.F32, obj) == value
    assert len(repr(obj)) <= len("-3.4028235e+38")


def test_products_accept_mappings_tuples_and_lists() -> None:
    expected = sats.encode(POINT, {"x": 1, "y": 2})
    assert sats.encode(POINT, {"y": 2, "x": 1}) == expected  # order of keys does not matter
    assert sats.encode(POINT, (1, 2)) == expected
    assert sats.encode(POINT, [1, 2]) == expected
    from types import MappingProxyType

    assert sats.encode(POINT, MappingProxyType({"x": 1, "y": 2})) == expected
    assert sats.encode(PAIR, [7, "seven"]) == sats.encode(PAIR, (7, "seven"))
    units: list[Any] = [(), [], {}, None]
    for unit in units:
        assert sats.encode(sats.UNIT, unit) == b""


def test_arrays_accept_any_sequence_and_bytes_accept_buffers() -> None:
    ty = sats.array(sats.U8)
    assert (
        sats.encode(ty, bytearray(b"ab"))
        == sats.encode(ty, memoryview(b"ab"))
        == (b"\x02\x00\x00\x00ab")
    )
    assert sats.encode(ty, [97, 98]) == b"\x02\x00\x00\x00ab"
    strings = sats.array(sats.STRING)
    assert sats.encode(strings, ("a", "b")) == sats.encode(strings, ["a", "b"])
    assert round_trip(sats.array(sats.TIMESTAMP), [Timestamp(1), Timestamp(2)]) == [
        Timestamp(1),
        Timestamp(2),
    ]
    assert round_trip(sats.array(sats.BOOL), [True, False]) == [True, False]


def test_sums_accept_every_documented_form() -> None:
    expected = sats.encode(COLOR, sats.SumValue(2, "Rgb", 5))
    assert sats.encode(COLOR, sats.SumValue(2, None, 5)) == expected
    assert sats.encode(COLOR, {"Rgb": 5}) == expected
    assert sats.encode(COLOR, ("Rgb", 5)) == expected
    assert sats.encode(COLOR, (2, 5)) == expected
    assert sats.encode(COLOR, "Green") == b"\x01"
    assert sats.encode(COLOR, {"Green": ()}) == b"\x01"


def test_options_and_nested_options_keep_some_none() -> None:
    opt = sats.option(sats.U8)
    assert sats.encode(opt, 5) == sats.encode(opt, sats.Some(5)) == b"\x00\x05"
    assert sats.encode(opt, None) == b"\x01"
    # Option<Option<u8>>: none, some(none), some(some(5)).
    assert sats.encode(OPT_OPT, None).hex() == "01"
    assert sats.encode(OPT_OPT, sats.Some(None)).hex() == "0001"
    assert sats.encode(OPT_OPT, sats.Some(5)).hex() == "000005"
    assert sats.encode(OPT_OPT, 5).hex() == "000005"
    assert sats.decode(OPT_OPT, bytes.fromhex("01")) is None
    assert sats.decode(OPT_OPT, bytes.fromhex("0001")) == sats.Some(None)
    assert sats.decode(OPT_OPT, bytes.fromhex("000005")) == sats.Some(5)
    assert sats.to_json(OPT_OPT, sats.Some(None)) == {"some": {"none": []}}
    assert sats.from_json(OPT_OPT, {"some": {"none": []}}) == sats.Some(None)
    assert sats.from_json(OPT_OPT, {"some": None}) == sats.Some(None)
    # An Option whose payload is a sum takes the SumValue as its payload.
    opt_color = sats.option(COLOR)
    assert sats.encode(opt_color, sats.SumValue(1, "Green", ())) == b"\x00\x01"


def test_special_types_accept_their_documented_alternatives() -> None:
    ident = Identity.from_hex("c2" + "00" * 31)
    assert sats.encode(sats.IDENTITY, ident.to_hex()) == ident.to_bytes()
    assert sats.encode(sats.IDENTITY, "0x" + ident.to_hex()) == ident.to_bytes()
    assert sats.encode(sats.IDENTITY, ident.value) == ident.to_bytes()
    cid = ConnectionId(0xABC)
    assert sats.encode(sats.CONNECTION_ID, cid.to_hex()) == cid.to_bytes()
    assert sats.encode(sats.CONNECTION_ID, 0xABC) == cid.to_bytes()
    when = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    stamp = Timestamp.from_datetime(when)
    assert sats.encode(sats.TIMESTAMP, when) == sats.encode(sats.TIMESTAMP, stamp)
    assert sats.encode(sats.TIME_DURATION, dt.timedelta(seconds=1)) == sats.encode(
        sats.TIME_DURATION, TimeDuration(1_000_000)
    )
    assert sats.encode(sats.SCHEDULE_AT, when) == sats.encode(
        sats.SCHEDULE_AT, ScheduleAt.Time(stamp)
    )
    assert sats.encode(sats.SCHEDULE_AT, stamp)[0] == 1
    assert sats.encode(sats.SCHEDULE_AT, dt.timedelta(minutes=1)) == sats.encode(
        sats.SCHEDULE_AT, ScheduleAt.Interval(TimeDuration(60_000_000))
    )
    assert sats.encode(sats.SCHEDULE_AT, {"Time": when}) == sats.encode(sats.SCHEDULE_AT, when)
    u = uuid.uuid4()
    assert (
        sats.encode(sats.UUID, u.int) == sats.encode(sats.UUID, u) == u.int.to_bytes(16, "little")
    )


def test_to_json_writes_what_the_server_writes() -> None:
    row = sats.product(
        ("id", sats.U128),
        ("owner", sats.IDENTITY),
        ("big", sats.I256),
        ("blob", sats.BYTES),
        ("at", sats.SCHEDULE_AT),
        ("color", COLOR),
        ("nothing", sats.UNIT),
        ("ratio", sats.F32),
    )
    value = {
        "id": 2**100,
        "owner": Identity(0x2A),
        "big": -42,
        "blob": b"\x01\xab",
        "at": ScheduleAt.Interval(TimeDuration(5)),
        "color": sats.SumValue(0, "Red", ()),
        "nothing": (),
        "ratio": 0.1,
    }
    assert sats.to_json(row, value) == {
        "id": 2**100,
        "owner": {"__identity__": "0x2a"},
        "big": "-0x2a",
        "blob": "01ab",
        "at": {"Interval": {"__time_duration_micros__": 5}},
        "color": {"Red": []},
        "nothing": [],
        "ratio": 0.1,  # the shortest F32 text, as Rust prints an f32
    }
    assert sats.to_json(PAIR, (1, "a")) == [1, "a"]


@pytest.mark.parametrize(
    ("ty", "permissive", "value"),
    [
        (POINT, [1, 2], {"x": 1, "y": 2}),
        (COLOR, [2, 7], sats.SumValue(2, "Rgb", 7)),
        (COLOR, {"2": 7}, sats.SumValue(2, "Rgb", 7)),
        (COLOR, ["Green", []], sats.SumValue(1, "Green", ())),
        (sats.option(sats.U8), None, None),
        (sats.option(sats.U8), [0, 3], 3),
        (sats.BYTES, [1, 171], b"\x01\xab"),
        (sats.BYTES, "0x01ab", b"\x01\xab"),
        (sats.IDENTITY, ["0x2a"], Identity(42)),
        (sats.IDENTITY, "00" * 31 + "2a", Identity(42)),
        (sats.U256, "42", 42),
        (sats.I128, "-0x10", -16),
        (sats.UNIT, {}, ()),
        (sats.TIMESTAMP, [7], Timestamp(7)),
        (sats.SCHEDULE_AT, [1, [7]], ScheduleAt.Time(Timestamp(7))),
    ],
)
def test_from_json_accepts_the_permissive_input_forms(
    ty: sats.AlgebraicType, permissive: Any, value: Any
) -> None:
    assert sats.from_json(ty, permissive) == value


def test_codec_objects_expose_every_operation() -> None:
    codec = sats.compile(POINT)
    assert codec.size == 8
    assert sats.compile(sats.STRING).size is None
    data = codec.encode({"x": 1, "y": 2})
    assert codec.decode(data) == {"x": 1, "y": 2}
    assert codec.decode_from(b"\x00" + data + b"\x00", 1) == ({"x": 1, "y": 2}, 9)
    buf = bytearray()
    codec.encode_into(buf, (1, 2))
    codec.encode_into(buf, (3, 4))
    assert codec.decode_from(buf, 8) == ({"x": 3, "y": 4}, 16)
    assert codec.to_json({"x": 1, "y": 2}) == {"x": 1, "y": 2}
    assert codec.from_json([1, 2]) == {"x": 1, "y": 2}
    assert "Codec" in repr(codec)
