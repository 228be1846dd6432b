"""The module host: runs reducers in transactions, fires schedule tables, feeds subscriptions.

:class:`Host` is what :class:`LocalServer` serves, and it works on its own for fast tests::

    async with Host(module, clock=VirtualClock()) as host:
        outcome = host.call("add_person", ["Ada"])
        assert host.table("person").count() == 1

Schedule tables behave like SpacetimeDB's: a ``Time`` row fires once at its time (at once if
that is past) and is deleted after its reducer runs; an ``Interval`` row fires first one
interval after it was inserted, then again and again, each tick anchored to the previous
*intended* time (missed ticks are skipped, not bunched), until the row is deleted (the timer
is in ``_timer``; what subscribers receive is computed in ``_subscriptions``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import attrs

from ... import sats
from ..._clock import Clock, SystemClock
from ..._errors import (
    BadArgumentsError,
    ConnectRefusedError,
    NoSuchFunctionError,
    SenderError,
    SqlError,
)
from ..._identity import ConnectionId, Identity
from ..._time import ScheduleAtInterval, ScheduleAtTime, TimeDuration, Timestamp
from ...protocol import (
    CallProcedure,
    CallReducer,
    ClientMessage,
    Lifecycle,
    OneOffQuery,
    OneOffQueryResult,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOutcome,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
)
from ._auth import identity_from_claims
from ._database import Database, Db, StoredRow, TableChange, TableHandle, Transaction
from ._module import Module, Procedure, ProcedureContext, Reducer, ReducerContext
from ._sql import Query, parse_query, untyped_json
from ._subscriptions import (
    DEFAULT_OUTBOX_MESSAGES,
    ClientConnection,
    matching_rows,
    query_rows,
    updates_for,
)
from ._timer import MAX_SCHEDULE_DELAY_MICROS, RowKey, ScheduleTimer, first_due, next_tick

__all__ = [
    "BadArgumentsError",
    "Caller",
    "ConnectRefusedError",
    "close_stack",
    "Host",
    "NoSuchFunctionError",
    "ServerClock",
]

logger = logging.getLogger("spacetime_sched.testing.server")


#: The clock the host reads and sleeps on: the library's one clock protocol (``VirtualClock``
#: fits, for fast tests).
ServerClock = Clock


@attrs.frozen
class Caller:
    """Who runs a transaction: the identity, its connection id and WebSocket (if any)."""

    identity: Identity
    connection_id: ConnectionId | None = None
    connection: ClientConnection | None = None


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class Host:
    """Hosts one :class:`Module`: its tables, reducers, schedule timers and subscribers.

    Use it as an async context manager: entering runs the ``init`` reducer and starts the
    schedule timer in the host's own task group; leaving stops it.
    """

    def __init__(
        self, module: Module, *, database: str | None = None, clock: ServerClock | None = None
    ) -> None:
        self.module = module
        #: The schema served to clients (names as a 2.x server converts them).
        self.schema = module.schema
        # Values reach the module's functions decoded with the names it declared; BSATN has no
        # names, so a value crosses between the two schemas by re-encoding.
        declared = module.declared_schema
        self.database_name = database or module.name
        self.clock: ServerClock = clock if clock is not None else SystemClock()
        #: The database's identity (the ``sender`` of ``init`` and of scheduled reducers).
        self.identity = identity_from_claims("localhost", f"database:{self.database_name}")
        self.owner_identity = identity_from_claims("localhost", "owner")
        self.database = Database(module.tables)
        self.connections: set[ClientConnection] = set()
        self._public = {name: table for name, table in module.tables.items() if table.public}
        self._scheduled_reducers = {
            str(table.scheduled) for table in module.tables.values() if table.scheduled
        }
        self._timer = ScheduleTimer(self.clock)
        self._stack: AsyncExitStack | None = None
        self._arg_codecs = {
            reducer.name: sats.compile(reducer.params, declared.typespace)
            for reducer in declared.reducers
        }
        self._proc_arg_codecs = {
            proc.name: sats.compile(proc.params, declared.typespace) for proc in declared.procedures
        }
        self._return_codecs = {
            proc.name: sats.compile(proc.return_type, declared.typespace)
            for proc in declared.procedures
        }

    def __repr__(self) -> str:
        return f"<Host {self.database_name!r} ({self.module!r})>"

    # --- lifetime -------------------------------------------------------------------------------

    async def __aenter__(self) -> Host:
        init = self.module.lifecycle_reducer("Init")
        if init is not None:
            _, outcome = self._run_reducer(init, [], Caller(self.identity))
            if isinstance(outcome, ReducerErr | ReducerInternalError):
                raise RuntimeError(f"the init reducer failed: {outcome.message}")
        stack = AsyncExitStack()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(task_group.cancel_scope.cancel)
        task_group.start_soon(self._timer.run, self._fire, name=f"schedule timer of {self!r}")
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None, "the host is not running"
        await close_stack(stack, exc)

    # --- inspection -----------------------------------------------------------------------------

    def table(self, name: str) -> TableHandle:
        """A read-only view of a table (for tests): ``host.table("person").rows()``."""
        return self.database.handle(name)

    # --- reducers -------------------------------------------------------------------------------

    def reducer(self, name: str) -> Reducer:
        try:
            return self.module.reducers[name]
        except KeyError:
            raise NoSuchFunctionError(f"no such reducer: {name!r}") from None

    def callable_reducer(self, name: str, identity: Identity) -> Reducer:
        """The reducer ``name`` if ``identity`` may call it, as a 2.x server decides.

        Lifecycle reducers are never callable (:class:`BadArgumentsError`); scheduled reducers
        are private: for anyone but the owner they do not exist (:class:`NoSuchFunctionError`).
        """
        reducer = self.reducer(name)
        if reducer.lifecycle is not None:
            raise BadArgumentsError(f"lifecycle reducer {name!r} cannot be called by clients")
        if name in self._scheduled_reducers and identity != self.owner_identity:
            raise NoSuchFunctionError(f"no such reducer: {name!r}")
        return reducer

    def procedure(self, name: str) -> Procedure:
        try:
            return self.module.procedures[name]
        except KeyError:
            raise NoSuchFunctionError(f"no such procedure: {name!r}") from None

    def callable_procedure(self, name: str, identity: Identity) -> Procedure:
        """The procedure ``name`` if ``identity`` may call it: a private (scheduled) procedure
        does not exist for anyone but the owner, like a private reducer."""
        procedure = self.procedure(name)
        if not self.schema.procedure(name).client_callable and identity != self.owner_identity:
            raise NoSuchFunctionError(f"no such procedure: {name!r}")
        return procedure

    def decode_args(self, name: str, data: bytes) -> list[Any]:
        """BSATN reducer arguments as a positional list; :class:`BadArgumentsError` if bad."""
        codec = self._arg_codecs[name]
        return _positional(name, lambda: codec.decode(data, "args"))

    def json_args(self, name: str, obj: Any) -> list[Any]:
        """SATS-JSON reducer arguments (array or object, in the served names) as a
        positional list."""
        served = self.schema.reducer(name)
        codec = sats.compile(served.params, self.schema.typespace)
        data = _positional_bytes(name, lambda: codec.encode(codec.from_json(obj, "args")))
        return self.decode_args(name, data)

    def call(
        self, name: str, args: Sequence[Any] = (), caller: Caller | None = None
    ) -> ReducerOutcome:
        """Call a reducer with Python argument values; return how it ended.

        ``caller`` defaults to the database owner, who may call scheduled reducers directly.
        Raises :class:`NoSuchFunctionError` or :class:`BadArgumentsError` (see
        :meth:`callable_reducer`).
        """
        caller = caller or Caller(self.owner_identity)
        reducer = self.callable_reducer(name, caller.identity)
        if len(args) != len(reducer.params):
            raise BadArgumentsError(
                f"{name!r} takes {len(reducer.params)} arguments, got {len(args)}"
            )
        # Validate (and normalize) the values by encoding them, as a wire call would.
        codec = self._arg_codecs[name]
        try:
            values = self.decode_args(name, codec.encode(list(args), "args"))
        except sats.SatsError as exc:
            raise BadArgumentsError(f"invalid arguments for {name!r}: {exc}") from None
        _, outcome = self._run_reducer(reducer, values, caller)
        return outcome

    def _run_reducer(
        self, reducer: Reducer, args: Sequence[Any], caller: Caller
    ) -> tuple[Timestamp, ReducerOutcome]:
        timestamp, _, error, updates = self._transact(
            lambda ctx: reducer.function(ctx, *args), caller, reducer.name
        )
        if isinstance(error, SenderError):  # the module returned Err(message)
            return timestamp, ReducerErr(sats.encode(sats.STRING, _error_text(error)))
        if error is not None:  # the module crashed
            return timestamp, ReducerInternalError(_error_text(error))
        # A committed call is always Ok, with the caller's updates (maybe none): a 2.x server
        # never sends OkEmpty (crates/core/src/subscription/module_subscription_manager.rs).
        return timestamp, ReducerOk(b"", TransactionUpdate(updates))

    def _transact(
        self, body: Callable[[ReducerContext], Any], caller: Caller, what: str
    ) -> tuple[Timestamp, Any, Exception | None, list[QuerySetUpdate]]:
        """Run ``body`` in a transaction; commit and notify subscribers unless it raises.

        Returns ``(timestamp, result, the exception or None, the caller's query-set updates)``.
        """
        timestamp = self.clock.now()
        tx = self.database.begin()
        ctx = ReducerContext(
            caller.identity, caller.connection_id, timestamp, Db(self.database, tx), self.identity
        )
        try:
            result = body(ctx)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(f"{what} returned an awaitable: reducers must be plain functions")
            self._check_schedules(tx, timestamp)
        except Exception as exc:
            tx.rollback()
            logger.info("%s failed: %s", what, _error_text(exc))
            return timestamp, None, exc, []
        except BaseException:  # KeyboardInterrupt and the like: undo, then let it through
            tx.rollback()
            raise
        changes = tx.commit()
        return timestamp, result, None, self._publish(changes, timestamp, caller.connection)

    # --- procedures -----------------------------------------------------------------------------

    async def call_procedure(
        self, name: str, args: Sequence[Any], caller: Caller
    ) -> tuple[Timestamp, TimeDuration, Any]:
        """Run a procedure; returns ``(start, duration, return value)``; raises on failure."""
        procedure = self.callable_procedure(name, caller.identity)
        timestamp = self.clock.now()
        started = time.perf_counter_ns()

        def run_tx(body: Callable[[ReducerContext], Any]) -> Any:
            _, result, error, updates = self._transact(body, caller, f"{name} (transaction)")
            if error is not None:
                raise error
            if updates and caller.connection is not None:
                caller.connection.send(TransactionUpdate(updates))
            return result

        ctx = ProcedureContext(
            caller.identity, caller.connection_id, timestamp, self.identity, run_tx
        )
        result = procedure.function(ctx, *args)
        if inspect.isawaitable(result):
            result = await result
        duration = TimeDuration((time.perf_counter_ns() - started) // 1000)
        return timestamp, duration, result

    def encode_return(self, name: str, value: Any) -> bytes:
        return self._return_codecs[name].encode(value, f"{name}() return value")

    def return_json(self, name: str, value: Any) -> Any:
        """A procedure's return value as the server's JSON (in the served names)."""
        served = self.schema.procedure(name).return_codec
        value = served.decode(self.encode_return(name, value))
        return untyped_json(served.type, served.to_json(value), self.schema.typespace)

    def decode_procedure_args(self, name: str, data: bytes) -> list[Any]:
        codec = self._proc_arg_codecs[name]
        return _positional(name, lambda: codec.decode(data, "args"))

    def json_procedure_args(self, name: str, obj: Any) -> list[Any]:
        served = self.schema.procedure(name)
        codec = sats.compile(served.params, self.schema.typespace)
        data = _positional_bytes(name, lambda: codec.encode(codec.from_json(obj, "args")))
        return self.decode_procedure_args(name, data)

    # --- connections ----------------------------------------------------------------------------

    def connect(
        self,
        identity: Identity,
        connection_id: ConnectionId,
        *,
        max_outbox: int = DEFAULT_OUTBOX_MESSAGES,
    ) -> ClientConnection:
        """Run ``client_connected``; register and return the connection (or refuse it with
        :class:`ConnectRefusedError`). ``max_outbox`` bounds the messages waiting for it."""
        self._lifecycle("OnConnect", Caller(identity, connection_id), refuse=True)
        connection = ClientConnection(identity, connection_id, max_outbox=max_outbox)
        self.connections.add(connection)
        return connection

    def disconnect(self, connection: ClientConnection) -> None:
        """Forget the connection and run ``client_disconnected``."""
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        connection.close()
        self._lifecycle("OnDisconnect", Caller(connection.identity, connection.connection_id))

    def _lifecycle(self, kind: Lifecycle, caller: Caller, *, refuse: bool = False) -> None:
        reducer = self.module.lifecycle_reducer(kind)
        if reducer is None:
            return
        _, outcome = self._run_reducer(reducer, [], caller)
        if refuse and isinstance(outcome, ReducerErr | ReducerInternalError):
            raise ConnectRefusedError(f"{reducer.name} refused the connection: {outcome.message}")

    @contextlib.contextmanager
    def http_connection(self, identity: Identity) -> Iterator[Caller]:
        """An HTTP request's connection: ``client_connected`` before (raising
        :class:`ConnectRefusedError` if it fails) and ``client_disconnected`` after, with a
        fresh connection id, as the real server runs ``/call`` and ``/sql``
        (``crates/client-api/src/routes/database.rs``, ``with_connection``)."""
        caller = Caller(identity, ConnectionId.random())
        self._lifecycle("OnConnect", caller, refuse=True)
        try:
            yield caller
        finally:
            self._lifecycle("OnDisconnect", caller)

    def http_call(self, name: str, args: Sequence[Any], identity: Identity) -> ReducerOutcome:
        """A reducer call over HTTP, inside :meth:`http_connection`."""
        with self.http_connection(identity) as caller:
            return self.call(name, args, caller)

    async def handle(self, connection: ClientConnection, message: ClientMessage) -> None:
        """Answer one client message (replies go to ``connection.send``)."""
        if isinstance(message, CallReducer):
            connection.send(self._handle_call(connection, message))
        elif isinstance(message, Subscribe):
            self._handle_subscribe(connection, message)
        elif isinstance(message, Unsubscribe):
            self._handle_unsubscribe(connection, message)
        elif isinstance(message, OneOffQuery):
            try:
                query = parse_query(message.query_string, self._public)
            except SqlError as exc:
                connection.send(OneOffQueryResult(message.request_id, str(exc)))
            else:
                rows = query_rows(self.database, [query], connection.identity)
                connection.send(OneOffQueryResult(message.request_id, rows))
        elif isinstance(message, CallProcedure):
            connection.send(await self._handle_procedure(connection, message))
        else:  # pragma: no cover - the decoder yields only the classes above
            raise TypeError(f"unexpected client message {message!r}")
        self._forget_kicked()  # e.g. a client that asks and asks but never reads the answers

    def _handle_call(self, connection: ClientConnection, message: CallReducer) -> ReducerResult:
        caller = Caller(connection.identity, connection.connection_id, connection)
        try:
            reducer = self.callable_reducer(message.reducer, connection.identity)
            args = self.decode_args(reducer.name, message.args)
        except (NoSuchFunctionError, BadArgumentsError) as exc:
            return ReducerResult(
                message.request_id, self.clock.now(), ReducerInternalError(exc.args[0])
            )
        timestamp, outcome = self._run_reducer(reducer, args, caller)
        return ReducerResult(message.request_id, timestamp, outcome)

    async def _handle_procedure(
        self, connection: ClientConnection, message: CallProcedure
    ) -> ProcedureResult:
        caller = Caller(connection.identity, connection.connection_id, connection)
        started = self.clock.now()
        try:
            self.callable_procedure(message.procedure, connection.identity)
            args = self.decode_procedure_args(message.procedure, message.args)
            timestamp, duration, value = await self.call_procedure(message.procedure, args, caller)
            returned = self.encode_return(message.procedure, value)
        except Exception as exc:
            logger.info("procedure %s failed: %s", message.procedure, _error_text(exc))
            return ProcedureResult(
                ProcedureInternalError(_error_text(exc)),
                started,
                TimeDuration(0),
                message.request_id,
            )
        return ProcedureResult(ProcedureReturned(returned), timestamp, duration, message.request_id)

    # --- subscriptions --------------------------------------------------------------------------

    def parse_queries(self, queries: Iterable[str]) -> list[Query]:
        """Parse SELECTs over the public tables (raises :class:`SqlError`)."""
        return [parse_query(sql, self._public) for sql in queries]

    def _handle_subscribe(self, connection: ClientConnection, message: Subscribe) -> None:
        qsid = message.query_set_id.id
        try:
            if qsid in connection.query_sets:
                raise SqlError(f"query set {qsid} is already subscribed")
            queries = self.parse_queries(message.query_strings)
        except SqlError as exc:
            connection.send(SubscriptionError(message.request_id, message.query_set_id, str(exc)))
            return
        connection.query_sets[qsid] = tuple(queries)
        rows = query_rows(self.database, queries, connection.identity)
        connection.send(SubscribeApplied(message.request_id, message.query_set_id, rows))

    def _handle_unsubscribe(self, connection: ClientConnection, message: Unsubscribe) -> None:
        queries = connection.query_sets.pop(message.query_set_id.id, None)
        if queries is None:
            error = f"query set {message.query_set_id.id} is not subscribed"
            connection.send(SubscriptionError(message.request_id, message.query_set_id, error))
            return
        rows = None
        if message.flags == UnsubscribeFlags.SendDroppedRows:
            rows = query_rows(self.database, queries, connection.identity)
        connection.send(UnsubscribeApplied(message.request_id, message.query_set_id, rows))

    def query(self, queries: Iterable[Query], sender: Identity | None = None) -> list[StoredRow]:
        """The rows that any of ``queries`` matches (each row once), table by table."""
        return [
            row for rows in matching_rows(self.database, queries, sender).values() for row in rows
        ]

    def _publish(
        self,
        changes: list[TableChange],
        now: Timestamp,
        caller: ClientConnection | None,
    ) -> list[QuerySetUpdate]:
        """Arm or disarm schedule rows, send TransactionUpdates to the other subscribers whose
        rows changed, and return the caller's own updates."""
        self._rearm(changes, now)
        if not changes:
            return []
        by_table = {change.table.name: change for change in changes}
        mine: list[QuerySetUpdate] = []
        for connection in list(self.connections):
            updates = updates_for(connection, by_table)
            if connection is caller:
                mine = updates
            elif updates:
                connection.send(TransactionUpdate(updates))
        self._forget_kicked()
        return mine

    def _forget_kicked(self) -> None:
        """Disconnect the clients that fell too far behind (their queue is already dropped).

        Their sessions end on their own once the socket lets go (a client that never reads
        may hold its TCP connection a while; it gets nothing more, and holds no queue)."""
        for connection in [c for c in self.connections if c.close_reason is not None]:
            self.disconnect(connection)

    # --- schedule tables ------------------------------------------------------------------------

    def _check_schedules(self, tx: Transaction, now: Timestamp) -> None:
        for change in tx.pending():
            at_column = change.table.scheduled_at
            if at_column is None:
                continue
            for _, after in change.rows.values():
                if after is None:
                    continue
                due = first_due(after.value[at_column], now)
                if due - now.micros_since_epoch > MAX_SCHEDULE_DELAY_MICROS:
                    raise ValueError(
                        f"{change.table.name}.{at_column}: {after.value[at_column]} is more than "
                        f"{MAX_SCHEDULE_DELAY_MICROS // 1000} ms ahead, the longest delay "
                        "SpacetimeDB accepts"
                    )

    def _rearm(self, changes: list[TableChange], now: Timestamp) -> None:
        for change in changes:
            at_column = change.table.scheduled_at
            if at_column is None:
                continue
            for row_id, (_, after) in change.rows.items():
                key = (change.table.name, row_id)
                if after is None:
                    self._timer.disarm(key)
                else:
                    self._timer.arm(key, first_due(after.value[at_column], now))

    def _fire(self, key: RowKey, due: int) -> None:
        """Run the scheduled reducer of one due row, then delete (Time) or re-arm (Interval)."""
        table_name, row_id = key
        store = self.database.stores[table_name]
        row = store.rows.get(row_id)
        if row is None:
            return
        table = store.table
        reducer = self.module.reducers[str(table.scheduled)]
        schedule = row.value[str(table.scheduled_at)]
        one_shot = isinstance(schedule, ScheduleAtTime)

        def body(ctx: ReducerContext) -> None:
            reducer.function(ctx, dict(row.value))
            if one_shot:
                _delete_row(store.table.name, row_id, ctx)

        _, _, error, _ = self._transact(body, Caller(self.identity), f"scheduled {reducer.name}")
        if error is not None and one_shot:
            self._transact(
                lambda ctx: _delete_row(table_name, row_id, ctx),
                Caller(self.identity),
                f"removing the failed one-shot {table_name} row",
            )
        rearmed = self._timer.is_armed(key)  # the reducer updated its own row
        if isinstance(schedule, ScheduleAtInterval) and not rearmed and row_id in store.rows:
            now = self.clock.now().micros_since_epoch
            self._timer.arm(key, next_tick(schedule, due, now))  # anchored to the intended time


