"""``DbConnection``: one SpacetimeDB database, over one WebSocket session at a time.

The object exists before it connects. ``DbConnection.builder()...build()`` (or
``ModernSpacetimeDBClient()``, with defaults from the environment) returns it at once; its
scheduler (:attr:`DbConnection.scheduler`) can already take schedules. ``async with conn:``
connects and waits for ``InitialConnection``; the connection then owns a task group in which
the receive task, the writer task, the call-timeout task and (once started) the scheduler run,
so every task it starts ends when the block ends. Leaving the block stops the scheduler, closes
the socket and fails any call still waiting with :class:`~spacetime_sched.ConnectionClosedError`.
A connection connects once; build another to connect again.

If the server goes away first, the receive task records why, fails every call still waiting
for its answer with :class:`~spacetime_sched.ConnectionLostError`, and calls
``on_disconnect(conn, error)``. Without a reconnect policy the connection then stays closed:
the ``async with`` body keeps running (it is not cancelled) and every later call raises
:class:`~spacetime_sched.ConnectionClosedError`. With one (``with_reconnect``), the session
task retries with backoff, the same token, re-applies the subscriptions and reconciles the
cache (:meth:`._dispatch.Dispatcher.resync`); calls made meanwhile wait; the scheduler, in the
connection's task group, never notices more than failed or slow calls. If the policy gives up,
the body is cancelled and the block raises :class:`~spacetime_sched.ConnectError`.

Rooms: the options are in :mod:`._options`, the socket in :mod:`._websocket`, the routing of
server messages in :mod:`._dispatch`, the rows in :mod:`._cache`, request ids in :mod:`._calls`
and the scheduler seam in :mod:`._scheduling`. This module only ties them together and sends.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import anyio
import httpx
from anyio.abc import TaskGroup, TaskStatus

from .._callbacks import call_callback_logged
from .._errors import (
    ArgumentError,
    CallTimeoutError,
    ClientError,
    ConfigurationError,
    ConnectError,
    ConnectionClosedError,
    ConnectionLostError,
    InternalError,
    ProtocolError,
    QueryError,
    ReducerError,
    SpacetimeSchedError,
)
from .._identity import ConnectionId, Identity
from .._time import TimeDuration, Timestamp
from ..protocol import (
    CallProcedure,
    ClientMessage,
    InitialConnection,
    ModuleSchema,
    OneOffQuery,
    OneOffQueryResult,
    PlainReducerResult,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    QueryRows,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeFlags,
    encode_call_reducer,
    encode_client_message,
)
from ._builder import DbConnectionBuilder
from ._cache import ClientCache, TableCache
from ._calls import PendingRequests, check_timeout
from ._dispatch import Dispatcher, Incoming
from ._http import SpacetimeHttpClient
from ._options import ConnectOptions, default_options
from ._reconnect import ReconnectPolicy
from ._reducers import Reducers
from ._results import ProcedureCallResult, ReducerCallResult
from ._rows import RowModel, row_model
from ._scheduling import ConnectionScheduler, new_scheduler
from ._server_schedules import (
    ScheduleTable,
    ServerSchedules,
    find_schedule_table,
    schedule_tables,
)
from ._subscription import SubscriptionHandle
from ._websocket import WebSocket, open_websocket, sole_exception, subscribe_url

if TYPE_CHECKING:
    # Types only: the client never imports the scheduler at run time (see ._scheduling).
    from ..scheduler import ReducerScheduler

__all__ = ["DbConnection"]

log = logging.getLogger("spacetime_sched.client")

_EMPTY_UPDATE = TransactionUpdate(())

#: How long leaving the block waits for the close handshake before cutting the socket.
_CLOSE_GRACE = 2.0
#: How long leaving the block waits for the scheduler to stop (it drains running calls within
#: its own ``shutdown_timeout``; this only bounds a scheduler that would not stop).
_SCHEDULER_GRACE = 30.0
#: At most this many queries in one subscribe call (each is an SQL string the server parses).
_MAX_QUERIES = 4096


class _State(enum.Enum):
    NEW = "not connected"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class DbConnection:
    """A connection to one SpacetimeDB database, speaking ``v3.bsatn.spacetimedb`` or
    ``v2.bsatn.spacetimedb`` (the server picks; :attr:`protocol` says which).

    Make one with :meth:`builder` and connect it with ``async with``::

        async with (
            DbConnection.builder()
            .with_uri("http://localhost:3000")
            .with_database_name("quickstart")
            .build()
        ) as conn:
            await conn.call_reducer_async("add_person", "Alice")

    ``DbConnection()`` with no options takes the server from ``$SPACETIMEDB_URI`` (default
    ``http://127.0.0.1:3000``) and the database from ``$SPACETIMEDB_DATABASE``.
    """

    def __init__(self, options: ConnectOptions | None = None) -> None:
        if options is None:
            options = default_options()
        elif not isinstance(options, ConnectOptions):
            raise ConfigurationError(
                "options: expected ConnectOptions (use DbConnection.builder()...build()), "
                f"got {type(options).__name__}"
            )
        self._options = options
        self._state = _State.NEW
        self._token = options.token
        self._http = SpacetimeHttpClient(
            options.base_url,
            token=options.token,
            verify=options.verify,
            transport=options.transport,
        )
        self._client: httpx.AsyncClient | None = None
        self._task_group: TaskGroup | None = None
        self._session: AbstractAsyncContextManager[DbConnection] | None = None
        self._ws: WebSocket | None = None
        self._subprotocol = ""
        self._identity: Identity | None = None
        self._connection_id: ConnectionId | None = None
        self._pending = PendingRequests()
        self._schema: ModuleSchema | None = None
        self._schema_lock = anyio.Lock()
        #: The client cache: ``conn.db.person`` / ``conn.db["person"]`` (typed rows of live
        #: subscriptions).
        self.db = ClientCache(self._row_model)
        #: The module's reducers: ``await conn.reducers.add(1, 2)``.
        self.reducers = Reducers(self.call_reducer_async, self._row_model, self._load_row_model)
        self._dispatch = Dispatcher(
            self._pending, self.db, lambda: self._schema, max_message_size=options.max_message_size
        )
        self._next_query_set_id = 1
        self._scheduler: ConnectionScheduler | None = None
        self._closing = False
        self._close_reason: BaseException | None = None
        self._disconnect_reported = False
        self._session_done = anyio.Event()
        # Set and replaced at every change of state: what calls waiting for a reconnect watch.
        self._state_changed = anyio.Event()
        # The backoff and attempts of a reconnect, cancelled by disconnect() and the block's end.
        self._reconnect_scope: anyio.CancelScope | None = None
        self._gave_up: ConnectError | None = None
        self._refused: ConnectError | None = None  # a reconnect that retrying cannot mend
        self._random = random.Random()

    @classmethod
    def builder(cls) -> DbConnectionBuilder[DbConnection]:
        """A fresh :class:`DbConnectionBuilder` whose :meth:`~DbConnectionBuilder.build` makes
        an instance of this class."""
        return DbConnectionBuilder(cls)

    def __repr__(self) -> str:
        return (
            f"<DbConnection {self._state.value} {str(self._options.base_url)!r} "
            f"database={self._options.database!r} identity={self._identity}>"
        )

    # --- properties ---------------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        """Who we are on this server (from ``InitialConnection``)."""
        if self._identity is None:
            raise ConnectionClosedError("identity: known once the connection is up")
        return self._identity

    @property
    def connection_id(self) -> ConnectionId:
        if self._connection_id is None:
            raise ConnectionClosedError("connection_id: known once the connection is up")
        return self._connection_id

    @property
    def token(self) -> str:
        """The token to come back as the same identity. Keep it secret: it is never logged."""
        if self._token is None:
            raise ConnectionClosedError("token: known once the connection is up")
        return self._token

    @property
    def protocol(self) -> str:
        """The negotiated WebSocket subprotocol: ``"v3.bsatn.spacetimedb"`` (several messages
        per frame) or ``"v2.bsatn.spacetimedb"`` (one)."""
        return self._subprotocol

    @property
    def options(self) -> ConnectOptions:
        """The options this connection was made with."""
        return self._options

    @property
    def database_name(self) -> str:
        return self._options.database

    @property
    def uri(self) -> str:
        return str(self._options.base_url)

    @property
    def is_connected(self) -> bool:
        """True while a session is up: inside the ``async with`` block, except while
        reconnecting and after the connection closed."""
        return self._state is _State.OPEN and not self._closing

    @property
    def is_active(self) -> bool:
        """True until the connection closes (either side); also before it connects."""
        return self._state is not _State.CLOSED

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

    async def __aenter__(self) -> DbConnection:
        if self._session is not None:
            raise ClientError(
                f"{self!r}: a connection connects once; build a new one to connect again"
            )
        if not self._options.database:
            raise ConfigurationError(
                "database: none given; use DbConnection.builder().with_database_name(...) or "
                "set SPACETIMEDB_DATABASE"
            )
        self._session = self._run()
        return await self._session.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._session is not None
        return await self._session.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[DbConnection]:
        options = self._options
        if self._token is None and options.credentials is not None:
            self._token = await options.credentials.load()
        connect_error: ClientError | None = None
        body_error: Exception | None = None
        async with (
            httpx.AsyncClient(
                verify=options.verify, transport=options.transport, timeout=options.connect_timeout
            ) as client,
            anyio.create_task_group() as task_group,
        ):
            self._client = client
            self._http = SpacetimeHttpClient(options.base_url, token=self._token, client=client)
            try:
                task_group.start_soon(self._pending.run_timeouts, name="call timeouts")
                with anyio.fail_after(options.connect_timeout):
                    await task_group.start(self._run_sessions)
            except TimeoutError:
                connect_error = ConnectError(
                    f"no InitialConnection from {options.base_url} (database "
                    f"{options.database!r}) within {options.connect_timeout} s"
                )
            except Exception as exc:
                connect_error = _as_connect_error(sole_exception(exc))
            if connect_error is not None:
                self._set_state(_State.CLOSED)
                task_group.cancel_scope.cancel()
            else:
                self._task_group = task_group
                try:
                    await self._after_connect()
                    try:
                        yield self
                    except Exception as exc:  # re-raised below, unwrapped
                        body_error = exc
                except Exception as exc:  # from _after_connect or the scheduler's start
                    body_error = exc
                finally:
                    await self._shutdown()
        if connect_error is not None:
            for callback in options.on_connect_error:
                await call_callback_logged(
                    callback, connect_error, logger=log, what="on_connect_error"
                )
            raise connect_error
        if self._gave_up is not None:
            # The reconnect policy gave up: the body was cancelled; say why instead.
            raise self._gave_up
        if body_error is not None:
            raise body_error

    async def _after_connect(self) -> None:
        credentials = self._options.credentials
        if credentials is not None:
            await credentials.save(self.identity.to_hex(), self.token)
        for callback in self._options.on_connect:
            await call_callback_logged(
                callback, self, self.identity, self.token, logger=log, what="on_connect"
            )
        await self._attach_scheduler()

    async def _run_sessions(self, *, task_status: TaskStatus[None]) -> None:
        """The connection's sessions, one after another: the first (``task_status`` reports
        it up), then, after each drop and only with a reconnect policy, the next."""
        try:
            reason = await self._one_session(task_status)
            policy = self._options.reconnect
            while reason is not None and policy is not None and not self._closing:
                await self._lost(reason)
                reason = await self._reconnect(policy, reason)
            if reason is not None and not self._closing:
                log.warning("connection to %s lost: %s", self._options.base_url, reason)
                await self._mark_closed(reason)
            elif self._closing:
                await self._mark_closed(None)
        finally:
            self._session_done.set()

    async def _one_session(self, task_status: TaskStatus[None] | None) -> BaseException | None:
        """One WebSocket session: the upgrade, ``InitialConnection``, on a reconnect the
        subscriptions re-applied, then messages until it ends. Returns why it ended (``None``
        when we closed it); a failure before it is up raises.

        ``task_status`` is the first session's (``None`` for a reconnect, which runs under the
        connect timeout here instead of in :meth:`_run`).
        """
        options = self._options
        up = False
        error: BaseException | None = None
        deadline = math.inf if task_status else anyio.current_time() + options.connect_timeout
        try:
            with anyio.CancelScope(deadline=deadline) as handshake:
                async with open_websocket(
                    self._client_or_fail(),
                    subscribe_url(options.base_url, options.database),
                    params=options.query_params(),
                    token=self._token,
                    max_message_size=options.max_message_size,
                    protocol=options.protocol,
                ) as ws:
                    self._subprotocol = ws.subprotocol
                    messages = self._dispatch.decode(ws, await ws.receive())
                    first = messages[0]
                    if not isinstance(first, InitialConnection):
                        raise ProtocolError(
                            f"expected InitialConnection as the first message, got "
                            f"{type(first).__name__}"
                        )
                    if task_status is None and first.identity != self._identity:
                        self._refused = ConnectError(
                            f"the server answered the reconnect as identity {first.identity}, "
                            f"not {self._identity}"
                        )
                        raise self._refused
                    self._identity = first.identity
                    self._connection_id = first.connection_id
                    self._token = first.token
                    self._http.token = first.token
                    self._ws = ws
                    rest: list[Incoming] = messages[1:]
                    if task_status is None:
                        rest = await self._resubscribe(ws, rest)
                    handshake.deadline = math.inf
                    up = True
                    self._set_state(_State.OPEN)
                    if task_status is not None:
                        task_status.started()
                    else:
                        self._reconnect_scope = None
                        if self._task_group is not None:  # None once the block is ending
                            # Not awaited here: an on_connect that calls a reducer needs this
                            # task to go on receiving. It runs in the connection's task group.
                            self._task_group.start_soon(self._reconnected, name="on_connect")
                    await self._dispatch.handle(rest)
                    await self._dispatch.receive_loop(ws, lambda: self._closing)
            if handshake.cancelled_caught:
                raise ConnectError(
                    f"no InitialConnection from {options.base_url} (database "
                    f"{options.database!r}) within {options.connect_timeout} s"
                )
        except Exception as exc:
            if not up:
                raise
            error = sole_exception(exc)
        finally:
            self._ws = None
        if self._closing:
            return None
        return error if error is not None else ConnectionClosedError("the connection ended")

    async def _resubscribe(self, ws: WebSocket, messages: list[Incoming]) -> list[Incoming]:
        """On a new session: fetch the schema again (the module may have been updated while
        we were away), re-send ``Subscribe`` for every live subscription under its own query
        set id, and reconcile the cache with the answers. Returns the messages to handle
        next."""
        if self._schema is not None:
            raw = await self._http.schema_json(self._options.database, version=9)
            self._schema = ModuleSchema.from_json(raw)
        handles = self._dispatch.active_subscriptions()
        for query_set_id, handle in handles.items():
            request = Subscribe(self._pending.reserve_id(), query_set_id, list(handle.queries))
            ws.send_nowait(encode_client_message(request))
        _, held_back = await self._dispatch.resync(ws, messages, handles)
        return held_back

    async def _lost(self, reason: BaseException) -> None:
        """The session dropped and a reconnect follows: calls waiting for an answer fail with
        ConnectionLostError; subscriptions stay (they are re-applied); on_disconnect runs."""
        log.warning("connection to %s lost: %s; reconnecting", self._options.base_url, reason)
        self._set_state(_State.RECONNECTING)
        self._pending.lose(reason)
        for callback in self._options.on_disconnect:
            await call_callback_logged(callback, self, reason, logger=log, what="on_disconnect")

    async def _reconnect(
        self, policy: ReconnectPolicy, reason: BaseException
    ) -> BaseException | None:
        """Attempt after attempt, with backoff, until a session is up; then run it. Returns
        why that session ended (``None``: we closed it, or gave up)."""
        with anyio.CancelScope() as scope:
            self._reconnect_scope = scope
            try:
                return await self._attempts(policy, reason)
            finally:
                self._reconnect_scope = None
        return None  # disconnect() or the block's end cancelled the attempts

    async def _attempts(
        self, policy: ReconnectPolicy, reason: BaseException
    ) -> BaseException | None:
        """The attempts of :meth:`_reconnect`; a refused token or identity ends them at once
        (retrying cannot help)."""
        attempt = 0
        while not self._closing:
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                await self._give_up(attempt, reason)
                return None
            attempt += 1
            await anyio.sleep(policy.delay_micros(attempt, self._random.random()) / 1e6)
            try:
                return await self._one_session(None)
            except Exception as exc:
                reason = sole_exception(exc)
                log.info("reconnect attempt %d to %s failed: %s", attempt, self.uri, reason)
                if reason is self._refused or (
                    isinstance(reason, ConnectError) and reason.status in (401, 403)
                ):
                    await self._give_up(attempt, reason)
                    return None
        return None

    async def _give_up(self, attempts: int, reason: BaseException) -> None:
        """End the connection for good: the block's body is cancelled and the block raises
        the ConnectError made here."""
        plural = "" if attempts == 1 else "s"
        error = ConnectError(
            f"gave up reconnecting to {self._options.base_url} (database "
            f"{self._options.database!r}) after {attempts} attempt{plural}; last reason: {reason}"
        )
        error.__cause__ = reason
        log.error("%s", error)
        self._gave_up = error
        await self._mark_closed(error, report=False)
        for callback in self._options.on_connect_error:
            await call_callback_logged(callback, error, logger=log, what="on_connect_error")
        if self._task_group is not None:  # else the block is ending anyway
            self._task_group.cancel_scope.cancel()

    async def _reconnected(self) -> None:
        for callback in self._options.on_connect:
            await call_callback_logged(
                callback, self, self.identity, self.token, logger=log, what="on_connect"
            )

    def _set_state(self, state: _State) -> None:
        self._state = state
        self._notify()

    def _notify(self) -> None:
        """Wake the calls waiting for a reconnect, to look at the state again."""
        changed, self._state_changed = self._state_changed, anyio.Event()
        changed.set()

    def _client_or_fail(self) -> httpx.AsyncClient:
        assert self._client is not None, "only called inside _run"
        return self._client

    async def _mark_closed(self, reason: BaseException | None, *, report: bool = True) -> None:
        """Fail pending calls, end subscriptions and report the disconnect, exactly once."""
        if self._disconnect_reported:
            return
        self._disconnect_reported = True
        # While reconnecting, on_disconnect already heard about the drop.
        report = report and self._state is not _State.RECONNECTING
        self._set_state(_State.CLOSED)
        self._close_reason = reason
        if reason is not None:
            self._pending.lose(reason)  # calls already sent: their answers are lost
        self._pending.close(reason)
        await self._dispatch.end_all_subscriptions("the connection closed", reason)
        if report:
            for callback in self._options.on_disconnect:
                await call_callback_logged(callback, self, reason, logger=log, what="on_disconnect")

    def _stop_reconnecting(self) -> None:
        """We are closing: no further attempt, and calls waiting for one fail now."""
        self._closing = True
        scope = self._reconnect_scope
        if scope is not None:
            scope.cancel()
        self._notify()

    async def _shutdown(self) -> None:
        if self._state is _State.RECONNECTING:
            # No answer can come: let the scheduler's waiting calls fail at once, not at
            # their timeouts, so that it stops promptly.
            self._stop_reconnecting()
        # The scheduler stops first, while its running calls can still get their answers.
        with anyio.move_on_after(_SCHEDULER_GRACE, shield=True):
            await self._detach_scheduler()
        self._stop_reconnecting()
        self._pending.close(None)
        with anyio.move_on_after(_CLOSE_GRACE, shield=True) as grace:
            ws = self._ws
            if ws is not None:
                await ws.close()
            await self._session_done.wait()
        if grace.cancelled_caught:
            log.debug("the receive task did not end within %s s of closing", _CLOSE_GRACE)
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        self._task_group = None
        with anyio.CancelScope(shield=True):
            await self._mark_closed(None)

    async def disconnect(self) -> None:
        """Close the connection now (leaving the ``async with`` block does it too); stops
        reconnecting."""
        if self._state is not _State.OPEN and self._state is not _State.RECONNECTING:
            return
        self._stop_reconnecting()
        ws = self._ws
        if ws is not None:
            await ws.close()
        with anyio.move_on_after(_CLOSE_GRACE):
            await self._session_done.wait()
        await self._mark_closed(None)

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once the connection is up: at once if it is, else when a reconnect
        succeeds. :class:`~spacetime_sched.CallTimeoutError` (a ``TimeoutError``) after
        ``timeout`` seconds (``None``: no limit);
        :class:`~spacetime_sched.ConnectionClosedError` if it closed for good or has not
        connected yet (outside its ``async with`` block)."""
        await self._wait_open("wait_connected", check_timeout(timeout, "wait_connected"))

    async def _wait_open(self, what: str, timeout: float | None) -> float | None:  # noqa: ASYNC109
        """Wait while the connection reconnects, within ``timeout`` seconds; return what is
        left of it. Raises as :meth:`_ensure_open` when the connection is not (or no longer)
        usable, and :class:`CallTimeoutError` if it is not back in time."""
        self._ensure_open(what)
        if self._state is _State.OPEN:
            return timeout
        started = anyio.current_time()
        with anyio.move_on_after(timeout):
            while self._state is _State.RECONNECTING and not self._closing:
                await self._state_changed.wait()
        self._ensure_open(what)
        if not self.is_connected:
            raise CallTimeoutError(f"{what}: the connection was not back within {timeout} s")
        if timeout is None:
            return None
        return max(0.0, timeout - (anyio.current_time() - started))

    # --- sending ------------------------------------------------------------------------------

    def _ensure_open(self, what: str) -> None:
        if self._state is _State.NEW:
            raise ConnectionClosedError(
                f"{what}: not connected yet (use 'async with conn:' or "
                "'async with builder.build() as conn:')"
            )
        if self._state is _State.CLOSED or self._closing:
            raise ConnectionClosedError(
                f"{what}: the connection is closed"
                + (f" ({self._close_reason})" if self._close_reason else "")
            ) from self._close_reason

    def _send(self, message: ClientMessage) -> None:
        self._send_encoded(encode_client_message(message))

    def _send_encoded(self, message: bytes) -> None:
        # Queues the message for the writer task; no checkpoint, so a call costs one task
        # switch (waiting for its answer), however many calls are in flight.
        ws = self._ws
        if ws is None:
            raise ConnectionClosedError("the connection is closed") from self._close_reason
        ws.send_nowait(message)

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

    def _row_model(self) -> RowModel | None:
        schema = self._schema
        return None if schema is None else row_model(schema)

    async def _load_row_model(self) -> RowModel:
        return row_model(await self.module_schema())

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
        what = f"reducer {_name(reducer_name, 'reducer_name')!r}"
        timeout = check_timeout(timeout, what)
        if self._state is not _State.OPEN or self._closing:
            timeout = await self._wait_open(what, timeout)
        # The schema is fetched once (and again after a reconnect): no await per call for it.
        schema = self._schema
        if schema is None:
            schema = await self.module_schema()
        args_bytes = schema.callable_reducer(reducer_name).encode_args(args)
        return await self._call_reducer(reducer_name, what, args_bytes, timeout)

    async def call_reducer_raw(
        self,
        reducer_name: str,
        args: bytes,
        *,
        timeout: float | None = 30.0,  # noqa: ASYNC109 (a per-call deadline, like the rest)
    ) -> ReducerCallResult:
        """Call a reducer with already encoded BSATN arguments (no schema check)."""
        what = f"reducer {_name(reducer_name, 'reducer_name')!r}"
        if not isinstance(args, (bytes, bytearray, memoryview)):
            raise ArgumentError(
                f"{what}: args: expected the BSATN-encoded arguments as bytes, got "
                f"{type(args).__name__} (call_reducer_async encodes Python values)"
            )
        timeout = check_timeout(timeout, what)
        if self._state is not _State.OPEN or self._closing:
            timeout = await self._wait_open(what, timeout)
        return await self._call_reducer(reducer_name, what, bytes(args), timeout)

    async def _call_reducer(
        self,
        reducer_name: str,
        what: str,
        args: bytes,
        timeout: float | None,  # noqa: ASYNC109
    ) -> ReducerCallResult:
        # The hot path of every call: register, send, wait, forget; no context manager, no
        # message object to send, and Waiter.wait inlined (docs/client.md, "Where the
        # client's time goes").
        pending = self._pending
        request_id, waiter = pending.register(what)
        try:
            self._send_encoded(encode_call_reducer(request_id, reducer_name, args))
            if timeout is not None:
                pending.add_deadline(timeout, waiter)
            await waiter.parking
        finally:
            pending.forget(request_id, waiter)
        result: PlainReducerResult | ReducerResult = waiter.answer()
        if type(result) is PlainReducerResult:  # the usual answer (see PlainReducerResult)
            return ReducerCallResult(
                reducer_name,
                request_id,
                Timestamp._unchecked(result.micros),
                result.ret_value,
                _EMPTY_UPDATE,
            )
        assert isinstance(result, ReducerResult)
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
        what = f"procedure {_name(procedure_name, 'procedure_name')!r}"
        timeout = check_timeout(timeout, what)
        timeout = await self._wait_open(what, timeout)
        procedure = (await self.module_schema()).callable_procedure(procedure_name)
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
        if not isinstance(sql, str):
            raise ArgumentError(f"query: sql: expected an SQL string, got {type(sql).__name__}")
        what = f"query {sql!r}"
        timeout = check_timeout(timeout, what)
        timeout = await self._wait_open(what, timeout)
        await self.module_schema()
        with self._pending.expect(what) as (request_id, waiter):
            self._send(OneOffQuery(request_id, sql))
            result: OneOffQueryResult = await waiter.wait(timeout)
        if not isinstance(result.result, QueryRows):
            raise QueryError(f"{what} failed: {result.result}")
        decoded: dict[str, list[Any]] = {}
        for single in result.result.tables:
            decoded.setdefault(single.table, []).extend(
                self._dispatch.decode_rows(single.table, single.rows)[1]
            )
        return decoded

    async def subscribe(
        self,
        queries: Sequence[str] | str,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        buffer_updates: bool = True,
        timeout: float | None = 30.0,  # noqa: ASYNC109
    ) -> SubscriptionHandle:
        """Subscribe to the rows matched by SQL ``SELECT`` queries (one query set).

        Returns once the server applied it, with the matched rows in ``handle.rows`` and in
        the client cache (``conn.db``). Later changes go to ``on_update`` callbacks and, unless
        ``buffer_updates=False``, to ``async for update in handle`` (they are buffered until
        read, so iterate, or turn buffering off). :class:`~spacetime_sched.QueryError` if the
        server rejects a query; ``on_error(error)`` if the subscription ends with an error
        later (see :meth:`SubscriptionHandle.on_error`). With a reconnect policy, the
        subscription is re-applied after every reconnect.
        """
        query_list = _queries(queries)
        what = f"subscribe {query_list!r}"
        timeout = check_timeout(timeout, what)
        if on_update is not None and not callable(on_update):
            raise ArgumentError(f"{what}: on_update: expected a function, got {on_update!r}")
        if on_error is not None and not callable(on_error):
            raise ArgumentError(f"{what}: on_error: expected a function, got {on_error!r}")
        timeout = await self._wait_open(what, timeout)
        await self.module_schema()
        query_set_id = self._next_query_set_id
        self._next_query_set_id += 1
        handle = SubscriptionHandle(
            query_set_id, query_list, unsubscribe=self._unsubscribe, buffer_updates=buffer_updates
        )
        if on_update is not None:
            handle.on_update(on_update)
        if on_error is not None:
            handle.on_error(on_error)
        self._dispatch.add_subscription(handle)
        try:
            with self._pending.expect(what) as (request_id, waiter):
                self._send(Subscribe(request_id, query_set_id, query_list))
                answer = await waiter.wait(timeout)
        except BaseException:
            self._dispatch.forget_subscription(query_set_id)
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
        timeout = check_timeout(timeout, what)
        self._ensure_open(what)
        if self._state is _State.RECONNECTING:
            # The server forgot every subscription with the old session; not re-applying this
            # one is all an unsubscribe means now.
            await self._dispatch.end_subscription(handle, None)
            return
        try:
            with self._pending.expect(what) as (request_id, waiter):
                self._send(Unsubscribe(request_id, handle.query_set_id, UnsubscribeFlags.Default))
                answer = await waiter.wait(timeout)
        except ConnectionLostError:
            # Same: the session that held it is gone.
            await self._dispatch.end_subscription(handle, None)
            return
        await self._dispatch.end_subscription(handle, None)
        if isinstance(answer, SubscriptionError):
            raise QueryError(f"{what} failed: {answer.error}")

    def table(self, name: str) -> TableCache:
        """The cached rows of table ``name`` (same as ``conn.db[name]``)."""
        return self.db.table(name)

    # --- the module's own schedule tables -------------------------------------------------------

    async def schedule_tables(self) -> list[ScheduleTable]:
        """The module's schedule tables (table, scheduled reducer, ScheduleAt column, id
        column), from the schema."""
        return schedule_tables(await self.module_schema())

    def server_schedules(self, table: str) -> AbstractAsyncContextManager[ServerSchedules]:
        """Watch schedule table ``table``: ``async with conn.server_schedules("t") as watch:``
        subscribes to it and keeps its rows with their next fire times on the server's clock
        (see :class:`ServerSchedules`); the block's end unsubscribes."""
        return self._server_schedules(table)

    @asynccontextmanager
    async def _server_schedules(self, table: str) -> AsyncIterator[ServerSchedules]:
        self._ensure_open(f"server_schedules({table!r})")
        definition = find_schedule_table(await self.module_schema(), table)
        watch = ServerSchedules(
            definition,
            self.db.table(table),
            self.subscribe,
            lambda samples: self.estimate_clock_skew(samples=samples),
        )
        async with watch:
            yield watch

    # --- clock ----------------------------------------------------------------------------------

    async def estimate_clock_skew(self, *, samples: int = 5) -> TimeDuration:
        """How far the server's clock is ahead of ours (see
        :meth:`SpacetimeHttpClient.estimate_clock_skew`)."""
        return await self._http.estimate_clock_skew(self._options.database, samples=samples)

    # --- scheduling ---------------------------------------------------------------------------

    @property
    def scheduler(self) -> ReducerScheduler:
        """This connection's scheduler: made on first access, never started by it.

        Schedules can be added at any time, even before the connection connects; they run once
        the scheduler starts. It starts when the connection connects if
        ``with_scheduling(auto_start=True)`` was given (the default of ``with_scheduling``),
        else at ``await conn.scheduler.start()`` inside the ``async with`` block. Either way
        it runs in the connection's own task group, and stops at ``await
        conn.scheduler.stop()`` or when the block ends. ``max_concurrent_executions`` comes
        from ``with_scheduling`` (else the scheduler's default).
        """
        return cast("ReducerScheduler", self._own_scheduler())

    def _own_scheduler(self) -> ConnectionScheduler:
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = new_scheduler(self, self._options.max_concurrent_executions)
            self._scheduler = scheduler
            if self._task_group is not None and self._state in (_State.OPEN, _State.RECONNECTING):
                scheduler.bind(self._task_group)
        return scheduler

    async def _attach_scheduler(self) -> None:
        """On connect: give an existing scheduler (or, with auto-start, a new one) the
        connection's task group, and start it if asked to."""
        if self._scheduler is None and not self._options.auto_scheduler:
            return
        scheduler = self._own_scheduler()
        assert self._task_group is not None
        scheduler.bind(self._task_group)
        if self._options.auto_scheduler:
            await scheduler.start()

    async def _detach_scheduler(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None:
            try:
                await scheduler.stop()
            finally:
                scheduler.unbind()

    @asynccontextmanager
    async def scheduling(
        self, *, max_concurrent_executions: int | None = None
    ) -> AsyncIterator[ReducerScheduler]:
        """Run another scheduler, for the duration of the block, in the connection's task
        group (stopped, its running calls drained, when the block ends)."""
        self._ensure_open("scheduling")
        assert self._task_group is not None
        limit = max_concurrent_executions or self._options.max_concurrent_executions
        scheduler = new_scheduler(self, limit)
        scheduler.bind(self._task_group)
        try:
            await scheduler.start()
            yield cast("ReducerScheduler", scheduler)
        finally:
            with anyio.CancelScope(shield=True):
                await scheduler.stop()
            scheduler.unbind()


def _name(name: object, what: str) -> str:
    """A reducer or procedure name, or :class:`ArgumentError` naming ``what``."""
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"{what}: expected a non-empty str, got {name!r}")
    return name


def _queries(queries: object) -> list[str]:
    """``subscribe``'s queries as a list of SQL strings, or :class:`ArgumentError`."""
    if isinstance(queries, str):
        return [queries]
    if not isinstance(queries, (list, tuple)):
        raise ArgumentError(
            "subscribe: queries: expected an SQL string or a list of them, got "
            f"{type(queries).__name__}"
        )
    if not queries or len(queries) > _MAX_QUERIES:
        raise ArgumentError(
            f"subscribe: queries: expected 1 to {_MAX_QUERIES} queries, got {len(queries)}"
        )
    for index, query in enumerate(queries):
        if not isinstance(query, str):
            raise ArgumentError(
                f"subscribe: queries[{index}]: expected an SQL string, got {type(query).__name__}"
            )
    return list(queries)


def _as_connect_error(exc: BaseException) -> ClientError:
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, ConnectionClosedError):
        error = ConnectError(
            f"the connection closed before InitialConnection ({exc}): the server accepted the "
            "WebSocket, so the token was not refused; the module's client_connected reducer "
            "may have rejected the connection"
        )
    elif isinstance(exc, SpacetimeSchedError):
        error = ConnectError(f"could not connect: {exc}")
    else:
        error = ConnectError(f"could not connect: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
