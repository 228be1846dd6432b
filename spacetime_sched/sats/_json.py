"""The SATS-JSON compiler: one pair of closures (to JSON, from JSON) per SATS type.

*To JSON* writes exactly what a SpacetimeDB server writes for a typed value: products as objects
by field name (the unit value as ``[]``), sums as ``{"Variant": payload}``, ints up to 128 bits
as JSON numbers, 256-bit ints as ``"0x…"`` strings (negative: ``"-0x2a"``), bytes as lowercase
hex, floats as numbers (an F32 as its shortest decimal). The result is plain Python data for
:func:`json.dumps`.

*From JSON* also accepts the permissive forms the server accepts as input: products as
positional arrays, sums as ``[tag, payload]`` or ``{"<decimal tag>": payload}``, ``null`` for an
Option's ``none``, bytes as an array of numbers, and 128/256-bit ints as decimal or hex strings.
"""

from __future__ import annotations

import math
import struct
import uuid as _uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._identity import ConnectionId, Identity
from .._time import ScheduleAtInterval, ScheduleAtTime, TimeDuration, Timestamp
from . import _coerce as co
from ._compile import RefCell, TypeCompiler, enter_ref, leave_ref
from ._fail import Fail, show, with_segment
from ._types import (
    CONNECTION_ID_TAG,
    IDENTITY_TAG,
    TIME_DURATION_TAG,
    TIMESTAMP_TAG,
    UUID_TAG,
    AlgebraicType,
    PrimitiveType,
    ProductType,
    SpecialKind,
    SumType,
    Typespace,
)
from ._values import Some, SumValue

__all__ = ["JsonNode", "compile_json_node", "f32_shortest"]

ToJson = Callable[[Any], Any]
FromJson = Callable[[Any], Any]


class JsonNode:
    """A compiled SATS-JSON converter for one type."""

    __slots__ = ("frm", "to", "unit")

    def __init__(self, to: ToJson, frm: FromJson, unit: bool = False) -> None:
        self.to = to
        self.frm = frm
        self.unit = unit


_F32 = struct.Struct("<f")


def f32_shortest(value: float) -> float:
    """The float whose ``repr`` is the shortest decimal that reads back as the same F32 (what
    Rust's ``f32`` Display, and so the server, writes), e.g. ``0.1`` for F32 0.1, not
    ``0.10000000149011612``."""
    exact = _F32.unpack(_F32.pack(value))[0]
    if exact == 0.0 or not math.isfinite(exact):
        return float(exact)
    for digits in range(1, 10):
        candidate = float(f"{exact:.{digits}g}")
        try:
            back = _F32.unpack(_F32.pack(candidate))[0]
        except OverflowError:  # rounding near the f32 limit can step past it: more digits
            continue
        if back == exact:
            return candidate
    return float(exact)


def _parse_big(text: str, kind: str) -> int:
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    if body[:1] in "+-":
        body = body[1:]
    try:
        value = int(body[2:], 16) if body[:2] in ("0x", "0X") else int(body, 10)
    except ValueError:
        raise Fail(f"expected {kind.lower()} as a decimal or 0x-hex string, got {text!r}") from None
    return sign * value


# --- primitives --------------------------------------------------------------------------------


def _int_node(kind: str) -> JsonNode:
    lo, hi = co.INT_RANGES[kind]
    wide = kind in ("I128", "U128", "I256", "U256")
    as_hex = kind in ("I256", "U256")

    def to(value: Any) -> Any:
        if type(value) is not int or not lo <= value <= hi:
            value = co.check_int(kind, value)
        return hex(value) if as_hex else value

    def frm(obj: Any) -> Any:
        if type(obj) is int and lo <= obj <= hi:
            return obj
        if wide and isinstance(obj, str):
            obj = _parse_big(obj, kind)
        return co.check_int(kind, obj)

    return JsonNode(to, frm)


def _float_node(kind: str) -> JsonNode:
    single = kind == "F32"

    def to(value: Any) -> Any:
        value = co.check_float(kind, value)
        if not math.isfinite(value):
            raise Fail(f"{kind.lower()} {value!r} cannot be written as JSON")
        if single:
            try:
                return f32_shortest(value)
            except OverflowError:
                raise Fail(f"{value!r} is out of range for f32") from None
        return value

    def frm(obj: Any) -> Any:
        value = co.check_float(kind, obj)
        if single:
            try:
                return _F32.unpack(_F32.pack(value))[0]
            except OverflowError:
                raise Fail(f"{obj!r} is out of range for f32") from None
        return value

    return JsonNode(to, frm)


