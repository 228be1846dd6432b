"""Compiled codecs and the one-call helpers: :func:`compile`, :func:`encode`, :func:`decode`,
:func:`to_json`, :func:`from_json`.

``compile(ty, typespace)`` builds a :class:`Codec` once per (type, typespace) and caches it, so
``sats.encode(ty, value)`` in a loop costs one dict lookup plus the compiled encoder.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .._errors import DecodeError, SatsError
from ._bsatn import Node, compile_node
from ._fail import Fail, decode_error, encode_error
from ._json import JsonNode, compile_json_node
from ._types import MAX_DEPTH, AlgebraicType, Typespace, describe

__all__ = [
    "Codec",
    "JsonCodec",
    "compile",
    "compile_json",
    "decode",
    "encode",
    "from_json",
    "to_json",
]

Buffer = bytes | bytearray | memoryview


def _decoder(dec: Callable[[Any, int], tuple[Any, int]]) -> tuple[Any, Any]:
    def decode_from(data: Buffer, offset: int = 0, path: str | None = None) -> tuple[Any, int]:
        if type(data) is memoryview and data.format != "B":
            data = data.cast("B")
        try:
            return dec(data, offset)
        except Exception as exc:
            raise _decode_failure(exc, path, data, offset) from None

    def decode(data: Buffer, path: str | None = None) -> Any:
        if type(data) is memoryview and data.format != "B":
            data = data.cast("B")
        try:
            value, end = dec(data, 0)
        except Exception as exc:
            raise _decode_failure(exc, path, data, 0) from None
        if end != len(data):
            where = f"{path}: " if path else ""
            raise DecodeError(
                f"{where}{len(data) - end} trailing bytes after the value "
                f"(it ends at byte {end} of {len(data)})"
            )
        return value

    return decode, decode_from


def _decode_failure(exc: Exception, path: str | None, data: Any, offset: int) -> DecodeError:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return DecodeError(
            f"{path + ': ' if path else ''}expected bytes, bytearray or memoryview to decode, "
            f"got {type(data).__name__}"
        )
    return decode_error(exc, path, data, offset)


class Codec:
    """BSATN (and SATS-JSON) codec compiled for one type; get one with :func:`compile`.

    * ``encode(value, path=None) -> bytes``
    * ``encode_into(buf: bytearray, value, path=None)`` appends the encoding to ``buf``
    * ``decode(data, path=None) -> value``: the whole buffer must be one value
    * ``decode_from(data, offset=0, path=None) -> (value, new_offset)``
    * ``to_json(value, path=None)`` / ``from_json(obj, path=None)``: typed SATS-JSON

    ``path`` labels the root in error messages (``args[1]: expected u32 ...``).
    These are plain function attributes, so a call costs no method binding.
    """

    __slots__ = (
        "__weakref__",
        "_json",
        "decode",
        "decode_from",
        "encode",
        "encode_into",
        "size",
        "type",
        "typespace",
    )

    type: AlgebraicType
    typespace: Typespace | None
    encode: Callable[..., bytes]
    encode_into: Callable[..., None]
    decode: Callable[..., Any]
    decode_from: Callable[..., tuple[Any, int]]
    #: The encoded size in bytes if every value of the type has the same size, else ``None``.
    size: int | None

    def __init__(self, ty: AlgebraicType, typespace: Typespace | None, node: Node) -> None:
        self.type = ty
        self.typespace = typespace
        self.size = node.size
        self._json: JsonCodec | None = None
        enc = node.enc

        def encode(value: Any, path: str | None = None) -> bytes:
            try:
                return enc(value)
            except Exception as exc:
                raise encode_error(exc, path) from None

        def encode_into(buf: bytearray, value: Any, path: str | None = None) -> None:
            try:
                buf += enc(value)
            except Exception as exc:
                raise encode_error(exc, path) from None

        self.encode = encode
        self.encode_into = encode_into
        self.decode, self.decode_from = _decoder(node.dec)

    @property
    def json(self) -> JsonCodec:
        """The SATS-JSON converters of the same type (compiled on first use)."""
        if self._json is None:
            self._json = compile_json(self.type, self.typespace)
        return self._json

    def to_json(self, value: Any, path: str | None = None) -> Any:
        return self.json.to_json(value, path)

    def from_json(self, obj: Any, path: str | None = None) -> Any:
        return self.json.from_json(obj, path)

    def __repr__(self) -> str:
        return f"<sats.Codec for {describe(self.type)}>"


class JsonCodec:
    """SATS-JSON converters compiled for one type; get one with :func:`compile_json`.

    * ``to_json(value, path=None)``: the Python value as the server writes it (plain JSON data)
    * ``from_json(obj, path=None)``: parsed JSON (any accepted form) to the Python value
    """

    __slots__ = ("__weakref__", "from_json", "to_json", "type", "typespace")

    type: AlgebraicType
    typespace: Typespace | None
    to_json: Callable[..., Any]
    from_json: Callable[..., Any]

    def __init__(self, ty: AlgebraicType, typespace: Typespace | None, node: JsonNode) -> None:
        self.type = ty
        self.typespace = typespace
        to, frm = node.to, node.frm

        def to_json(value: Any, path: str | None = None) -> Any:
            try:
                return to(value)
            except Exception as exc:
                raise encode_error(exc, path) from None

        def from_json(obj: Any, path: str | None = None) -> Any:
            try:
                return frm(obj)
            except Exception as exc:
                raise _json_decode_error(exc, path) from None

        self.to_json = to_json
        self.from_json = from_json

    def __repr__(self) -> str:
        return f"<sats.JsonCodec for {describe(self.type)}>"


def _json_decode_error(exc: Exception, path: str | None) -> DecodeError:
    error = encode_error(exc, path)  # same rendering; re-raised as a DecodeError
    decoded = DecodeError(*error.args)
    decoded.__cause__ = exc.__cause__ if isinstance(exc, Fail) else exc
    return decoded


#: Compiled codecs by (type, typespace). Types hash by structure (frozen attrs with a cached
#: hash), so equal types built separately share one codec. Bounded: cleared when it overflows.
_CACHE_LIMIT: Final = 4096
_Key = tuple[AlgebraicType, Typespace | None]
_codecs: dict[_Key, Codec] = {}
_json_codecs: dict[_Key, JsonCodec] = {}
_lock = threading.Lock()
_C = TypeVar("_C", Codec, JsonCodec)


def compile(ty: AlgebraicType, typespace: Typespace | None = None) -> Codec:
    """The compiled :class:`Codec` of ``ty``; refs resolve in ``typespace``. Cached."""
    key = (ty, typespace)
    codec = _lookup(_codecs, key)
    if codec is None:
        codec = _remember(_codecs, key, Codec(ty, typespace, compile_node(ty, typespace)))
    return codec


def compile_json(ty: AlgebraicType, typespace: Typespace | None = None) -> JsonCodec:
    """The compiled SATS-JSON converters of ``ty``; refs resolve in ``typespace``. Cached."""
    key = (ty, typespace)
    codec = _lookup(_json_codecs, key)
    if codec is None:
        codec = _remember(
            _json_codecs, key, JsonCodec(ty, typespace, compile_json_node(ty, typespace))
        )
    return codec


def _lookup(cache: dict[_Key, _C], key: _Key) -> _C | None:
    """The cached codec of ``key``. Types hash recursively, so hashing one nested thousands of
    levels deep (built by hand: a schema cannot, see ``MAX_DEPTH``) overflows the stack."""
    try:
        return cache.get(key)
    except RecursionError:
        raise SatsError(
            f"the type nests far deeper than {MAX_DEPTH} levels (sats.MAX_DEPTH)"
        ) from None


def _remember(cache: dict[_Key, _C], key: _Key, codec: _C) -> _C:
    """Cache ``codec`` under ``key`` (the first one stored wins a race between threads)."""
    with _lock:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        return cache.setdefault(key, codec)


def encode(
    ty: AlgebraicType, value: Any, typespace: Typespace | None = None, *, path: str | None = None
) -> bytes:
    """``value`` as BSATN bytes of type ``ty``. Raises :class:`EncodeError` naming the path."""
    return compile(ty, typespace).encode(value, path)


def decode(
    ty: AlgebraicType, data: Buffer, typespace: Typespace | None = None, *, path: str | None = None
) -> Any:
    """The value of type ``ty`` that is the whole of ``data``. Raises :class:`DecodeError`
    for truncated input, trailing bytes and invalid content, naming the path."""
    return compile(ty, typespace).decode(data, path)


def to_json(
    ty: AlgebraicType, value: Any, typespace: Typespace | None = None, *, path: str | None = None
) -> Any:
    """``value`` in typed SATS-JSON, as the server writes it (plain data for ``json.dumps``)."""
    return compile_json(ty, typespace).to_json(value, path)


def from_json(
    ty: AlgebraicType, obj: Any, typespace: Typespace | None = None, *, path: str | None = None
) -> Any:
    """The Python value of parsed SATS-JSON ``obj`` (typed or permissive input forms)."""
    return compile_json(ty, typespace).from_json(obj, path)
