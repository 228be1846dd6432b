"""The BSATN compiler: one pair of closures (encoder, decoder) per SATS type.

A compiled :class:`Node` has

* ``enc(value) -> bytes``: the encoding of one value;
* ``dec(buf, offset) -> (value, new_offset)``: one value read from ``buf`` (bytes, bytearray or
  a byte memoryview) at ``offset``.

Everything that can be decided from the type alone is decided here, once: ``struct.Struct``
formats, field names, tag bytes, which special value class to build. A product made only of
fixed-size scalars (ints up to 64 bits, floats, bools, Timestamp, TimeDuration) packs and unpacks
with a single ``Struct`` call; its per-field path is used only for other input forms and to
word errors. Refs compile lazily through a forwarding cell, so recursive types work.

Error paths cost nothing on success: see :mod:`._fail`.
"""

from __future__ import annotations

import re
import struct
import threading
import uuid as _uuid
from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

from .._identity import ConnectionId, Identity
from .._time import ScheduleAtInterval, ScheduleAtTime, TimeDuration, Timestamp
from . import _coerce as co
from ._compile import RefCell, TypeCompiler, enter_ref, leave_ref
from ._fail import Fail, show, with_segment
from ._types import (
    AlgebraicType,
    PrimitiveType,
    ProductType,
    SpecialKind,
    SumType,
    Typespace,
)
from ._values import Some, SumValue

__all__ = ["MAX_ZERO_SIZE_ELEMENTS", "Node", "compile_node"]

Buffer = bytes | bytearray | memoryview
Encoder = Callable[[Any], bytes]
Decoder = Callable[[Any, int], tuple[Any, int]]

_LEN = struct.Struct("<I")
_pack_len = _LEN.pack
_unpack_len = _LEN.unpack_from
_TAGS: Final = tuple(bytes((i,)) for i in range(256))

INT_FORMATS: Final = {
    "I8": "b",
    "U8": "B",
    "I16": "h",
    "U16": "H",
    "I32": "i",
    "U32": "I",
    "I64": "q",
    "U64": "Q",
}
#: Arrays of zero-size elements (units) carry no bytes per element, so their counts are not
#: bounded by the input: four bytes may ask for 2**32 values, and nested arrays multiply that.
#: One decode builds at most this many elements of arrays whose elements may take no input
#: (summed over every such array in the value); past it we refuse rather than allocate.
MAX_ZERO_SIZE_ELEMENTS: Final = 1 << 20
BIG_INTS: Final = {"I128": (16, True), "U128": (16, False), "I256": (32, True), "U256": (32, False)}
FLOAT_FORMATS: Final = {"F32": "f", "F64": "d"}


class Flat:
    """How a fixed-size scalar takes part in a one-``Struct`` product: its format character,
    the Python type the fast path expects, and optional conversions to/from the packed value."""

    __slots__ = ("attr", "fmt", "post", "pre", "pytype")

    def __init__(
        self,
        fmt: str,
        pytype: type,
        attr: str | None = None,
        post: Callable[[Any], Any] | None = None,
    ) -> None:
        self.fmt = fmt
        #: The exact type the fast path expects (anything else takes the careful path).
        self.pytype = pytype
        #: The attribute holding the packed value (``micros_since_epoch``), if not the value.
        self.attr = attr
        self.pre: Callable[[Any], Any] | None = attrgetter(attr) if attr else None
        #: Turns the unpacked value into the Python value (and validates it), if needed.
        self.post = post


class Node:
    """A compiled BSATN codec for one type (see the module docstring)."""

    __slots__ = ("dec", "enc", "flat", "inline", "min_size", "rows", "size")

    def __init__(
        self,
        enc: Encoder,
        dec: Decoder,
        size: int | None,
        min_size: int,
        flat: Flat | None = None,
        inline: str | None = None,
    ) -> None:
        self.enc = enc
        self.dec = dec
        #: The encoded size if every value has the same one, else ``None``.
        self.size = size
        #: A lower bound of the encoded size (bounds array lengths before allocating).
        self.min_size = min_size
        #: Set for fixed-size scalars: how they join a product's single ``Struct``.
        self.flat = flat
        #: ``"string"`` or ``"bytes"``: products inline these (length prefix, then the data).
        self.inline = inline
        #: For fixed-size products: ``rows(buf, offset, count) -> (list, new_offset)`` decodes
        #: ``count`` consecutive values with ``Struct.iter_unpack`` (arrays of table rows).
        self.rows: Callable[[Any, int, int], tuple[list[Any], int]] | None = None


