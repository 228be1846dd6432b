"""The SATS type system: building types, their SATS-JSON, typespaces, refs, special shapes."""

from __future__ import annotations

from typing import Any

import pytest

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats

UNIT_JSON: dict[str, Any] = {"Product": {"elements": []}}


def test_types_read_and_write_the_schema_json_form() -> None:
    schema_type = {
        "Product": {
            "elements": [
                {"name": {"some": "id"}, "algebraic_type": {"U64": []}},
                {"name": {"some": "tags"}, "algebraic_type": {"Array": {"String": []}}},
                {"name": {"none": []}, "algebraic_type": {"Ref": 3}},
                {
                    "name": {"some": "color"},
                    "algebraic_type": {
                        "Sum": {
                            "variants": [
                                {"name": {"some": "Red"}, "algebraic_type": UNIT_JSON},
                                {"name": {"some": "Rgb"}, "algebraic_type": {"U32": []}},
                            ]
                        }
                    },
                },
            ]
        }
    }  # fmt: skip
    ty = sats.AlgebraicType.from_json(schema_type)
    assert ty == sats.product(
        ("id", sats.U64),
        ("tags", sats.array(sats.STRING)),
        (None, sats.RefType(3)),
        ("color", sats.sum("Red", ("Rgb", sats.U32))),
    )
    assert ty.to_json() == schema_type


