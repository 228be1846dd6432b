"""In-memory tables with primary keys, unique columns, sequences and transactions.

Reducers are plain (synchronous) Python functions, so a transaction runs from start to end
without any other task touching the tables: writes go straight to the tables and the
:class:`Transaction` keeps, per changed row, the row as it was before. Rolling back puts those
rows back; committing turns them into the net inserts and deletes that subscribers receive.

Every stored row keeps its BSATN encoding next to its value: validating a row means encoding
it, and the encoding is what goes on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from ... import sats
from ._module import Table

__all__ = ["Database", "Db", "StoredRow", "TableChange", "TableHandle", "Transaction"]


@attrs.frozen
class StoredRow:
    """A row value (a dict in column order) with its BSATN encoding."""

    value: dict[str, Any]
    data: bytes


@attrs.frozen
class TableChange:
    """The net effect of one transaction on one table.

    ``rows`` maps each changed row id to ``(before, after)``: ``(None, row)`` is an insert,
    ``(row, None)`` a delete and ``(old, new)`` an update in place.
    """

    table: Table
    rows: dict[int, tuple[StoredRow | None, StoredRow | None]]

    @property
    def inserts(self) -> list[StoredRow]:
        return [after for _, after in self.rows.values() if after is not None]

    @property
    def deletes(self) -> list[StoredRow]:
        return [before for before, _ in self.rows.values() if before is not None]


class TableStore:
    """The rows of one table, with its unique indexes and sequences."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.codec = sats.compile(table.row_type)
        self.rows: dict[int, StoredRow] = {}
        self._next_row_id = 1
        unique = ([table.primary_key] if table.primary_key else []) + [
            column for column in table.unique if column != table.primary_key
        ]
        self._column_codecs = {
            column: sats.compile(table.column_type(column)) for column in table.columns
        }
        #: For each unique column: encoded value -> row id.
        self.unique: dict[str, dict[bytes, int]] = {column: {} for column in unique}
        self.sequences: dict[str, int] = dict.fromkeys(table.auto_inc, 1)

    def key(self, column: str, value: Any) -> bytes:
        """The index key of ``value`` in ``column``: its BSATN (so any SATS value works)."""
        return self._column_codecs[column].encode(value, f"{self.table.name}.{column}")

    def row_id_by(self, column: str, value: Any) -> int | None:
        index = self.unique.get(column)
        if index is None:
            raise LookupError(
                f"table {self.table.name!r}: column {column!r} is not a primary key or unique "
                f"column (unique: {sorted(self.unique)})"
            )
        return index.get(self.key(column, value))

    def new_row_id(self) -> int:
        row_id = self._next_row_id
        self._next_row_id += 1
        return row_id

    def normalize(self, row: Mapping[str, Any]) -> StoredRow:
        """Validate ``row`` against the row type; auto_inc columns may be missing (= 0)."""
        if not isinstance(row, Mapping):
            raise TypeError(
                f"table {self.table.name!r}: a row is a dict of column values, got "
                f"{type(row).__name__} {row!r}"
            )
        unknown = set(row) - set(self.table.columns)
        if unknown:
            raise ValueError(
                f"table {self.table.name!r} has no column(s) {sorted(unknown)} "
                f"(columns: {list(self.table.columns)})"
            )
        values = dict(row)
        for column in self.table.auto_inc:
            values.setdefault(column, 0)
        missing = [column for column in self.table.columns if column not in values]
        if missing:
            raise ValueError(f"table {self.table.name!r}: the row lacks column(s) {missing}")
        data = self.codec.encode(values, self.table.name)
        return StoredRow(self.codec.decode(data), data)

    def check_unique(self, row: StoredRow, row_id: int) -> None:
        for column, index in self.unique.items():
            holder = index.get(self.key(column, row.value[column]))
            if holder is not None and holder != row_id:
                raise ValueError(
                    f"table {self.table.name!r}: a row with {column} = {row.value[column]!r} "
                    "already exists (unique constraint)"
                )

    def put(self, row_id: int, row: StoredRow) -> None:
        self.rows[row_id] = row
        for column, index in self.unique.items():
            index[self.key(column, row.value[column])] = row_id

    def remove(self, row_id: int) -> StoredRow:
        row = self.rows.pop(row_id)
        for column, index in self.unique.items():
            index.pop(self.key(column, row.value[column]), None)
        return row