async def close_stack(stack: AsyncExitStack, exc: BaseException | None) -> None:
    """Close ``stack``, which holds task groups, when an ``async with`` block ends.

    An ordinary exception from the block is not handed to the task groups (they would wrap it
    in an ExceptionGroup): everything shuts down as usual and the exception then propagates
    unchanged. Cancellation and KeyboardInterrupt are handed in, so they cancel the tasks.
    """
    if exc is None or isinstance(exc, Exception):
        await stack.aclose()
    else:
        await stack.__aexit__(type(exc), exc, exc.__traceback__)


def _positional(name: str, decode: Callable[[], Any]) -> list[Any]:
    """Decoded arguments as a positional list; :class:`BadArgumentsError` if they do not fit."""
    try:
        values = decode()
    except (sats.SatsError, ValueError, TypeError) as exc:
        raise BadArgumentsError(f"invalid arguments for {name!r}: {exc}") from None
    # A product decodes to a dict by name; the empty product (no parameters) to ().
    return list(values.values()) if isinstance(values, dict) else list(values)


def _positional_bytes(name: str, encode: Callable[[], bytes]) -> bytes:
    """JSON arguments re-encoded as BSATN; :class:`BadArgumentsError` if they do not fit."""
    try:
        return encode()
    except (sats.SatsError, ValueError, TypeError) as exc:
        raise BadArgumentsError(f"invalid arguments for {name!r}: {exc}") from None


def _delete_row(table: str, row_id: int, ctx: ReducerContext) -> None:
    ctx.db[table].delete_row_id(row_id)
