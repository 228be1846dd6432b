"""The client cache (``conn.db``): the rows that the connection's live subscriptions match.

Per table, a :class:`TableCache` holds the union of the rows of every live subscription. A row
shared by two subscriptions is stored once and counted twice, so it stays until both drop it.
Rows are keyed by their BSATN bytes, which identify a row exactly. ``on_insert`` /
``on_delete`` callbacks fire when a row enters or leaves the cache.

The cache changes in three ways only, all driven by the connection's receive task:
:meth:`ClientCache.apply` (one query set's decoded changes), :meth:`ClientCache.release`
(a query set ended: its rows go) and :meth:`ClientCache.reconcile` (after a reconnect: the
rows every re-applied query set matches now replace what the cache held, and only the
difference is reported). It remembers which rows each query set holds, so releasing one never
needs the subscription object.

Callbacks may be plain functions or coroutine functions; an exception in one is logged and does
not break the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._callbacks import call_callback_logged
from ._results import RowChanges

__all__ = [
    "ClientCache",
    "DecodedChanges",
    "PrimaryKeyOf",
    "Reconciliation",
    "TableCache",
    "TableReconciliation",
]

log = logging.getLogger("spacetime_sched.client")

RowCallback = Callable[[Any], Any]
UpdateCallback = Callable[[Any, Any], Any]
#: For a table name, how to read a decoded row's primary key, or ``None`` (no primary key).
PrimaryKeyOf = Callable[[str], "Callable[[Any], Any] | None"]


@attrs.frozen
class DecodedChanges:
    """One table's changes in one query set: the decoded rows and, in the same order, the
    BSATN bytes of each inserted and deleted row (the cache's keys)."""

    changes: RowChanges
    insert_keys: Sequence[bytes] = ()
    delete_keys: Sequence[bytes] = ()


@attrs.frozen
class TableReconciliation:
    """What :meth:`ClientCache.reconcile` changed in one table: rows that left the cache, rows
    that entered it, and ``(old, new)`` pairs of rows whose primary key stayed while the rest
    changed (tables with a primary key only; elsewhere a change is a delete and an insert)."""

    table: str
    deleted: tuple[Any, ...] = ()
    inserted: tuple[Any, ...] = ()
    updated: tuple[tuple[Any, Any], ...] = ()


@attrs.frozen
class Reconciliation:
    """The result of :meth:`ClientCache.reconcile`: the cache's changes by table, and for each
    query set the rows it no longer matches (``deletes``) and newly matches (``inserts``), as
    the :class:`RowChanges` its subscription publishes."""

    tables: tuple[TableReconciliation, ...]
    query_sets: Mapping[int, tuple[RowChanges, ...]]


class TableCache:
    """The rows of one table that the connection's subscriptions currently match."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._rows: dict[bytes, list[Any]] = {}  # row bytes -> [decoded row, reference count]
        self._on_insert: list[RowCallback] = []
        self._on_delete: list[RowCallback] = []
        self._on_update: list[UpdateCallback] = []

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

    def on_update(self, callback: UpdateCallback) -> UpdateCallback:
        """Call ``callback(old, new)`` when a row of a table with a primary key is replaced by
        one with the same key (usable as a decorator)."""
        self._on_update.append(callback)
        return callback

    def remove_on_update(self, callback: UpdateCallback) -> None:
        self._on_update.remove(callback)

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

    def _replace(
        self,
        counts: Mapping[bytes, int],
        rows: Mapping[bytes, Any],
        primary_key: Callable[[Any], Any] | None,
    ) -> TableReconciliation:
        """Hold exactly the rows ``counts`` names (reference counts; decoded rows in ``rows``)
        and say what changed; no callback runs here (see :meth:`_announce`)."""
        cached = self._rows
        deleted = [cached.pop(key)[0] for key in [k for k in cached if k not in counts]]
        inserted: list[Any] = []
        for key, count in counts.items():
            entry = cached.get(key)
            if entry is None:
                row = rows[key]
                cached[key] = [row, count]
                inserted.append(row)
            else:
                entry[1] = count
        updated: list[tuple[Any, Any]] = []
        if primary_key is not None and deleted and inserted:
            old_by_key = {primary_key(row): row for row in deleted}
            still_new: list[Any] = []
            for row in inserted:
                old = old_by_key.pop(primary_key(row), None)
                if old is None:
                    still_new.append(row)
                else:
                    updated.append((old, row))
            deleted, inserted = list(old_by_key.values()), still_new
        return TableReconciliation(self.name, tuple(deleted), tuple(inserted), tuple(updated))

    async def _announce(self, report: TableReconciliation) -> None:
        for row in report.deleted:
            for callback in self._on_delete:
                await call_callback_logged(
                    callback, row, logger=log, what=f"delete from {self.name}"
                )
        for row in report.inserted:
            for callback in self._on_insert:
                await call_callback_logged(
                    callback, row, logger=log, what=f"insert into {self.name}"
                )
        for old, new in report.updated:
            for update_callback in self._on_update:
                await call_callback_logged(
                    update_callback, old, new, logger=log, what=f"update of {self.name}"
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

    async def reconcile(
        self, fresh: Mapping[int, Sequence[DecodedChanges]], primary_key: PrimaryKeyOf
    ) -> Reconciliation:
        """Make the cache hold exactly ``fresh`` (query set id -> the rows it matches now, as
        inserts), and report the difference: after a reconnect the server re-sends every row
        of every re-applied query set, and only what changed while we were away must reach
        the callbacks. Query sets the cache knew but ``fresh`` lacks (refused now) are dropped.

        The whole new state is in place before any callback runs. Then, table by table:
        ``on_delete`` for rows gone, ``on_insert`` for rows new, and ``on_update(old, new)``
        for a row gone and a row new with the same primary key (``primary_key(table)`` reads
        it; ``None`` for a table without one). A row present before and after, byte for
        byte, fires nothing.
        """
        members: dict[int, dict[str, dict[bytes, int]]] = {}
        new_rows: dict[str, dict[bytes, Any]] = {}
        for query_set_id, changes in fresh.items():
            held_by_table = members.setdefault(query_set_id, {})
            for decoded in changes:
                name = decoded.changes.table
                held = held_by_table.setdefault(name, {})
                rows = new_rows.setdefault(name, {})
                for key, row in zip(decoded.insert_keys, decoded.changes.inserts, strict=True):
                    held[key] = held.get(key, 0) + 1
                    rows.setdefault(key, row)
        query_sets = self._query_set_differences(self._members, members, new_rows)
        counts: dict[str, dict[bytes, int]] = {}
        for held_by_table in members.values():
            for name, held in held_by_table.items():
                table_counts = counts.setdefault(name, {})
                for key, count in held.items():
                    table_counts[key] = table_counts.get(key, 0) + count
        reports: list[TableReconciliation] = []
        for name in [*self._tables, *(n for n in counts if n not in self._tables)]:
            report = self.table(name)._replace(
                counts.get(name, {}), new_rows.get(name, {}), primary_key(name)
            )
            if report.deleted or report.inserted or report.updated:
                reports.append(report)
        self._members = members
        for report in reports:
            await self.table(report.table)._announce(report)
        return Reconciliation(tuple(reports), query_sets)

    def _query_set_differences(
        self,
        before: Mapping[int, Mapping[str, Mapping[bytes, int]]],
        after: Mapping[int, Mapping[str, Mapping[bytes, int]]],
        new_rows: Mapping[str, Mapping[bytes, Any]],
    ) -> dict[int, tuple[RowChanges, ...]]:
        differences: dict[int, tuple[RowChanges, ...]] = {}
        for query_set_id in after:
            old_tables = before.get(query_set_id, {})
            new_tables = after[query_set_id]
            changes: list[RowChanges] = []
            for name in [*old_tables, *(n for n in new_tables if n not in old_tables)]:
                old = old_tables.get(name, {})
                new = new_tables.get(name, {})
                cached = self.table(name)._rows
                deletes = [cached[key][0] for key in old if key not in new and key in cached]
                inserts = [new_rows[name][key] for key in new if key not in old]
                if deletes or inserts:
                    changes.append(RowChanges(name, inserts, deletes))
            if changes:
                differences[query_set_id] = tuple(changes)
        return differences
