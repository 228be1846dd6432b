"""Properties over random SATS types and values (Hypothesis).

* BSATN and SATS-JSON round-trip every value of every type;
* ``from_json`` reads the permissive input forms to the same value as the typed form;
* a valid encoding cut at any position, or with a byte appended, is a DecodeError (never another
  exception);
* an out-of-range int anywhere in a value is an EncodeError whose message names its path.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched._identity import ConnectionId, Identity
from spacetime_sched._time import I64_MAX, I64_MIN

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT_RANGES = {
    "I8": (-(2**7), 2**7 - 1),
    "U8": (0, 2**8 - 1),
    "I16": (-(2**15), 2**15 - 1),
    "U16": (0, 2**16 - 1),
    "I32": (-(2**31), 2**31 - 1),
    "U32": (0, 2**32 - 1),
    "I64": (-(2**63), 2**63 - 1),
    "U64": (0, 2**64 - 1),
    "I128": (-(2**127), 2**127 - 1),
    "U128": (0, 2**128 - 1),
    "I256": (-(2**255), 2**255 - 1),
    "U256": (0, 2**256 - 1),
}
PRIMITIVES = [sats.BOOL, sats.F32, sats.F64, sats.STRING] + [
    getattr(sats, kind) for kind in INT_RANGES
]
SPECIALS = [
    sats.IDENTITY,
    sats.CONNECTION_ID,
    sats.TIMESTAMP,
    sats.TIME_DURATION,
    sats.UUID,
    sats.SCHEDULE_AT,
]
NAMES = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)


def _extend(children: st.SearchStrategy[sats.AlgebraicType]) -> st.SearchStrategy[Any]:
    named_fields = st.lists(st.tuples(NAMES, children), max_size=4, unique_by=lambda f: f[0])
    unnamed_fields = st.lists(children, min_size=1, max_size=3).map(
        lambda types: [(None, t) for t in types]
    )
    variants = st.lists(
        st.tuples(NAMES, children), min_size=1, max_size=4, unique_by=lambda v: v[0]
    )
    return st.one_of(
        children.map(sats.array),
        children.map(sats.option),
        named_fields.map(sats.product),
        unnamed_fields.map(sats.product),
        variants.map(sats.sum),
    )


TYPES: st.SearchStrategy[sats.AlgebraicType] = st.recursive(
    st.sampled_from([*PRIMITIVES, sats.BYTES, sats.UNIT, *SPECIALS]), _extend, max_leaves=8
)


def values(ty: sats.AlgebraicType) -> st.SearchStrategy[Any]:
    """The canonical Python values of ``ty`` (what decoding gives)."""
    kind = sats.special_kind(ty)
    if kind == "identity":
        return st.integers(0, 2**256 - 1).map(Identity)
    if kind == "connection_id":
        return st.integers(0, 2**128 - 1).map(ConnectionId)
    if kind == "uuid":
        return st.integers(0, 2**128 - 1).map(lambda n: uuid.UUID(int=n))
    if kind == "timestamp":
        return st.integers(I64_MIN, I64_MAX).map(Timestamp)
    if kind == "time_duration":
        return st.integers(I64_MIN, I64_MAX).map(TimeDuration)
    if kind == "schedule_at":
        micros = st.integers(I64_MIN, I64_MAX)
        return st.one_of(
            micros.map(lambda m: ScheduleAt.Interval(TimeDuration(m))),
            micros.map(lambda m: ScheduleAt.Time(Timestamp(m))),
        )
    if kind == "option":
        assert isinstance(ty, sats.SumType)
        inner = ty.variants[0].algebraic_type
        some = values(inner)
        if sats.special_kind(inner) == "option":
            some = some.map(sats.Some)
        return st.one_of(st.none(), some)
    if isinstance(ty, sats.PrimitiveType):
        if ty.name in INT_RANGES:
            return st.integers(*INT_RANGES[ty.name])
        if ty.name == "F32":
            return st.floats(width=32, allow_nan=False, allow_infinity=False)
        if ty.name == "F64":
            return st.floats(allow_nan=False, allow_infinity=False)
        if ty.name == "Bool":
            return st.booleans()
        return st.text()
    if isinstance(ty, sats.ArrayType):
        if ty.elem == sats.U8:
            return st.binary(max_size=12)
        return st.lists(values(ty.elem), max_size=3)
    if isinstance(ty, sats.ProductType):
        if not ty.elements:
            return st.just(())
        fields = [values(e.algebraic_type) for e in ty.elements]
        if None in ty.names:
            return st.tuples(*fields)
        return st.fixed_dictionaries(dict(zip(ty.names, fields, strict=True)))
    assert isinstance(ty, sats.SumType)
    return st.one_of(
        *[
            values(v.algebraic_type).map(lambda x, i=i, n=v.name: sats.SumValue(i, n, x))
            for i, v in enumerate(ty.variants)
        ]
    )


TYPED_VALUES = TYPES.flatmap(lambda ty: st.tuples(st.just(ty), values(ty)))


@SETTINGS
@given(TYPED_VALUES)
def test_bsatn_round_trips(typed: tuple[sats.AlgebraicType, Any]) -> None:
    ty, value = typed
    codec = sats.compile(ty)
    data = codec.encode(value)
    assert codec.decode(data) == value
    assert codec.decode_from(b"\x00" + data + b"\x00", 1) == (value, 1 + len(data))
    if codec.size is not None:
        assert len(data) == codec.size


@SETTINGS
@given(TYPED_VALUES)
def test_sats_json_round_trips_through_json_text(typed: tuple[sats.AlgebraicType, Any]) -> None:
    ty, value = typed
    obj = sats.to_json(ty, value)
    text = json.dumps(obj)
    assert sats.from_json(ty, json.loads(text)) == value
    # The type itself round-trips too.
    assert sats.AlgebraicType.from_json(json.loads(json.dumps(ty.to_json()))) == ty


def permissive(ty: sats.AlgebraicType, obj: Any, data: st.DataObject) -> Any:
    """Rewrite typed SATS-JSON ``obj`` into the input forms the server also accepts."""
    kind = sats.special_kind(ty)
    if kind == "option":
        assert isinstance(ty, sats.SumType)
        if "none" in obj:
            return data.draw(st.sampled_from([None, [1, []], {"1": []}, {"none": []}]))
        inner = permissive(ty.variants[0].algebraic_type, obj["some"], data)
        return data.draw(st.sampled_from([[0, inner], {"0": inner}, {"some": inner}]))
    if kind in ("identity", "connection_id", "uuid", "timestamp", "time_duration"):
        ((_, payload),) = obj.items()
        return data.draw(st.sampled_from([obj, [payload]]))
    if isinstance(ty, sats.ArrayType):
        if ty.elem == sats.U8:
            return data.draw(st.sampled_from([obj, list(bytes.fromhex(obj))]))
        return [permissive(ty.elem, x, data) for x in obj]
    if isinstance(ty, sats.ProductType):
        if not ty.elements:
            return data.draw(st.sampled_from([[], {}]))
        items = obj if isinstance(obj, list) else [obj[name] for name in ty.names]
        converted = [
            permissive(e.algebraic_type, x, data) for e, x in zip(ty.elements, items, strict=True)
        ]
        if None not in ty.names and data.draw(st.booleans()):
            return dict(zip(ty.names, converted, strict=True))
        return converted
    if isinstance(ty, sats.SumType):
        ((name, payload),) = obj.items()
        tag = [v.name for v in ty.variants].index(name)
        inner = permissive(ty.variants[tag].algebraic_type, payload, data)
        return data.draw(st.sampled_from([[tag, inner], {str(tag): inner}, {name: inner}]))
    return obj


@SETTINGS
@given(TYPED_VALUES, st.data())
def test_from_json_reads_permissive_forms_to_the_same_value(
    typed: tuple[sats.AlgebraicType, Any], data: st.DataObject
) -> None:
    ty, value = typed
    loose = permissive(ty, sats.to_json(ty, value), data)
    assert sats.from_json(ty, loose) == value


@SETTINGS
@given(TYPED_VALUES)
def test_truncated_or_padded_encodings_are_decode_errors(
    typed: tuple[sats.AlgebraicType, Any],
) -> None:
    ty, value = typed
    codec = sats.compile(ty)
    data = codec.encode(value)
    for cut in range(min(len(data), 300)):
        with pytest.raises(sats.DecodeError):
            codec.decode(data[:cut])
    for extra in (b"\x00", b"\xff"):
        with pytest.raises(sats.DecodeError, match="trailing bytes"):
            codec.decode(data + extra)


# An int somewhere inside layers of containers, with the path each layer adds.
LAYERS = st.lists(
    st.one_of(
        st.tuples(st.just("field"), NAMES, st.integers(0, 2)),
        st.tuples(st.just("index"), st.integers(0, 3)),
        st.tuples(st.just("option")),
        st.tuples(st.just("variant"), NAMES, st.integers(0, 2)),
    ),
    max_size=4,
)


@SETTINGS
@given(st.sampled_from(sorted(INT_RANGES)), st.booleans(), LAYERS, st.integers(1, 2**300))
def test_out_of_range_ints_are_encode_errors_naming_the_path(
    kind: str, above: bool, layers: list[tuple[Any, ...]], excess: int
) -> None:
    lo, hi = INT_RANGES[kind]
    bad = hi + excess if above else lo - excess
    ty: sats.AlgebraicType = getattr(sats, kind)
    value: Any = bad
    path = ""
    for layer in layers:  # innermost first
        if layer[0] == "field":
            _, name, position = layer
            others = [(f"{name}{i}", sats.STRING) for i in range(2)]
            fields = [*others[:position], (name, ty), *others[position:]]
            ty = sats.product(*fields)
            value = {n: value if n == name else "x" for n, _ in fields}
            path = f".{name}{path}"
        elif layer[0] == "index":
            _, index = layer
            ty = sats.array(ty)
            value = [value] * (index + 1)
            path = f"[0]{path}"
        elif layer[0] == "option":
            ty = sats.option(ty)
            path = f".some{path}"
        else:
            _, name, position = layer
            others = [(f"{name}{i}", sats.UNIT) for i in range(2)]
            ty = sats.sum(*others[:position], (name, ty), *others[position:])
            value = {name: value}
            path = f".{name}{path}"
    expected = f"args{path}: expected {kind.lower()} in {lo}..{hi}, got {bad}"
    with pytest.raises(sats.EncodeError) as encoding:
        sats.encode(ty, value, path="args")
    assert str(encoding.value) == expected
    with pytest.raises(sats.EncodeError) as writing:
        sats.to_json(ty, value, path="args")
    assert str(writing.value) == expected


def _has_array_of_zero_sized(ty: sats.AlgebraicType) -> bool:
    """Arrays of zero-byte elements (units) can claim 2**32 elements in four bytes."""

    def zero_sized(t: sats.AlgebraicType) -> bool:
        return isinstance(t, sats.ProductType) and all(
            zero_sized(e.algebraic_type) for e in t.elements
        )

    if isinstance(ty, sats.ArrayType):
        return zero_sized(ty.elem) or _has_array_of_zero_sized(ty.elem)
    if isinstance(ty, sats.ProductType):
        return any(_has_array_of_zero_sized(e.algebraic_type) for e in ty.elements)
    if isinstance(ty, sats.SumType):
        return any(_has_array_of_zero_sized(v.algebraic_type) for v in ty.variants)
    return False


@SETTINGS
@given(TYPES.filter(lambda ty: not _has_array_of_zero_sized(ty)), st.binary(max_size=64))
def test_random_bytes_decode_or_raise_decode_error(ty: sats.AlgebraicType, data: bytes) -> None:
    codec = sats.compile(ty)
    try:
        value = codec.decode(data)
    except sats.DecodeError:
        return
    # Whatever decodes encodes again to as many bytes (the same bytes, except that a float NaN
    # may come back with another payload).
    assert len(codec.encode(value)) == len(data)
