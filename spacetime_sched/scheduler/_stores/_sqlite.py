"""SQLiteStore: a SQLite file in WAL mode, safe for several processes sharing it.

Every call runs in a worker thread (one at a time, through a :class:`~anyio.CapacityLimiter` of
1), so blocking I/O never touches the event loop. The ``fires`` table's
``UNIQUE (schedule_id, fire_micros)`` makes a claim one atomic ``INSERT OR IGNORE``, which
SQLite serialises across processes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

from ..._errors import InvalidScheduleError, ScheduleStoreError
from ..._time import TimeDuration, Timestamp
from ._base import (
    DEFAULT_FIRE_RETENTION,
    StoreBase,
    StoredSchedule,
    check_schedule_id,
    default_owner,
    dumps_value,
    loads_value,
    reject_json_constant,
)

__all__ = ["SQLiteStore"]

logger = logging.getLogger("spacetime_sched.scheduler.store")


# --- SQLiteStore --------------------------------------------------------------------------------

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    id                TEXT PRIMARY KEY,
    reducer_name      TEXT NOT NULL,
    args              TEXT NOT NULL,
    trigger           TEXT NOT NULL,
    policy            TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    status            TEXT NOT NULL,
    run_count         INTEGER NOT NULL,
    next_run_micros   INTEGER,
    created_at_micros INTEGER NOT NULL,
    updated_by        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fires (
    schedule_id TEXT NOT NULL,
    fire_micros INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    UNIQUE (schedule_id, fire_micros)
);
CREATE INDEX IF NOT EXISTS fires_by_time ON fires (fire_micros);
"""

_UPSERT: Final = """
INSERT INTO schedules (id, reducer_name, args, trigger, policy, metadata, status, run_count,
                       next_run_micros, created_at_micros, updated_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    reducer_name = excluded.reducer_name, args = excluded.args, trigger = excluded.trigger,
    policy = excluded.policy, metadata = excluded.metadata, status = excluded.status,
    run_count = excluded.run_count, next_run_micros = excluded.next_run_micros,
    created_at_micros = excluded.created_at_micros, updated_by = excluded.updated_by
"""

_COLUMNS: Final = (
    "id, reducer_name, args, trigger, policy, metadata, status, run_count, next_run_micros, "
    "created_at_micros"
)

#: How many successful claims pass between two automatic prunes of old fire claims.
_PRUNE_EVERY: Final = 1024


