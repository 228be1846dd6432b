"""The client cache (``conn.db``): the rows that the connection's live subscriptions match.

Per table, a :class:`TableCache` holds the union of the rows of every live subscription. A row
shared by two subscriptions is stored once and counted twice, so it stays until both drop it.
Rows are keyed by their BSATN bytes, which identify a row exactly. ``on_insert`` /
``on_delete`` callbacks fire when a row enters or leaves the cache.

The cache changes in two ways only, both driven by the connection's receive task:
:meth:`ClientCache.apply` (one query set's decoded changes) and :meth:`ClientCache.release`
(a query set ended: its rows go). It remembers which rows each query set holds, so releasing
one never needs the subscription object.

Callbacks may be plain functions or coroutine functions; an exception in one is logged and does
not break the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from .._callbacks import call_callback_logged
from ._results import RowChanges

__all__ = ["ClientCache", "DecodedChanges", "TableCache"]

log = logging.getLogger("spacetime_sched.client")

RowCallback = Callable[[Any], Any]


@attrs.frozen
class DecodedChanges:
    """One table's changes in one query set: the decoded rows and, in the same order, the
    BSATN bytes of each inserted and deleted row (the cache's keys)."""

    changes: RowChanges
    insert_keys: Sequence[bytes] = ()
    delete_keys: Sequence[bytes] = ()


class TableCache:
    """The rows of one table that the connection's subscriptions currently match."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._rows: dict[bytes, list[Any]] = {}  # row bytes -> [decoded row, reference count]
        self._on_insert: list[RowCallback] = []
        self._on_delete: list[RowCallback] = []

    def __repr__(self) -> str:
        return f"<TableCache {self.name!r}: {len(self._rows)} rows>"

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter([entry[0] for entry in self._rows.values()])

    def rows(self) -> list[Any]:
        return [entry[0] for entry in self._rows.values()]

    def on_insert(self, callback: RowCallback) -> RowCallback:
        """Call ``callback(row)`` whenever a row enters the cache (usable as a decorator)."""
        self._on_insert.append(callback)
        return callback

    def on_delete(self, callback: RowCallback) -> RowCallback:
        """Call ``callback(row)`` whenever a row leaves the cache (usable as a decorator)."""
        self._on_delete.append(callback)
        return callback

    def remove_on_insert(self, callback: RowCallback) -> None:
        self._on_insert.remove(callback)

    def remove_on_delete(self, callback: RowCallback) -> None:
        self._on_delete.remove(callback)

    async def _add(self, key: bytes, row: Any) -> None:
        entry = self._rows.get(key)
        if entry is not None:
            entry[1] += 1
            return
        self._rows[key] = [row, 1]
        for callback in self._on_insert:
            await call_callback_logged(callback, row, logger=log, what=f"insert into {self.name}")

    async def _remove(self, key: bytes) -> None:
        entry = self._rows.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._rows[key]
            for callback in self._on_delete:
                await call_callback_logged(
                    callback, entry[0], logger=log, what=f"delete from {self.name}"
                )


class ClientCache:
    """``conn.db``: one :class:`TableCache` per table, created on first use."""

    def __init__(self) -> None:
        self._tables: dict[str, TableCache] = {}
        # query set id -> table -> row bytes -> how many times that query set holds the row
        self._members: dict[int, dict[str, dict[bytes, int]]] = {}

    def __repr__(self) -> str:
        return f"<ClientCache tables={sorted(self._tables)}>"

    def table(self, name: str) -> TableCache:
        cache = self._tables.get(name)
        if cache is None:
            cache = self._tables[name] = TableCache(name)
        return cache

    __getitem__ = table

    async def apply(self, query_set_id: int, changes: Sequence[DecodedChanges]) -> None:
        """Apply one query set's changes: deletes first, then inserts, table by table (a row
        updated in place arrives as a delete and an insert of the same key)."""
        members = self._members.setdefault(query_set_id, {})
        for decoded in changes:
            name = decoded.changes.table
            table = self.table(name)
            held = members.setdefault(name, {})
            for key in decoded.delete_keys:
                count = held.get(key, 0)
                if count:
                    if count == 1:
                        del held[key]
                    else:
                        held[key] = count - 1
                    await table._remove(key)
            for key, row in zip(decoded.insert_keys, decoded.changes.inserts, strict=True):
                held[key] = held.get(key, 0) + 1
                await table._add(key, row)

    async def release(self, query_set_id: int) -> None:
        """The query set ended: drop every row it held (rows other query sets hold stay)."""
        members = self._members.pop(query_set_id, None)
        if members is None:
            return
        for name, held in members.items():
            table = self.table(name)
            for key, count in held.items():
                for _ in range(count):
                    await table._remove(key)
