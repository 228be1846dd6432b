"""Schedule stores: where schedules outlive the process, and how instances avoid double runs.

A store keeps one :class:`StoredSchedule` per schedule id and a ledger of *claimed fires*.
:meth:`ScheduleStore.claim_fire` returns ``True`` exactly once per (schedule id, fire time)
across every instance sharing the store, so a restarted process, or a second one pointed at the
same file, can never run the same fire twice.

* :class:`MemoryStore`: in-process dictionaries; nothing survives the process.
* :class:`SQLiteStore`: a SQLite file in WAL mode. Every call runs in a worker thread (one at a
  time, through a :class:`~anyio.CapacityLimiter` of 1), so blocking I/O never touches the event
  loop. The ``fires`` table's ``UNIQUE (schedule_id, fire_micros)`` makes a claim one atomic
  ``INSERT OR IGNORE``, which SQLite serialises across processes.

Reducer arguments are stored in a small *tagged JSON* encoding (:func:`dumps_value`,
:func:`loads_value`) that keeps every value a reducer takes exactly, from u256 ints to
``Identity`` and ``ScheduleAt``, and never executes code when read: no pickle.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import socket
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from .._errors import InvalidScheduleError, ScheduleStoreError
from .._identity import ConnectionId, Identity
from .._time import ScheduleAt, TimeDuration, Timestamp
from ..sats import Some, SumValue

__all__ = [
    "BatchScheduleStore",
    "MemoryStore",
    "SQLiteStore",
    "ScheduleStore",
    "StoredSchedule",
    "decode_value",
    "dumps_value",
    "encode_value",
    "loads_value",
]

logger = logging.getLogger("spacetime_sched.scheduler.store")

_StoreT = TypeVar("_StoreT", bound="_StoreBase")

#: Ints beyond JSON's safe-integer range are written as decimal strings so any JSON reader
#: (not just Python's) keeps them exact.
_SAFE_INT: Final = 2**53

#: Fire claims older than this (before the newest claimed fire time) are pruned by default.
DEFAULT_FIRE_RETENTION: Final = TimeDuration.from_days(7)


# --- tagged JSON values -------------------------------------------------------------------------
#
# Plain JSON stands for itself: null, true/false, strings, finite floats, safe ints, lists, and
# objects whose keys are strings not starting with "$". Everything else is an object with one
# "$tag" key:
#
#   {"$int": "340282366920938463463374607431768211455"}   int beyond ±2**53
#   {"$float": "inf" | "-inf" | "nan:<16 hex bits>"}       non-finite float (NaN bit-exact)
#   {"$bytes": "<base64>"}                                 bytes (also bytearray, memoryview)
#   {"$tuple": [...]}                                      tuple
#   {"$map": [[key, value], ...]}                          dict with other keys
#   {"$timestamp": micros}  {"$duration": micros}
#   {"$interval": micros}   {"$time": micros}              ScheduleAt.Interval / ScheduleAt.Time
#   {"$identity": "<64 hex>"}  {"$connection_id": "<32 hex>"}  {"$uuid": "<canonical>"}
#   {"$some": value}        {"$sum": [tag, name, value]}   sats.Some / sats.SumValue


def encode_value(value: object, path: str = "value") -> Any:
    """``value`` as JSON-ready data in the tagged encoding.

    Raises :class:`~spacetime_sched.InvalidScheduleError` naming the path of a value that
    cannot be stored (``args[1]['when']: cannot store a set``).
    """
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if kind is str:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        whole = int(value)
        return whole if -_SAFE_INT <= whole <= _SAFE_INT else {"$int": str(whole)}
    if isinstance(value, float):
        real = float(value)
        if math.isfinite(real):
            return real
        if math.isnan(real):  # keep the exact bits: a NaN's sign and payload survive too
            return {"$float": f"nan:{struct.unpack('<Q', struct.pack('<d', real))[0]:016x}"}
        return {"$float": "inf" if real > 0 else "-inf"}
    if isinstance(value, str):
        return str.__str__(value)  # an enum or other str subclass: its plain text
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if kind is Timestamp:
        return {"$timestamp": value.micros_since_epoch}  # type: ignore[attr-defined]
    if kind is TimeDuration:
        return {"$duration": value.micros}  # type: ignore[attr-defined]
    if isinstance(value, ScheduleAt.Interval):
        return {"$interval": value.value.micros}
    if isinstance(value, ScheduleAt.Time):
        return {"$time": value.value.micros_since_epoch}
    if isinstance(value, Identity):
        return {"$identity": value.to_hex()}
    if isinstance(value, ConnectionId):
        return {"$connection_id": value.to_hex()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, Some):
        return {"$some": encode_value(value.value, f"{path}.value")}
    if isinstance(value, SumValue):
        return {"$sum": [value.tag, value.name, encode_value(value.value, f"{path}.value")]}
    if isinstance(value, list):
        return [encode_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(item, f"{path}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, dict):
        if all(type(key) is str and not key.startswith("$") for key in value):
            return {key: encode_value(item, f"{path}[{key!r}]") for key, item in value.items()}
        return {
            "$map": [
                [encode_value(key, f"{path}.<key {key!r}>"), encode_value(item, f"{path}[{key!r}]")]
                for key, item in value.items()
            ]
        }
    raise InvalidScheduleError(
        f"{path}: cannot store a {kind.__name__} ({value!r}); stored reducer arguments may be "
        "None, bool, int, float, str, bytes, list, tuple, dict, Timestamp, TimeDuration, "
        "ScheduleAt, Identity, ConnectionId, uuid.UUID, sats.Some or sats.SumValue"
    )


class _LocatedError(ValueError):
    """A decoding error whose message already starts with the path of the bad part."""


def _tagged_int(payload: Any) -> int:
    if type(payload) is not int:
        raise ValueError(f"expected an int, got {type(payload).__name__} {payload!r}")
    return payload


def _tagged_str(payload: Any) -> str:
    if type(payload) is not str:
        raise ValueError(f"expected a string, got {type(payload).__name__} {payload!r}")
    return payload


def _tagged_list(payload: Any) -> list[Any]:
    if type(payload) is not list:
        raise ValueError(f"expected a list, got {type(payload).__name__} {payload!r}")
    return payload


def _decode_big_int(payload: Any, path: str) -> int:
    text = _tagged_str(payload)
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f"{text!r} is not a decimal integer") from None


def _decode_float(payload: Any, path: str) -> float:
    if payload in ("inf", "-inf", "nan"):
        return float(payload)
    text = _tagged_str(payload)
    bits = text[4:] if text.startswith("nan:") else ""
    if len(bits) != 16 or not all(c in "0123456789abcdef" for c in bits):
        raise ValueError(f"expected 'inf', '-inf', 'nan' or 'nan:<16 hex digits>', got {text!r}")
    value: float = struct.unpack("<d", struct.pack("<Q", int(bits, 16)))[0]
    if not math.isnan(value):
        raise ValueError(f"{text!r} is not a NaN")
    return value


def _decode_bytes(payload: Any, path: str) -> bytes:
    try:
        return base64.b64decode(_tagged_str(payload), validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError(f"invalid base64 ({exc})") from None


def _decode_tuple(payload: Any, path: str) -> tuple[Any, ...]:
    return tuple(decode_value(item, f"{path}[{i}]") for i, item in enumerate(_tagged_list(payload)))


def _decode_map(payload: Any, path: str) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for i, pair in enumerate(_tagged_list(payload)):
        if type(pair) is not list or len(pair) != 2:
            raise ValueError(f"entry {i}: expected a [key, value] pair, got {pair!r}")
        key = decode_value(pair[0], f"{path}.<key {i}>")
        try:
            hash(key)
        except TypeError:
            raise ValueError(f"entry {i}: a {type(key).__name__} cannot be a dict key") from None
        result[key] = decode_value(pair[1], f"{path}[{key!r}]")
    return result


def _decode_sum(payload: Any, path: str) -> SumValue:
    items = _tagged_list(payload)
    if len(items) != 3 or type(items[0]) is not int or not isinstance(items[1], (str, type(None))):
        raise ValueError(f"expected [tag, name, value], got {payload!r}")
    return SumValue(items[0], items[1], decode_value(items[2], f"{path}.value"))


_DECODERS: Final[dict[str, Callable[[Any, str], Any]]] = {
    "$int": _decode_big_int,
    "$float": _decode_float,
    "$bytes": _decode_bytes,
    "$tuple": _decode_tuple,
    "$map": _decode_map,
    "$timestamp": lambda p, path: Timestamp(_tagged_int(p)),
    "$duration": lambda p, path: TimeDuration(_tagged_int(p)),
    "$interval": lambda p, path: ScheduleAt.Interval(TimeDuration(_tagged_int(p))),
    "$time": lambda p, path: ScheduleAt.Time(Timestamp(_tagged_int(p))),
    "$identity": lambda p, path: Identity.from_hex(_tagged_str(p)),
    "$connection_id": lambda p, path: ConnectionId.from_hex(_tagged_str(p)),
    "$uuid": lambda p, path: uuid.UUID(_tagged_str(p)),
    "$some": lambda p, path: Some(decode_value(p, f"{path}.value")),
    "$sum": _decode_sum,
}


def decode_value(data: Any, path: str = "value") -> Any:
    """The value that :func:`encode_value` turned into ``data``.

    Raises :class:`ValueError` naming the path and tag of malformed data
    (``args[2]: $bytes: invalid base64 (...)``).
    """
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode_value(item, f"{path}[{i}]") for i, item in enumerate(data)]
    if type(data) is not dict:
        raise _LocatedError(f"{path}: not JSON data: {type(data).__name__}")
    if len(data) == 1:
        ((key, payload),) = data.items()
        if key.startswith("$"):
            decoder = _DECODERS.get(key)
            if decoder is None:
                raise _LocatedError(f"{path}: unknown tag {key!r}")
            try:
                return decoder(payload, path)
            except _LocatedError:
                raise
            except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: TimeRangeError
                raise _LocatedError(f"{path}: {key}: {exc}") from None
    if any(key.startswith("$") for key in data):
        raise _LocatedError(f"{path}: an object with a '$' key must have exactly one key")
    return {key: decode_value(item, f"{path}[{key!r}]") for key, item in data.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def dumps_value(value: object, path: str = "value") -> str:
    """``value`` as tagged JSON text (ASCII, compact)."""
    return json.dumps(encode_value(value, path), separators=(",", ":"), allow_nan=False)


def loads_value(text: str, path: str = "value") -> Any:
    """The value :func:`dumps_value` wrote; only data is read, no code runs."""
    return decode_value(json.loads(text, parse_constant=_reject_constant), path)


# --- records ------------------------------------------------------------------------------------


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


def _instance(name: str, kind: type, *optional: None) -> Any:
    """An attrs validator: ``kind`` exactly where it matters (no bool for int), or None."""

    def check(instance: object, attribute: object, value: object) -> None:
        if value is None and optional:
            return
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return
        wanted = kind.__name__ + (" or None" if optional else "")
        raise TypeError(
            f"StoredSchedule.{name}: expected {wanted}, got {type(value).__name__} {value!r}"
        )

    return check


@attrs.frozen(slots=True)
class StoredSchedule:
    """One schedule as a store keeps it.

    ``trigger`` is :meth:`Trigger.to_dict` output and ``policy`` the policy's ``to_dict()``,
    both plain JSON; ``args`` and ``metadata`` go through the tagged JSON value encoding.
    ``next_run_micros`` is ``None`` when nothing is planned (finished or paused schedules).
    """

    id: str = attrs.field(validator=_instance("id", str))
    reducer_name: str = attrs.field(validator=_instance("reducer_name", str))
    args: tuple[Any, ...] = attrs.field(converter=_as_tuple)
    trigger: dict[str, Any] = attrs.field(validator=_instance("trigger", dict))
    policy: dict[str, Any] = attrs.field(validator=_instance("policy", dict))
    metadata: dict[str, Any] = attrs.field(validator=_instance("metadata", dict))
    status: str = attrs.field(validator=_instance("status", str))
    run_count: int = attrs.field(validator=_instance("run_count", int))
    next_run_micros: int | None = attrs.field(validator=_instance("next_run_micros", int, None))
    created_at_micros: int = attrs.field(validator=_instance("created_at_micros", int))


@runtime_checkable
class ScheduleStore(Protocol):
    """What the scheduler engine needs from a store. Stores are async context managers."""

    async def load_all(self) -> list[StoredSchedule]:
        """Every readable schedule. Unreadable ones are logged and skipped, never fatal."""
        ...

    async def save(self, record: StoredSchedule) -> None:
        """Insert or replace the schedule with ``record.id``."""
        ...

    async def delete(self, schedule_id: str) -> None:
        """Forget a schedule (no error if it is unknown)."""
        ...

    async def claim_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        """True for exactly one caller per (schedule id, fire time), across every instance
        sharing the store; that caller runs the fire, everyone else skips it."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> ScheduleStore: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class BatchScheduleStore(ScheduleStore, Protocol):
    """A store that can also write and claim many at once (one transaction, one thread hop).

    Optional: the engine may use these when ``isinstance(store, BatchScheduleStore)``.
    Both built-in stores implement it.
    """

    async def save_many(self, records: Iterable[StoredSchedule]) -> None:
        """:meth:`~ScheduleStore.save` each record, all or none."""
        ...

    async def delete_many(self, schedule_ids: Iterable[str]) -> None:
        """:meth:`~ScheduleStore.delete` each id, all or none."""
        ...

    async def claim_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        """:meth:`~ScheduleStore.claim_fire` for each (schedule id, fire time), in order."""
        ...


