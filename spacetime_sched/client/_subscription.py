"""Subscription handles: one per subscribed query set.

A :class:`SubscriptionHandle` is one query set: the rows its queries matched when it was
applied (``handle.rows``), then every later change, delivered in order to ``on_update``
callbacks and to ``async for update in handle``.

A handle moves through three states, each change made by one of its own methods, called by the
connection's receive task: *pending* (sent, not yet applied) -> :meth:`~SubscriptionHandle.applied`
-> *active* -> :meth:`~SubscriptionHandle.finish` -> *ended*. It does not know the connection:
:meth:`~SubscriptionHandle.unsubscribe` goes through the function the connection gave it, and
the rows live in the client cache (:mod:`._cache`), not here.

Callbacks may be plain functions or coroutine functions. They run in the connection's receive
task, in message order: keep them short (a slow callback delays every later message). An
exception in a callback is logged and does not break the connection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._callbacks import call_callback_logged
from ._results import RowChanges

__all__ = ["SubscriptionHandle", "SubscriptionUpdate", "Unsubscribe"]

log = logging.getLogger("spacetime_sched.client")

#: How a handle asks its connection to drop it: ``await unsubscribe(handle, timeout)``.
Unsubscribe = Callable[["SubscriptionHandle", "float | None"], Awaitable[None]]


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


class SubscriptionHandle:
    """One subscribed query set (see the module docs)."""

    def __init__(
        self,
        query_set_id: int,
        queries: Sequence[str],
        *,
        unsubscribe: Unsubscribe,
        buffer_updates: bool,
    ) -> None:
        self.query_set_id = query_set_id
        self.queries = tuple(queries)
        #: Rows matched when the subscription was applied, decoded, by table name.
        self.rows: dict[str, list[Any]] = {}
        #: The server's error text if the subscription failed.
        self.error: str | None = None
        self._unsubscribe = unsubscribe
        self._active = False
        self._ended = False
        self._callbacks: list[Callable[[SubscriptionUpdate], Any]] = []
        self._error_callbacks: list[Callable[[BaseException], Any]] = []
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

    def on_error(self, callback: Callable[[BaseException], Any]) -> Callable[[BaseException], Any]:
        """Call ``callback(error)`` if the subscription ends with an error: the server refused
        it (at first, or when it is re-applied after a reconnect) or dropped it
        (:class:`~spacetime_sched.QueryError`), or the connection ended for good
        (:class:`~spacetime_sched.ConnectionClosedError`)."""
        self._error_callbacks.append(callback)
        return callback

    async def unsubscribe(self, *, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Drop this query set; its rows leave the cache and iteration ends."""
        if self._ended:
            return
        await self._unsubscribe(self, timeout)

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

    # --- state changes, made by the connection's receive task ---------------------------------

    def applied(self, rows: dict[str, list[Any]]) -> None:
        """The server applied the query set; ``rows`` are the rows it matched.
        (Pending -> active; called by the connection, not by user code.)"""
        if self._ended:
            return
        self.rows = rows
        self._active = True

    async def publish(self, tables: Sequence[RowChanges]) -> None:
        """Deliver one transaction's changes to callbacks and to iteration (only while
        active: changes before ``applied`` are the initial rows, already in ``rows``)."""
        if not self._active:
            return
        update = SubscriptionUpdate(tuple(tables))
        what = f"subscription #{self.query_set_id}"
        for callback in self._callbacks:
            await call_callback_logged(callback, update, logger=log, what=what)
        if self._send is not None:
            self._send.send_nowait(update)

    def reapplied(self, rows: dict[str, list[Any]]) -> None:
        """The server applied the query set again after a reconnect; ``rows`` are the rows it
        matches now (the difference is published as an update)."""
        if not self._ended:
            self.rows = rows

    async def fail(self, error: BaseException) -> None:
        """Run the error callbacks (after :meth:`finish` with the error's text)."""
        what = f"subscription #{self.query_set_id} error"
        for callback in self._error_callbacks:
            await call_callback_logged(callback, error, logger=log, what=what)

    def finish(self, error: str | None) -> None:
        """The query set is over (unsubscribed, rejected or the connection closed): iteration
        ends, and ``error`` says why when it was not an unsubscribe."""
        if self._ended:
            return
        self._active = False
        self._ended = True
        self.error = error
        if self._send is not None:
            self._send.close()