def _truncated(buf: Any, offset: int, need: int, what: str) -> Fail:
    return Fail(
        f"unexpected end of input: {what} of {need} bytes at byte {offset} runs past the end "
        f"(the input has {len(buf)} bytes)"
    )


def _short_array(buf: Any, offset: int, count: int, need: int) -> Fail:
    return Fail(
        f"unexpected end of input: an array of {count} elements needs at least {need} bytes "
        f"from byte {offset} (the input has {len(buf)} bytes)"
    )


def _bad_tag(tag: int, offset: int, names: tuple[str | None, ...]) -> Fail:
    return Fail(f"unknown sum tag {tag} at byte {offset} (variants: {co.variant_list(names)})")


# --- primitives --------------------------------------------------------------------------------


def _int_node(kind: str) -> Node:
    fmt = INT_FORMATS[kind]
    codec = struct.Struct("<" + fmt)
    pack, unpack, size = codec.pack, codec.unpack_from, codec.size

    def enc(value: Any) -> bytes:
        if type(value) is int:
            try:
                return pack(value)
            except struct.error:
                pass
        return pack(co.check_int(kind, value))

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        return unpack(buf, off)[0], off + size

    return Node(enc, dec, size, size, Flat(fmt, int))


def _big_int_node(kind: str) -> Node:
    size, signed = BIG_INTS[kind]
    lo, hi = co.INT_RANGES[kind]
    from_bytes = int.from_bytes

    def enc(value: Any) -> bytes:
        if type(value) is not int or not lo <= value <= hi:
            value = co.check_int(kind, value)
        return int.to_bytes(value, size, "little", signed=signed)

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        end = off + size
        if end > len(buf):
            raise _truncated(buf, off, size, kind.lower())
        return from_bytes(buf[off:end], "little", signed=signed), end

    return Node(enc, dec, size, size)


def _float_node(kind: str) -> Node:
    fmt = FLOAT_FORMATS[kind]
    codec = struct.Struct("<" + fmt)
    pack, unpack, size = codec.pack, codec.unpack_from, codec.size

    def enc(value: Any) -> bytes:
        t = type(value)
        if t is float or t is int:
            try:
                return pack(value)
            except (OverflowError, struct.error):
                raise Fail(f"{value!r} is out of range for {kind.lower()}") from None
        return enc(co.check_float(kind, value))

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        return unpack(buf, off)[0], off + size

    return Node(enc, dec, size, size, Flat(fmt, float))


def _bool_post(raw: int) -> bool:
    if raw > 1:
        raise Fail(f"invalid Bool byte 0x{raw:02x} (only 00 and 01 are allowed)")
    return raw == 1


def _bool_node() -> Node:
    def enc(value: Any) -> bytes:
        if value is True:
            return b"\x01"
        if value is False:
            return b"\x00"
        raise Fail(f"expected Bool (True or False), got {show(value)}")

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        raw = buf[off]
        if raw > 1:
            raise Fail(f"invalid Bool byte 0x{raw:02x} at byte {off} (only 00 and 01 are allowed)")
        return raw == 1, off + 1

    return Node(enc, dec, 1, 1, Flat("B", bool, None, _bool_post))


def _string_node() -> Node:
    def enc(value: Any) -> bytes:
        if type(value) is not str:
            value = co.check_str(value)
        try:
            data: bytes = value.encode()
        except UnicodeEncodeError as exc:
            raise Fail(f"String is not valid Unicode (lone surrogate?): {exc.reason}") from None
        return _pack_len(len(data)) + data

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        start = off + 4
        end = start + _unpack_len(buf, off)[0]
        if end > len(buf):
            raise _truncated(buf, start, end - start, "String")
        try:
            return str(buf[start:end], "utf-8"), end
        except UnicodeDecodeError as exc:
            where = start + exc.start
            raise Fail(f"invalid UTF-8 in String at byte {where}: {exc.reason}") from None

    return Node(enc, dec, None, 4, inline="string")


