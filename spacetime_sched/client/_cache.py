"""The client cache (``conn.db``): the rows that the connection's live subscriptions match.

Per table, a :class:`~._tables.TableCache` (``conn.db.person`` or ``conn.db["person"]``) holds
the union of the rows of every live subscription. A row shared by two subscriptions is stored
once and counted twice, so it stays until both drop it. Rows are keyed by their BSATN bytes,
which identify a row exactly, and are typed (:mod:`._rows`).

The cache changes in three ways only, all driven by the connection's receive task:
:meth:`ClientCache.apply_transaction` (the decoded changes of every query set of one
transaction; :meth:`ClientCache.apply` is one query set), :meth:`ClientCache.release` (a query
set ended: its rows go) and :meth:`ClientCache.reconcile` (after a reconnect: the rows every
re-applied query set matches now replace what the cache held, and only the difference is
reported). It remembers which rows each query set holds, so releasing one never needs the
subscription object. Each of them changes all the rows first and runs the row callbacks after
(:class:`~._tables.ChangeBatch`), so a callback sees the whole change; an exception in a
callback is logged and does not stop the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._errors import UnknownNameError
from ._results import RowChanges
from ._rows import RowModel, TableRows
from ._tables import ChangeBatch, TableCache, TableReconciliation, close_matches

__all__ = [
    "ClientCache",
    "DecodedChanges",
    "PrimaryKeyOf",
    "Reconciliation",
    "TableCache",
    "TableReconciliation",
]

#: For a table name, how to read a decoded row's primary key, or ``None`` (no primary key).
PrimaryKeyOf = Callable[[str], "Callable[[Any], Any] | None"]


@attrs.frozen
class DecodedChanges:
    """One table's changes in one query set: the decoded rows and, in the same order, the
    BSATN bytes of each inserted and deleted row (the cache's keys) and of each event row."""

    changes: RowChanges
    insert_keys: Sequence[bytes] = ()
    delete_keys: Sequence[bytes] = ()
    event_keys: Sequence[bytes] = ()


@attrs.frozen
class Reconciliation:
    """The result of :meth:`ClientCache.reconcile`: the cache's changes by table, and for each
    query set the rows it no longer matches (``deletes``) and newly matches (``inserts``), as
    the :class:`RowChanges` its subscription publishes."""

    tables: tuple[TableReconciliation, ...]
    query_sets: Mapping[int, tuple[RowChanges, ...]]


class ClientCache:
    """``conn.db``: one :class:`TableCache` per table, created on first use.

    ``conn.db.person`` and ``conn.db["person"]`` are the same table. Once the module schema is
    known, a name it does not have raises :class:`~spacetime_sched.UnknownNameError` listing
    close matches; before, any name gives a (still empty) table.
    """

    def __init__(self, model: Callable[[], RowModel | None] = lambda: None) -> None:
        self._model = model
        self._tables: dict[str, TableCache] = {}
        # query set id -> table -> row bytes -> how many times that query set holds the row
        self._members: dict[int, dict[str, dict[bytes, int]]] = {}

    def __repr__(self) -> str:
        return f"<ClientCache tables={sorted(self._tables)}>"

    def table(self, name: str) -> TableCache:
        cache = self._tables.get(name)
        if cache is None:
            model = self._model()
            if model is not None:
                tables = [table.name for table in model.schema.tables]
                views = [view.name for view in model.schema.views]
                if name not in tables and name not in views:
                    raise UnknownNameError(
                        f"the module has no table {name!r}" + close_matches(name, tables),
                        name=name,
                        obj=self,
                    )
            cache = self._holding(name)
        return cache

    def _holding(self, name: str) -> TableCache:
        """The table rows arrived for (made without a name check: the server sent them)."""
        cache = self._tables.get(name)
        if cache is None:
            cache = self._tables[name] = TableCache(name, lambda: self._rows_of(name))
        return cache

    __getitem__ = table

    def __getattr__(self, name: str) -> TableCache:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.table(name)

    def __iter__(self) -> Iterator[TableCache]:
        """The tables used so far (every table of the schema, once it is known)."""
        model = self._model()
        if model is not None:
            for table in model.schema.tables:
                self.table(table.name)
        return iter(list(self._tables.values()))

    def cached(self, name: str) -> Mapping[bytes, list[Any]] | None:
        """Table ``name``'s cached rows by their BSATN bytes (``[row, reference count]``), so
        the receive path need not decode a deleted row again; ``None`` for a table not used."""
        table = self._tables.get(name)
        return None if table is None else table._rows

    def _rows_of(self, name: str) -> TableRows | None:
        model = self._model()
        if model is None:
            return None
        try:
            return model.table(name)
        except LookupError:
            return None

    async def apply(self, query_set_id: int, changes: Sequence[DecodedChanges]) -> None:
        """Apply one query set's changes (see :meth:`apply_transaction`)."""
        await self.apply_transaction([(query_set_id, changes)])

    async def apply_transaction(
        self, updates: Sequence[tuple[int, Sequence[DecodedChanges]]]
    ) -> None:
        """Apply one transaction: every query set's changes (deletes first, then inserts, table
        by table: a row updated in place arrives as a delete and an insert), then run the
        callbacks."""
        batch = ChangeBatch()
        for query_set_id, changes in updates:
            self.stage(query_set_id, changes, batch)
        self._stage_events(updates, batch)
        await batch.run_callbacks()

    def stage(
        self, query_set_id: int, changes: Sequence[DecodedChanges], batch: ChangeBatch
    ) -> None:
        """Apply one query set's changes to the rows now; note the callbacks due in ``batch``."""
        members = self._members.setdefault(query_set_id, {})
        for decoded in changes:
            name = decoded.changes.table
            if not decoded.insert_keys and not decoded.delete_keys:
                continue
            table = self._holding(name)
            held = members.setdefault(name, {})
            if decoded.delete_keys:
                gone: list[bytes] = []
                for key in decoded.delete_keys:
                    count = held.get(key, 0)
                    if count:  # only rows this query set holds
                        if count == 1:
                            del held[key]
                        else:
                            held[key] = count - 1
                        gone.append(key)
                table._remove_keys(gone, batch)
            if decoded.insert_keys:
                for key in decoded.insert_keys:
                    held[key] = held.get(key, 0) + 1
                table._add_rows(decoded.insert_keys, decoded.changes.inserts, batch)

    def _stage_events(
        self, updates: Sequence[tuple[int, Sequence[DecodedChanges]]], batch: ChangeBatch
    ) -> None:
        """Event rows are never cached; each goes to ``on_insert`` once even when several
        subscriptions match it (the most copies of one row any query set carried)."""
        events: dict[str, tuple[Counter[bytes], dict[bytes, Any]]] = {}
        for _query_set_id, changes in updates:
            for decoded in changes:
                if not decoded.event_keys:
                    continue
                seen = Counter(decoded.event_keys)
                counts, rows = events.setdefault(decoded.changes.table, (Counter(), {}))
                counts |= seen
                for key, row in zip(decoded.event_keys, decoded.changes.events, strict=True):
                    rows.setdefault(key, row)
                events[decoded.changes.table] = (counts, rows)
        for name, (counts, rows) in events.items():
            batch.events(
                self._holding(name), [rows[key] for key, n in counts.items() for _ in range(n)]
            )

    async def release(self, query_set_id: int) -> None:
        """The query set ended: drop every row it held (rows other query sets hold stay)."""
        members = self._members.pop(query_set_id, None)
        if members is None:
            return
        batch = ChangeBatch()
        for name, held in members.items():
            keys = [key for key, count in held.items() for _ in range(count)]
            self._holding(name)._remove_keys(keys, batch)
        await batch.run_callbacks()

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
            report = self._holding(name)._replace(
                counts.get(name, {}), new_rows.get(name, {}), primary_key(name)
            )
            if report.deleted or report.inserted or report.updated:
                reports.append(report)
        self._members = members
        for report in reports:
            await self._holding(report.table)._announce(report)
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
                cached = self._holding(name)._rows
                deletes = [cached[key][0] for key in old if key not in new and key in cached]
                inserts = [new_rows[name][key] for key in new if key not in old]
                if deletes or inserts:
                    changes.append(RowChanges(name, inserts, deletes))
            if changes:
                differences[query_set_id] = tuple(changes)
        return differences
