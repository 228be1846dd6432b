"""One table of the client cache: its rows, lookups by primary key and unique columns, and the
row callbacks (``conn.db.person``).

A :class:`TableCache` holds the rows of one table that the connection's live subscriptions
match, keyed by their BSATN bytes (which identify a row exactly) and reference-counted (a row
two subscriptions match stays until both drop it). Changes arrive only through a
:class:`ChangeBatch`: the cache stages one whole transaction into it (every table, every query
set), and only then :meth:`ChangeBatch.run_callbacks` calls the callbacks, so a callback always
sees the cache with the whole transaction applied.

Callbacks (plain or ``async``; an exception is logged and the others still run):

* ``on_insert(row)``: a row entered the cache, or an event table delivered a row;
* ``on_delete(row)``: a row left the cache;
* ``on_update(old, new)``: in a table with a primary key, a transaction deleted a row and
  inserted one with the same key. Such a pair is reported as an update only (not as a delete
  and an insert), as the official SDKs do.

Each registration returns a :class:`CallbackHandle`; ``handle.remove()`` unregisters it.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._callbacks import call_callbacks_logged
from .._errors import ArgumentError, UnknownNameError
from ._rows import TableRows, row_dict

__all__ = ["CallbackHandle", "ChangeBatch", "TableCache", "TableReconciliation", "UniqueIndex"]

log = logging.getLogger("spacetime_sched.client")

RowCallback = Callable[..., Any]

#: How many close matches an unknown-name error suggests.
_SUGGESTIONS = 3


def close_matches(name: str, names: list[str]) -> str:
    """``" (did you mean 'x'?)"`` or the list of names, for an unknown-name message."""
    matches = difflib.get_close_matches(name, names, n=_SUGGESTIONS)
    if matches:
        return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
    return f" (it has: {', '.join(sorted(names)) or 'none'})"


@attrs.frozen
class TableReconciliation:
    """What :meth:`ClientCache.reconcile` changed in one table: rows that left the cache, rows
    that entered it, and ``(old, new)`` pairs of rows whose primary key stayed while the rest
    changed (tables with a primary key only; elsewhere a change is a delete and an insert)."""

    table: str
    deleted: tuple[Any, ...] = ()
    inserted: tuple[Any, ...] = ()
    updated: tuple[tuple[Any, Any], ...] = ()


class CallbackHandle:
    """A registered row callback. ``remove()`` unregisters it (again is a no-op). Calling the
    handle calls the callback, so registering as a decorator keeps the function usable."""

    __slots__ = ("_callback", "_registry")

    def __init__(self, registry: list[CallbackHandle], callback: RowCallback) -> None:
        self._registry = registry
        self._callback = callback

    def __repr__(self) -> str:
        return f"<CallbackHandle {self._callback!r}>"

    def __call__(self, *args: Any) -> Any:
        return self._callback(*args)

    @property
    def callback(self) -> RowCallback:
        return self._callback

    @property
    def is_registered(self) -> bool:
        return any(entry is self for entry in self._registry)

    def remove(self) -> None:
        for index, entry in enumerate(self._registry):
            if entry is self:
                del self._registry[index]
                return


class UniqueIndex:
    """Lookup by one unique column: ``conn.db.user.email.find("a@b")``."""

    __slots__ = ("_column", "_rows", "_table")

    def __init__(self, table: TableCache, column: str, rows: dict[Any, bytes]) -> None:
        self._table = table
        self._column = column
        self._rows = rows

    def __repr__(self) -> str:
        return f"<UniqueIndex {self._table.name}.{self._column}>"

    def find(self, value: Any) -> Any | None:
        """The cached row whose column equals ``value``, or ``None``."""
        try:
            key = self._rows.get(value)
        except TypeError:  # an unhashable value matches nothing
            return None
        return None if key is None else self._table._rows[key][0]


class TableCache:
    """The cached rows of one table (see the module docs)."""

    def __init__(self, name: str, rows: Callable[[], TableRows | None]) -> None:
        self.name = name
        self._typed = rows
        self._info: TableRows | None = None
        self._rows: dict[bytes, list[Any]] = {}  # row bytes -> [row, reference count]
        self._unique: dict[str, dict[Any, bytes]] = {}  # attribute -> value -> row bytes
        self._unique_attributes: dict[str, str] = {}  # column -> attribute
        self._pk: str | None = None  # primary key attribute
        self._on_insert: list[CallbackHandle] = []
        self._on_delete: list[CallbackHandle] = []
        self._on_update: list[CallbackHandle] = []

    def __repr__(self) -> str:
        return f"<TableCache {self.name!r}: {len(self._rows)} rows>"

    # --- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def count(self) -> int:
        """How many rows are cached."""
        return len(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter([entry[0] for entry in self._rows.values()])

    def iter(self) -> Iterator[Any]:
        """The cached rows (a snapshot: changing the cache while iterating is safe)."""
        return iter(self)

    def rows(self) -> list[Any]:
        """The cached rows, typed."""
        return [entry[0] for entry in self._rows.values()]

    def rows_as_dicts(self) -> list[Any]:
        """The cached rows as dicts (the codec's form; see :func:`row_dict`)."""
        return [row_dict(entry[0]) for entry in self._rows.values()]

    @property
    def primary_key(self) -> str | None:
        """The primary key column, or ``None`` (also while the schema is not known yet)."""
        info = self._schema_info()
        return None if info is None else self._pk_column

    @property
    def row_class(self) -> type | None:
        """The class of this table's rows, once the schema is known."""
        info = self._schema_info()
        return None if info is None else info.row_class

    def find(self, key: Any) -> Any | None:
        """The cached row whose primary key is ``key``, or ``None``.

        :class:`~spacetime_sched.ArgumentError` if the table has no primary key.
        """
        self._schema_info()
        if self._pk is None:
            unique = ", ".join(self._unique_attributes)
            raise ArgumentError(
                f"table {self.name!r} has no primary key"
                + (f"; look rows up by a unique column instead ({unique})" if unique else "")
            )
        return self.column(self._pk_column or "").find(key)

    def column(self, column: str) -> UniqueIndex:
        """The lookup by unique column ``column`` (also ``conn.db.table.<column>``)."""
        info = self._schema_info()
        attribute = self._unique_attributes.get(column)
        if attribute is None and info is not None:
            attribute = {a: a for a in self._unique_attributes.values()}.get(column)
        if attribute is None:
            if info is None:
                raise UnknownNameError(
                    f"table {self.name!r}: column lookups need the module schema, which is "
                    "fetched with the first call, query or subscription (or await "
                    "conn.module_schema())",
                    name=column,
                    obj=self,
                )
            unique = ", ".join(self._unique_attributes) or "none"
            if column in info.columns:
                message = (
                    f"table {self.name!r}: column {column!r} is not unique, so it has no "
                    f"lookup (unique columns: {unique})"
                )
            else:
                message = f"table {self.name!r} has no column {column!r}" + close_matches(
                    column, list(info.columns)
                )
            raise UnknownNameError(message, name=column, obj=self)
        return UniqueIndex(self, column, self._unique[attribute])

    def __getattr__(self, name: str) -> UniqueIndex:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.column(name)

    # --- callbacks ----------------------------------------------------------------------------

    def on_insert(self, callback: RowCallback) -> CallbackHandle:
        """Call ``callback(row)`` when a row enters the cache (or an event row arrives)."""
        return self._register(self._on_insert, callback, "on_insert")

    def on_delete(self, callback: RowCallback) -> CallbackHandle:
        """Call ``callback(row)`` when a row leaves the cache."""
        return self._register(self._on_delete, callback, "on_delete")

    def on_update(self, callback: RowCallback) -> CallbackHandle:
        """Call ``callback(old, new)`` when a transaction replaces the row with a primary key
        value by another with the same key (tables with a primary key only)."""
        info = self._schema_info()
        if info is not None and self._pk is None:
            raise ArgumentError(
                f"table {self.name!r}: on_update needs a primary key, and it has none "
                "(use on_insert and on_delete)"
            )
        return self._register(self._on_update, callback, "on_update")

    def remove_on_insert(self, callback: RowCallback | CallbackHandle) -> None:
        _remove(self._on_insert, callback)

    def remove_on_delete(self, callback: RowCallback | CallbackHandle) -> None:
        _remove(self._on_delete, callback)

    def remove_on_update(self, callback: RowCallback | CallbackHandle) -> None:
        _remove(self._on_update, callback)

    def _register(
        self, registry: list[CallbackHandle], callback: RowCallback, what: str
    ) -> CallbackHandle:
        if not callable(callback):
            raise ArgumentError(
                f"table {self.name!r}: {what}: expected a function, got {callback!r}"
            )
        handle = CallbackHandle(registry, callback)
        registry.append(handle)
        return handle

    @property
    def _has_callbacks(self) -> bool:
        return bool(self._on_insert or self._on_delete or self._on_update)

    # --- schema ---------------------------------------------------------------------------------

    @property
    def _pk_column(self) -> str | None:
        if self._pk is None or self._info is None:
            return None
        return self._info.columns[self._info.attributes.index(self._pk)]

    def _schema_info(self) -> TableRows | None:
        info = self._info
        if info is None:
            info = self._typed()
            if info is not None:
                self._set_info(info)
        return info

    def _set_info(self, info: TableRows) -> None:
        """The schema became known: learn the key columns and index the rows already here
        (none, unless rows arrived before the schema did)."""
        self._info = info
        unique = info.unique_columns
        self._unique_attributes = {info.columns[i]: info.attributes[i] for i in unique}
        self._unique = {attribute: {} for attribute in self._unique_attributes.values()}
        self._pk = info.attributes[info.primary_key] if info.primary_key is not None else None
        for key, (row, _count) in self._rows.items():
            if not isinstance(row, bytes):
                for attribute, index in self._unique.items():
                    index[getattr(row, attribute)] = key

    # --- changes (only through a ChangeBatch) ----------------------------------------------

    def _add_rows(self, keys: Sequence[bytes], rows: Sequence[Any], batch: ChangeBatch) -> None:
        """One more reference to each row; a row new to the cache is indexed and noted in
        ``batch`` for the callbacks. (The hot loop of the cache: locals only.)"""
        if self._info is None:
            self._schema_info()  # the keys must be known before rows arrive
        cached = self._rows
        unique = list(self._unique.items())
        added = batch.inserts_of(self) if self._on_insert or self._on_update else None
        for key, row in zip(keys, rows, strict=True):
            entry = cached.get(key)
            if entry is not None:
                entry[1] += 1
                continue
            cached[key] = [row, 1]
            if unique and not isinstance(row, bytes):  # a raw row (no schema) has no columns
                for attribute, index in unique:
                    index[getattr(row, attribute)] = key
            if added is not None:
                added.append(row)

    def _remove_keys(self, keys: Sequence[bytes], batch: ChangeBatch) -> None:
        """One reference less to each row; a row whose last reference goes leaves the cache
        and is noted in ``batch``."""
        if self._info is None:
            self._schema_info()
        cached = self._rows
        unique = list(self._unique.items())
        removed = batch.deletes_of(self) if self._on_delete or self._on_update else None
        for key in keys:
            entry = cached.get(key)
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1]:
                continue
            del cached[key]
            row = entry[0]
            if unique and not isinstance(row, bytes):
                for attribute, index in unique:
                    index.pop(getattr(row, attribute), None)
            if removed is not None:
                removed.append(row)

    def _replace(
        self,
        counts: Mapping[bytes, int],
        rows: Mapping[bytes, Any],
        primary_key: Callable[[Any], Any] | None,
    ) -> TableReconciliation:
        """Hold exactly the rows ``counts`` names (reference counts; decoded rows in ``rows``)
        and say what changed (after a reconnect); no callback runs here (see
        :meth:`_announce`)."""
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
        if self._unique:  # rebuilt: cheaper to reason about than patched, and rare
            for index in self._unique.values():
                index.clear()
            for key, (row, _count) in cached.items():
                if not isinstance(row, bytes):
                    for attribute, index in self._unique.items():
                        index[getattr(row, attribute)] = key
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
        """The callbacks of a reconciliation: deletes, inserts, then updates."""
        await _run(self._on_delete, list(report.deleted), f"delete from {self.name}")
        await _run(self._on_insert, list(report.inserted), f"insert into {self.name}")
        await _run(self._on_update, list(report.updated), f"update of {self.name}", pair=True)


