"""The client cache (``conn.db``): the rows that the connection's live subscriptions match.

Per table, a :class:`~._tables.TableCache` (``conn.db.person`` or ``conn.db["person"]``) holds
the union of the rows of every live subscription. A row shared by two subscriptions is stored
once and counted twice, so it stays until both drop it. Rows are keyed by their BSATN bytes,
which identify a row exactly, and are typed (:mod:`._rows`).

The cache changes in two ways only, both driven by the connection's receive task:
:meth:`ClientCache.apply_transaction` (the decoded changes of every query set of one
transaction; :meth:`ClientCache.apply` is one query set) and :meth:`ClientCache.release` (a
query set ended: its rows go). It remembers which rows each query set holds, so releasing one
never needs the subscription object. Each of them applies all its changes first and runs the
row callbacks after (:class:`~._tables.ChangeBatch`), so a callback sees the whole
transaction; an exception in a callback is logged and does not stop the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._errors import UnknownNameError
from ._results import RowChanges
from ._rows import RowModel, TableRows
from ._tables import ChangeBatch, TableCache, close_matches

__all__ = ["ClientCache", "DecodedChanges", "TableCache"]


@attrs.frozen
class DecodedChanges:
    """One table's changes in one query set: the decoded rows and, in the same order, the
    BSATN bytes of each inserted and deleted row (the cache's keys) and of each event row."""

    changes: RowChanges
    insert_keys: Sequence[bytes] = ()
    delete_keys: Sequence[bytes] = ()
    event_keys: Sequence[bytes] = ()


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
