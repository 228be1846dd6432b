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

from typing import TYPE_CHECKING, Any

from . import _wiring, sats  # noqa: F401 (_wiring plugs the scheduler into the client)
from ._errors import (
    ArgumentError,
    CallTimeoutError,
    ClientError,
    ConfigurationError,
    ConnectError,
    ConnectionClosedError,
    ConnectionLostError,
    DecodeError,
    EncodeError,
    InternalError,
    InvalidScheduleError,
    NaiveDatetimeError,
    ProtocolError,
    QueryError,
    ReducerError,
    SatsError,
    ScheduleFileError,
    ScheduleNotFoundError,
    SchedulerClosedError,
    SchedulerError,
    ScheduleStoreError,
    SpacetimeSchedError,
    TimeRangeError,
    UnknownNameError,
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
from ._version import __version__ as __version__  # the one version source (pyproject reads it)
from .client import (
    DbConnection,
    DbConnectionBuilder,
    IdentityToken,
    ModernSpacetimeDBClient,
    ProcedureCallResult,
    ReconnectPolicy,
    ReducerCallResult,
    SpacetimeHttpClient,
    SubscriptionHandle,
    SubscriptionUpdate,
    create_identity,
    row_dict,
)
from .scheduler import (
    CoalescePolicy,
    CronTrigger,
    DailyTrigger,
    DeliveryPolicy,
    IntervalTrigger,
    MemoryStore,
    OnceTrigger,
    OverlapPolicy,
    PrecisionTimer,
    ReducerScheduler,
    ScheduledReducerCall,
    SchedulePolicy,
    ScheduleResult,
    ScheduleStatus,
    SQLiteStore,
    TimeMetrics,
    schedule_at,
    schedule_once,
    schedule_repeating,
)

if TYPE_CHECKING:
    from .scheduler import PostgresStore as PostgresStore


def __getattr__(name: str) -> Any:
    """``PostgresStore`` loads on first use (it needs the ``postgres`` extra: psycopg 3)."""
    if name == "PostgresStore":
        from . import scheduler

        return scheduler.PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# PostgresStore is left out of __all__ on purpose: `from spacetime_sched import *` must not
# need psycopg.

__all__ = [
    "ConnectionId",
    "Identity",
    "ArgumentError",
    "CallTimeoutError",
    "ClientError",
    "CoalescePolicy",
    "DeliveryPolicy",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosedError",
    "ConnectionLostError",
    "CronTrigger",
    "DailyTrigger",
    "DbConnection",
    "DbConnectionBuilder",
    "DecodeError",
    "EncodeError",
    "EnhancedTimeDuration",
    "EnhancedTimestamp",
    "IdentityToken",
    "InternalError",
    "IntervalTrigger",
    "InvalidScheduleError",
    "MemoryStore",
    "ModernSpacetimeDBClient",
    "NaiveDatetimeError",
    "OnceTrigger",
    "OverlapPolicy",
    "PrecisionTimer",
    "ProcedureCallResult",
    "ProtocolError",
    "QueryError",
    "ReconnectPolicy",
    "ReducerCallResult",
    "ReducerError",
    "ReducerScheduler",
    "SQLiteStore",
    "SatsError",
    "ScheduleAt",
    "ScheduleAtInterval",
    "ScheduleAtTime",
    "ScheduleNotFoundError",
    "SchedulePolicy",
    "ScheduleResult",
    "ScheduleStatus",
    "ScheduleFileError",
    "ScheduleStoreError",
    "ScheduledReducerCall",
    "SchedulerClosedError",
    "SchedulerError",
    "SpacetimeHttpClient",
    "SpacetimeSchedError",
    "SubscriptionHandle",
    "SubscriptionUpdate",
    "TimeDuration",
    "TimeMetrics",
    "TimeRangeError",
    "Timestamp",
    "UnknownNameError",
    "create_identity",
    "duration_from_hours",
    "duration_from_minutes",
    "duration_from_seconds",
    "row_dict",
    "sats",
    "schedule_at",
    "schedule_once",
    "schedule_repeating",
    "timestamp_now",
]