class Transaction:
    """The changes of one open transaction; writes are applied immediately, undo on rollback."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._changes: dict[str, dict[int, tuple[StoredRow | None, StoredRow | None]]] = {}
        self.open = True

    def record(
        self, table: str, row_id: int, before: StoredRow | None, after: StoredRow | None
    ) -> None:
        rows = self._changes.setdefault(table, {})
        if row_id in rows:
            before = rows[row_id][0]  # keep the state from before the transaction
        rows[row_id] = (before, after)

    def pending(self) -> list[TableChange]:
        """The changes so far (the transaction stays open)."""
        stores = self._database.stores
        return [
            TableChange(stores[table].table, dict(rows)) for table, rows in self._changes.items()
        ]

    def rollback(self) -> None:
        """Put every changed row back as it was (removals first, so keys never collide)."""
        self._check_open()
        self.open = False
        for table, rows in self._changes.items():
            store = self._database.stores[table]
            for row_id in rows:
                if row_id in store.rows:
                    store.remove(row_id)
            for row_id, (before, _) in rows.items():
                if before is not None:
                    store.put(row_id, before)
        self._database.current = None

    def commit(self) -> list[TableChange]:
        """Close the transaction; return the net change of each changed table."""
        self._check_open()
        self.open = False
        self._database.current = None
        changes = []
        for table, rows in self._changes.items():
            net = {
                row_id: (before, after)
                for row_id, (before, after) in rows.items()
                if before != after
            }
            if net:
                changes.append(TableChange(self._database.stores[table].table, net))
        return changes

    def _check_open(self) -> None:
        if not self.open:
            raise RuntimeError("the transaction is already finished")


class Database:
    """All tables of a module."""

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self.stores = {name: TableStore(table) for name, table in tables.items()}
        self.current: Transaction | None = None

    def begin(self) -> Transaction:
        if self.current is not None:
            raise RuntimeError("a transaction is already open (reducers cannot nest)")
        self.current = Transaction(self)
        return self.current

    def handle(self, name: str, tx: Transaction | None = None) -> TableHandle:
        try:
            store = self.stores[name]
        except KeyError:
            raise LookupError(f"no table named {name!r} (tables: {sorted(self.stores)})") from None
        return TableHandle(store, tx)


class TableHandle:
    """One table as a reducer sees it (``ctx.db.person``); without a transaction, read-only.

    Rows are dicts in column order; each call returns fresh dicts, so changing one does not
    change the table (write it back with :meth:`update`).
    """

    def __init__(self, store: TableStore, tx: Transaction | None) -> None:
        self._store = store
        self._tx = tx

    def __repr__(self) -> str:
        return f"<table {self._store.table.name!r}: {len(self._store.rows)} rows>"

    @property
    def name(self) -> str:
        return self._store.table.name

    # --- reads ----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.iter()

    def iter(self) -> Iterator[dict[str, Any]]:
        """Every row, in insertion order."""
        for row in list(self._store.rows.values()):
            yield dict(row.value)

    def rows(self) -> list[dict[str, Any]]:
        """Every row, as a list."""
        return list(self.iter())

    def count(self) -> int:
        return len(self._store.rows)

    def __len__(self) -> int:
        return len(self._store.rows)

    def find(self, key: Any, *, by: str | None = None) -> dict[str, Any] | None:
        """The row whose primary key (or unique column ``by``) equals ``key``, else ``None``."""
        row_id = self._store.row_id_by(self._key_column(by), key)
        return None if row_id is None else dict(self._store.rows[row_id].value)

    def filter(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, **equals: Any
    ) -> list[dict[str, Any]]:
        """The rows with the given column values (``filter(label="x")``) and/or for which
        ``predicate(row)`` is true."""
        for column in equals:
            self._store.table.column_type(column)  # raises LookupError for an unknown column
        return [
            row
            for row in self.iter()
            if all(row[column] == value for column, value in equals.items())
            and (predicate is None or predicate(row))
        ]

    # --- writes ---------------------------------------------------------------------------------

    def insert(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Insert ``row`` and return it as stored (auto_inc columns given as 0 are filled in)."""
        tx = self._writable()
        store = self._store
        values = dict(row)
        for column in store.table.auto_inc:
            if values.get(column, 0) == 0:
                values[column] = store.sequences[column]
                store.sequences[column] += 1
        stored = store.normalize(values)
        row_id = store.new_row_id()
        store.check_unique(stored, row_id)
        store.put(row_id, stored)
        tx.record(store.table.name, row_id, None, stored)
        return dict(stored.value)

    def delete(self, row_or_key: Any) -> bool:
        """Delete a row given as a dict (matched by primary key, else by value) or by its
        primary key value; return whether a row was deleted."""
        tx = self._writable()
        row_id = self._locate(row_or_key)
        if row_id is None:
            return False
        before = self._store.remove(row_id)
        tx.record(self.name, row_id, before, None)
        return True

    def delete_row_id(self, row_id: int) -> bool:
        """Delete by the internal row id (the host's schedule timer uses it)."""
        tx = self._writable()
        if row_id not in self._store.rows:
            return False
        tx.record(self.name, row_id, self._store.remove(row_id), None)
        return True

    def update(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the row with the same primary key by ``row``; return it as stored."""
        tx = self._writable()
        store = self._store
        pk = self._key_column(None)
        if pk not in row:
            raise ValueError(f"table {self.name!r}: update needs the primary key column {pk!r}")
        row_id = store.row_id_by(pk, row[pk])
        if row_id is None:
            raise LookupError(f"table {self.name!r}: no row with {pk} = {row[pk]!r} to update")
        stored = store.normalize(row)
        store.check_unique(stored, row_id)
        before = store.remove(row_id)
        store.put(row_id, stored)
        tx.record(self.name, row_id, before, stored)
        return dict(stored.value)

    # --- helpers --------------------------------------------------------------------------------

    def _writable(self) -> Transaction:
        if self._tx is None or not self._tx.open:
            raise RuntimeError(
                f"table {self.name!r} is read-only here: change tables inside a reducer"
            )
        return self._tx

    def _key_column(self, by: str | None) -> str:
        if by is not None:
            return by
        if self._store.table.primary_key is None:
            raise LookupError(f"table {self.name!r} has no primary key")
        return self._store.table.primary_key

    def _locate(self, row_or_key: Any) -> int | None:
        store = self._store
        pk = store.table.primary_key
        if isinstance(row_or_key, Mapping):
            if pk is not None and pk in row_or_key:
                return store.row_id_by(pk, row_or_key[pk])
            wanted = store.normalize(row_or_key).data
            for row_id, row in store.rows.items():
                if row.data == wanted:
                    return row_id
            return None
        return store.row_id_by(self._key_column(None), row_or_key)


class Db:
    """The tables of a transaction, by name: ``ctx.db.person`` or ``ctx.db["person"]``."""

    def __init__(self, database: Database, tx: Transaction | None) -> None:
        self._database = database
        self._tx = tx

    def __getattr__(self, name: str) -> TableHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._database.handle(name, self._tx)
        except LookupError as exc:
            raise AttributeError(str(exc)) from None

    def __getitem__(self, name: str) -> TableHandle:
        return self._database.handle(name, self._tx)