def _remove(registry: list[CallbackHandle], callback: RowCallback | CallbackHandle) -> None:
    for index, entry in enumerate(registry):
        if entry is callback or entry.callback is callback:
            del registry[index]
            return
    raise ValueError(f"{callback!r} is not registered")


class ChangeBatch:
    """The row changes of one transaction, staged table by table; the callbacks run once the
    whole transaction is in the cache (:meth:`run_callbacks`)."""

    __slots__ = ("_changes",)

    def __init__(self) -> None:
        # table -> [inserted rows, deleted rows, event rows]
        self._changes: dict[TableCache, tuple[list[Any], list[Any], list[Any]]] = {}

    def _entry(self, table: TableCache) -> tuple[list[Any], list[Any], list[Any]]:
        entry = self._changes.get(table)
        if entry is None:
            entry = self._changes[table] = ([], [], [])
        return entry

    def inserts_of(self, table: TableCache) -> list[Any]:
        """The list to append ``table``'s rows that entered the cache to."""
        return self._entry(table)[0]

    def deletes_of(self, table: TableCache) -> list[Any]:
        """The list to append ``table``'s rows that left the cache to."""
        return self._entry(table)[1]

    def events(self, table: TableCache, rows: list[Any]) -> None:
        if table._on_insert:
            self._entry(table)[2].extend(rows)

    async def run_callbacks(self) -> None:
        """Call every callback the batch's changes call for, table by table: updates, then
        deletes, then inserts (each in arrival order). The callbacks registered when the
        batch starts are the ones called for all of its rows."""
        for table, (inserts, deletes, events) in self._changes.items():
            name = table.name
            pk = table._pk
            if pk is not None and inserts and deletes:
                inserts, deletes, updates = _pair_updates(pk, inserts, deletes)
                await _run(table._on_update, updates, f"update of {name}", pair=True)
            await _run(table._on_delete, deletes, f"delete from {name}")
            await _run(table._on_insert, inserts + events, f"insert into {name}")


