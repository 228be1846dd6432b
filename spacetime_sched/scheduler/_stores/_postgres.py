"""PostgresStore: several scheduler instances on one PostgreSQL, each fire claimed once.

What the database guarantees, and how:

* **One claim per fire.** ``fires`` has the primary key ``(schedule_id, fire_micros)``; a claim
  is ``INSERT ... ON CONFLICT DO NOTHING``, so exactly one instance's insert lands. A batch is
  one statement in one transaction, sorted by key so two racing batches lock rows in the same
  order and cannot deadlock. :meth:`PostgresStore.claim_fires` can save the schedule advanced
  past the fire (``advanced=``) in the same transaction as the claim.
* **Leases.** A claim row carries ``owner``, ``lease_until_micros`` (the database server's
  clock, which every instance shares, plus ``lease_ttl``) and a ``state``: ``claimed`` (not
  started), ``running``, ``done`` or ``interrupted``. A live instance renews its leases
  (:meth:`~PostgresStore.renew_leases`); the fires of an instance that died are taken over by a
  live one once their leases expire (:meth:`~PostgresStore.take_over_expired`, with
  ``FOR UPDATE SKIP LOCKED`` so two takers never take the same fire). A graceful shutdown
  gives back the claims it has not started (:meth:`~PostgresStore.release_claims`).
* **Delivery.** Whether a taken-over fire runs again follows the schedule's
  ``policy["delivery"]``: a fire that had not started runs in any case (it never ran); a fire
  that was *running* runs again only under ``"at_least_once"``, and under ``"at_most_once"``
  (the default: reducer calls are not idempotent) it is marked ``interrupted`` for the taker
  to report. See ``docs/triggers-and-stores.md``.
* **Changes wake other instances.** Every save and delete sends ``NOTIFY`` on a channel per
  schema, in the same transaction (so it arrives only if the change committed). The store
  keeps a listener connection while it is open, and :meth:`~PostgresStore.changes` yields the
  ids that *other* instances changed.
* **Schema.** Tables live in their own PostgreSQL schema (``schema=``, default
  ``spacetime_sched``), created and migrated on open under a transaction-scoped advisory lock,
  so instances starting together migrate once; ``schema_version`` records each version.

Concurrency model: psycopg 3's async API runs on asyncio only, so this store uses psycopg's
*sync* API in anyio worker threads, on asyncio and trio alike: one code path, tested once on
both backends. The thread hop costs microseconds next to a network round trip, and batches
(``save_many``, ``claim_fires``) amortise it. Up to ``max_connections`` calls run at once, each
on its own connection (a :class:`~anyio.CapacityLimiter` admits them; idle connections are
kept for reuse). No pool library: psycopg_pool would start maintenance threads of its own.
The listener waits for notifications in a worker thread too, a quarter of a second at a time,
so closing the store takes at most that long.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..._errors import InvalidScheduleError, ScheduleStoreError
from ..._time import TimeDuration, Timestamp
from ._base import (
    DEFAULT_FIRE_RETENTION,
    ExpiredFire,
    StoreBase,
    StoredSchedule,
    check_schedule_id,
    default_owner,
)

# One row layout for both SQL stores: the SQLite store's row codec (tagged JSON columns).
from ._sqlite import _record_from_row, _row_values, _rows_to_save

__all__ = ["ExpiredFire", "PostgresStore", "SCHEMA_VERSION"]

logger = logging.getLogger("spacetime_sched.scheduler.store")

_R = TypeVar("_R")

#: The newest schema this code writes; :data:`_MIGRATIONS` leads there one version at a time.
SCHEMA_VERSION: Final = 1

#: ``(version, statements)``: applied in order to reach each version. ``{s}`` is the schema.
_MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            """CREATE TABLE {s}.schedules (
                id                text PRIMARY KEY,
                reducer_name      text NOT NULL,
                args              text NOT NULL,
                trigger           text NOT NULL,
                policy            text NOT NULL,
                metadata          text NOT NULL,
                status            text NOT NULL,
                run_count         bigint NOT NULL,
                next_run_micros   bigint,
                created_at_micros bigint NOT NULL,
                updated_by        text NOT NULL,
                position          bigint GENERATED ALWAYS AS IDENTITY
            )""",
            """CREATE TABLE {s}.fires (
                schedule_id        text NOT NULL,
                fire_micros        bigint NOT NULL,
                owner              text NOT NULL,
                state              text NOT NULL
                    CHECK (state IN ('claimed', 'running', 'done', 'interrupted')),
                lease_until_micros bigint NOT NULL,
                PRIMARY KEY (schedule_id, fire_micros)
            )""",
            "CREATE INDEX fires_by_time ON {s}.fires (fire_micros)",
            # Only live claims have leases worth scanning for; finished rows stay out of it.
            """CREATE INDEX fires_live_leases ON {s}.fires (lease_until_micros)
                WHERE state IN ('claimed', 'running')""",
        ),
    ),
)

#: How long a claim stays its owner's without a renewal, by default.
DEFAULT_LEASE_TTL: Final = TimeDuration.from_seconds(30)

#: The database server's clock in integer microseconds (``extract`` is numeric: exact).
_DB_NOW: Final = "floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

#: Schema names we accept: plain lower-case identifiers, short enough for the channel name.
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,39}")

#: More changed ids than this in one transaction send one "reload everything" notification.
_NOTIFY_EACH_UP_TO: Final = 64

#: Bytes PostgreSQL allows in one notification payload is 8000; stay clear of it.
_MAX_PAYLOAD: Final = 7000

#: Changed ids held for :meth:`PostgresStore.changes` before it collapses them to "all".
_MAX_PENDING_CHANGES: Final = 10_000

#: How many successful claims pass between two automatic prunes of old fire claims.
_PRUNE_EVERY: Final = 1024

#: Errors after which the same transaction may simply be tried again.
_RETRYABLE: Final = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
_RETRIES: Final = 5

#: How long the listener thread waits for a notification before checking whether to stop (s).
_LISTEN_SLICE: Final = 0.25


def _safe_dsn(dsn: str) -> tuple[str, str, str]:
    """``(display, password, checked dsn)``: the DSN shown without any password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # The message of the parse error quotes the DSN, password included: never show it.
        raise InvalidScheduleError(
            "PostgresStore: the DSN is not a valid libpq connection string or "
            "postgresql:// URI (not shown: it may contain a password)"
        ) from None
    password = str(params.pop("password", "") or "")
    params.pop("sslpassword", None)
    display = make_conninfo("", **params) if params else "(libpq defaults)"
    return display, password, dsn


