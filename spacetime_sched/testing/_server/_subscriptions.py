"""Subscribers: each WebSocket's query sets and outbox, and what a transaction sends them.

A query set matches the rows any of its queries matches. After a commit, each subscriber gets,
per affected query set, the changed rows its queries match: inserts (new rows and the new
version of updated ones) and deletes (removed rows and old versions), as v2
``PersistentTable`` updates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..._identity import ConnectionId, Identity
from ...protocol import (
    BsatnRowList,
    PersistentTable,
    QueryRows,
    QuerySetUpdate,
    ServerMessage,
    SingleTableRows,
    TableUpdate,
)
from ._database import Database, StoredRow, TableChange
from ._sql import Query

__all__ = ["ClientConnection", "matching_rows", "query_rows", "updates_for"]


#: How many messages may wait for one client by default (``CLIENT_CHANNEL_CAPACITY`` of
#: ``crates/core/src/client/client_connection.rs``).
DEFAULT_OUTBOX_MESSAGES = 16 * 1024
#: The close code for a client that fell too far behind (``CloseCode::Again``).
TRY_AGAIN_LATER = 1013


class ClientConnection:
    """One WebSocket client of the host: its query sets and its queue of outgoing messages.

    The queue is bounded (``max_outbox``): a client that lets that many messages pile up
    (it reads too slowly, or not at all) is kicked, as a real server kicks it: the queue is
    dropped, :attr:`close_reason` says why and ``on_kick`` (set by the WebSocket session)
    ends its session. Other clients are not affected.
    """

    def __init__(
        self,
        identity: Identity,
        connection_id: ConnectionId,
        *,
        max_outbox: int = DEFAULT_OUTBOX_MESSAGES,
    ) -> None:
        self.identity = identity
        self.connection_id = connection_id
        self.query_sets: dict[int, tuple[Query, ...]] = {}
        self.max_outbox = max_outbox
        send, receive = anyio.create_memory_object_stream[ServerMessage](max_outbox)
        self._send: MemoryObjectSendStream[ServerMessage] = send
        #: The messages to write to the socket, in order.
        self.outbox: MemoryObjectReceiveStream[ServerMessage] = receive
        #: ``(code, reason)`` once the server decided to close this client.
        self.close_reason: tuple[int, str] | None = None
        #: Called (once) when the client is kicked; the session cancels itself there.
        self.on_kick: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<ClientConnection {self.identity.to_hex()[:8]}… {self.connection_id}>"

    def send(self, message: ServerMessage) -> None:
        # A closed outbox means the socket is gone; its disconnect is on the way.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            try:
                self._send.send_nowait(message)
            except anyio.WouldBlock:
                self.kick(
                    TRY_AGAIN_LATER,
                    f"too slow: {self.max_outbox} messages were waiting for this client",
                )

    def kick(self, code: int, reason: str) -> None:
        """Drop the queue and end the session with close ``code`` and ``reason``."""
        if self.close_reason is None:
            self.close_reason = (code, reason)
        self._send.close()
        self.outbox.close()  # the last receiver: anyio drops the queued messages
        on_kick, self.on_kick = self.on_kick, None
        if on_kick is not None:
            on_kick()

    def close(self) -> None:
        self._send.close()


def tables_of(queries: Iterable[Query]) -> dict[str, list[Query]]:
    """The queries grouped by the table they read."""
    grouped: dict[str, list[Query]] = {}
    for query in queries:
        grouped.setdefault(query.table.name, []).append(query)
    return grouped


def matching_rows(
    database: Database, queries: Iterable[Query], sender: Identity | None
) -> dict[str, list[StoredRow]]:
    """The rows the queries match, by table (each row once, in insertion order)."""
    result: dict[str, list[StoredRow]] = {}
    for name, table_queries in tables_of(queries).items():
        store = database.stores[name]
        result[name] = [
            row
            for row in store.rows.values()
            if any(query.matches(row.value, sender) for query in table_queries)
        ]
    return result


def query_rows(database: Database, queries: Iterable[Query], sender: Identity | None) -> QueryRows:
    """The rows the queries match, as the ``QueryRows`` of SubscribeApplied and one-off queries."""
    return QueryRows(
        SingleTableRows(name, BsatnRowList.from_row_bytes(row.data for row in rows))
        for name, rows in matching_rows(database, queries, sender).items()
    )


def updates_for(
    connection: ClientConnection, by_table: dict[str, TableChange]
) -> list[QuerySetUpdate]:
    """What one transaction changed in each of the connection's query sets (maybe nothing)."""
    updates = []
    for qsid, queries in connection.query_sets.items():
        tables = []
        for name, table_queries in tables_of(queries).items():
            change = by_table.get(name)
            if change is None:
                continue

            def matched(row: StoredRow | None, qs: list[Query] = table_queries) -> bool:
                return row is not None and any(
                    q.matches(row.value, connection.identity) for q in qs
                )

            inserts = [a.data for _, a in change.rows.values() if a is not None and matched(a)]
            deletes = [b.data for b, _ in change.rows.values() if b is not None and matched(b)]
            if inserts or deletes:
                rows = PersistentTable(
                    BsatnRowList.from_row_bytes(inserts), BsatnRowList.from_row_bytes(deletes)
                )
                tables.append(TableUpdate(name, [rows]))
        if tables:
            updates.append(QuerySetUpdate(qsid, tables))
    return updates
