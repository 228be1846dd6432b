"""Support for the typed bindings ``spacetime-sched generate`` writes (docs/cli.md).

A generated package holds the module's row, struct and enum classes and two thin facades over a
:class:`~spacetime_sched.client.DbConnection`: ``reducers`` (one ``async`` method per reducer,
with the exact parameter types) and ``db`` (one :class:`TableHandle` per table). The generic
classes here give those facades their types; they add no behaviour of their own: every call
goes to the runtime ``conn.db`` and ``conn.reducers``.

The rows they return are the connection's own rows: on import, the generated package registers
its classes with the row model (:func:`~spacetime_sched.client.register_row_classes`), so a row
the connection decodes *is* an instance of the generated class; nothing is converted or copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast

from .client import CallbackHandle, TableCache, UniqueIndex

__all__ = ["TableHandle", "UniqueColumn"]

_R = TypeVar("_R")
_K = TypeVar("_K")


class UniqueColumn(Generic[_K, _R]):
    """The lookup of one unique column: ``db.user.email.find("a@b") -> User | None``."""

    __slots__ = ("_index",)

    def __init__(self, index: UniqueIndex) -> None:
        self._index = index

    def __repr__(self) -> str:
        return repr(self._index)

    def find(self, value: _K) -> _R | None:
        """The cached row whose column equals ``value``, or ``None``."""
        return cast("_R | None", self._index.find(value))


class TableHandle(Generic[_R]):
    """One table of the cache, typed by its row class ``R`` (generated subclasses add ``find``
    with the primary key's type, the unique columns and ``on_update`` where the table has a
    primary key)."""

    __slots__ = ("_table",)

    def __init__(self, table: TableCache) -> None:
        self._table = table

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._table!r}>"

    @property
    def cache(self) -> TableCache:
        """The runtime table this handle reads."""
        return self._table

    def __len__(self) -> int:
        return len(self._table)

    def count(self) -> int:
        """How many rows are cached."""
        return self._table.count()

    def __iter__(self) -> Iterator[_R]:
        return cast("Iterator[_R]", iter(self._table))

    def rows(self) -> list[_R]:
        """The cached rows."""
        return cast("list[_R]", self._table.rows())

    def on_insert(self, callback: Callable[[_R], object]) -> CallbackHandle:
        """Call ``callback(row)`` (plain or ``async``) when a row enters the cache."""
        return self._table.on_insert(callback)

    def on_delete(self, callback: Callable[[_R], object]) -> CallbackHandle:
        """Call ``callback(row)`` (plain or ``async``) when a row leaves the cache."""
        return self._table.on_delete(callback)

    def _find(self, key: Any) -> _R | None:
        return cast("_R | None", self._table.find(key))

    def _on_update(self, callback: Callable[[_R, _R], object]) -> CallbackHandle:
        return self._table.on_update(callback)

    def _unique(self, column: str) -> UniqueIndex:
        return self._table.column(column)