class PostgresStore(StoreBase):
    """Schedules, fire claims and leases in PostgreSQL, shared by any number of instances.

    ``dsn`` is a libpq connection string or ``postgresql://`` URI. Use the store as an async
    context manager: entering it connects, creates or migrates the schema and starts the
    listener for :meth:`changes`; an unreachable server, bad credentials or a missing database
    raise :class:`~spacetime_sched.ScheduleStoreError` there, naming the DSN without its
    password.

    ``owner`` names this instance in the rows it writes (default ``host:pid``). ``schema``
    is the PostgreSQL schema holding the tables (one per independent set of schedulers).
    ``lease_ttl`` is how long a claim stays this instance's without a renewal.
    ``fire_retention`` bounds the claim ledger as in :class:`SQLiteStore`.
    ``max_connections`` bounds the connections (and worker threads) used at once, besides
    the listener's and one for lease renewals; ``connect_timeout`` is in whole seconds
    (libpq's unit).
    """

    def __init__(
        self,
        dsn: str,
        *,
        owner: str | None = None,
        schema: str = "spacetime_sched",
        lease_ttl: TimeDuration = DEFAULT_LEASE_TTL,
        fire_retention: TimeDuration = DEFAULT_FIRE_RETENTION,
        max_connections: int = 4,
        connect_timeout: int = 10,
    ) -> None:
        super().__init__()
        if type(dsn) is not str:
            raise TypeError(f"PostgresStore: dsn must be a str, got {type(dsn).__name__}")
        self._display, self._password, self._dsn = _safe_dsn(dsn)
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidScheduleError(
                f"PostgresStore.schema: {schema!r} is not a lower-case identifier of at most "
                "40 characters (letters, digits, _)"
            )
        if lease_ttl.micros <= 0:
            raise InvalidScheduleError("PostgresStore.lease_ttl must be positive")
        if fire_retention.micros <= 0:
            raise InvalidScheduleError("PostgresStore.fire_retention must be positive")
        if not 1 <= max_connections <= 100:
            raise InvalidScheduleError("PostgresStore.max_connections must be in 1..100")
        if not 1 <= connect_timeout <= 3600:
            raise InvalidScheduleError("PostgresStore.connect_timeout must be in 1..3600 s")
        self.owner = default_owner() if owner is None else owner
        self.schema = schema
        self.channel = f"spacetime_sched_{schema}"
        self.lease_ttl = lease_ttl
        self._retention = fire_retention.micros
        self._connect_timeout = connect_timeout
        self._limiter = anyio.CapacityLimiter(max_connections)
        # Lease renewals have a connection of their own: queued behind a burst of claims and
        # saves, a renewal could come too late and hand a live instance's fires to another.
        self._lease_limiter = anyio.CapacityLimiter(1)
        self._idle: list[psycopg.Connection[Any]] = []
        # Guards _idle against the worker threads and aclose: a connection is either idle,
        # in one worker's hands, or closed, never lost.
        self._idle_lock = threading.Lock()
        self._s = sql.Identifier(schema)
        #: Marks this instance's own notifications, so :meth:`changes` skips them.
        self._token = secrets.token_hex(8)
        self._claims_since_prune = 0
        self._state = "new"  # new -> open -> closed
        self._task_group: anyio.abc.TaskGroup | None = None
        self._listen_scope: anyio.CancelScope | None = None
        self._pending: set[str] = set()
        self._pending_all = False
        self._changed: anyio.Event | None = None  # made in __aenter__, inside the event loop

    # -- errors never show the password ---------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> ScheduleStoreError:
        text = str(exc).strip()
        if self._password:
            text = text.replace(self._password, "***")
        return ScheduleStoreError(f"PostgresStore({self._display!r}): {what}: {text}")

    # -- connections (worker threads only) ------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._dsn,
                autocommit=True,  # transactions are explicit: `with conn.transaction()`
                connect_timeout=self._connect_timeout,
                application_name="spacetime_sched",
            )
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc) from None

    def _q(self, text: str) -> sql.Composed:
        """SQL with ``{s}`` replaced by the quoted schema name."""
        return sql.SQL(text).format(s=self._s)

    def _take_connection(self) -> psycopg.Connection[Any]:
        with self._idle_lock:
            if self._state == "closed":  # closed while this call waited for a worker
                raise ScheduleStoreError(f"PostgresStore({self._display!r}) is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, connection: psycopg.Connection[Any]) -> None:
        with self._idle_lock:
            if not connection.broken and self._state != "closed":
                self._idle.append(connection)
                return
        connection.close()

    def _in_thread(self, work: Callable[[psycopg.Connection[Any]], _R]) -> _R:
        """Run ``work`` in one transaction on an idle (or new) connection; retry deadlocks."""
        connection = self._take_connection()
        try:
            for attempt in range(_RETRIES):
                try:
                    with connection.transaction():
                        return work(connection)
                except _RETRYABLE:
                    if attempt == _RETRIES - 1:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover
        except psycopg.Error as exc:
            raise self._error("query failed", exc) from None
        finally:
            self._give_back(connection)

    async def _run(
        self,
        work: Callable[[psycopg.Connection[Any]], _R],
        limiter: anyio.CapacityLimiter | None = None,
    ) -> _R:
        if self._state != "open":
            raise ScheduleStoreError(
                f"PostgresStore({self._display!r}) is closed"
                if self._state == "closed"
                else f"PostgresStore({self._display!r}) is not open: use `async with store:`"
            )
        # Not abandoned on cancellation: the thread finishes its transaction and hands its
        # connection back, so a cancelled call leaves the store consistent and usable.
        return await anyio.to_thread.run_sync(
            self._in_thread, work, limiter=self._limiter if limiter is None else limiter
        )

    # -- opening: migrate, listen ---------------------------------------------------------------

    def _migrate(self, connection: psycopg.Connection[Any]) -> None:
        # One migrator at a time per schema; the lock ends with the transaction.
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"spacetime_sched:{self.schema}",)
        )
        connection.execute(self._q("CREATE SCHEMA IF NOT EXISTS {s}"))
        connection.execute(
            self._q(
                "CREATE TABLE IF NOT EXISTS {s}.schema_version ("
                "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        row = connection.execute(self._q("SELECT max(version) FROM {s}.schema_version")).fetchone()
        current = 0 if row is None or row[0] is None else int(row[0])
        if current > SCHEMA_VERSION:
            raise ScheduleStoreError(
                f"PostgresStore({self._display!r}): schema {self.schema!r} has version "
                f"{current}, newer than this spacetime_sched understands ({SCHEMA_VERSION}); "
                "upgrade it"
            )
        for version, statements in _MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                connection.execute(self._q(statement))
            connection.execute(
                self._q("INSERT INTO {s}.schema_version (version) VALUES (%s)"), (version,)
            )
            logger.info("schedule store: schema %r migrated to version %d", self.schema, version)

    def _open_listener(self) -> psycopg.Connection[Any]:
        connection = self._connect()
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except psycopg.Error as exc:
            connection.close()
            raise self._error("cannot LISTEN", exc) from None
        return connection

    async def __aenter__(self) -> PostgresStore:
        if self._state != "new":
            raise ScheduleStoreError(f"PostgresStore({self._display!r}) can be entered once")
        self._state = "open"
        self._changed = anyio.Event()
        try:
            await self._run(self._migrate)
            listener = await anyio.to_thread.run_sync(self._open_listener)
        except BaseException:
            await self.aclose()
            raise
        # The listener task lives in a task group this store owns for its `async with`.
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        try:
            await task_group.start(self._listen, listener)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            task_group, self._task_group = self._task_group, None
            if task_group is not None:  # waits for the listener, which aclose() cancelled
                # Nothing cancels the group's own scope, so it never swallows `exc`.
                await task_group.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop listening and close every connection (idempotent; callable from any task).
        Later calls raise ScheduleStoreError."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._changed is not None:
            self._changed.set()  # end every changes() iteration
        if self._listen_scope is not None:
            self._listen_scope.cancel()
        with anyio.CancelScope(shield=True):  # never leak connections on cancellation
            await anyio.to_thread.run_sync(self._close_idle)

    def _close_idle(self) -> None:
        # Calls still running close their own connections when they finish (_give_back).
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- change notifications --------------------------------------------------------------------

    def _notify(self, connection: psycopg.Connection[Any], ids: Sequence[str]) -> None:
        """Tell other instances (on commit) that these schedules changed."""
        if not ids:
            return
        payloads = [json.dumps([self._token, sid]) for sid in ids]
        if len(payloads) > _NOTIFY_EACH_UP_TO or any(len(p) > _MAX_PAYLOAD for p in payloads):
            payloads = [json.dumps([self._token, None])]  # "reload everything"
        with connection.cursor() as cursor:
            cursor.executemany(
                "SELECT pg_notify(%s, %s)", [(self.channel, payload) for payload in payloads]
            )

    async def _listen(
        self,
        connection: psycopg.Connection[Any] | None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Feed :meth:`changes` from the listener connection; reconnect if it breaks.

        Runs until :meth:`aclose` cancels its scope (not the task group's: that one also
        covers the body of the caller's ``async with``).
        """
        backoff = 0.5
        with anyio.CancelScope() as self._listen_scope:
            task_status.started()
            await self._listen_loop(connection, backoff)

    async def _listen_loop(
        self, connection: psycopg.Connection[Any] | None, backoff: float
    ) -> None:
        try:
            while True:
                if connection is None:
                    try:
                        connection = await anyio.to_thread.run_sync(self._open_listener)
                    except ScheduleStoreError as exc:
                        logger.warning("schedule store: listener: %s; retrying", exc)
                        await anyio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    self._note_change(None)  # notifications may have been missed meanwhile
                    backoff = 0.5
                try:
                    payloads = await anyio.to_thread.run_sync(self._wait_notifies, connection)
                except psycopg.Error as exc:
                    logger.warning("schedule store: listener connection lost: %s", exc)
                    await anyio.to_thread.run_sync(connection.close)
                    connection = None
                    continue
                for payload in payloads:
                    self._on_payload(payload)
        finally:
            if connection is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(connection.close)

    @staticmethod
    def _wait_notifies(connection: psycopg.Connection[Any]) -> list[str]:
        """Payloads that arrive within a short slice (runs in a worker thread)."""
        first = [n.payload for n in connection.notifies(timeout=_LISTEN_SLICE, stop_after=1)]
        if first:  # drain what came with it, without waiting a whole slice
            first += [n.payload for n in connection.notifies(timeout=0.001, stop_after=1000)]
        return first

    def _on_payload(self, payload: str) -> None:
        try:
            token, schedule_id = json.loads(payload)
        except (ValueError, TypeError):
            logger.warning("schedule store: ignoring a malformed notification")
            return
        if token == self._token:
            return  # our own change
        self._note_change(schedule_id if isinstance(schedule_id, str) else None)

    def _note_change(self, schedule_id: str | None) -> None:
        if schedule_id is None or len(self._pending) >= _MAX_PENDING_CHANGES:
            self._pending_all = True
            self._pending.clear()
        elif not self._pending_all:
            self._pending.add(schedule_id)
        if self._changed is not None:
            self._changed.set()

    async def changes(self) -> AsyncIterator[str | None]:
        """Schedule ids that other instances saved or deleted, as they commit.

        ``None`` means "anything may have changed: reload everything" (a large batch, the
        listener reconnecting after notifications may have been lost, or more pending ids
        than this store holds). Ids changed several times before being read come once. The
        iteration ends when the store closes. Meant for one consumer (the engine).
        """
        if self._changed is None:
            raise ScheduleStoreError(
                f"PostgresStore({self._display!r}) is not open: use `async with store:`"
            )
        while True:
            await self._changed.wait()
            if self._state == "closed":
                return
            self._changed = anyio.Event()
            pending, everything = self._pending, self._pending_all
            self._pending, self._pending_all = set(), False
            if everything:
                yield None
            for schedule_id in sorted(pending):
                yield schedule_id

    # -- the store protocol ----------------------------------------------------------------------

    _COLUMNS: Final = (
        "id, reducer_name, args, trigger, policy, metadata, status, run_count, "
        "next_run_micros, created_at_micros"
    )
    _UPSERT: Final = """
        INSERT INTO {s}.schedules (id, reducer_name, args, trigger, policy, metadata, status,
                                   run_count, next_run_micros, created_at_micros, updated_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET
            reducer_name = excluded.reducer_name, args = excluded.args,
            trigger = excluded.trigger, policy = excluded.policy, metadata = excluded.metadata,
            status = excluded.status, run_count = excluded.run_count,
            next_run_micros = excluded.next_run_micros,
            created_at_micros = excluded.created_at_micros, updated_by = excluded.updated_by
    """

    async def load_all(self) -> list[StoredSchedule]:
        query = self._q(f"SELECT {self._COLUMNS} FROM {{s}}.schedules ORDER BY position")
        rows = await self._run(lambda c: c.execute(query).fetchall())
        records: list[StoredSchedule] = []
        errors: list[ScheduleStoreError] = []
        for row in rows:
            try:
                records.append(_record_from_row(tuple(row)))
            except (ValueError, TypeError, RecursionError) as exc:
                error = ScheduleStoreError(
                    f"schedule {row[0]!r} in PostgresStore({self._display!r}): {exc}"
                )
                logger.error("schedule store: skipping unreadable record: %s", error)
                errors.append(error)
        self.load_errors = errors
        return records

    async def load_many(self, schedule_ids: Sequence[str]) -> list[StoredSchedule]:
        """The readable records among ``schedule_ids``, in store order (absent ids were
        deleted). Unreadable records are logged and skipped."""
        ids = sorted({check_schedule_id(schedule_id) for schedule_id in schedule_ids})
        if not ids:
            return []
        query = self._q(
            f"SELECT {self._COLUMNS} FROM {{s}}.schedules WHERE id = ANY(%s) ORDER BY position"
        )
        rows = await self._run(lambda c: c.execute(query, (ids,)).fetchall())
        records: list[StoredSchedule] = []
        for row in rows:
            try:
                records.append(_record_from_row(tuple(row)))
            except (ValueError, TypeError, RecursionError) as exc:
                logger.error("schedule store: skipping unreadable record %r: %s", row[0], exc)
        return records

    def _save_rows(self, connection: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
        rows = sorted(rows, key=lambda row: str(row[0]))  # one lock order for racing batches
        with connection.cursor() as cursor:
            cursor.executemany(self._q(self._UPSERT), rows)
        self._notify(connection, [row[0] for row in rows])

    async def save(self, record: StoredSchedule) -> None:
        await self.save_many((record,))

    async def save_many(self, records: Iterable[StoredSchedule]) -> None:
        """Insert or replace each record, all or none, and notify other instances."""
        rows = _rows_to_save(records, self.owner)  # bad args fail before any I/O
        if rows:
            await self._run(lambda c: self._save_rows(c, rows))

    async def delete(self, schedule_id: str) -> None:
        await self.delete_many((schedule_id,))

    async def delete_many(self, schedule_ids: Iterable[str]) -> None:
        """Forget each schedule (unknown ids are ignored), all or none."""
        ids = sorted({check_schedule_id(schedule_id) for schedule_id in schedule_ids})
        if not ids:
            return
        query = self._q("DELETE FROM {s}.schedules WHERE id = ANY(%s) RETURNING id")

        def delete(connection: psycopg.Connection[Any]) -> None:
            gone = [row[0] for row in connection.execute(query, (ids,)).fetchall()]
            self._notify(connection, gone)

        await self._run(delete)

    async def claim_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        (won,) = await self.claim_fires(((schedule_id, fire_time),), owner)
        return won

    async def claim_fires(
        self,
        fires: Iterable[tuple[str, Timestamp]],
        owner: str,
        *,
        advanced: Sequence[StoredSchedule | None] | None = None,
    ) -> list[bool]:
        """:meth:`claim_fire` for each (schedule id, fire time), in order, in one transaction.

        ``advanced``, if given, runs parallel to ``fires``: the record of each won fire's
        schedule as it is after that fire (next run moved on, run count up) is saved in the
        same transaction as the claim, so no instance ever sees the claim without the advance.
        A won claim is ``claimed`` by ``owner`` with a lease of ``lease_ttl``.
        """
        keys = [
            (check_schedule_id(schedule_id), fire_time.micros_since_epoch)
            for schedule_id, fire_time in fires
        ]
        if advanced is not None and len(advanced) != len(keys):
            raise ValueError(f"claim_fires: {len(advanced)} advanced records for {len(keys)} fires")
        if not keys:
            return []
        unique = sorted(set(keys))  # sorted: racing batches lock keys in one order
        claim = self._q(
            "INSERT INTO {s}.fires (schedule_id, fire_micros, owner, state, lease_until_micros) "
            f"SELECT k.sid, k.fire, %s, 'claimed', {_DB_NOW} + %s "
            "FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS k(sid, fire, i) "
            "ORDER BY k.i ON CONFLICT DO NOTHING RETURNING schedule_id, fire_micros"
        )
        params = (
            owner,
            self.lease_ttl.micros,
            [sid for sid, _ in unique],
            [fire for _, fire in unique],
        )

        def claim_all(connection: psycopg.Connection[Any]) -> list[bool]:
            landed = {(r[0], r[1]) for r in connection.execute(claim, params).fetchall()}
            won, seen = [], set()
            for key in keys:  # a duplicate within the batch loses to its first occurrence
                won.append(key in landed and key not in seen)
                seen.add(key)
            if advanced is not None:
                rows = [
                    _row_values(rec, owner)
                    for rec, ok in zip(advanced, won, strict=True)
                    if ok and rec is not None
                ]
                if rows:
                    self._save_rows(connection, rows)
            self._claims_since_prune += len(landed)
            if self._claims_since_prune >= _PRUNE_EVERY:
                self._prune(connection, None)
            return won

        return await self._run(claim_all)

    async def claimed_by(self, schedule_id: str, fire_time: Timestamp) -> str | None:
        """Who claimed a fire (its ``owner``), or None."""
        query = self._q("SELECT owner FROM {s}.fires WHERE schedule_id = %s AND fire_micros = %s")
        key = (schedule_id, fire_time.micros_since_epoch)
        row = await self._run(lambda c: c.execute(query, key).fetchone())
        return None if row is None else str(row[0])

    async def fire_state(self, schedule_id: str, fire_time: Timestamp) -> str | None:
        """A fire's state (``claimed``, ``running``, ``done``, ``interrupted``), or None."""
        query = self._q("SELECT state FROM {s}.fires WHERE schedule_id = %s AND fire_micros = %s")
        key = (schedule_id, fire_time.micros_since_epoch)
        row = await self._run(lambda c: c.execute(query, key).fetchone())
        return None if row is None else str(row[0])

    async def prune_fires(self, before: Timestamp | None = None) -> int:
        """Delete claims for fire times before ``before`` (default: the newest claimed fire time
        minus the retention); returns how many rows went."""
        cutoff = None if before is None else before.micros_since_epoch
        return await self._run(lambda c: self._prune(c, cutoff))

    def _prune(self, connection: psycopg.Connection[Any], cutoff: int | None) -> int:
        self._claims_since_prune = 0
        if cutoff is None:
            row = connection.execute(self._q("SELECT max(fire_micros) FROM {s}.fires")).fetchone()
            if row is None or row[0] is None:
                return 0
            cutoff = int(row[0]) - self._retention
        query = self._q("DELETE FROM {s}.fires WHERE fire_micros < %s")
        return connection.execute(query, (cutoff,)).rowcount

    # -- leases and delivery ---------------------------------------------------------------------

    def _set_state(
        self, keys: Iterable[tuple[str, Timestamp]], owner: str, state: str, allowed: str
    ) -> Callable[[psycopg.Connection[Any]], list[bool]]:
        pairs = [(check_schedule_id(sid), fire.micros_since_epoch) for sid, fire in keys]
        query = self._q(
            "UPDATE {s}.fires f SET state = %s "
            "FROM unnest(%s::text[], %s::bigint[]) AS k(sid, fire) "
            "WHERE f.schedule_id = k.sid AND f.fire_micros = k.fire AND f.owner = %s "
            f"AND f.state IN ({allowed}) RETURNING f.schedule_id, f.fire_micros"
        )
        ordered = sorted(set(pairs))

        def update(connection: psycopg.Connection[Any]) -> list[bool]:
            params = (state, [k[0] for k in ordered], [k[1] for k in ordered], owner)
            changed = {(r[0], r[1]) for r in connection.execute(query, params).fetchall()}
            return [pair in changed for pair in pairs]

        return update

    async def start_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        """Mark claimed fires ``running`` just before their reducer calls go out.

        False for a fire that is no longer ``owner``'s claim (its lease expired and another
        instance took it over): do not run that one. From here on, a fire whose owner dies
        re-runs only under ``at_least_once``.
        """
        return await self._run(self._set_state(fires, owner, "running", "'claimed'"))

    async def finish_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        """Mark fires ``done``; False for one that was taken over meanwhile (its lease
        expired while it ran: under ``at_least_once`` another instance may run it again)."""
        return await self._run(self._set_state(fires, owner, "done", "'claimed', 'running'"))

    async def start_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        (ok,) = await self.start_fires(((schedule_id, fire_time),), owner)
        return ok

    async def finish_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        (ok,) = await self.finish_fires(((schedule_id, fire_time),), owner)
        return ok

    async def renew_leases(self, owner: str, ttl: TimeDuration | None = None) -> int:
        """Extend every live claim of ``owner`` to the database's now plus ``ttl`` (default
        ``lease_ttl``); returns how many. Call it well within the ttl, e.g. every third."""
        ttl_micros = (self.lease_ttl if ttl is None else ttl).micros
        if ttl_micros <= 0:
            raise InvalidScheduleError("renew_leases: ttl must be positive")
        query = self._q(
            f"UPDATE {{s}}.fires SET lease_until_micros = {_DB_NOW} + %s "
            "WHERE owner = %s AND state IN ('claimed', 'running')"
        )
        return await self._run(
            lambda c: c.execute(query, (ttl_micros, owner)).rowcount, self._lease_limiter
        )

    async def release_claims(self, owner: str) -> list[tuple[str, Timestamp]]:
        """Give back ``owner``'s claims that have not started (graceful shutdown).

        Their rows are deleted, so another instance can claim those fires again; returns them.
        Running fires keep their claims (they finish, or their lease expires).
        """
        query = self._q(
            "DELETE FROM {s}.fires WHERE owner = %s AND state = 'claimed' "
            "RETURNING schedule_id, fire_micros"
        )
        rows = await self._run(lambda c: c.execute(query, (owner,)).fetchall())
        return sorted((str(sid), Timestamp(int(fire))) for sid, fire in rows)

    async def take_over_expired(
        self,
        owner: str,
        now: Timestamp | None = None,
        *,
        limit: int = 1000,
        include_own: bool = False,
    ) -> list[ExpiredFire]:
        """Take the live claims whose leases expired (their owners died) and make them
        ``owner``'s; at most ``limit`` per call.

        ``now`` defaults to the database server's clock, the one the leases were written with.
        Rows another instance is taking over at the same moment are skipped
        (``FOR UPDATE SKIP LOCKED``), so no fire is ever taken twice. A taken fire is
        ``claimed`` again under ``owner``'s lease when it must run again (it had not started,
        or its schedule is ``at_least_once``), and ``interrupted`` otherwise; see
        :class:`ExpiredFire`.

        ``owner``'s own claims are left alone (a live instance renews them; one starved of
        CPU past its lease must not run its own fire twice) unless ``include_own``: for an
        instance starting under the name of a previous incarnation that died.
        """
        if not 1 <= limit <= 100_000:
            raise InvalidScheduleError("take_over_expired: limit must be in 1..100000")
        at = _DB_NOW if now is None else "%(now)s"
        query = self._q(
            f"""
            WITH expired AS (
                SELECT f.schedule_id, f.fire_micros, f.owner, f.state
                FROM {{s}}.fires f
                WHERE f.state IN ('claimed', 'running') AND f.lease_until_micros < {at}
                  AND (%(own)s OR f.owner <> %(owner)s)
                ORDER BY f.lease_until_micros
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), decided AS (
                SELECT e.*, (e.state = 'claimed'
                             OR coalesce(s.policy::jsonb ->> 'delivery', 'at_most_once')
                                = 'at_least_once') AS rerun
                FROM expired e LEFT JOIN {{s}}.schedules s ON s.id = e.schedule_id
            )
            UPDATE {{s}}.fires f
            SET owner = %(owner)s,
                state = CASE WHEN d.rerun THEN 'claimed' ELSE 'interrupted' END,
                lease_until_micros = {_DB_NOW} + %(ttl)s
            FROM decided d
            WHERE f.schedule_id = d.schedule_id AND f.fire_micros = d.fire_micros
            RETURNING d.schedule_id, d.fire_micros, d.owner, d.state, d.rerun
            """
        )
        params: dict[str, Any] = {
            "owner": owner,
            "ttl": self.lease_ttl.micros,
            "limit": limit,
            "own": include_own,
        }
        if now is not None:
            params["now"] = now.micros_since_epoch
        rows = await self._run(lambda c: c.execute(query, params).fetchall())
        return sorted(
            (
                ExpiredFire(str(sid), Timestamp(int(fire)), str(old), str(state), bool(rerun))
                for sid, fire, old, state, rerun in rows
            ),
            key=lambda e: (e.fire_time, e.schedule_id),
        )

    def __repr__(self) -> str:
        return (
            f"<PostgresStore {self._display!r} schema={self.schema!r} owner={self.owner!r} "
            f"{self._state}>"
        )
