"""The reducer scheduler: call SpacetimeDB reducers on time-based schedules, on asyncio or trio.

* :class:`ReducerScheduler`: the engine (``async with ReducerScheduler(conn) as scheduler``).
* Schedules: :class:`ScheduledReducerCall`, :class:`ScheduleStatus`, :class:`ScheduleResult`,
  per-schedule :class:`SchedulePolicy` (:class:`CoalescePolicy`, :class:`OverlapPolicy`,
  :class:`DeliveryPolicy`).
* Triggers: :class:`OnceTrigger`, :class:`IntervalTrigger`, :class:`DailyTrigger`,
  :class:`CronTrigger` (DST-correct), or SpacetimeDB's own ``ScheduleAt``.
* Stores: :class:`MemoryStore`, :class:`SQLiteStore` (persistent, multi-instance safe),
  :class:`PostgresStore` (many instances on one PostgreSQL; needs the ``postgres`` extra), or
  any :class:`ScheduleStore`.
* Clocks: :class:`Clock`, :class:`SystemClock` (tests use
  :class:`spacetime_sched.testing.VirtualClock`).
* Helpers: :func:`schedule_once`, :func:`schedule_repeating`, :func:`schedule_at`,
  :class:`PrecisionTimer`, :class:`TimeMetrics`.

See ``docs/scheduler.md`` for the semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._clock import WALL_CHECK_INTERVAL_MICROS, Clock, SystemClock
from ._convenience import schedule_at, schedule_once, schedule_repeating
from ._engine import CLOCK_JUMP_TOLERANCE_MICROS, ReducerScheduler, ReducerTarget, ResultCallback
from ._models import (
    DEFAULT_POLICY,
    CoalescePolicy,
    DeliveryPolicy,
    OverlapPolicy,
    ScheduledReducerCall,
    SchedulePolicy,
    ScheduleResult,
    ScheduleStatus,
)
from ._stores import BatchScheduleStore, MemoryStore, ScheduleStore, SQLiteStore, StoredSchedule
from ._timing import PrecisionTimer, TimeMetrics
from ._triggers import (
    CronTrigger,
    DailyTrigger,
    IntervalTrigger,
    OnceTrigger,
    TimezoneLike,
    Trigger,
    TriggerBase,
    trigger_from_dict,
    trigger_from_schedule_at,
)

if TYPE_CHECKING:
    from ._stores._postgres import PostgresStore as PostgresStore


def __getattr__(name: str) -> Any:
    """``PostgresStore`` is imported on first use: only it needs psycopg (the ``postgres``
    extra), and ``import spacetime_sched`` must work without it."""
    if name == "PostgresStore":
        try:
            from ._stores._postgres import PostgresStore as PostgresStore
        except ImportError as exc:
            raise ImportError(
                f"PostgresStore needs psycopg 3 ({exc}): pip install 'spacetime-sched[postgres]'"
            ) from exc
        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# PostgresStore is left out of __all__ on purpose: `from ... import *` must not need psycopg.


__all__ = [
    "BatchScheduleStore",
    "CLOCK_JUMP_TOLERANCE_MICROS",
    "DEFAULT_POLICY",
    "WALL_CHECK_INTERVAL_MICROS",
    "Clock",
    "CoalescePolicy",
    "DeliveryPolicy",
    "CronTrigger",
    "DailyTrigger",
    "IntervalTrigger",
    "MemoryStore",
    "OnceTrigger",
    "OverlapPolicy",
    "PrecisionTimer",
    "ReducerScheduler",
    "ReducerTarget",
    "SQLiteStore",
    "ScheduleStore",
    "ResultCallback",
    "SchedulePolicy",
    "ScheduleResult",
    "ScheduleStatus",
    "ScheduledReducerCall",
    "StoredSchedule",
    "SystemClock",
    "TimeMetrics",
    "TimezoneLike",
    "Trigger",
    "TriggerBase",
    "schedule_at",
    "schedule_once",
    "schedule_repeating",
    "trigger_from_dict",
    "trigger_from_schedule_at",
]
