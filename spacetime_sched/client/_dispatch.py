"""The receive side of a connection: read frames, decode them, and route each message.

:class:`Dispatcher` runs in the connection's receive task. For each server message it does one
of three things: resolve the waiting call (:class:`~._calls.PendingRequests`), apply row changes
to the client cache (:class:`~._cache.ClientCache`), or move a subscription handle to its next
state through the handle's own methods. It owns the table of live subscriptions; the connection
adds a handle before it sends ``Subscribe`` and asks the dispatcher to drop it.

Nothing here sends: the dispatcher never needs the socket's write side, the builder or the
connection object, which is what keeps the client's modules free of import cycles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import anyio

from .._errors import ConnectionClosedError, ProtocolError, QueryError
from ..protocol import (
    EventTable,
    InitialConnection,
    ModuleSchema,
    OneOffQueryResult,
    PersistentTable,
    PlainReducerResult,
    ProcedureResult,
    QuerySetUpdate,
    ReducerOk,
    ReducerResult,
    ServerMessage,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    UnsubscribeApplied,
    decode_server_frame_plain,
)
from ._cache import ClientCache, DecodedChanges, Reconciliation
from ._calls import PendingRequests
from ._results import RowChanges
from ._rows import row_model
from ._subscription import SubscriptionHandle
from ._websocket import WebSocket

__all__ = ["Dispatcher", "Incoming"]

#: What a frame decodes to here: server messages, with a reducer's answer that changed none of
#: our rows left as a PlainReducerResult (its caller makes the result; no objects wait for it).
Incoming = ServerMessage | PlainReducerResult

log = logging.getLogger("spacetime_sched.client")


class Dispatcher:
    """Routes decoded server messages (see the module docs)."""

    def __init__(
        self,
        pending: PendingRequests,
        cache: ClientCache,
        schema: Callable[[], ModuleSchema | None],
        *,
        max_message_size: int,
    ) -> None:
        self._pending = pending
        self._cache = cache
        self._schema = schema
        self._max_message_size = max_message_size
        self._subscriptions: dict[int, SubscriptionHandle] = {}

    # --- the subscription table ---------------------------------------------------------------

    def add_subscription(self, handle: SubscriptionHandle) -> None:
        """Route messages for ``handle.query_set_id`` to ``handle`` (before ``Subscribe``)."""
        self._subscriptions[handle.query_set_id] = handle

    def forget_subscription(self, query_set_id: int) -> None:
        """Stop routing to a query set whose ``Subscribe`` never went out or was cancelled."""
        self._subscriptions.pop(query_set_id, None)

    def active_subscriptions(self) -> dict[int, SubscriptionHandle]:
        """The applied, not yet ended subscriptions, by query set id (what a reconnect
        re-applies; one still waiting for its first answer is its caller's to retry)."""
        return {qsid: h for qsid, h in self._subscriptions.items() if h.is_active}

    async def end_subscription(
        self,
        handle: SubscriptionHandle,
        error: str | None,
        failure: BaseException | None = None,
    ) -> None:
        """``handle`` is over: stop routing to it, release its rows, finish its iteration;
        with a ``failure``, run its error callbacks."""
        self._subscriptions.pop(handle.query_set_id, None)
        await self._cache.release(handle.query_set_id)
        handle.finish(error)
        if failure is not None:
            await handle.fail(failure)

    async def end_all_subscriptions(self, error: str, failure: BaseException | None = None) -> None:
        for handle in list(self._subscriptions.values()):
            await self.end_subscription(handle, error, failure)

    # --- reading --------------------------------------------------------------------------------

    def decode(self, ws: WebSocket, frame: bytes) -> list[Incoming]:
        return decode_server_frame_plain(frame, batched=ws.batched, max_size=self._max_message_size)

    async def receive_loop(self, ws: WebSocket, closing: Callable[[], bool]) -> None:
        """Handle frames until the socket closes; a close we asked for (``closing()``) ends
        quietly, any other raises :class:`~spacetime_sched.ConnectionClosedError`."""
        while True:
            try:
                frame = await ws.receive()
            except ConnectionClosedError:
                if closing():
                    return
                raise
            await self.handle(self.decode(ws, frame))

    async def handle(self, messages: list[Incoming]) -> None:
        handlers = self._handlers
        for count, message in enumerate(messages, 1):
            await handlers[type(message)](self, message)
            if not count % 256:  # a big v3 frame must not starve the other tasks
                await anyio.lowlevel.checkpoint()

    # --- after a reconnect ----------------------------------------------------------------------

    async def resync(
        self,
        ws: WebSocket,
        messages: list[Incoming],
        handles: Mapping[int, SubscriptionHandle],
    ) -> tuple[Reconciliation, list[Incoming]]:
        """Read the answers to the ``Subscribe`` messages just re-sent for ``handles`` (on a
        new session, before anything else may use it), then reconcile the cache with them in
        one step (:meth:`ClientCache.reconcile`), publish each subscription's difference, and
        end the subscriptions the server now refuses (their error callbacks run).

        ``messages`` are those that came in the same frame as ``InitialConnection``. Any other
        message read meanwhile (a ``TransactionUpdate`` for a query set already applied) is
        held back and returned, in order, to be handled after the reconciliation, which is
        the state it applies to.
        """
        fresh: dict[int, list[DecodedChanges]] = {}
        rows: dict[int, dict[str, list[Any]]] = {}
        refused: dict[int, str] = {}
        held_back: list[Incoming] = []
        waiting = set(handles)
        queue = list(messages)
        while waiting:
            if not queue:
                queue = self.decode(ws, await ws.receive())
                continue
            message = queue.pop(0)
            if isinstance(message, SubscribeApplied) and message.query_set_id.id in waiting:
                query_set_id = message.query_set_id.id
                waiting.discard(query_set_id)
                fresh[query_set_id], rows[query_set_id] = self._initial_rows(message)
            elif isinstance(message, SubscriptionError) and message.query_set_id.id in waiting:
                waiting.discard(message.query_set_id.id)
                refused[message.query_set_id.id] = message.error
            else:
                held_back.append(message)
        held_back.extend(queue)
        # A subscription dropped meanwhile (unsubscribe while reconnecting) keeps no rows.
        fresh = {qsid: rows for qsid, rows in fresh.items() if not handles[qsid].is_ended}
        reconciliation = await self._cache.reconcile(fresh, self._primary_key)
        for query_set_id, handle in handles.items():
            if handle.is_ended:
                continue
            if query_set_id in refused:
                error = refused[query_set_id]
                failure = QueryError(
                    f"subscription {list(handle.queries)!r} was refused after reconnecting: {error}"
                )
                log.warning("%s", failure)
                await self.end_subscription(handle, error, failure)
            else:
                handle.reapplied(rows[query_set_id])
                changes = reconciliation.query_sets.get(query_set_id)
                if changes:
                    await handle.publish(changes)
        return reconciliation, held_back

    def _initial_rows(
        self, message: SubscribeApplied
    ) -> tuple[list[DecodedChanges], dict[str, list[Any]]]:
        changes: list[DecodedChanges] = []
        rows: dict[str, list[Any]] = {}
        for single in message.rows.tables:
            keys, decoded = self.decode_rows(single.table, single.rows)
            changes.append(DecodedChanges(RowChanges(single.table, decoded, []), keys))
            rows.setdefault(single.table, []).extend(decoded)
        return changes, rows

    def _primary_key(self, table: str) -> Callable[[Any], Any] | None:
        """How to read the primary key of a decoded row of ``table`` (``None``: it has none,
        or the schema does not know the table)."""
        schema = self._schema()
        if schema is None:
            return None
        try:
            column = schema.table(table).primary_key_column
        except LookupError:
            return None
        if column is None:
            return None

        def key(row: Any) -> Any:
            return row[column]  # a typed row reads a column as a dict does

        return key

    # --- message handlers (run in the receive task) -------------------------------------------

    async def _on_reducer_result(self, message: ReducerResult) -> None:
        outcome = message.result
        if isinstance(outcome, ReducerOk):
            await self._apply_transaction(outcome.transaction_update)
        self._resolve(message.request_id, message)

    async def _on_answer(
        self,
        message: ProcedureResult | OneOffQueryResult | UnsubscribeApplied | PlainReducerResult,
    ) -> None:
        self._resolve(message.request_id, message)

    async def _on_subscribe_applied(self, message: SubscribeApplied) -> None:
        handle = self._subscriptions.get(message.query_set_id.id)
        if handle is not None:
            changes, rows = self._initial_rows(message)
            await self._cache.apply(handle.query_set_id, changes)
            handle.applied(rows)
        self._resolve(message.request_id, message)

    async def _on_subscription_error(self, message: SubscriptionError) -> None:
        handle = self._subscriptions.get(message.query_set_id.id)
        if handle is not None:
            failure = QueryError(f"subscription {list(handle.queries)!r} failed: {message.error}")
            await self.end_subscription(handle, message.error, failure)
        if message.request_id is not None:
            self._resolve(message.request_id, message)
        elif handle is not None:
            log.warning("subscription %r failed: %s", handle.queries, message.error)

    async def _on_transaction_update(self, message: TransactionUpdate) -> None:
        await self._apply_transaction(message)

    async def _on_unexpected(self, message: ServerMessage) -> None:
        raise ProtocolError(f"unexpected {type(message).__name__} after InitialConnection")

    _handlers: ClassVar[dict[type[Any], Callable[[Dispatcher, Any], Any]]] = {
        ReducerResult: _on_reducer_result,
        PlainReducerResult: _on_answer,
        ProcedureResult: _on_answer,
        OneOffQueryResult: _on_answer,
        UnsubscribeApplied: _on_answer,
        SubscribeApplied: _on_subscribe_applied,
        SubscriptionError: _on_subscription_error,
        TransactionUpdate: _on_transaction_update,
        InitialConnection: _on_unexpected,
    }

    def _resolve(self, request_id: int, message: Incoming) -> None:
        if not self._pending.resolve(request_id, message):
            log.debug("no caller waits for request %d any more (%s)", request_id, message)

    async def _apply_transaction(self, update: TransactionUpdate) -> None:
        # Atomic: the whole transaction goes into the cache before any callback runs.
        applied: list[tuple[SubscriptionHandle, list[DecodedChanges]]] = []
        for query_set in update.query_sets:
            handle = self._subscriptions.get(query_set.query_set_id.id)
            if handle is not None:
                applied.append((handle, self._decode_query_set(query_set)))
        if not applied:
            return
        await self._cache.apply_transaction(
            [(handle.query_set_id, changes) for handle, changes in applied]
        )
        for handle, changes in applied:
            await handle.publish([decoded.changes for decoded in changes])

    def _decode_query_set(self, query_set: QuerySetUpdate) -> list[DecodedChanges]:
        changes: list[DecodedChanges] = []
        for table in query_set.tables:
            for rows in table.rows:
                if isinstance(rows, PersistentTable):
                    insert_keys, inserts = self.decode_rows(table.table_name, rows.inserts)
                    delete_keys, deletes = self.decode_rows(
                        table.table_name, rows.deletes, self._cache.cached(table.table_name)
                    )
                    changes.append(
                        DecodedChanges(
                            RowChanges(table.table_name, inserts, deletes), insert_keys, delete_keys
                        )
                    )
                elif isinstance(rows, EventTable):
                    event_keys, events = self.decode_rows(table.table_name, rows.events)
                    changes.append(
                        DecodedChanges(
                            RowChanges(table.table_name, [], [], events), event_keys=event_keys
                        )
                    )
        return changes

    def decode_rows(
        self, table: str, rows: Any, cached: Mapping[bytes, list[Any]] | None = None
    ) -> tuple[list[bytes], list[Any]]:
        """The rows' BSATN bytes and the rows decoded into the table's row class (the bytes
        themselves when the schema is not known or lacks the table, e.g. a view). A row found
        in ``cached`` (the cache's rows by their bytes: a deleted row is one the cache holds)
        is taken from there instead of being decoded again."""
        keys = rows.rows_bytes()
        decode = self._row_decoder(table)
        if decode is None:
            return keys, list(keys)
        if not cached:
            return keys, [decode(key) for key in keys]
        found = cached.get
        decoded: list[Any] = []
        append = decoded.append
        for key in keys:
            entry = found(key)
            append(decode(key) if entry is None else entry[0])
        return keys, decoded

    def _row_decoder(self, table: str) -> Callable[[bytes], Any] | None:
        schema = self._schema()
        if schema is None:
            return None
        try:
            return row_model(schema).table(table).decode
        except LookupError:
            return None
