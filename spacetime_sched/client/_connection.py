"""``DbConnection``: one live WebSocket session with a SpacetimeDB database.

A connection is always used as an async context manager (``async with builder.build() as
conn``). Entering it connects and waits for ``InitialConnection``; the connection then owns a
task group in which the receive task (and, when asked for, the scheduler) runs, so every task
it starts ends when the block ends. Leaving the block stops the scheduler, closes the socket
and fails any call still waiting with :class:`~spacetime_sched.ConnectionClosedError`.

If the server goes away first, the receive task records why, fails every pending call, calls
``on_disconnect(conn, error)`` and ends; the ``async with`` body keeps running (it is not
cancelled), and every later call raises :class:`~spacetime_sched.ConnectionClosedError`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import attrs
import httpx
from anyio.abc import TaskGroup, TaskStatus

from .._errors import (
    ClientError,
    ConnectError,
    ConnectionClosedError,
    InternalError,
    ProtocolError,
    QueryError,
    ReducerError,
    SchedulerError,
    SpacetimeSchedError,
)
from .._identity import ConnectionId, Identity
from .._time import TimeDuration
from ..protocol import (
    CallProcedure,
    CallReducer,
    ClientMessage,
    EventTable,
    InitialConnection,
    ModuleSchema,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTable,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    QueryRows,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerResult,
    ServerMessage,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
    decode_server_frame,
    encode_client_message,
)
from ._calls import PendingRequests
from ._credentials import CredentialsFile
from ._http import SpacetimeHttpClient
from ._results import ProcedureCallResult, ReducerCallResult, RowChanges
from ._subscription import ClientCache, SubscriptionHandle, TableCache, invoke
from ._transport import (
    Compression,
    Protocol,
    WebSocket,
    open_websocket,
    sole_exception,
    subscribe_url,
)

if TYPE_CHECKING:
    from ..scheduler import ReducerScheduler
    from ._builder import DbConnectionBuilder

__all__ = ["ConnectOptions", "DbConnection"]

log = logging.getLogger("spacetime_sched.client")

Callback = Callable[..., Any]

_EMPTY_UPDATE = TransactionUpdate(())

#: How long leaving the block waits for the close handshake before cutting the socket.
_CLOSE_GRACE = 2.0
#: How long leaving the block waits for a lazily started scheduler to finish running calls.
_SCHEDULER_GRACE = 10.0


@attrs.frozen(repr=False)
class ConnectOptions:
    """Everything :meth:`DbConnectionBuilder.build` collected (validated, immutable)."""

    base_url: httpx.URL
    database: str
    token: str | None
    credentials: CredentialsFile | None
    compression: Compression
    confirmed_reads: bool | None
    connect_timeout: float
    max_message_size: int
    verify: bool | ssl.SSLContext
    transport: httpx.AsyncBaseTransport | None
    auto_scheduler: bool
    max_concurrent_executions: int | None
    on_connect: tuple[Callback, ...]
    on_disconnect: tuple[Callback, ...]
    on_connect_error: tuple[Callback, ...]
    protocol: Protocol = Protocol.AUTO

    def __repr__(self) -> str:
        auth = "token=<hidden>" if self.token is not None else "anonymous"
        return f"ConnectOptions({str(self.base_url)!r}, database={self.database!r}, {auth})"

    def query_params(self) -> dict[str, str]:
        params = {"compression": self.compression.value}
        if self.confirmed_reads is not None:
            params["confirmed"] = "true" if self.confirmed_reads else "false"
        return params


class DbConnection:
    """A connection to one SpacetimeDB database, speaking ``v3.bsatn.spacetimedb`` or
    ``v2.bsatn.spacetimedb`` (the server picks; :attr:`protocol` says which).

    Make one with :meth:`builder`::

        async with (
            DbConnection.builder()
            .with_uri("http://localhost:3000")
            .with_database_name("quickstart")
            .build()
        ) as conn:
            await conn.call_reducer_async("add_person", "Alice")
    """

    def __init__(
        self,
        options: ConnectOptions,
        client: httpx.AsyncClient,
        task_group: TaskGroup,
        token: str | None,
    ) -> None:
        self._options = options
        self._client = client
        self._task_group = task_group
        self._token = token
        self._http = SpacetimeHttpClient(options.base_url, token=token, client=client)
        self._ws: WebSocket | None = None
        self._subprotocol = ""
        self._identity: Identity | None = None
        self._connection_id: ConnectionId | None = None
        self._pending = PendingRequests()
        self._schema: ModuleSchema | None = None
        self._schema_lock = anyio.Lock()
        self._subscriptions: dict[int, SubscriptionHandle] = {}
        self._next_query_set_id = 1
        self._scheduler: ReducerScheduler | None = None
        self._scheduler_done: anyio.Event | None = None
        self._closing = False
        self._closed = False
        self._close_reason: BaseException | None = None
        self._disconnect_reported = False
        self._session_done = anyio.Event()
        #: The client cache: ``conn.db["person"]`` (rows of live subscriptions).
        self.db = ClientCache()

    @classmethod
    def builder(cls) -> DbConnectionBuilder:
        """A fresh :class:`DbConnectionBuilder`."""
        from ._builder import DbConnectionBuilder

        return DbConnectionBuilder()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<DbConnection {state} {str(self._options.base_url)!r} "
            f"database={self._options.database!r} identity={self._identity}>"
        )

    # --- properties ---------------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        """Who we are on this server (from ``InitialConnection``)."""
        assert self._identity is not None
        return self._identity

    @property
    def connection_id(self) -> ConnectionId:
        assert self._connection_id is not None
        return self._connection_id

    @property
    def token(self) -> str:
        """The token to come back as the same identity. Keep it secret: it is never logged."""
        assert self._token is not None
        return self._token

    @property
    def protocol(self) -> str:
        """The negotiated WebSocket subprotocol: ``"v3.bsatn.spacetimedb"`` (several messages
        per frame) or ``"v2.bsatn.spacetimedb"`` (one)."""
        return self._subprotocol

    @property
    def database_name(self) -> str:
        return self._options.database

    @property
    def uri(self) -> str:
        return str(self._options.base_url)

    @property
    def is_active(self) -> bool:
        """True until the connection closes (either side)."""
        return not self._closed

    @property
    def close_reason(self) -> BaseException | None:
        """Why the connection closed, when the server or the network closed it."""
        return self._close_reason

    @property
    def pending_calls(self) -> int:
        """How many requests are waiting for an answer right now."""
        return len(self._pending)

    @property
    def http(self) -> SpacetimeHttpClient:
        """The HTTP API of the same server, with this connection's token."""
        return self._http

    # --- opening and closing ------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def _open(cls, options: ConnectOptions) -> AsyncIterator[DbConnection]:
        token = options.token
        if token is None and options.credentials is not None:
            token = await options.credentials.load()
        connect_error: ClientError | None = None
        body_error: Exception | None = None
        async with (
            httpx.AsyncClient(
                verify=options.verify, transport=options.transport, timeout=options.connect_timeout
            ) as client,
            anyio.create_task_group() as task_group,
        ):
            conn = cls(options, client, task_group, token)
            try:
                task_group.start_soon(conn._pending.run_timeouts, name="call timeouts")
                with anyio.fail_after(options.connect_timeout):
                    await task_group.start(conn._run_session)
            except TimeoutError:
                connect_error = ConnectError(
                    f"no InitialConnection from {options.base_url} (database "
                    f"{options.database!r}) within {options.connect_timeout} s"
                )
            except Exception as exc:
                connect_error = _as_connect_error(sole_exception(exc))
            if connect_error is not None:
                task_group.cancel_scope.cancel()
            else:
                try:
                    await conn._after_connect()
                    if options.auto_scheduler:
                        async with conn.scheduling() as scheduler:
                            conn._scheduler = scheduler
                            try:
                                yield conn
                            except Exception as exc:  # re-raised below, unwrapped
                                body_error = exc
                    else:
                        try:
                            yield conn
                        except Exception as exc:
                            body_error = exc
                except Exception as exc:  # from _after_connect or the scheduler
                    body_error = exc
                finally:
                    await conn._shutdown()
        if connect_error is not None:
            for callback in options.on_connect_error:
                await invoke(callback, connect_error)
            raise connect_error
        if body_error is not None:
            raise body_error

    async def _after_connect(self) -> None:
        credentials = self._options.credentials
        if credentials is not None:
            await credentials.save(self.identity.to_hex(), self.token)
        for callback in self._options.on_connect:
            await invoke(callback, self, self.identity, self.token)

    async def _run_session(self, *, task_status: TaskStatus[None]) -> None:
        options = self._options
        started = False
        error: BaseException | None = None
        try:
            async with open_websocket(
                self._client,
                subscribe_url(options.base_url, options.database),
                params=options.query_params(),
                token=self._token,
                max_message_size=options.max_message_size,
                protocol=options.protocol,
            ) as ws:
                self._subprotocol = ws.subprotocol
                messages = self._decode(ws, await ws.receive())
                first = messages[0]
                if not isinstance(first, InitialConnection):
                    raise ProtocolError(
                        f"expected InitialConnection as the first message, got "
                        f"{type(first).__name__}"
                    )
                self._identity = first.identity
                self._connection_id = first.connection_id
                self._token = first.token
                self._http.token = first.token
                self._ws = ws
                started = True
                task_status.started()
                await self._handle(messages[1:])
                await self._receive_loop(ws)
        except Exception as exc:
            if not started:
                raise
            error = sole_exception(exc)
        finally:
            self._ws = None
            self._session_done.set()
        if not self._closing:
            if error is None:
                error = ConnectionClosedError("the connection ended")
            log.warning("connection to %s lost: %s", options.base_url, error)
            await self._mark_closed(error)

    def _decode(self, ws: WebSocket, frame: bytes) -> list[ServerMessage]:
        return decode_server_frame(
            frame, batched=ws.batched, max_size=self._options.max_message_size
        )

    async def _receive_loop(self, ws: WebSocket) -> None:
        while True:
            try:
                frame = await ws.receive()
            except ConnectionClosedError:
                if self._closing:
                    return
                raise
            await self._handle(self._decode(ws, frame))

    async def _handle(self, messages: list[ServerMessage]) -> None:
        handlers = self._handlers
        for count, message in enumerate(messages, 1):
            await handlers[type(message)](self, message)
            if not count % 256:  # a big v3 frame must not starve the other tasks
                await anyio.lowlevel.checkpoint()

    async def _mark_closed(self, reason: BaseException | None) -> None:
        """Fail pending calls, end subscriptions and report the disconnect, exactly once."""
        if self._disconnect_reported:
            return
        self._disconnect_reported = True
        self._closed = True
        self._close_reason = reason
        self._pending.close(reason)
        for handle in list(self._subscriptions.values()):
            await handle._end(self.db, "the connection closed")
        self._subscriptions.clear()
        for callback in self._options.on_disconnect:
            await invoke(callback, self, reason)

    async def _shutdown(self) -> None:
        with anyio.move_on_after(_SCHEDULER_GRACE, shield=True):
            # A scheduler started lazily in our task group stops first, while its running
            # calls can still get their answers.
            if self._scheduler is not None and self._scheduler_done is not None:
                self._scheduler.stop()
                await self._scheduler_done.wait()
        self._closing = True
        self._pending.close(None)
        with anyio.move_on_after(_CLOSE_GRACE, shield=True) as grace:
            ws = self._ws
            if ws is not None:
                await ws.close()
            await self._session_done.wait()
        if grace.cancelled_caught:
            log.debug("the receive task did not end within %s s of closing", _CLOSE_GRACE)
        self._task_group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._mark_closed(None)

    async def disconnect(self) -> None:
        """Close the connection now (leaving the ``async with`` block does it too)."""
        if self._closed:
            return
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close()
        with anyio.move_on_after(_CLOSE_GRACE):
            await self._session_done.wait()
        await self._mark_closed(None)

    # --- message handlers (run in the receive task) -------------------------------------------

    async def _on_reducer_result(self, message: ReducerResult) -> None:
        outcome = message.result
        if isinstance(outcome, ReducerOk):
            await self._apply_transaction(outcome.transaction_update)
        self._resolve(message.request_id, message)

    async def _on_answer(
        self, message: ProcedureResult | OneOffQueryResult | UnsubscribeApplied
    ) -> None:
        self._resolve(message.request_id, message)

    async def _on_subscribe_applied(self, message: SubscribeApplied) -> None:
        handle = self._subscriptions.get(message.query_set_id.id)
        if handle is not None:
            changes: list[tuple[RowChanges, list[bytes], list[bytes]]] = [
                (RowChanges(single.table, rows, []), keys, [])
                for single in message.rows.tables
                for keys, rows in [self._decode_rows(single.table, single.rows)]
            ]
            for table_changes, _, _ in changes:
                handle.rows.setdefault(table_changes.table, []).extend(table_changes.inserts)
            await handle._apply(self.db, changes)
            handle._active = True
        self._resolve(message.request_id, message)

    async def _on_subscription_error(self, message: SubscriptionError) -> None:
        handle = self._subscriptions.pop(message.query_set_id.id, None)
        if handle is not None:
            await handle._end(self.db, message.error)
        if message.request_id is not None:
            self._resolve(message.request_id, message)
        elif handle is not None:
            log.warning("subscription %r failed: %s", handle.queries, message.error)

    async def _on_transaction_update(self, message: TransactionUpdate) -> None:
        await self._apply_transaction(message)

    async def _on_unexpected(self, message: ServerMessage) -> None:
        raise ProtocolError(f"unexpected {type(message).__name__} after InitialConnection")

    _handlers: ClassVar[dict[type[Any], Callable[[DbConnection, Any], Any]]] = {
        ReducerResult: _on_reducer_result,
        ProcedureResult: _on_answer,
        OneOffQueryResult: _on_answer,
        UnsubscribeApplied: _on_answer,
        SubscribeApplied: _on_subscribe_applied,
        SubscriptionError: _on_subscription_error,
        TransactionUpdate: _on_transaction_update,
        InitialConnection: _on_unexpected,
    }

    def _resolve(self, request_id: int, message: ServerMessage) -> None:
        if not self._pending.resolve(request_id, message):
            log.debug("no caller waits for request %d any more (%s)", request_id, message)

    async def _apply_transaction(self, update: TransactionUpdate) -> None:
        for query_set in update.query_sets:
            handle = self._subscriptions.get(query_set.query_set_id.id)
            if handle is not None:
                await handle._apply(self.db, self._decode_query_set(query_set))

    def _decode_query_set(
        self, query_set: QuerySetUpdate
    ) -> list[tuple[RowChanges, list[bytes], list[bytes]]]:
        changes: list[tuple[RowChanges, list[bytes], list[bytes]]] = []
        for table in query_set.tables:
            for rows in table.rows:
                if isinstance(rows, PersistentTable):
                    insert_keys, inserts = self._decode_rows(table.table_name, rows.inserts)
                    delete_keys, deletes = self._decode_rows(table.table_name, rows.deletes)
                    changes.append(
                        (RowChanges(table.table_name, inserts, deletes), insert_keys, delete_keys)
                    )
                elif isinstance(rows, EventTable):
                    _, events = self._decode_rows(table.table_name, rows.events)
                    changes.append((RowChanges(table.table_name, [], [], events), [], []))
        return changes

    def _decode_rows(self, table: str, rows: Any) -> tuple[list[bytes], list[Any]]:
        keys = rows.rows_bytes()
        codec = self._row_codec(table)
        if codec is None:
            return keys, list(keys)
        return keys, [codec.decode(key) for key in keys]

    def _row_codec(self, table: str) -> Any:
        schema = self._schema
        if schema is None:
            return None
        try:
            return schema.table(table).row_codec
        except LookupError:
            return None

    # --- sending ------------------------------------------------------------------------------

    def _ensure_open(self, what: str) -> None:
        if self._closed or self._closing:
            raise ConnectionClosedError(
                f"{what}: the connection is closed"
                + (f" ({self._close_reason})" if self._close_reason else "")
            ) from self._close_reason

    def _send(self, message: ClientMessage) -> None:
        # Queues the message for the writer task; no checkpoint, so a call costs one task
        # switch (waiting for its answer), however many calls are in flight.
        ws = self._ws
        if ws is None:
            raise ConnectionClosedError("the connection is closed") from self._close_reason
        ws.send_nowait(encode_client_message(message))

    async def module_schema(self) -> ModuleSchema:
        """The module's schema (``GET .../schema?version=9``), fetched once per connection."""
        schema = self._schema
        if schema is not None:
            return schema
        async with self._schema_lock:
            if self._schema is None:
                raw = await self._http.schema_json(self._options.database, version=9)
                self._schema = ModuleSchema.from_json(raw)
            return self._schema

    # --- reducers and procedures --------------------------------------------------------------

    async def call_reducer_async(
        self,
        reducer_name: str,
        *args: Any,
        timeout: float | None = 30.0,  # noqa: ASYNC109 (the scheduler's target protocol)
    ) -> ReducerCallResult:
        """Call a reducer and wait for its outcome.

        The arguments are checked and encoded with the module schema before anything is sent
        (:class:`~spacetime_sched.ArgumentError` names the parameter that does not fit). Returns
        a :class:`ReducerCallResult` when the reducer commits; raises
        :class:`~spacetime_sched.ReducerError` when it returns ``Err``,
        :class:`~spacetime_sched.InternalError` when the host could not run it and
        :class:`~spacetime_sched.CallTimeoutError` after ``timeout`` seconds.
        """
        self._ensure_open(f"reducer {reducer_name!r}")
        schema = await self.module_schema()
        args_bytes = schema.reducer(reducer_name).encode_args(args)
        return await self.call_reducer_raw(reducer_name, args_bytes, timeout=timeout)

    async def call_reducer_raw(
        self,
        reducer_name: str,
        args: bytes,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109 (a per-call deadline, like the rest)
    ) -> ReducerCallResult:
        """Call a reducer with already encoded BSATN arguments (no schema check)."""
        what = f"reducer {reducer_name!r}"
        self._ensure_open(what)
        with self._pending.expect(what) as (request_id, waiter):
            self._send(CallReducer(request_id, 0, reducer_name, bytes(args)))
            result: ReducerResult = await waiter.wait(timeout)
        outcome = result.result
        if isinstance(outcome, ReducerOk):
            return ReducerCallResult(
                reducer_name,
                request_id,
                result.timestamp,
                outcome.ret_value,
                outcome.transaction_update,
            )
        if isinstance(outcome, ReducerErr):
            message = outcome.message
            if message is None:
                message = f"<{len(outcome.error)}-byte error value {outcome.error[:32].hex()}>"
            raise ReducerError(reducer_name, message)
        if isinstance(outcome, ReducerInternalError):
            raise InternalError(f"{what}: the host could not run it: {outcome.message}")
        return ReducerCallResult(reducer_name, request_id, result.timestamp, b"", _EMPTY_UPDATE)

    async def call_procedure_async(
        self,
        procedure_name: str,
        *args: Any,
        timeout: float | None = 30.0,  # noqa: ASYNC109
    ) -> Any:
        """Call a procedure; return its value decoded with the procedure's return type."""
        return (await self.call_procedure(procedure_name, *args, timeout=timeout)).value

    async def call_procedure(
        self,
        procedure_name: str,
        *args: Any,
        timeout: float | None = 30.0,  # noqa: ASYNC109
    ) -> ProcedureCallResult:
        """Like :meth:`call_procedure_async`, with the server's timings."""
        what = f"procedure {procedure_name!r}"
        self._ensure_open(what)
        procedure = (await self.module_schema()).procedure(procedure_name)
        args_bytes = procedure.encode_args(args)
        with self._pending.expect(what) as (request_id, waiter):
            self._send(CallProcedure(request_id, 0, procedure_name, args_bytes))
            result: ProcedureResult = await waiter.wait(timeout)
        status = result.status
        if isinstance(status, ProcedureInternalError):
            raise InternalError(f"{what}: the host could not run it: {status.message}")
        assert isinstance(status, ProcedureReturned)
        return ProcedureCallResult(
            procedure_name,
            request_id,
            procedure.return_codec.decode(status.value),
            result.timestamp,
            result.total_host_execution_duration,
        )

    # --- queries and subscriptions ------------------------------------------------------------

    async def query(
        self,
        sql: str,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109
    ) -> dict[str, list[Any]]:
        """Run one SQL query (OneOffQuery); return the decoded rows by table name."""
        what = f"query {sql!r}"
        self._ensure_open(what)
        await self.module_schema()
        with self._pending.expect(what) as (request_id, waiter):
            self._send(OneOffQuery(request_id, sql))
            result: OneOffQueryResult = await waiter.wait(timeout)
        if not isinstance(result.result, QueryRows):
            raise QueryError(f"{what} failed: {result.result}")
        decoded: dict[str, list[Any]] = {}
        for single in result.result.tables:
            decoded.setdefault(single.table, []).extend(
                self._decode_rows(single.table, single.rows)[1]
            )
        return decoded

    async def subscribe(
        self,
        queries: Sequence[str] | str,
        *,
        on_update: Callable[[Any], Any] | None = None,
        buffer_updates: bool = True,
        timeout: float | None = 30.0,  # noqa: ASYNC109
    ) -> SubscriptionHandle:
        """Subscribe to the rows matched by SQL ``SELECT`` queries (one query set).

        Returns once the server applied it, with the matched rows in ``handle.rows`` and in
        the client cache (``conn.db``). Later changes go to ``on_update`` callbacks and, unless
        ``buffer_updates=False``, to ``async for update in handle`` (they are buffered until
        read, so iterate, or turn buffering off). :class:`~spacetime_sched.QueryError` if the
        server rejects a query.
        """
        query_list = [queries] if isinstance(queries, str) else list(queries)
        what = f"subscribe {query_list!r}"
        self._ensure_open(what)
        await self.module_schema()
        query_set_id = self._next_query_set_id
        self._next_query_set_id += 1
        handle = SubscriptionHandle(self, query_set_id, query_list, buffer_updates=buffer_updates)
        if on_update is not None:
            handle.on_update(on_update)
        self._subscriptions[query_set_id] = handle
        try:
            with self._pending.expect(what) as (request_id, waiter):
                self._send(Subscribe(request_id, query_set_id, query_list))
                answer = await waiter.wait(timeout)
        except BaseException:
            self._subscriptions.pop(query_set_id, None)
            raise
        if isinstance(answer, SubscriptionError):
            raise QueryError(f"{what} was rejected: {answer.error}")
        return handle

    async def _unsubscribe(
        self,
        handle: SubscriptionHandle,
        timeout: float | None,  # noqa: ASYNC109
    ) -> None:
        what = f"unsubscribe {list(handle.queries)!r}"
        self._ensure_open(what)
        with self._pending.expect(what) as (request_id, waiter):
            self._send(Unsubscribe(request_id, handle.query_set_id, UnsubscribeFlags.Default))
            answer = await waiter.wait(timeout)
        self._subscriptions.pop(handle.query_set_id, None)
        await handle._end(self.db, None)
        if isinstance(answer, SubscriptionError):
            raise QueryError(f"{what} failed: {answer.error}")

    def table(self, name: str) -> TableCache:
        """The cached rows of table ``name`` (same as ``conn.db[name]``)."""
        return self.db.table(name)

    # --- clock ----------------------------------------------------------------------------------

    async def estimate_clock_skew(self, *, samples: int = 5) -> TimeDuration:
        """How far the server's clock is ahead of ours (see
        :meth:`SpacetimeHttpClient.estimate_clock_skew`)."""
        return await self._http.estimate_clock_skew(self._options.database, samples=samples)

    # --- scheduling ---------------------------------------------------------------------------

    @property
    def scheduler(self) -> ReducerScheduler:
        """This connection's scheduler.

        With ``with_scheduling(auto_start=True)`` it was opened on connect. Otherwise the first
        access creates one (``max_concurrent_executions`` from ``with_scheduling``, default 5)
        and runs it in the connection's own task group: its tasks end when the connection's
        ``async with`` block ends.
        """
        if self._scheduler is None:
            self._ensure_open("scheduler")
            from ..scheduler import ReducerScheduler

            scheduler = ReducerScheduler(self, **self._scheduler_kwargs(None))
            self._scheduler = scheduler
            self._scheduler_done = anyio.Event()
            self._task_group.start_soon(
                self._run_scheduler, scheduler, self._scheduler_done, name="scheduler"
            )
        return self._scheduler

    @staticmethod
    async def _run_scheduler(scheduler: ReducerScheduler, done: anyio.Event) -> None:
        try:
            await scheduler.run()
        except SchedulerError:
            if not scheduler.closed:  # stopped before it ever ran: nothing to do
                raise
        finally:
            done.set()

    def _scheduler_kwargs(self, max_concurrent_executions: int | None) -> dict[str, Any]:
        limit = max_concurrent_executions or self._options.max_concurrent_executions
        return {} if limit is None else {"max_concurrent_executions": limit}

    @asynccontextmanager
    async def scheduling(
        self, *, max_concurrent_executions: int | None = None
    ) -> AsyncIterator[ReducerScheduler]:
        """Run a scheduler for the duration of the block (its tasks live in the block)."""
        self._ensure_open("scheduling")
        from ..scheduler import ReducerScheduler

        async with ReducerScheduler(
            self, **self._scheduler_kwargs(max_concurrent_executions)
        ) as scheduler:
            yield scheduler


def _as_connect_error(exc: BaseException) -> ClientError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, ConnectionClosedError):
        error = ConnectError(f"the connection closed before InitialConnection: {exc}")
    elif isinstance(exc, SpacetimeSchedError):
        error = ConnectError(f"could not connect: {exc}")
    else:
        error = ConnectError(f"could not connect: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