def _bytes_node() -> Node:
    def enc(value: Any) -> bytes:
        data: bytes = value if type(value) is bytes else co.to_bytes(value)
        return _pack_len(len(data)) + data

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        start = off + 4
        end = start + _unpack_len(buf, off)[0]
        if end > len(buf):
            raise _truncated(buf, start, end - start, "byte array")
        return bytes(buf[start:end]), end

    return Node(enc, dec, None, 4, inline="bytes")


def _primitive_node(ty: PrimitiveType) -> Node:
    kind = ty.name
    if kind in INT_FORMATS:
        return _int_node(kind)
    if kind in BIG_INTS:
        return _big_int_node(kind)
    if kind in FLOAT_FORMATS:
        return _float_node(kind)
    if kind == "Bool":
        return _bool_node()
    return _string_node()


# --- special types -----------------------------------------------------------------------------

_I64 = struct.Struct("<q")
_pack_i64 = _I64.pack
_unpack_i64 = _I64.unpack_from


def _timestamp_node() -> Node:
    new = Timestamp._unchecked

    def enc(value: Any) -> bytes:
        if type(value) is Timestamp:
            return _pack_i64(value.micros_since_epoch)
        return _pack_i64(co.timestamp_micros(value))

    make, set_since_epoch = object.__new__, _slot_setter(Timestamp, "micros_since_epoch")

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        stamp = make(Timestamp)
        set_since_epoch(stamp, _unpack_i64(buf, off)[0])
        return stamp, off + 8

    return Node(enc, dec, 8, 8, Flat("q", Timestamp, "micros_since_epoch", new))


def _time_duration_node() -> Node:
    new = TimeDuration._unchecked

    def enc(value: Any) -> bytes:
        if type(value) is TimeDuration:
            return _pack_i64(value.micros)
        return _pack_i64(co.duration_micros(value))

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        return new(_unpack_i64(buf, off)[0]), off + 8

    return Node(enc, dec, 8, 8, Flat("q", TimeDuration, "micros", new))


def _wide_id_node(
    size: int, cls: Any, to_int: Callable[[Any], int], from_int: Callable[[int], Any], what: str
) -> Node:
    from_bytes = int.from_bytes

    def enc(value: Any) -> bytes:
        if type(value) is cls:
            return int.to_bytes(value.value, size, "little")
        return to_int(value).to_bytes(size, "little")

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        end = off + size
        if end > len(buf):
            raise _truncated(buf, off, size, what)
        return from_int(from_bytes(buf[off:end], "little")), end

    return Node(enc, dec, size, size)


def _uuid_node() -> Node:
    from_bytes = int.from_bytes
    uuid_cls = _uuid.UUID

    def enc(value: Any) -> bytes:
        if type(value) is uuid_cls:
            return int.to_bytes(value.int, 16, "little")
        return co.uuid_int(value).to_bytes(16, "little")

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        end = off + 16
        if end > len(buf):
            raise _truncated(buf, off, 16, "Uuid")
        return uuid_cls(int=from_bytes(buf[off:end], "little")), end

    return Node(enc, dec, 16, 16)


_TAG_I64 = struct.Struct("<Bq")
_pack_tag_i64 = _TAG_I64.pack
_unpack_tag_i64 = _TAG_I64.unpack_from


