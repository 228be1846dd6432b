"""spacetime_sched: call SpacetimeDB reducers on time-based schedules, on asyncio or trio.

The public API is re-exported here from private modules; each concept lives in one place:

* time types (:class:`Timestamp`, :class:`TimeDuration`, :class:`ScheduleAt`): ``_time``
* the SATS type system and its BSATN / SATS-JSON codecs: :mod:`spacetime_sched.sats`
* protocol messages: :mod:`spacetime_sched.protocol`
* the client: :mod:`spacetime_sched.client`
* the scheduler (engine, triggers, stores): :mod:`spacetime_sched.scheduler`
* the local test server and virtual clock: :mod:`spacetime_sched.testing`
"""

from __future__ import annotations

from ._errors import (
    ArgumentError,
    CallTimeoutError,
    ClientError,
    ConnectError,
    ConnectionClosedError,
    DecodeError,
    EncodeError,
    InternalError,
    InvalidScheduleError,
    NaiveDatetimeError,
    ProtocolError,
    QueryError,
    ReducerError,
    SatsError,
    ScheduleNotFoundError,
    SchedulerClosedError,
    SchedulerError,
    SpacetimeSchedError,
    TimeRangeError,
)
from ._identity import ConnectionId, Identity
from ._time import (
    EnhancedTimeDuration,
    EnhancedTimestamp,
    ScheduleAt,
    ScheduleAtInterval,
    ScheduleAtTime,
    TimeDuration,
    Timestamp,
    duration_from_hours,
    duration_from_minutes,
    duration_from_seconds,
    timestamp_now,
)

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "CallTimeoutError",
    "ClientError",
    "ConnectionId",
    "ConnectError",
    "ConnectionClosedError",
    "DecodeError",
    "EncodeError",
    "EnhancedTimeDuration",
    "EnhancedTimestamp",
    "Identity",
    "InternalError",
    "InvalidScheduleError",
    "NaiveDatetimeError",
    "ProtocolError",
    "QueryError",
    "ReducerError",
    "SatsError",
    "ScheduleAt",
    "ScheduleAtInterval",
    "ScheduleAtTime",
    "ScheduleNotFoundError",
    "SchedulerClosedError",
    "SchedulerError",
    "SpacetimeSchedError",
    "TimeDuration",
    "TimeRangeError",
    "Timestamp",
    "duration_from_hours",
    "duration_from_minutes",
    "duration_from_seconds",
    "timestamp_now",
]
