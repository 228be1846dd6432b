"""Subscriptions and the client cache.

A :class:`SubscriptionHandle` is one query set: the rows its queries matched when it was
applied (``handle.rows``), then every later change, delivered in order to ``on_update``
callbacks and to ``async for update in handle``. The :class:`ClientCache` (``conn.db``) holds,
per table, the union of the rows of all live subscriptions; a row shared by two subscriptions is
stored once and counted twice, so it stays until both drop it. Rows are keyed by their BSATN
bytes, which identify a row exactly. ``on_insert`` / ``on_delete`` fire when a row enters or
leaves the cache.

Callbacks may be plain functions or coroutine functions. They run in the connection's receive
task, in message order: keep them short (a slow callback delays every later message). An
exception in a callback is logged and does not break the connection.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._results import RowChanges

if TYPE_CHECKING:
    from ._connection import DbConnection

__all__ = ["ClientCache", "SubscriptionHandle", "SubscriptionUpdate", "TableCache"]

log = logging.getLogger("spacetime_sched.client")

RowCallback = Callable[[Any], Any]


async def invoke(callback: Callable[..., Any], *args: Any) -> None:
    """Call a sync or async callback; log (never raise) what it raises."""
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("callback %r raised", callback)


@attrs.frozen
class SubscriptionUpdate:
    """The changes one transaction made to the rows of one subscription."""

    tables: tuple[RowChanges, ...]

    def for_table(self, table: str) -> RowChanges:
        """The changes to ``table`` (merged if the server split them), possibly empty."""
        merged = RowChanges(table, [], [], [])
        for changes in self.tables:
            if changes.table == table:
                merged.inserts.extend(changes.inserts)
                merged.deletes.extend(changes.deletes)
                merged.events.extend(changes.events)
        return merged


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
            await invoke(callback, row)

    async def _remove(self, key: bytes) -> None:
        entry = self._rows.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._rows[key]
            for callback in self._on_delete:
                await invoke(callback, entry[0])


class ClientCache:
    """``conn.db``: one :class:`TableCache` per table, created on first use."""

    def __init__(self) -> None:
        self._tables: dict[str, TableCache] = {}

    def __repr__(self) -> str:
        return f"<ClientCache tables={sorted(self._tables)}>"

    def table(self, name: str) -> TableCache:
        cache = self._tables.get(name)
        if cache is None:
            cache = self._tables[name] = TableCache(name)
        return cache

    __getitem__ = table


class SubscriptionHandle:
    """One subscribed query set (see the module docs)."""

    def __init__(
        self,
        connection: DbConnection,
        query_set_id: int,
        queries: Sequence[str],
        *,
        buffer_updates: bool,
    ) -> None:
        self._connection = connection
        self.query_set_id = query_set_id
        self.queries = tuple(queries)
        #: Rows matched when the subscription was applied, decoded, by table name.
        self.rows: dict[str, list[Any]] = {}
        #: The server's error text if the subscription failed.
        self.error: str | None = None
        self._active = False
        self._ended = False
        self._members: dict[str, dict[bytes, int]] = {}
        self._callbacks: list[Callable[[SubscriptionUpdate], Any]] = []
        self._send: MemoryObjectSendStream[SubscriptionUpdate] | None = None
        self._receive: MemoryObjectReceiveStream[SubscriptionUpdate] | None = None
        if buffer_updates:
            self._send, self._receive = anyio.create_memory_object_stream[SubscriptionUpdate](
                math.inf
            )

    def __repr__(self) -> str:
        state = "active" if self._active else "ended" if self._ended else "pending"
        return f"<SubscriptionHandle #{self.query_set_id} {state} {list(self.queries)!r}>"

    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def is_ended(self) -> bool:
        return self._ended

    def on_update(
        self, callback: Callable[[SubscriptionUpdate], Any]
    ) -> Callable[[SubscriptionUpdate], Any]:
        """Call ``callback(update)`` for every transaction that changes these rows."""
        self._callbacks.append(callback)
        return callback

    async def unsubscribe(self, *, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Drop this query set; its rows leave the cache and iteration ends."""
        if self._ended:
            return
        await self._connection._unsubscribe(self, timeout)

    def __aiter__(self) -> SubscriptionHandle:
        if self._receive is None:
            raise TypeError("this subscription was made with buffer_updates=False")
        return self

    async def __anext__(self) -> SubscriptionUpdate:
        assert self._receive is not None
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    # --- driven by the connection's receive task ---------------------------------------------

    async def _apply(
        self, cache: ClientCache, changes: list[tuple[RowChanges, list[bytes], list[bytes]]]
    ) -> None:
        """Apply decoded changes (with each row's bytes) to the cache, then notify."""
        for table_changes, insert_keys, delete_keys in changes:
            table = cache.table(table_changes.table)
            members = self._members.setdefault(table_changes.table, {})
            for key in delete_keys:
                count = members.get(key, 0)
                if count:
                    if count == 1:
                        del members[key]
                    else:
                        members[key] = count - 1
                    await table._remove(key)
            for key, row in zip(insert_keys, table_changes.inserts, strict=True):
                members[key] = members.get(key, 0) + 1
                await table._add(key, row)
        if not self._active:
            return
        update = SubscriptionUpdate(tuple(entry[0] for entry in changes))
        for callback in self._callbacks:
            await invoke(callback, update)
        if self._send is not None:
            self._send.send_nowait(update)

    async def _end(self, cache: ClientCache, error: str | None) -> None:
        """The subscription is over: release its rows and finish iteration."""
        if self._ended:
            return
        self._active = False
        self._ended = True
        self.error = error
        for table_name, members in self._members.items():
            table = cache.table(table_name)
            for key, count in members.items():
                for _ in range(count):
                    await table._remove(key)
        self._members.clear()
        if self._send is not None:
            self._send.close()