def _slot_setter(cls: type, attr: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of a slotted attrs class's member: sets a field of a fresh instance."""
    setter: Callable[[Any, Any], None] = cls.__dict__[attr].__set__
    return setter


def _schedule_at_node(generic: Node) -> Node:
    interval_cls, time_cls = ScheduleAtInterval, ScheduleAtTime
    generic_enc = generic.enc
    names = ("Interval", "Time")

    def enc(value: Any) -> bytes:
        t = type(value)
        if t is interval_cls:
            return _pack_tag_i64(0, value.value.micros)
        if t is time_cls:
            return _pack_tag_i64(1, value.value.micros_since_epoch)
        if isinstance(value, (SumValue, dict, tuple, list)):
            return generic_enc(value)  # the general sum forms, e.g. {"Time": datetime}
        return _pack_tag_i64(*co.schedule_at_parts(value))

    # Decoding builds the frozen values directly through their slots: the bytes can only hold
    # in-range i64 values, so the constructors' checks would be wasted work on a hot path.
    new = object.__new__
    set_interval = _slot_setter(interval_cls, "value")
    set_time = _slot_setter(time_cls, "value")
    set_micros = _slot_setter(TimeDuration, "micros")
    set_since_epoch = _slot_setter(Timestamp, "micros_since_epoch")

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        tag, micros = _unpack_tag_i64(buf, off)
        if tag == 0:
            duration = new(TimeDuration)
            set_micros(duration, micros)
            interval = new(interval_cls)
            set_interval(interval, duration)
            return interval, off + 9
        if tag == 1:
            stamp = new(Timestamp)
            set_since_epoch(stamp, micros)
            at = new(time_cls)
            set_time(at, stamp)
            return at, off + 9
        raise _bad_tag(tag, off, names)

    return Node(enc, dec, 9, 9)


# --- compound types ----------------------------------------------------------------------------


def _array_node(elem: Node) -> Node:
    flat = elem.flat
    if flat is not None:
        return _flat_array_node(elem, flat)
    elem_enc, elem_dec, min_size = elem.enc, elem.dec, elem.min_size

    def enc(value: Any) -> bytes:
        if type(value) is not list:
            value = _sequence(value)
        try:
            return _pack_len(len(value)) + b"".join([elem_enc(x) for x in value])
        except Exception:
            pass
        for i, x in enumerate(value):  # failed: find the element, for the error path
            try:
                elem_enc(x)
            except Exception as exc:
                raise with_segment(exc, f"[{i}]") from None
        raise Fail(f"array of {len(value)} elements does not fit in BSATN")

    rows = elem.rows
    units = elem_dec is _unit_dec  # the unit value () is immutable: one object serves all

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        count = _unpack_len(buf, off)[0]
        off += 4
        if count * min_size > len(buf) - off:
            raise _short_array(buf, off, count, count * min_size)
        if not min_size:
            _charge_zero_size(count, off - 4)
            if units:
                return [()] * count, off
        if rows is not None:
            try:
                return rows(buf, off, count)
            except Exception:
                pass  # e.g. a bad Bool byte: the loop below names the element
        out: list[Any] = []
        append = out.append
        try:
            for _ in range(count):
                item, off = elem_dec(buf, off)
                append(item)
        except Exception as exc:
            raise with_segment(exc, f"[{len(out)}]", buf, off) from None
        return out, off

    return Node(enc, dec, None, 4)


#: What is left of this thread's current decode's :data:`MAX_ZERO_SIZE_ELEMENTS` (per thread:
#: a codec may decode in several threads at once). Reset by the root decoder of every type that
#: has such arrays (see :func:`compile_node`), so other types never touch it.
_zero_size = threading.local()


def _charge_zero_size(count: int, offset: int) -> None:
    left: int = getattr(_zero_size, "left", MAX_ZERO_SIZE_ELEMENTS) - count
    if left < 0:
        raise Fail(
            f"the array of {count} zero-size elements at byte {offset} takes the value over "
            f"the limit of {MAX_ZERO_SIZE_ELEMENTS} such elements per decode "
            "(sats.MAX_ZERO_SIZE_ELEMENTS: a few bytes must not make us allocate gigabytes)"
        )
    _zero_size.left = left


def _flat_array_node(elem: Node, flat: Flat) -> Node:
    """Arrays of fixed-size scalars pack and unpack in one ``struct`` call."""
    fmt, pytype, pre, post = flat.fmt, flat.pytype, flat.pre, flat.post
    size = struct.calcsize("<" + fmt)
    elem_enc, elem_dec = elem.enc, elem.dec
    pack, unpack_from = struct.pack, struct.unpack_from

    def enc(value: Any) -> bytes:
        if type(value) is not list:
            value = _sequence(value)
        n = len(value)
        if not n:
            return b"\x00\x00\x00\x00"
        if set(map(type, value)) == {pytype}:
            try:
                raw = value if pre is None else [pre(x) for x in value]
                return pack(f"<I{n}{fmt}", n, *raw)
            except Exception:
                pass
        parts = [_pack_len(n)]
        for i, x in enumerate(value):
            try:
                parts.append(elem_enc(x))
            except Exception as exc:
                raise with_segment(exc, f"[{i}]") from None
        return b"".join(parts)

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        count = _unpack_len(buf, off)[0]
        start = off + 4
        end = start + count * size
        if end > len(buf):
            raise _short_array(buf, start, count, count * size)
        raw = unpack_from(f"<{count}{fmt}", buf, start)
        if post is None:
            return list(raw), end
        try:
            return [post(x) for x in raw], end
        except Exception:
            pass
        for i in range(count):
            try:
                elem_dec(buf, start + i * size)
            except Exception as exc:
                raise with_segment(exc, f"[{i}]", buf, start + i * size) from None
        raise AssertionError("unreachable: a flat element failed only in bulk")

    return Node(enc, dec, None, 4)


def _sequence(value: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray, memoryview, dict)) or not hasattr(
        value, "__len__"
    ):
        raise Fail(f"expected a list (or another sequence) for an array, got {show(value)}")
    return list(value)