def _bool_node() -> JsonNode:
    return JsonNode(co.check_bool, co.check_bool)


def _string_node() -> JsonNode:
    return JsonNode(co.check_str, co.check_str)


def _bytes_node() -> JsonNode:
    def to(value: Any) -> Any:
        return co.to_bytes(value).hex()

    def frm(obj: Any) -> Any:
        if isinstance(obj, str):
            text = obj[2:] if obj[:2] in ("0x", "0X") else obj
            try:
                return bytes.fromhex(text)
            except ValueError:
                raise Fail(f"expected bytes as a hex string, got {obj!r}") from None
        if isinstance(obj, list):
            return co.to_bytes(obj)
        raise Fail(f"expected bytes as a hex string or an array of numbers, got {show(obj)}")

    return JsonNode(to, frm)


def _primitive_node(ty: PrimitiveType) -> JsonNode:
    kind = ty.name
    if kind in co.INT_RANGES:
        return _int_node(kind)
    if kind in ("F32", "F64"):
        return _float_node(kind)
    if kind == "Bool":
        return _bool_node()
    return _string_node()


# --- special types -----------------------------------------------------------------------------


def _newtype_field(obj: Any, tag: str, what: str) -> Any:
    """The payload of a special type given as ``{tag: x}`` or ``[x]``."""
    if isinstance(obj, Mapping):
        if len(obj) == 1 and tag in obj:
            return obj[tag]
        raise Fail(f'expected {what} as {{"{tag}": ...}}, got {show(obj)}')
    if isinstance(obj, list) and len(obj) == 1:
        return obj[0]
    raise Fail(f'expected {what} as {{"{tag}": ...}} or [...], got {show(obj)}')


