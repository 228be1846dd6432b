"""``BsatnRowList``: how every binary protocol version ships a batch of table rows.

A row list is one flat ``rows_data`` buffer holding the BSATN rows back to back, plus a
``size_hint`` saying where each row starts:

* ``RowSizeHint.FixedSize(n)`` (SATS tag 0): every row is exactly ``n`` bytes, so there are
  ``len(rows_data) // n`` rows. The server uses it when the row type has a fixed layout.
* ``RowSizeHint.RowOffsets(offsets)`` (tag 1): the start offset of each row; a row ends where the
  next one starts, the last one at the end of the buffer. An empty list is ``RowOffsets(())``.

Rows are decoded lazily: a client that only cares about reducer results never pays for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from .._errors import DecodeError, ProtocolError

if TYPE_CHECKING:
    from ..sats import Codec

__all__ = ["BsatnRowList", "FixedSize", "RowOffsets", "RowSizeHint"]

#: ``FixedSize`` carries a u16, so longer fixed rows must use offsets.
_MAX_FIXED_SIZE = 0xFFFF


class _RowCodec(Protocol):
    def encode(self, value: Any, /) -> bytes: ...

    def decode(self, data: bytes, /) -> Any: ...


class RowSizeHint:
    """Where the rows in :attr:`BsatnRowList.rows_data` start (a SATS sum).

    ``match`` it positionally::

        match hint:
            case RowSizeHint.FixedSize(size): ...
            case RowSizeHint.RowOffsets(offsets): ...
    """

    __slots__ = ()

    FixedSize: ClassVar[type[FixedSize]]
    RowOffsets: ClassVar[type[RowOffsets]]


@attrs.frozen
class FixedSize(RowSizeHint):
    """Every row is ``size`` bytes long (SATS tag 0, payload u16)."""

    size: int

    TAG: ClassVar[int] = 0


def _offsets_tuple(offsets: Iterable[int]) -> tuple[int, ...]:
    return offsets if type(offsets) is tuple else tuple(offsets)


@attrs.frozen
class RowOffsets(RowSizeHint):
    """The start offset of each row (SATS tag 1, payload ``Array<u64>``)."""

    offsets: tuple[int, ...] = attrs.field(converter=_offsets_tuple)

    TAG: ClassVar[int] = 1


RowSizeHint.FixedSize = FixedSize
RowSizeHint.RowOffsets = RowOffsets

_NO_OFFSETS = RowOffsets(())


def _codec_for(codec_or_type: Any, typespace: Any) -> _RowCodec:
    """Accept a compiled codec (anything with ``encode``/``decode``) or a SATS type."""
    if hasattr(codec_or_type, "encode") and hasattr(codec_or_type, "decode"):
        return codec_or_type  # type: ignore[no-any-return]
    from .. import sats

    return sats.compile(codec_or_type, typespace)


@attrs.frozen
class BsatnRowList:
    """A batch of BSATN-encoded rows of one table, as carried in protocol messages."""

    size_hint: RowSizeHint
    rows_data: bytes

    EMPTY: ClassVar[BsatnRowList]

    @classmethod
    def from_row_bytes(cls, rows: Iterable[bytes]) -> BsatnRowList:
        """Pack already encoded rows, choosing the size hint the way the server does.

        ``FixedSize(n)`` when every row is the same nonzero length ``n`` (up to 65535 bytes, the
        u16 limit), otherwise ``RowOffsets``; no rows give ``RowOffsets(())``.
        """
        rows = [bytes(row) for row in rows]
        if not rows:
            return cls.EMPTY
        size = len(rows[0])
        if 0 < size <= _MAX_FIXED_SIZE and all(len(row) == size for row in rows):
            return cls(FixedSize(size), b"".join(rows))
        offsets = []
        position = 0
        for row in rows:
            offsets.append(position)
            position += len(row)
        return cls(RowOffsets(tuple(offsets)), b"".join(rows))

    @classmethod
    def from_rows(
        cls, codec_or_type: Codec | Any, rows: Iterable[Any], *, typespace: Any = None
    ) -> BsatnRowList:
        """Encode Python row values with a row codec (or a SATS row type) and pack them."""
        codec = _codec_for(codec_or_type, typespace)
        return cls.from_row_bytes(codec.encode(row) for row in rows)

    def rows_bytes(self) -> list[bytes]:
        """Split :attr:`rows_data` into one ``bytes`` per row, checking the size hint.

        Raises :class:`~spacetime_sched.ProtocolError` when the hint does not fit the data (a
        fixed size that does not divide the length, offsets out of order or out of bounds).
        """
        data = self.rows_data
        hint = self.size_hint
        if isinstance(hint, FixedSize):
            size = hint.size
            if not data:
                return []  # FixedSize with no data is an empty list, whatever the size
            if size <= 0 or len(data) % size:
                raise ProtocolError(
                    f"BsatnRowList: FixedSize({size}) does not divide the {len(data)} bytes of "
                    "rows_data"
                )
            return [data[start : start + size] for start in range(0, len(data), size)]
        if isinstance(hint, RowOffsets):
            offsets = hint.offsets
            if not offsets:
                if data:
                    raise ProtocolError(
                        f"BsatnRowList: RowOffsets([]) but rows_data holds {len(data)} bytes"
                    )
                return []
            if offsets[0] != 0:
                raise ProtocolError(
                    f"BsatnRowList: the first row offset is {offsets[0]}, expected 0"
                )
            ends = [*offsets[1:], len(data)]
            rows = []
            for index, (start, end) in enumerate(zip(offsets, ends, strict=True)):
                if not start <= end <= len(data):
                    raise ProtocolError(
                        f"BsatnRowList: RowOffsets[{index}] = {start} is out of order or past "
                        f"the end of rows_data ({len(data)} bytes); next offset {end}"
                    )
                rows.append(data[start:end])
            return rows
        raise ProtocolError(f"BsatnRowList: unknown size hint {hint!r}")

    def decode_rows(self, codec_or_type: Codec | Any, *, typespace: Any = None) -> list[Any]:
        """Decode every row with a row codec (or a SATS row type) into Python row values."""
        codec = _codec_for(codec_or_type, typespace)
        values = []
        for index, row in enumerate(self.rows_bytes()):
            try:
                values.append(codec.decode(row))
            except DecodeError as exc:
                raise ProtocolError(f"BsatnRowList row {index}: {exc}") from exc
        return values

    def __len__(self) -> int:
        """The number of rows (validating the size hint like :meth:`rows_bytes`)."""
        hint = self.size_hint
        if isinstance(hint, FixedSize) and hint.size > 0 and len(self.rows_data) % hint.size == 0:
            return len(self.rows_data) // hint.size
        if isinstance(hint, RowOffsets) and not hint.offsets and not self.rows_data:
            return 0
        return len(self.rows_bytes())

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the encoded rows."""
        return iter(self.rows_bytes())


BsatnRowList.EMPTY = BsatnRowList(_NO_OFFSETS, b"")