class _StoreBase:
    """Async context manager support and the report of unreadable records."""

    #: The errors of the last :meth:`load_all`: one :class:`ScheduleStoreError` per skipped
    #: record, naming its schedule id and what was wrong.
    load_errors: list[ScheduleStoreError]

    def __init__(self) -> None:
        self.load_errors = []

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _StoreT) -> _StoreT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def default_owner() -> str:
    """A name for this process in claim records: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _check_schedule_id(schedule_id: object) -> str:
    if type(schedule_id) is not str:
        raise TypeError(f"schedule id: expected str, got {type(schedule_id).__name__}")
    return schedule_id


# --- MemoryStore --------------------------------------------------------------------------------


class MemoryStore(_StoreBase):
    """Schedules and fire claims in process memory (for tests and single-process apps).

    Claims older than ``fire_retention`` before the newest claimed fire time are dropped now
    and then, so memory stays bounded for schedules that run forever.
    """

    def __init__(self, *, fire_retention: TimeDuration = DEFAULT_FIRE_RETENTION) -> None:
        super().__init__()
        self._records: dict[str, StoredSchedule] = {}
        self._claims: dict[tuple[str, int], str] = {}
        self._retention = fire_retention.micros
        self._newest_fire: int | None = None
        self._claims_since_prune = 0
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ScheduleStoreError("MemoryStore is closed")

    async def load_all(self) -> list[StoredSchedule]:
        self._check_open()
        return list(self._records.values())

    async def save(self, record: StoredSchedule) -> None:
        self._check_open()
        if not isinstance(record, StoredSchedule):
            raise TypeError(f"save: expected StoredSchedule, got {type(record).__name__}")
        self._records[record.id] = record

    async def save_many(self, records: Iterable[StoredSchedule]) -> None:
        self._check_open()
        batch = list(records)
        for record in batch:
            if not isinstance(record, StoredSchedule):
                raise TypeError(f"save_many: expected StoredSchedule, got {type(record).__name__}")
        self._records.update((record.id, record) for record in batch)

    async def delete(self, schedule_id: str) -> None:
        self._check_open()
        self._records.pop(schedule_id, None)

    async def delete_many(self, schedule_ids: Iterable[str]) -> None:
        self._check_open()
        for schedule_id in schedule_ids:
            self._records.pop(schedule_id, None)

    async def claim_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        self._check_open()
        return [self._claim(schedule_id, fire_time, owner) for schedule_id, fire_time in fires]

    async def claim_fire(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        self._check_open()
        return self._claim(schedule_id, fire_time, owner)

    def _claim(self, schedule_id: str, fire_time: Timestamp, owner: str) -> bool:
        key = (_check_schedule_id(schedule_id), fire_time.micros_since_epoch)
        if key in self._claims:
            return False
        self._claims[key] = owner
        fire = fire_time.micros_since_epoch
        if self._newest_fire is None or fire > self._newest_fire:
            self._newest_fire = fire
        self._claims_since_prune += 1
        if self._claims_since_prune >= 4096:
            self.prune_fires()
        return True

    def claimed_by(self, schedule_id: str, fire_time: Timestamp) -> str | None:
        """Who claimed a fire, or None."""
        return self._claims.get((schedule_id, fire_time.micros_since_epoch))

    def prune_fires(self, before: Timestamp | None = None) -> int:
        """Drop claims for fire times before ``before`` (default: the newest claimed fire time
        minus the retention); returns how many were dropped."""
        self._claims_since_prune = 0
        if before is None:
            if self._newest_fire is None:
                return 0
            cutoff = self._newest_fire - self._retention
        else:
            cutoff = before.micros_since_epoch
        old = [key for key in self._claims if key[1] < cutoff]
        for key in old:
            del self._claims[key]
        return len(old)

    async def aclose(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<MemoryStore schedules={len(self._records)} claims={len(self._claims)}>"


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
    value = json.loads(text, parse_constant=_reject_constant)
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


class SQLiteStore(_StoreBase):
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
        rows = []
        for record in records:
            if not isinstance(record, StoredSchedule):
                raise TypeError(f"save: expected StoredSchedule, got {type(record).__name__}")
            rows.append(_row_values(record, self.owner))  # bad args fail before any I/O
        if len(rows) == 1:  # one autocommit statement is already atomic
            await self._run(lambda c: c.execute(_UPSERT, rows[0]))
        elif rows:
            await self._run(lambda c: _transaction(c, lambda: c.executemany(_UPSERT, rows)))

    async def delete(self, schedule_id: str) -> None:
        await self.delete_many((schedule_id,))

    async def delete_many(self, schedule_ids: Iterable[str]) -> None:
        ids = [(_check_schedule_id(schedule_id),) for schedule_id in schedule_ids]
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
            (_check_schedule_id(schedule_id), fire_time.micros_since_epoch)
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