def _generate(name: str, source: str, namespace: dict[str, Any]) -> Any:
    """Compile generated ``source`` and return its function ``name``.

    Products get straight-line code: in CPython a loop or comprehension over the fields costs
    several times more than the work itself. Field names enter the source only through
    ``repr``, which always yields a valid str literal.
    """
    exec(compile(source, f"<sats {name}>", "exec"), namespace)
    namespace[f"{name}_children"] = _child_lines(source)
    return namespace[name]


#: A generated line that calls one field's own codec: ``v3, off = d3(buf, off)``, ``c3 = e3(x3)``.
_CHILD_CALL: Final = re.compile(r"\s*[cv](\d+)(?:, off)? = [de]\1\(")


def _child_lines(source: str) -> dict[int, int]:
    """Line number -> field index, for the lines of generated ``source`` that call a field's
    own codec.

    When the fast path fails on such a line, the failure is that field's, and the field's codec
    has already located it inside itself: the product only adds its segment, read from the
    traceback's line number (free on success, unlike tracking the field in a variable). Doing
    anything more, such as re-running the field on the careful path, would re-do the field's
    whole subtree once per level above it: exponential time in the nesting.
    """
    lines = enumerate(source.splitlines(), 1)
    return {number: int(m[1]) for number, line in lines if (m := _CHILD_CALL.match(line))}


def _product_node(ty: ProductType, fields: list[Node]) -> Node:
    names = ty.names
    n = len(names)
    if n == 0:
        return _unit_node()
    segments = tuple(f".{name}" if name is not None else f".{i}" for i, name in enumerate(names))
    encs = tuple(f.enc for f in fields)
    decs = tuple(f.dec for f in fields)
    sizes = [f.size for f in fields]
    size = None if None in sizes else sum(s for s in sizes if s is not None)
    min_size = sum(f.min_size for f in fields)

    def enc_general(value: Any) -> bytes:
        """Every accepted input form, one field at a time, naming the field that fails."""
        parts = []
        for i, x in enumerate(co.product_values(value, names)):
            try:
                parts.append(encs[i](x))
            except Exception as exc:
                raise with_segment(exc, segments[i]) from None
        return b"".join(parts)

    def dec_general(buf: Any, off: int) -> tuple[list[Any], int]:
        """One field at a time, naming the field that fails."""
        values: list[Any] = []
        append = values.append
        try:
            for d in decs:
                item, off = d(buf, off)
                append(item)
        except Exception as exc:
            raise with_segment(exc, segments[len(values)], buf, off) from None
        return values, off

    namespace: dict[str, Any] = {
        "enc_general": enc_general,
        "dec_general": dec_general,
        "utf8_str": str,
        "segments": segments,
        "with_segment": with_segment,
    }
    enc = _generate("enc", _encoder_source(names, fields, namespace), namespace)
    dec = _generate("dec", _decoder_source(names, fields, namespace), namespace)
    node = Node(enc, dec, size, min_size)
    flats = [f.flat for f in fields]
    if all(flat is not None for flat in flats):
        node.rows = _generate("rows", _rows_source(names, flats, namespace), namespace)
    return node