def _plain_json(value: Any, what: str, schedule_id: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidScheduleError(f"schedule {schedule_id!r}: {what} is not JSON: {exc}") from None


def _row_values(record: StoredSchedule, owner: str) -> tuple[Any, ...]:
    sid = record.id
    return (
        sid,
        record.reducer_name,
        dumps_value(record.args, "args"),
        _plain_json(record.trigger, "trigger", sid),
        _plain_json(record.policy, "policy", sid),
        dumps_value(record.metadata, "metadata"),
        record.status,
        record.run_count,
        record.next_run_micros,
        record.created_at_micros,
        owner,
    )


def _json_object(text: Any, column: str) -> dict[str, Any]:
    if type(text) is not str:
        raise ValueError(f"{column}: expected JSON text, got {type(text).__name__}")
    value = json.loads(text, parse_constant=reject_json_constant)
    if type(value) is not dict:
        raise ValueError(f"{column}: expected a JSON object, got {type(value).__name__}")
    return value


def _int_column(value: Any, column: str, *, nullable: bool = False) -> Any:
    if (value is None and nullable) or type(value) is int:
        return value
    raise ValueError(f"{column}: expected an integer, got {type(value).__name__} {value!r}")


def _text_column(value: Any, column: str) -> str:
    if type(value) is not str:
        raise ValueError(f"{column}: expected text, got {type(value).__name__} {value!r}")
    return value


def _rows_to_save(records: Iterable[StoredSchedule], owner: str) -> list[tuple[Any, ...]]:
    """The rows of ``records`` for an upsert (shared by the SQL stores); a value that is not a
    :class:`StoredSchedule` is refused before anything is written."""
    rows = []
    for record in records:
        if not isinstance(record, StoredSchedule):
            raise TypeError(f"save: expected StoredSchedule, got {type(record).__name__}")
        rows.append(_row_values(record, owner))
    return rows


def _record_from_row(row: tuple[Any, ...]) -> StoredSchedule:
    (sid, reducer, args, trigger, policy, metadata, status, runs, next_run, created) = row
    args_value = loads_value(_text_column(args, "args"), "args")
    if type(args_value) is not tuple:
        raise ValueError(f"args: expected a tuple, got {type(args_value).__name__}")
    metadata_value = loads_value(_text_column(metadata, "metadata"), "metadata")
    if type(metadata_value) is not dict:
        raise ValueError(f"metadata: expected a dict, got {type(metadata_value).__name__}")
    return StoredSchedule(
        id=sid,
        reducer_name=_text_column(reducer, "reducer_name"),
        args=args_value,
        trigger=_json_object(trigger, "trigger"),
        policy=_json_object(policy, "policy"),
        metadata=metadata_value,
        status=_text_column(status, "status"),
        run_count=_int_column(runs, "run_count"),
        next_run_micros=_int_column(next_run, "next_run_micros", nullable=True),
        created_at_micros=_int_column(created, "created_at_micros"),
    )


_R = TypeVar("_R")


def _transaction(connection: sqlite3.Connection, work: Callable[[], _R]) -> _R:
    """Run ``work`` in one write transaction (taking the write lock up front)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class SQLiteStore(StoreBase):
    """Schedules and fire claims in a SQLite file, shared safely by several processes.

    ``path`` is created if missing (with its tables). ``owner`` names this instance in the
    rows it writes (default ``host:pid``). Claims of fires older than ``fire_retention``
    before the newest claimed fire are pruned every 1024 claims (and by :meth:`prune_fires`);
    keep the retention longer than any instance can lag behind, or a very late instance could
    claim a fire again.

    The connection opens lazily on first use, in a worker thread; all calls go through one
    worker at a time. ``busy_timeout`` (seconds) is how long a call waits for another process
    holding the write lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        owner: str | None = None,
        fire_retention: TimeDuration = DEFAULT_FIRE_RETENTION,
        busy_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.owner = default_owner() if owner is None else owner
        if fire_retention.micros <= 0:
            raise InvalidScheduleError("SQLiteStore.fire_retention must be positive")
        self._retention = fire_retention.micros
        self._busy_timeout = busy_timeout
        self._limiter = anyio.CapacityLimiter(1)
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        self._claims_since_prune = 0

    # -- running blocking work in the worker thread --------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise ScheduleStoreError(f"SQLiteStore({str(self.path)!r}) is closed")
        return await anyio.to_thread.run_sync(self._in_thread, work, limiter=self._limiter)

    def _in_thread(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:  # closed while this call waited for the worker
            raise ScheduleStoreError(f"SQLiteStore({str(self.path)!r}) is closed")
        if self._connection is None:
            self._connection = self._open()
        try:
            return work(self._connection)
        except sqlite3.Error as exc:
            raise ScheduleStoreError(f"SQLiteStore({str(self.path)!r}): {exc}") from exc

    def _open(self) -> sqlite3.Connection:
        try:
            # Autocommit: each statement is its own transaction, and an INSERT takes the write
            # lock at once, so concurrent processes queue on busy_timeout instead of deadlocking.
            connection = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,  # used by one worker thread at a time (the limiter)
            )
        except sqlite3.Error as exc:
            raise ScheduleStoreError(f"SQLiteStore: cannot open {str(self.path)!r}: {exc}") from exc
        try:
            self._enable_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("BEGIN IMMEDIATE")  # one process at a time creates the schema
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
                version = row[0]
                if version is None:
                    connection.execute(
                        "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                    )
                elif version > SCHEMA_VERSION:
                    raise ScheduleStoreError(
                        f"SQLiteStore: {str(self.path)!r} has schema version {version}, newer "
                        f"than this spacetime_sched understands ({SCHEMA_VERSION}); upgrade it"
                    )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except BaseException as exc:
            connection.close()
            if isinstance(exc, sqlite3.Error):
                raise ScheduleStoreError(
                    f"SQLiteStore: {str(self.path)!r} is not a usable schedule store: {exc}"
                ) from exc
            raise
        return connection

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting out other openers (runs in the worker thread).

        Changing the journal mode needs the file to itself, and SQLite answers "database is
        locked" at once, without its busy handler, while another process opens the same file.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    # -- the store protocol --------------------------------------------------------------------

    async def load_all(self) -> list[StoredSchedule]:
        rows: list[tuple[Any, ...]] = await self._run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY rowid").fetchall()
        )
        records: list[StoredSchedule] = []
        errors: list[ScheduleStoreError] = []
        for row in rows:
            try:
                records.append(_record_from_row(row))
            except (ValueError, TypeError, RecursionError) as exc:
                error = ScheduleStoreError(f"schedule {row[0]!r} in {str(self.path)!r}: {exc}")
                logger.error("schedule store: skipping unreadable record: %s", error)
                errors.append(error)
        self.load_errors = errors
        return records

    async def save(self, record: StoredSchedule) -> None:
        await self.save_many((record,))

    async def save_many(self, records: Iterable[StoredSchedule]) -> None:
        rows = _rows_to_save(records, self.owner)  # bad args fail before any I/O
        if len(rows) == 1:  # one autocommit statement is already atomic
            await self._run(lambda c: c.execute(_UPSERT, rows[0]))
        elif rows:
            await self._run(lambda c: _transaction(c, lambda: c.executemany(_UPSERT, rows)))

    async def delete(self, schedule_id: str) -> None:
        await self.delete_many((schedule_id,))

    async def delete_many(self, schedule_ids: Iterable[str]) -> None:
        ids = [(check_schedule_id(schedule_id),) for schedule_id in schedule_ids]
        delete = "DELETE FROM schedules WHERE id = ?"
        if len(ids) == 1:
            await self._run(lambda c: c.execute(delete, ids[0]))
        elif ids:
            await self._run(lambda c: _transaction(c, lambda: c.executemany(delete, ids)))

    async def claim_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        (won,) = await self.claim_fires(((schedule_id, fire_time),), owner)
        return won

    async def claim_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        keys = [
            (check_schedule_id(schedule_id), fire_time.micros_since_epoch)
            for schedule_id, fire_time in fires
        ]

        def claim_each(connection: sqlite3.Connection) -> list[bool]:
            won = [
                connection.execute(
                    "INSERT OR IGNORE INTO fires (schedule_id, fire_micros, owner) "
                    "VALUES (?, ?, ?)",
                    (sid, fire, owner),
                ).rowcount
                == 1
                for sid, fire in keys
            ]
            self._claims_since_prune += sum(won)
            if self._claims_since_prune >= _PRUNE_EVERY:
                self._prune(connection, None)
            return won

        if not keys:
            return []
        if len(keys) == 1:  # one autocommit INSERT is already atomic
            result: list[bool] = await self._run(claim_each)
        else:
            result = await self._run(lambda c: _transaction(c, lambda: claim_each(c)))
        return result

    async def claimed_by(self, schedule_id: str, fire_time: Timestamp) -> str | None:
        """Who claimed a fire (its ``owner``), or None."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT owner FROM fires WHERE schedule_id = ? AND fire_micros = ?",
                (schedule_id, fire_time.micros_since_epoch),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def prune_fires(self, before: Timestamp | None = None) -> int:
        """Delete claims for fire times before ``before`` (default: the newest claimed fire time
        minus the retention); returns how many rows went."""
        cutoff = None if before is None else before.micros_since_epoch
        pruned: int = await self._run(lambda c: self._prune(c, cutoff))
        return pruned

    def _prune(self, connection: sqlite3.Connection, cutoff: int | None) -> int:
        self._claims_since_prune = 0
        if cutoff is None:
            newest = connection.execute("SELECT max(fire_micros) FROM fires").fetchone()[0]
            if newest is None:
                return 0
            cutoff = newest - self._retention
        return connection.execute("DELETE FROM fires WHERE fire_micros < ?", (cutoff,)).rowcount

    async def aclose(self) -> None:
        """Close the connection (idempotent). Later calls raise ScheduleStoreError."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):  # never leak the file handle on cancellation
            # Through the limiter, so a call already running in the worker finishes first.
            await anyio.to_thread.run_sync(self._close_in_thread, limiter=self._limiter)

    def _close_in_thread(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SQLiteStore {str(self.path)!r} owner={self.owner!r} {state}>"