def _with_field(tag: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(obj: Any) -> Any:
        try:
            return fn(obj)
        except Exception as exc:
            raise with_segment(exc, f".{tag}") from None

    return convert


def _micros_node(
    cls: type[Timestamp] | type[TimeDuration], tag: str, to_micros: Callable[[Any], int]
) -> JsonNode:
    """Timestamp or TimeDuration: ``{tag: micros}``, the microseconds as an I64."""
    inner = _with_field(tag, lambda x: co.check_int("I64", x))
    what = cls.__name__
    new = cls._unchecked

    def to(value: Any) -> Any:
        return {tag: to_micros(value)}

    def frm(obj: Any) -> Any:
        return new(inner(_newtype_field(obj, tag, what)))

    return JsonNode(to, frm)


def _timestamp_node() -> JsonNode:
    return _micros_node(Timestamp, TIMESTAMP_TAG, co.timestamp_micros)


def _time_duration_node() -> JsonNode:
    return _micros_node(TimeDuration, TIME_DURATION_TAG, co.duration_micros)


def _wide_id_node(
    cls: type[Identity] | type[ConnectionId],
    tag: str,
    int_kind: str,
    to_int: Callable[[Any], int],
    to_json: Callable[[int], Any],
) -> JsonNode:
    """Identity or ConnectionId: ``{tag: n}`` (``n`` as ``to_json`` writes it); reads also
    take the bare big-endian hex of plain serde JSON."""
    inner = _with_field(tag, _int_node(int_kind).frm)
    what = cls.__name__
    new = cls._unchecked

    def to(value: Any) -> Any:
        return {tag: to_json(to_int(value))}

    def frm(obj: Any) -> Any:
        if isinstance(obj, str):  # plain serde JSON: bare big-endian hex
            return new(to_int(obj))
        return new(inner(_newtype_field(obj, tag, what)))

    return JsonNode(to, frm)


def _identity_node() -> JsonNode:
    return _wide_id_node(Identity, IDENTITY_TAG, "U256", co.identity_int, hex)


def _connection_id_node() -> JsonNode:
    return _wide_id_node(ConnectionId, CONNECTION_ID_TAG, "U128", co.connection_id_int, int)


def _uuid_node() -> JsonNode:
    tag = UUID_TAG
    u128 = _int_node("U128").frm
    inner = _with_field(tag, u128)

    def to(value: Any) -> Any:
        return {tag: co.uuid_int(value)}

    def frm(obj: Any) -> Any:
        return _uuid.UUID(int=inner(_newtype_field(obj, tag, "Uuid")))

    return JsonNode(to, frm)


def _schedule_at_node(generic: JsonNode) -> JsonNode:
    generic_frm = generic.frm

    def to(value: Any) -> Any:
        if isinstance(value, (SumValue, dict, tuple, list)):
            return generic.to(value)
        tag, micros = co.schedule_at_parts(value)
        if tag == 0:
            return {"Interval": {TIME_DURATION_TAG: micros}}
        return {"Time": {TIMESTAMP_TAG: micros}}

    def frm(obj: Any) -> Any:
        parsed = generic_frm(obj)
        if parsed.tag == 0:
            return ScheduleAtInterval(parsed.value)
        return ScheduleAtTime(parsed.value)

    return JsonNode(to, frm)


# --- compound types ----------------------------------------------------------------------------


def _array_node(elem: JsonNode) -> JsonNode:
    elem_to, elem_frm = elem.to, elem.frm

    def convert(fn: Callable[[Any], Any], items: Any) -> list[Any]:
        out: list[Any] = []
        append = out.append
        try:
            for item in items:
                append(fn(item))
        except Exception as exc:
            raise with_segment(exc, f"[{len(out)}]") from None
        return out

    # Units take no input in BSATN, so a few bytes may decode to a million of them
    # (sats.MAX_ZERO_SIZE_ELEMENTS): their canonical forms convert in one C-level pass.
    units = elem.unit

    def to(value: Any) -> Any:
        if type(value) is not list and (
            isinstance(value, (str, bytes, bytearray, memoryview, Mapping))
            or not hasattr(value, "__len__")
        ):
            raise Fail(f"expected a list (or another sequence) for an array, got {show(value)}")
        if units and type(value) is list and value.count(()) == len(value):
            return [[] for _ in value]
        return convert(elem_to, value)

    def frm(obj: Any) -> Any:
        if not isinstance(obj, list):
            raise Fail(f"expected a JSON array, got {show(obj)}")
        if units and obj.count([]) == len(obj):
            return [()] * len(obj)
        return convert(elem_frm, obj)

    return JsonNode(to, frm)


def _product_node(ty: ProductType, fields: list[JsonNode]) -> JsonNode:
    names = ty.names
    n = len(names)
    named = None not in names
    segments = tuple(f".{name}" if name is not None else f".{i}" for i, name in enumerate(names))
    tos = tuple(f.to for f in fields)
    frms = tuple(f.frm for f in fields)
    keys = tuple(name for name in names if name is not None)

    def convert(fns: tuple[Callable[[Any], Any], ...], values: Any) -> list[Any]:
        out: list[Any] = []
        append = out.append
        try:
            for fn, value in zip(fns, values, strict=False):
                append(fn(value))
        except Exception as exc:
            raise with_segment(exc, segments[len(out)]) from None
        return out

    def to(value: Any) -> Any:
        values = convert(tos, co.product_values(value, names))
        if n == 0:
            return []
        return dict(zip(keys, values, strict=False)) if named else values

    def frm(obj: Any) -> Any:
        if n == 0:
            if obj is None or (isinstance(obj, (list, Mapping)) and not obj):
                return ()
            raise Fail(f"expected the unit value [], got {show(obj)}")
        if isinstance(obj, Mapping):
            values = convert(frms, co.product_values(obj, names))
        elif isinstance(obj, list):
            if len(obj) != n:
                raise Fail(f"expected {n} fields, got an array of {len(obj)}")
            values = convert(frms, obj)
        else:
            raise Fail(f"expected a JSON object (or array) of {n} fields, got {show(obj)}")
        return dict(zip(keys, values, strict=False)) if named else tuple(values)

    return JsonNode(to, frm, unit=n == 0)


def _sum_parts_from_json(
    obj: Any, names: tuple[str | None, ...], tags: Mapping[str, int]
) -> tuple[int, Any]:
    if isinstance(obj, Mapping) and len(obj) == 1:
        ((key, payload),) = obj.items()
        tag = tags.get(key) if isinstance(key, str) else None
        if tag is None and isinstance(key, str) and key.isdigit():
            tag = int(key)
        if tag is None or not 0 <= tag < len(names):
            raise Fail(f"unknown variant {key!r} (variants: {co.variant_list(names)})")
        return tag, payload
    if isinstance(obj, list) and len(obj) == 2:
        key, payload = obj
        if type(key) is int:
            if not 0 <= key < len(names):
                raise Fail(f"unknown sum tag {key} (variants: {co.variant_list(names)})")
            return key, payload
        if isinstance(key, str) and key in tags:
            return tags[key], payload
        raise Fail(f"unknown variant {key!r} (variants: {co.variant_list(names)})")
    raise Fail(f'expected a sum as {{"Variant": payload}} or [tag, payload], got {show(obj)}')


def _sum_node(ty: SumType, variants: list[JsonNode]) -> JsonNode:
    names = tuple(v.name for v in ty.variants)
    tags = {name: i for i, name in enumerate(names) if name is not None}
    unit = tuple(v.unit for v in variants)
    keys = tuple(name if name is not None else str(i) for i, name in enumerate(names))
    segments = tuple(f".{key}" for key in keys)
    tos = tuple(v.to for v in variants)
    frms = tuple(v.frm for v in variants)

    def to(value: Any) -> Any:
        tag, payload = co.sum_parts(value, names, tags, unit)
        try:
            return {keys[tag]: tos[tag](payload)}
        except Exception as exc:
            raise with_segment(exc, segments[tag]) from None

    def frm(obj: Any) -> Any:
        tag, payload = _sum_parts_from_json(obj, names, tags)
        try:
            return SumValue(tag, names[tag], frms[tag](payload))
        except Exception as exc:
            raise with_segment(exc, segments[tag]) from None

    return JsonNode(to, frm)


def _option_node(payload: JsonNode, nested: bool) -> JsonNode:
    inner_to, inner_frm = payload.to, payload.frm
    names = ("some", "none")
    tags = {"some": 0, "none": 1}

    def to(value: Any) -> Any:
        is_some, value = co.option_payload(value)
        if not is_some:
            return {"none": []}
        try:
            return {"some": inner_to(value)}
        except Exception as exc:
            raise with_segment(exc, ".some") from None

    def frm(obj: Any) -> Any:
        if obj is None:
            return None
        tag, value = _sum_parts_from_json(obj, names, tags)
        if tag == 1:
            if value is None or (isinstance(value, (list, Mapping)) and not value):
                return None
            raise Fail(f"expected the unit value [] as the payload of none, got {show(value)}")
        try:
            value = inner_frm(value)
        except Exception as exc:
            raise with_segment(exc, ".some") from None
        return Some(value) if nested else value

    return JsonNode(to, frm)


# --- the compiler ------------------------------------------------------------------------------


class _Compiler(TypeCompiler[JsonNode]):
    """Builds SATS-JSON nodes for the shared type walk."""

    def primitive_node(self, ty: PrimitiveType) -> JsonNode:
        return _primitive_node(ty)

    def bytes_node(self) -> JsonNode:
        return _bytes_node()

    def array_node(self, elem: JsonNode) -> JsonNode:
        return _array_node(elem)

    def special_product_node(self, kind: SpecialKind) -> JsonNode | None:
        special = _SPECIAL_NODES.get(kind)
        return special() if special is not None else None

    def product_node(self, ty: ProductType, fields: list[JsonNode]) -> JsonNode:
        return _product_node(ty, fields)

    def option_node(self, payload: JsonNode, nested: bool) -> JsonNode:
        return _option_node(payload, nested)

    def sum_node(self, ty: SumType, variants: list[JsonNode]) -> JsonNode:
        return _sum_node(ty, variants)

    def schedule_at_node(self, generic: JsonNode) -> JsonNode:
        return _schedule_at_node(generic)

    def forward_node(self, cell: RefCell[JsonNode]) -> JsonNode:
        def to(value: Any) -> Any:
            height = cell.height
            enter_ref(height)
            try:
                return cell.node.to(value)
            finally:
                leave_ref(height)

        def frm(obj: Any) -> Any:
            height = cell.height
            enter_ref(height)
            try:
                return cell.node.frm(obj)
            finally:
                leave_ref(height)

        return JsonNode(to, frm)


_SPECIAL_NODES: Final[dict[str, Callable[[], JsonNode]]] = {
    "timestamp": _timestamp_node,
    "time_duration": _time_duration_node,
    "identity": _identity_node,
    "connection_id": _connection_id_node,
    "uuid": _uuid_node,
}


def compile_json_node(ty: AlgebraicType, typespace: Typespace | None) -> JsonNode:
    """Compile ``ty`` (refs resolved in ``typespace``) to a SATS-JSON :class:`JsonNode`."""
    return _Compiler(typespace).node(ty)