def test_every_primitive_has_a_constant_and_round_trips() -> None:
    names = ["Bool", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "I128", "U128",
             "I256", "U256", "F32", "F64", "String"]  # fmt: skip
    for name in names:
        constant = getattr(sats, name.upper())
        assert sats.AlgebraicType.from_json({name: []}) is not None
        assert sats.AlgebraicType.from_json({name: []}) == constant
        assert constant.to_json() == {name: []}
    assert sats.array(sats.U8) == sats.BYTES
    assert sats.product() == sats.UNIT


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"U33": []}, "unknown algebraic type kind 'U33'"),
        ({"U32": [], "U8": []}, "expected a one-key object"),
        ([], "expected a one-key object"),
        ({"Ref": -1}, "type.Ref: expected a non-negative int"),
        ({"Product": {"elements": [{"name": {"some": "x"}}]}}, "type.Product.elements[0]"),
        ({"Sum": {"variants": [{"name": 3, "algebraic_type": {"U8": []}}]}}, "variants[0].name"),
        ({"Array": {"Nope": []}}, "type.Array: unknown algebraic type kind 'Nope'"),
    ],
)
def test_malformed_type_json_is_a_decode_error_naming_the_place(obj: object, message: str) -> None:
    with pytest.raises(sats.DecodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sats.AlgebraicType.from_json(obj)


def test_types_are_frozen_hashable_and_compare_by_structure() -> None:
    a = sats.product(("x", sats.option(sats.U32)), ("y", sats.array(sats.STRING)))
    b = sats.product([("x", sats.option(sats.U32)), ("y", sats.array(sats.STRING))])
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.elements = ()  # type: ignore[misc]


def test_compile_caches_one_codec_per_type_and_typespace() -> None:
    a = sats.product(("x", sats.U32))
    b = sats.product(("x", sats.U32))
    assert sats.compile(a) is sats.compile(b)
    space = sats.Typespace([sats.U8])
    assert sats.compile(a, space) is sats.compile(b, sats.Typespace([sats.U8]))
    assert sats.compile(a, space) is not sats.compile(a)
    assert sats.compile_json(a) is sats.compile_json(b)


def test_constructors_build_the_shapes_spacetimedb_uses() -> None:
    assert sats.option(sats.STRING).to_json() == {
        "Sum": {
            "variants": [
                {"name": {"some": "some"}, "algebraic_type": {"String": []}},
                {"name": {"some": "none"}, "algebraic_type": {"Product": {"elements": []}}},
            ]
        }
    }
    assert [v.name for v in sats.result(sats.U8, sats.STRING).variants] == ["ok", "err"]
    assert sats.sum("A", ("B", sats.U8)).variants[0] == sats.SumVariant("A", sats.UNIT)
    with pytest.raises(TypeError, match="must be a \\(name, type\\) pair"):
        sats.product(sats.U8)
    with pytest.raises(TypeError, match="expected an AlgebraicType"):
        sats.array(int)  # type: ignore[arg-type]
    with pytest.raises(sats.SatsError, match="at most 256 variants"):
        sats.sum(*[f"V{i}" for i in range(257)])


def test_special_types_are_recognised_by_shape() -> None:
    assert sats.special_kind(sats.IDENTITY) == "identity"
    assert sats.special_kind(sats.CONNECTION_ID) == "connection_id"
    assert sats.special_kind(sats.TIMESTAMP) == "timestamp"
    assert sats.special_kind(sats.TIME_DURATION) == "time_duration"
    assert sats.special_kind(sats.UUID) == "uuid"
    assert sats.special_kind(sats.SCHEDULE_AT) == "schedule_at"
    assert sats.special_kind(sats.option(sats.U8)) == "option"
    # The magic name with the wrong payload type, or a second field, is an ordinary product.
    assert sats.special_kind(sats.product(("__identity__", sats.U128))) is None
    assert sats.special_kind(sats.product(("__identity__", sats.U256), ("x", sats.U8))) is None
    # ScheduleAt needs both variants, in order.
    swapped = sats.sum(("Time", sats.TIMESTAMP), ("Interval", sats.TIME_DURATION))
    assert sats.special_kind(swapped) is None
    # Through refs, when a typespace is given.
    space = sats.Typespace([sats.TIMESTAMP, sats.TIME_DURATION])
    by_ref = sats.sum(("Interval", sats.RefType(1)), ("Time", sats.RefType(0)))
    assert sats.special_kind(by_ref, space) == "schedule_at"
    value = ScheduleAt.Time(Timestamp(5))
    assert sats.decode(by_ref, sats.encode(by_ref, value, space), space) == value


def test_describe_spells_types_for_people() -> None:
    assert sats.describe(sats.U32) == "u32"
    assert sats.describe(sats.option(sats.array(sats.STRING))) == "Option<Array<String>>"
    assert sats.describe(sats.product(("x", sats.F32), ("when", sats.TIMESTAMP))) == (
        "(x: f32, when: Timestamp)"
    )
    assert sats.describe(sats.sum("Red", ("Rgb", sats.U32))) == "Red | Rgb(u32)"
    assert str(sats.RefType(4)) == "Ref(4)"
    assert repr(sats.U32) == "sats.U32"


def test_typespace_resolves_refs_and_reports_bad_ones() -> None:
    space = sats.Typespace.from_json({"types": [{"U8": []}, {"Ref": 0}, {"Ref": 3}, {"Ref": 2}]})
    assert space.to_json() == {"types": [{"U8": []}, {"Ref": 0}, {"Ref": 3}, {"Ref": 2}]}
    assert len(space) == 4
    assert space[0] == sats.U8
    assert space.resolve(sats.RefType(1)) == sats.U8
    assert space.resolve(sats.STRING) == sats.STRING
    with pytest.raises(sats.SatsError, match="refers to itself"):
        space.resolve(sats.RefType(2))
    with pytest.raises(sats.SatsError, match="outside the typespace"):
        space.resolve(sats.RefType(9))
    with pytest.raises(sats.SatsError, match="no typespace was given"):
        sats.compile(sats.array(sats.RefType(0)))
    with pytest.raises(sats.SatsError, match="refers to itself"):
        sats.compile(sats.RefType(3), space)
    with pytest.raises(sats.DecodeError, match="typespace"):
        sats.Typespace.from_json({"typez": []})


def test_recursive_types_through_refs_encode_decode_and_convert() -> None:
    # A linked list: Node = (value: i32, next: Option<Ref(0)>).
    space = sats.Typespace(
        [sats.product(("value", sats.I32), ("next", sats.option(sats.RefType(0))))]
    )
    ty = sats.RefType(0)
    value = {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": None}}}
    data = sats.encode(ty, value, space)
    assert data.hex() == "010000000002000000000300000001"
    assert sats.decode(ty, data, space) == value
    as_json = sats.to_json(ty, value, space)
    assert as_json == {
        "value": 1,
        "next": {"some": {"value": 2, "next": {"some": {"value": 3, "next": {"none": []}}}}},
    }
    assert sats.from_json(ty, as_json, space) == value
    with pytest.raises(sats.EncodeError, match=r"^next\.some\.next\.some\.value: expected i32"):
        sats.encode(
            ty, {"value": 1, "next": {"value": 2, "next": {"value": "3", "next": None}}}, space
        )
    truncated = r"^next\.some\.next\.some\.next: unexpected end of input at byte 14"
    with pytest.raises(sats.DecodeError, match=truncated):
        sats.decode(ty, data[:-1], space)


def test_mutually_recursive_types() -> None:
    # Tree = (name: String, children: Array<Ref(1)>); Ref(1) = Tree through a second entry.
    space = sats.Typespace(
        [
            sats.product(("name", sats.STRING), ("children", sats.array(sats.RefType(1)))),
            sats.RefType(0),
        ]
    )
    tree = {
        "name": "root",
        "children": [
            {"name": "a", "children": []},
            {"name": "b", "children": [{"name": "c", "children": []}]},
        ],
    }
    codec = sats.compile(sats.RefType(0), space)
    assert codec.decode(codec.encode(tree)) == tree
    assert codec.from_json(codec.to_json(tree)) == tree


def test_time_values_round_trip_through_the_special_types() -> None:
    every = ScheduleAt.Interval(TimeDuration(1_000_000))
    assert sats.encode(sats.SCHEDULE_AT, every).hex() == "0040420f0000000000"
    assert sats.encode(sats.SCHEDULE_AT, ScheduleAt.Time(Timestamp(0))).hex() == "01" + "00" * 8
    assert sats.decode(sats.SCHEDULE_AT, bytes.fromhex("0040420f0000000000")) == every


def test_an_array_of_a_ref_to_u8_is_still_bytes() -> None:
    space = sats.Typespace([sats.U8])
    ty = sats.array(sats.RefType(0))
    assert sats.decode(ty, sats.encode(ty, b"ab", space), space) == b"ab"
    assert sats.to_json(ty, b"ab", space) == "6162"
    assert sats.from_json(ty, "6162", space) == b"ab"
