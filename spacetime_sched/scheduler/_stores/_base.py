"""The store protocol, the record a store keeps, and the tagged-JSON value codec.

A store keeps one :class:`StoredSchedule` per schedule id and a ledger of *claimed fires*.
:meth:`ScheduleStore.claim_fire` returns ``True`` exactly once per (schedule id, fire time)
across every instance sharing the store, so a restarted process, or a second one pointed at the
same store, can never run the same fire twice. Every method is async.

Reducer arguments are stored in a small *tagged JSON* encoding (:func:`dumps_value`,
:func:`loads_value`) that keeps every value a reducer takes exactly, from u256 ints to
``Identity`` and ``ScheduleAt``, and never executes code when read: no pickle.
"""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import attrs

from ..._errors import InvalidScheduleError, ScheduleStoreError
from ..._identity import ConnectionId, Identity
from ..._time import ScheduleAt, TimeDuration, Timestamp
from ...sats import Some, SumValue

__all__ = [
    "DEFAULT_FIRE_RETENTION",
    "BatchScheduleStore",
    "ExpiredFire",
    "LeasingStore",
    "ScheduleStore",
    "StoredSchedule",
    "StoreBase",
    "check_schedule_id",
    "decode_value",
    "default_owner",
    "dumps_value",
    "encode_value",
    "loads_value",
    "reject_json_constant",
    "WatchableStore",
]

_StoreT = TypeVar("_StoreT", bound="StoreBase")

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


def reject_json_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def dumps_value(value: object, path: str = "value") -> str:
    """``value`` as tagged JSON text (ASCII, compact)."""
    return json.dumps(encode_value(value, path), separators=(",", ":"), allow_nan=False)


def loads_value(text: str, path: str = "value") -> Any:
    """The value :func:`dumps_value` wrote; only data is read, no code runs."""
    return decode_value(json.loads(text, parse_constant=reject_json_constant), path)


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


@attrs.frozen(slots=True)
class ExpiredFire:
    """A fire whose owner's lease expired, as :meth:`LeasingStore.take_over_expired` took it.

    ``rerun`` says what the taker must do: ``True``: run the fire (it is now claimed by the
    taker, state ``claimed``: start and finish it as any claim); ``False``: it was running
    when its owner died and its schedule is ``at_most_once``, so it is now ``interrupted``
    and must be reported, not run.
    """

    schedule_id: str
    fire_time: Timestamp
    previous_owner: str
    previous_state: str
    rerun: bool


@runtime_checkable
class LeasingStore(ScheduleStore, Protocol):
    """A store whose claims are leases, for instances that may die (``PostgresStore``).

    Optional: the engine marks each won fire started before calling the target and finished
    after it, renews its leases every third of ``lease_ttl``, takes over the fires of dead
    instances, and gives back unstarted claims when it stops gracefully.
    """

    lease_ttl: TimeDuration

    async def start_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        """Mark claimed fires running; False for one that is no longer ``owner``'s."""
        ...

    async def finish_fires(self, fires: Iterable[tuple[str, Timestamp]], owner: str) -> list[bool]:
        """Mark fires done; False for one taken over meanwhile."""
        ...

    async def renew_leases(self, owner: str, ttl: TimeDuration | None = None) -> int:
        """Extend every live claim of ``owner``; returns how many."""
        ...

    async def release_claims(self, owner: str) -> list[tuple[str, Timestamp]]:
        """Give back ``owner``'s claims that have not started."""
        ...

    async def take_over_expired(
        self,
        owner: str,
        now: Timestamp | None = None,
        *,
        limit: int = 1000,
        include_own: bool = False,
    ) -> list[ExpiredFire]:
        """Take the live claims whose leases expired (other owners', and ``owner``'s own
        only if ``include_own``) and make them ``owner``'s."""
        ...


@runtime_checkable
class WatchableStore(ScheduleStore, Protocol):
    """A store that says when other instances change schedules (``PostgresStore``).

    Optional: the engine reloads the changed schedules at once, so a schedule added, paused,
    rescheduled or cancelled on one instance takes effect on the others without a poll.
    """

    def changes(self) -> AsyncIterator[str | None]:
        """Ids of schedules other instances saved or deleted; ``None``: reload everything."""
        ...

    async def load_many(self, schedule_ids: Sequence[str]) -> list[StoredSchedule]:
        """The readable records among ``schedule_ids`` (absent ones were deleted)."""
        ...


class StoreBase:
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


def check_schedule_id(schedule_id: object) -> str:
    if type(schedule_id) is not str:
        raise TypeError(f"schedule id: expected str, got {type(schedule_id).__name__}")
    return schedule_id
