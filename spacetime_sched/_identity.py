"""SpacetimeDB's two client identifiers: :class:`Identity` (256 bits) and :class:`ConnectionId`
(128 bits).

Both are small immutable wrappers around an unsigned int. On the wire (BSATN) they are that int
in little-endian bytes; for people they are *big-endian* hex, which is what the SpacetimeDB CLI,
the dashboard and the SDKs print::

    >>> ident = Identity.from_hex("c200" + "00" * 30)
    >>> ident.to_hex()[:8]
    'c2000000'
    >>> ident.to_bytes()[-2:]           # the wire bytes are reversed
    b'\\x00\\xc2'

Identities issued by a SpacetimeDB server start with ``c200``. The all-zero ConnectionId is
reserved and means "no connection".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import ClassVar, Final, TypeVar

import attrs

__all__ = ["ConnectionId", "Identity"]

_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def _parse_hex(text: object, digits: int, what: str) -> int:
    """Parse exactly ``digits`` hex digits, with or without a ``0x`` prefix."""
    if not isinstance(text, str):
        raise TypeError(f"{what}.from_hex: expected str, got {type(text).__name__} {text!r}")
    body = text[2:] if text[:2] in ("0x", "0X") else text
    if len(body) != digits or not _HEX_DIGITS.issuperset(body):
        raise ValueError(
            f"{what}.from_hex: expected {digits} hex digits (optionally prefixed by 0x), "
            f"got {text!r}"
        )
    return int(body, 16)


def _check_value(what: str, bits: int, value: object) -> int:
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{what}: expected int, got {type(value).__name__} {value!r}")
        value = int(value)
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{what}: {value} is outside the u{bits} range 0..2**{bits}-1")
    return value


def _short(hex_text: str) -> str:
    return f"{hex_text[:8]}…{hex_text[-8:]}"


_Id = TypeVar("_Id", bound="_WideUInt")


class _WideUInt:
    """What Identity and ConnectionId share: an unsigned int of ``_WIDTH`` bytes, read and written
    as little-endian wire bytes, big-endian bytes or big-endian hex.

    Subclasses are frozen slotted attrs classes with one field ``value``; they set ``_WIDTH`` and
    :func:`_finish_wide_uint` fills in the rest once attrs has built them.
    """

    __slots__ = ()
    _WIDTH: ClassVar[int]
    _HEX_SPEC: ClassVar[str]  # format spec of the hex form, e.g. "064x"
    # The slot's setter: it bypasses the frozen guard without object.__setattr__'s cost, which
    # matters because decoders build one instance per decoded value.
    _set_value: ClassVar[Callable[[object, int], None]]
    value: int

    def __init__(self, value: int) -> None:
        cls = type(self)
        cls._set_value(self, _check_value(cls.__name__, cls._WIDTH * 8, value))

    @classmethod
    def _unchecked(cls: type[_Id], value: int) -> _Id:
        """Trusted fast constructor for decoders that know ``value`` is an in-range int."""
        self = _new(cls)
        cls._set_value(self, value)
        return self

    @classmethod
    def from_hex(cls: type[_Id], text: str) -> _Id:
        """Parse ``2 * width`` hex digits, big-endian, with or without ``0x`` (either case)."""
        return cls._unchecked(_parse_hex(text, cls._WIDTH * 2, cls.__name__))

    @classmethod
    def from_bytes(cls: type[_Id], data: bytes | bytearray | memoryview) -> _Id:
        """Read the little-endian bytes used on the wire (BSATN)."""
        return cls._unchecked(int.from_bytes(_exact_len(data, cls._WIDTH, cls.__name__), "little"))

    @classmethod
    def from_be_bytes(cls: type[_Id], data: bytes | bytearray | memoryview) -> _Id:
        """Read big-endian bytes (the byte order of the hex form)."""
        return cls._unchecked(int.from_bytes(_exact_len(data, cls._WIDTH, cls.__name__), "big"))

    def to_hex(self) -> str:
        """``2 * width`` lowercase hex digits, big-endian, no prefix."""
        return format(self.value, self._HEX_SPEC)

    def to_bytes(self) -> bytes:
        """The little-endian bytes used on the wire (BSATN)."""
        return self.value.to_bytes(self._WIDTH, "little")

    def to_be_bytes(self) -> bytes:
        """Big-endian bytes (the byte order of the hex form)."""
        return self.value.to_bytes(self._WIDTH, "big")

    def is_zero(self) -> bool:
        return self.value == 0

    def __int__(self) -> int:
        return self.value

    def __str__(self) -> str:
        return self.to_hex()


@attrs.frozen(slots=True, init=False, repr=False, order=True)
class Identity(_WideUInt):
    """A SpacetimeDB identity: an unsigned 256-bit int, shown as 64 big-endian hex digits.

    ``Identity(n)`` takes the int; :meth:`from_hex` takes the text form (``0x`` optional).
    ``str(identity)`` is the 64-digit hex, ``int(identity)`` the int; :meth:`to_bytes` gives the
    32 little-endian wire bytes.
    """

    _WIDTH: ClassVar[int] = 32
    value: int

    @classmethod
    def zero(cls) -> Identity:
        """The all-zero identity (used as "no identity" by some messages)."""
        return _IDENTITY_ZERO

    def __repr__(self) -> str:
        return f"Identity({_short(self.to_hex())})"


@attrs.frozen(slots=True, init=False, repr=False, order=True)
class ConnectionId(_WideUInt):
    """One connection of a client: an unsigned 128-bit int, shown as 32 big-endian hex digits.

    Clients pick a fresh random one per connection (:meth:`random`); zero means "none".
    :meth:`to_bytes` gives the 16 little-endian wire bytes.
    """

    _WIDTH: ClassVar[int] = 16
    value: int

    @classmethod
    def zero(cls) -> ConnectionId:
        """The reserved all-zero connection id ("no connection")."""
        return _CONNECTION_ZERO

    @classmethod
    def random(cls) -> ConnectionId:
        """A fresh, cryptographically random, non-zero connection id."""
        while True:
            value = secrets.randbits(128)
            if value:
                return cls._unchecked(value)

    def __repr__(self) -> str:
        return f"ConnectionId({self.to_hex()})"


def _exact_len(data: bytes | bytearray | memoryview, size: int, what: str) -> bytes:
    raw = bytes(data)
    if len(raw) != size:
        raise ValueError(f"{what}.from_bytes: expected {size} bytes, got {len(raw)}")
    return raw


_new = object.__new__


def _finish_wide_uint(cls: type[_WideUInt]) -> None:
    """Derive a built subclass's class variables from its ``_WIDTH``."""
    cls._set_value = cls.__dict__["value"].__set__
    cls._HEX_SPEC = f"0{cls._WIDTH * 2}x"


_finish_wide_uint(Identity)
_finish_wide_uint(ConnectionId)
_IDENTITY_ZERO: Final = Identity._unchecked(0)
_CONNECTION_ZERO: Final = ConnectionId._unchecked(0)
