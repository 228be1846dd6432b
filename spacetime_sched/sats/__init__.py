"""SATS, SpacetimeDB's type system, and its two value encodings: BSATN and SATS-JSON.

Build a type, then encode and decode values of it::

    >>> from spacetime_sched import sats
    >>> point = sats.product(("x", sats.F32), ("y", sats.F32))
    >>> sats.encode(point, {"x": 1.5, "y": -2.0}).hex()
    '0000c03f000000c0'
    >>> sats.decode(point, bytes.fromhex("0000c03f000000c0"))
    {'x': 1.5, 'y': -2.0}
    >>> sats.to_json(sats.option(sats.U32), None)
    {'none': []}

Types come from the module constants and constructors (``sats.U32``, ``sats.array(T)``,
``sats.option(T)``, ``sats.product(("name", T), ...)``, ``sats.sum(("Name", T), ...)``) or from a
schema: :meth:`AlgebraicType.from_json` and :meth:`Typespace.from_json` read the SATS-JSON that
``/v1/database/<name>/schema?version=9`` returns.

Python values of SATS types (what decoding gives; encoders also accept the forms after "|"):

* Bool: ``bool``
* I8 .. I256, U8 .. U256: ``int`` (never ``bool``)
* F32, F64: ``float`` | ``int``
* String: ``str``
* Array<U8>: ``bytes`` | ``bytearray``, ``memoryview``
* Array<T>: ``list`` | any sequence (not str/bytes)
* Product with named fields: ``dict`` in field order | any mapping by name, a tuple/list by
  position
* Product with an unnamed field: ``tuple`` | a list by position
* Unit (empty product): ``()`` | ``[]``, ``{}``, ``None``
* Option (sum ``some | none``): the value, or ``None`` | ``sats.Some(v)``. For
  ``Option<Option<T>>``, ``some(x)`` decodes as ``sats.Some(x)`` so ``some(none)`` survives.
* other Sum: ``sats.SumValue(tag, name, value)`` | ``{"Name": payload}``,
  ``(tag_or_name, payload)``, a unit variant's name
* Identity: :class:`spacetime_sched.Identity` | ``int``, 64 hex digits (optional ``0x``)
* ConnectionId: :class:`spacetime_sched.ConnectionId` | ``int``, 32 hex digits
* Timestamp: :class:`spacetime_sched.Timestamp` | ``datetime`` (naive = local time)
* TimeDuration: :class:`spacetime_sched.TimeDuration` | ``timedelta``
* ScheduleAt: ``ScheduleAt.Interval`` / ``ScheduleAt.Time`` | Timestamp or datetime
  (Time), TimeDuration or timedelta (Interval)
* Uuid: :class:`uuid.UUID` | ``int``

Special types are recognised by shape, as SpacetimeDB does: a product whose single field is
``__identity__`` (U256), ``__connection_id__`` (U128), ``__timestamp_micros_since_unix_epoch__``
(I64), ``__time_duration_micros__`` (I64) or ``__uuid__`` (U128); ScheduleAt is the sum
``Interval(TimeDuration) | Time(Timestamp)`` in that order.

Codecs are compiled once per (type, typespace) and cached: :func:`compile` returns a
:class:`Codec` (``encode``, ``decode``, ``encode_into``, ``decode_from``, ``to_json``,
``from_json``). Errors are :class:`EncodeError` / :class:`DecodeError` (both
:class:`SatsError`, a ``ValueError``) whose message names the path to the bad part:
``args.players[2].score: expected u32 in 0..4294967295, got -1``.
"""

from __future__ import annotations

from .._errors import DecodeError, EncodeError, SatsError
from ._bsatn import MAX_ZERO_SIZE_ELEMENTS
from ._codec import Codec, JsonCodec, compile, compile_json, decode, encode, from_json, to_json
from ._json import f32_shortest
from ._types import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
    MAX_DEPTH,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    UUID,
    AlgebraicType,
    ArrayType,
    PrimitiveType,
    ProductElement,
    ProductType,
    RefType,
    SumType,
    SumVariant,
    Typespace,
    array,
    describe,
    option,
    product,
    result,
    special_kind,
    sum,
)
from ._values import Some, SumValue

__all__ = [
    "BOOL",
    "BYTES",
    "CONNECTION_ID",
    "F32",
    "F64",
    "I8",
    "I16",
    "I32",
    "I64",
    "I128",
    "I256",
    "IDENTITY",
    "MAX_DEPTH",
    "MAX_ZERO_SIZE_ELEMENTS",
    "SCHEDULE_AT",
    "STRING",
    "TIME_DURATION",
    "TIMESTAMP",
    "U8",
    "U16",
    "U32",
    "U64",
    "U128",
    "U256",
    "UNIT",
    "UUID",
    "AlgebraicType",
    "ArrayType",
    "Codec",
    "DecodeError",
    "EncodeError",
    "JsonCodec",
    "PrimitiveType",
    "ProductElement",
    "ProductType",
    "RefType",
    "SatsError",
    "Some",
    "SumType",
    "SumValue",
    "SumVariant",
    "Typespace",
    "array",
    "compile",
    "compile_json",
    "decode",
    "describe",
    "encode",
    "f32_shortest",
    "from_json",
    "option",
    "product",
    "result",
    "special_kind",
    "sum",
    "to_json",
]