def _post_expression(i: int, flat: Flat, namespace: dict[str, Any]) -> str:
    """The expression turning unpacked ``v{i}`` into its Python value. A Bool is checked
    inline (a comparison, not a call); a bad byte raises, and the careful path names it."""
    if flat.post is None:
        return f"v{i}"
    if flat.post is _bool_post:
        namespace["bad_bool"] = _bad_bool
        return f"(v{i} == 1 if v{i} < 2 else bad_bool())"
    namespace[f"p{i}"] = flat.post
    return f"p{i}(v{i})"


def _bad_bool() -> bool:
    raise Fail("invalid Bool byte")  # replaced by the careful path's message, with its offset


def _rows_source(
    names: tuple[str | None, ...], flats: list[Flat | None], namespace: dict[str, Any]
) -> str:
    """Source of ``rows(buf, off, count)`` for a product of fixed-size scalars only."""
    codec = struct.Struct("<" + "".join(f.fmt for f in flats if f is not None))
    namespace["iter_rows"] = codec.iter_unpack
    targets = "".join(f"v{i}, " for i in range(len(flats)))
    values = [_post_expression(i, f, namespace) for i, f in enumerate(flats) if f is not None]
    if None not in names:
        built = "{" + ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True))
        built += "}"
    else:
        built = "(" + "".join(f"{v}, " for v in values) + ")"
    return f"""def rows(buf, off, count):
    end = off + count * {codec.size}
    return [{built} for {targets}in iter_rows(buf[off:end])], end
"""


def _encoder_source(
    names: tuple[str | None, ...], fields: list[Node], namespace: dict[str, Any]
) -> str:
    """Source of ``enc(value)`` for a product.

    The canonical input (a dict by name, or a tuple) takes one straight-line path: runs of
    fixed-size scalars, and the length prefixes of strings and byte strings, go into one
    ``Struct.pack`` call each; other fields call their own encoder. Exact ``type(x) is ...``
    checks guard the packed fields (no bools as ints, no coercions). Anything unexpected, or
    a failure in the inline parts, falls back to ``enc_general``, which also accepts the other
    forms and words the error; a failure in a field's own encoder just gets the field's segment.
    """
    n = len(names)
    checks: list[str] = []
    prepare: list[str] = []
    pieces: list[str] = []
    fmt: list[str] = []
    args: list[str] = []

    def flush() -> None:
        if fmt:
            struct_name = f"S{len(pieces)}"
            namespace[struct_name] = struct.Struct("<" + "".join(fmt)).pack
            pieces.append(f"{struct_name}({', '.join(args)})")
            fmt.clear()
            args.clear()

    for i, field in enumerate(fields):
        flat = field.flat
        if flat is not None:
            namespace[f"t{i}"] = flat.pytype
            checks.append(f"type(x{i}) is t{i}")
            fmt.append(flat.fmt)
            args.append(f"x{i}" if flat.attr is None else f"x{i}.{flat.attr}")
        elif field.inline == "string":
            checks.append(f"type(x{i}) is str")
            prepare.append(f"b{i} = x{i}.encode()")
            fmt.append("I")
            args.append(f"len(b{i})")
            flush()
            pieces.append(f"b{i}")
        elif field.inline == "bytes":
            checks.append(f"type(x{i}) is bytes")
            fmt.append("I")
            args.append(f"len(x{i})")
            flush()
            pieces.append(f"x{i}")
        else:
            flush()
            namespace[f"e{i}"] = field.enc
            prepare.append(f"c{i} = e{i}(x{i})")
            pieces.append(f"c{i}")
    flush()
    result = pieces[0] if len(pieces) == 1 else f'b"".join(({", ".join(pieces)},))'
    body = "".join(f"            {line}\n" for line in prepare) + f"            return {result}\n"
    guarded = f"if {' and '.join(checks)}:\n{_indent(body, 4)}" if checks else body.lstrip()

    def fast_path(reads: str) -> str:
        return f"""        try:
            {reads}
            {guarded.rstrip()}
        except Exception as exc:
            field = enc_children.get(exc.__traceback__.tb_lineno)
            if field is not None:  # a field's own encoder failed: it named the place
                raise with_segment(exc, segments[field]) from None
"""

    xs = ", ".join(f"x{i}" for i in range(n))
    by_key = "; ".join(f"x{i} = value[{name!r}]" for i, name in enumerate(names))
    source = "def enc(value):\n"
    if None not in names:
        source += f"    if type(value) is dict and len(value) == {n}:\n{fast_path(by_key)}"
    source += f"    if type(value) is tuple and len(value) == {n}:\n{fast_path(f'{xs}, = value')}"
    return source + "    return enc_general(value)\n"


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(True))


