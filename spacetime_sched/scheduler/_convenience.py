"""One-line helpers for the common cases, given a connection or a scheduler.

``client`` is a connection with a ``.scheduler`` attribute (``DbConnection.scheduler`` is a
:class:`ReducerScheduler`) or a :class:`ReducerScheduler` itself::

    schedule_once(conn, "send_reminder", (user_id,), delay_seconds=30)
    schedule_repeating(conn, "tick", (), interval_seconds=5)
    schedule_at(conn, "close_auction", (auction_id,), when=deadline)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from .._time import ScheduleAt, Timestamp
from ._engine import ReducerScheduler

__all__ = ["schedule_at", "schedule_once", "schedule_repeating"]


def _scheduler_of(client: object) -> ReducerScheduler:
    if isinstance(client, ReducerScheduler):
        return client
    scheduler = getattr(client, "scheduler", None)
    if isinstance(scheduler, ReducerScheduler):
        return scheduler
    raise TypeError(
        "expected a ReducerScheduler or a connection with a .scheduler attribute, "
        f"got {type(client).__name__}"
    )


def schedule_once(
    client: object,
    reducer_name: str,
    args: Iterable[Any] | None,
    delay_seconds: float,
    **options: Any,
) -> str:
    """Call ``reducer_name(*args)`` once, ``delay_seconds`` from now; returns the schedule id.
    ``options`` are those of :meth:`ReducerScheduler.schedule_reducer`."""
    return _scheduler_of(client).schedule_in_seconds(reducer_name, args, delay_seconds, **options)


def schedule_repeating(
    client: object,
    reducer_name: str,
    args: Iterable[Any] | None,
    interval_seconds: float,
    **options: Any,
) -> str:
    """Call ``reducer_name(*args)`` every ``interval_seconds``, first one interval from now."""
    return _scheduler_of(client).schedule_at_interval(
        reducer_name, args, interval_seconds, **options
    )


def schedule_at(
    client: object,
    reducer_name: str,
    args: Iterable[Any] | None,
    when: Timestamp | _dt.datetime | float,
    **options: Any,
) -> str:
    """Call ``reducer_name(*args)`` once at ``when``: a Timestamp, an aware datetime or Unix
    seconds. A time in the past runs at once (within the misfire grace time)."""
    return _scheduler_of(client).schedule_reducer(
        reducer_name, args, ScheduleAt.at_time(when), **options
    )