async def _run(
    registry: list[CallbackHandle], rows: list[Any], what: str, *, pair: bool = False
) -> None:
    if rows and registry:
        await call_callbacks_logged(
            [handle.callback for handle in registry],
            rows if pair else [(row,) for row in rows],
            logger=log,
            what=what,
        )


def _pair_updates(
    pk: str, inserts: list[Any], deletes: list[Any]
) -> tuple[list[Any], list[Any], list[tuple[Any, Any]]]:
    """Split into (inserts, deletes, updates): a deleted and an inserted row with the same
    primary key are one update."""
    deleted_by_key: dict[Any, Any] = {}
    for row in deletes:
        if not isinstance(row, bytes):  # a raw row (no schema then) has no key
            deleted_by_key[getattr(row, pk)] = row
    if not deleted_by_key:
        return inserts, deletes, []
    updates: list[tuple[Any, Any]] = []
    remaining: list[Any] = []
    for row in inserts:
        old = None if isinstance(row, bytes) else deleted_by_key.pop(getattr(row, pk), None)
        if old is None:
            remaining.append(row)
        else:
            updates.append((old, row))
    if not updates:
        return inserts, deletes, []
    paired = {id(old) for old, _new in updates}
    return remaining, [row for row in deletes if id(row) not in paired], updates