def _decoder_source(
    names: tuple[str | None, ...], fields: list[Node], namespace: dict[str, Any]
) -> str:
    """Source of ``dec(buf, off)`` for a product: runs of fixed-size scalars, and the length
    prefix of a following string or byte string, are one ``Struct.unpack_from`` each; strings
    and byte strings are sliced inline; other fields call their own decoder. Any failure
    in the inline parts (truncation, bad UTF-8, a bad bool byte) re-decodes this product, and
    only this one, with ``dec_general``, which raises the error naming the field; a failure in
    a field's own decoder just gets the field's segment (see :func:`_child_lines`)."""
    lines: list[str] = []
    fmt: list[str] = []
    targets: list[str] = []
    values: list[str] = []

    def flush() -> None:
        if fmt:
            codec = struct.Struct("<" + "".join(fmt))
            struct_name = f"U{len(lines)}"
            namespace[struct_name] = codec.unpack_from
            lines.append(f"{''.join(t + ', ' for t in targets)}= {struct_name}(buf, off)")
            lines.append(f"off += {codec.size}")
            fmt.clear()
            targets.clear()

    for i, field in enumerate(fields):
        flat = field.flat
        if flat is not None:
            fmt.append(flat.fmt)
            targets.append(f"v{i}")
            values.append(_post_expression(i, flat, namespace))
        elif field.inline is not None:
            fmt.append("I")
            targets.append(f"n{i}")
            flush()
            convert = "utf8_str" if field.inline == "string" else "bytes"
            extra = ', "utf-8"' if field.inline == "string" else ""
            lines.append(f"end = off + n{i}")
            lines.append("if end > len(buf): raise IndexError")
            lines.append(f"v{i} = {convert}(buf[off:end]{extra}); off = end")
            values.append(f"v{i}")
        else:
            flush()
            namespace[f"d{i}"] = field.dec
            lines.append(f"v{i}, off = d{i}(buf, off)")
            values.append(f"v{i}")
    flush()
    if None not in names:
        built = "{" + ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True))
        built += "}"
    else:
        built = "(" + "".join(f"{v}, " for v in values) + ")"
    body = "".join(f"        {line}\n" for line in lines)
    return f"""def dec(buf, off):
    start = off
    try:
{body}        return {built}, off
    except Exception as exc:
        field = dec_children.get(exc.__traceback__.tb_lineno)
        if field is not None:  # a field's own decoder failed: it named the place
            raise with_segment(exc, segments[field], buf, off) from None
        dec_general(buf, start)  # an inline part failed: the careful path names it
        raise
"""


def _unit_dec(buf: Any, off: int) -> tuple[Any, int]:
    return (), off


def _unit_node() -> Node:
    def enc(value: Any) -> bytes:
        if value == () or value is None or (type(value) in (list, dict) and not value):
            return b""
        co.product_values(value, ())  # raises with the message
        return b""

    return Node(enc, _unit_dec, 0, 0)


def _sum_node(ty: SumType, variants: list[Node]) -> Node:
    names = tuple(v.name for v in ty.variants)
    count = len(names)
    tags = {name: i for i, name in enumerate(names) if name is not None}
    unit = tuple(v.size == 0 for v in variants)
    segments = tuple(f".{name}" if name is not None else f".{i}" for i, name in enumerate(names))
    encs = tuple(v.enc for v in variants)
    decs = tuple(v.dec for v in variants)
    first = variants[0].size if variants else None
    same = first is not None and all(v.size == first for v in variants)
    size = 1 + first if same and first is not None else None
    min_size = 1 + min((v.min_size for v in variants), default=0)
    sum_value = SumValue

    def enc(value: Any) -> bytes:
        if (
            type(value) is sum_value
            and type(value.tag) is int
            and 0 <= value.tag < count
            and (value.name is None or value.name == names[value.tag])
        ):
            tag, payload = value.tag, value.value
        else:
            tag, payload = co.sum_parts(value, names, tags, unit)
        try:
            return _TAGS[tag] + encs[tag](payload)
        except Exception as exc:
            raise with_segment(exc, segments[tag]) from None

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        tag = buf[off]
        if tag >= count:
            raise _bad_tag(tag, off, names)
        try:
            payload, end = decs[tag](buf, off + 1)
        except Exception as exc:
            raise with_segment(exc, segments[tag], buf, off + 1) from None
        return sum_value(tag, names[tag], payload), end

    return Node(enc, dec, size, min_size)


def _option_node(payload: Node, nested: bool) -> Node:
    inner_enc, inner_dec = payload.enc, payload.dec
    some_cls = Some

    def enc(value: Any) -> bytes:
        if value is None:
            return b"\x01"
        if type(value) is some_cls:
            value = value.value
        try:
            return b"\x00" + inner_enc(value)
        except Exception as exc:
            raise with_segment(exc, ".some") from None

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        tag = buf[off]
        if tag == 0:
            try:
                value, end = inner_dec(buf, off + 1)
            except Exception as exc:
                raise with_segment(exc, ".some", buf, off + 1) from None
            return (some_cls(value) if nested else value), end
        if tag == 1:
            return None, off + 1
        raise _bad_tag(tag, off, ("some", "none"))

    return Node(enc, dec, None, 1)


# --- the compiler ------------------------------------------------------------------------------


class _Compiler(TypeCompiler[Node]):
    """Builds BSATN nodes for the shared type walk."""

    #: Whether some array's elements may take no input (see :data:`MAX_ZERO_SIZE_ELEMENTS`).
    zero_size_arrays = False

    def primitive_node(self, ty: PrimitiveType) -> Node:
        return _primitive_node(ty)

    def bytes_node(self) -> Node:
        return _bytes_node()

    def array_node(self, elem: Node) -> Node:
        if not elem.min_size:
            self.zero_size_arrays = True
        return _array_node(elem)

    def special_product_node(self, kind: SpecialKind) -> Node | None:
        if kind == "timestamp":
            return _timestamp_node()
        if kind == "time_duration":
            return _time_duration_node()
        if kind == "identity":
            return _wide_id_node(32, Identity, co.identity_int, Identity._unchecked, "Identity")
        if kind == "connection_id":
            return _wide_id_node(
                16, ConnectionId, co.connection_id_int, ConnectionId._unchecked, "ConnectionId"
            )
        if kind == "uuid":
            return _uuid_node()
        return None

    def product_node(self, ty: ProductType, fields: list[Node]) -> Node:
        return _product_node(ty, fields)

    def option_node(self, payload: Node, nested: bool) -> Node:
        return _option_node(payload, nested)

    def sum_node(self, ty: SumType, variants: list[Node]) -> Node:
        return _sum_node(ty, variants)

    def schedule_at_node(self, generic: Node) -> Node:
        return _schedule_at_node(generic)

    def forward_node(self, cell: RefCell[Node]) -> Node:
        def enc(value: Any) -> bytes:
            height = cell.height
            enter_ref(height)
            try:
                return cell.node.enc(value)
            finally:
                leave_ref(height)

        def dec(buf: Any, off: int) -> tuple[Any, int]:
            height = cell.height
            enter_ref(height)
            try:
                return cell.node.dec(buf, off)
            finally:
                leave_ref(height)

        return Node(enc, dec, None, 0)


def compile_node(ty: AlgebraicType, typespace: Typespace | None) -> Node:
    """Compile ``ty`` (refs resolved in ``typespace``) to a BSATN :class:`Node`.

    If the type has arrays whose elements may take no input, the root decoder starts each
    decode with a fresh :data:`MAX_ZERO_SIZE_ELEMENTS` budget; other types skip that step.
    """
    compiler = _Compiler(typespace)
    root = compiler.node(ty)
    if not compiler.zero_size_arrays:
        return root
    inner = root.dec

    def dec(buf: Any, off: int) -> tuple[Any, int]:
        _zero_size.left = MAX_ZERO_SIZE_ELEMENTS
        return inner(buf, off)

    return Node(root.enc, dec, root.size, root.min_size)
