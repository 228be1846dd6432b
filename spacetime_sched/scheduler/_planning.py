"""Planning: when a schedule fires next and whether a due fire runs. Pure functions, no I/O.

Nothing here touches an event loop, a clock or a queue: every function takes the instants it
needs (µs since the epoch) and returns a decision, so each rule is tested on its own
(``tests/test_scheduler_planning.py``) and the engine only applies the answers.

* :func:`prepare`: validate a schedule argument and find its first fire.
* :func:`next_after`: the first fire strictly after an instant.
* :func:`coalesce`: after a late wake-up, which fire runs and when the schedule fires next.
* :func:`admit`: run, buffer, skip or report missed, per the schedule's policies.
* :func:`clock_step`: how a schedule's plan moves when the wall clock is stepped.

A schedule is a SpacetimeDB ``ScheduleAt`` (its two variants have no methods of their own, so
they are answered here) or a trigger, which answers for itself.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Final

from .._errors import InvalidScheduleError
from .._time import ScheduleAt, TimeDuration, Timestamp
from ._models import CoalescePolicy, OverlapPolicy, SchedulePolicy
from ._triggers import Trigger

__all__ = [
    "VIXIE_RESET_MICROS",
    "Admission",
    "Plannable",
    "admit",
    "buffers_all",
    "clock_step",
    "coalesce",
    "latest_due",
    "next_after",
    "prepare",
]

#: A step of the wall clock back by more than this (3 h, as in Vixie cron) is a time reset.
VIXIE_RESET_MICROS: Final = 3 * 3600 * 1_000_000

_Time: Final = ScheduleAt.Time
_Interval: Final = ScheduleAt.Interval
_ALL: Final = CoalescePolicy.ALL
_LATEST: Final = CoalescePolicy.LATEST
_ALLOW_ALL: Final = OverlapPolicy.ALLOW_ALL
_SKIP: Final = OverlapPolicy.SKIP
_BUFFER_ONE: Final = OverlapPolicy.BUFFER_ONE

#: What a schedule is planned from: SpacetimeDB's ``ScheduleAt`` or a trigger.
Plannable = ScheduleAt | Trigger


class Admission(enum.Enum):
    """What happens to a due fire."""

    RUN = "run"  #: start an execution now
    BUFFER = "buffer"  #: keep it until the running execution ends, then run it
    SKIP = "skip"  #: drop it (an execution is running and the overlap policy says so)
    MISSED = "missed"  #: drop it and report it: it is later than the misfire grace time


def prepare(schedule: object, now: int) -> tuple[Plannable, int | None]:
    """Validate ``schedule`` and return it (a trigger bound to ``now``) and its first fire.

    Accepts a ``ScheduleAt``, a trigger, a Timestamp/aware datetime (once) or a
    TimeDuration/timedelta (interval); anything else is an :class:`InvalidScheduleError`.
    """
    if isinstance(schedule, _Time):
        return schedule, schedule.value.micros_since_epoch
    if isinstance(schedule, _Interval):
        every = abs(schedule.value.micros)
        if every == 0:
            raise InvalidScheduleError("ScheduleAt.Interval: the interval must not be zero")
        return schedule, now + every
    if isinstance(schedule, (Timestamp, _dt.datetime, TimeDuration, _dt.timedelta)):
        return prepare(ScheduleAt.coerce(schedule), now)
    if isinstance(schedule, Trigger):
        trigger = schedule.bind(Timestamp._unchecked(now))
        first = trigger.initial_fire(Timestamp._unchecked(now))
        if first is None:
            raise InvalidScheduleError(f"trigger {trigger.describe()!r} never fires")
        return trigger, first.micros_since_epoch
    raise InvalidScheduleError(
        "schedule: expected a ScheduleAt, a trigger (see TriggerBase), a Timestamp/datetime "
        f"or a TimeDuration/timedelta, got {type(schedule).__name__} {schedule!r}"
    )


def next_after(schedule: Plannable, created: int, after: int) -> int | None:
    """The first fire strictly after ``after``, or None (``created``: the creation instant,
    the anchor of a ``ScheduleAt.Interval``)."""
    if type(schedule) is _Interval:
        every = abs(schedule.value.micros)
        k = (after - created) // every + 1
        return created + (k if k > 1 else 1) * every
    if type(schedule) is _Time:
        return None
    return schedule.next_fire_micros(after)  # type: ignore[union-attr]  # a trigger


def latest_due(schedule: Plannable, created: int, fire: int, now: int) -> int:
    """The latest fire time in ``fire..now`` (``fire`` is one)."""
    if type(schedule) is _Interval:
        every = abs(schedule.value.micros)
        return max(fire, created + (now - created) // every * every)
    if type(schedule) is _Time:
        return fire
    return schedule.latest_fire_micros(fire, now)  # type: ignore[union-attr]  # a trigger


def buffers_all(policy: SchedulePolicy, running: int) -> bool:
    """Whether a due fire waits for the running execution without any planning (coalesce
    ``all`` with an overlap policy that does not allow concurrent runs): it is re-queued
    when that execution ends."""
    return bool(running) and policy.coalesce is _ALL and policy.overlap is not _ALLOW_ALL


def coalesce(
    schedule: Plannable,
    created: int,
    policy: SchedulePolicy,
    key: int,
    fire: int,
    now: int,
) -> tuple[int, int, int | None]:
    """Plan past a due fire: returns ``(fire, key, next)``.

    ``fire`` is the intended fire time and ``key`` its queue key (``fire`` plus any jitter).
    The next fire is planned from the intended time, so execution time never shifts the
    cadence. Ticks missed while the scheduler was late are coalesced: ``latest`` runs the
    newest of them and ``earliest`` the one that was due, both continuing after ``now``;
    ``all`` replays them one by one, except those older than the misfire grace time.
    """
    nxt = next_after(schedule, created, fire)
    if nxt is not None and nxt <= now:  # ticks were missed
        mode = policy.coalesce
        if mode is _ALL:
            grace = policy.misfire_grace_time
            if grace is not None and nxt < now - grace.micros:
                nxt = next_after(schedule, created, now - grace.micros - 1)
        else:
            if mode is _LATEST:
                fire = latest_due(schedule, created, fire, now)
                key = max(key, fire)
            nxt = next_after(schedule, created, now)
    return fire, key, nxt


def admit(
    policy: SchedulePolicy, running: int, buffered: int | None, key: int, now: int
) -> Admission:
    """Whether a due fire (queue key ``key``) runs now: missed past the misfire grace time;
    otherwise, while an execution of the same schedule runs, per the overlap policy."""
    grace = policy.misfire_grace_time
    if grace is not None and now - key > grace.micros:
        return Admission.MISSED
    if running:
        overlap = policy.overlap
        if overlap is _SKIP:
            return Admission.SKIP
        if overlap is _BUFFER_ONE:
            return Admission.BUFFER if buffered is None else Admission.SKIP
    return Admission.RUN


def clock_step(
    schedule: Plannable, created: int, nxt: int, delta: int, now: int
) -> tuple[Plannable, int, int] | None:
    """How a schedule's plan moves when the wall clock was stepped by ``delta`` µs (``now``:
    the new wall time). Returns ``(schedule, created, next)`` or None when nothing changes.

    * Schedules that measure elapsed time (intervals) move with the clock: no stall after a
      step back, no burst after a step forward.
    * Wall-clock triggers keep their wall times, following Vixie cron: after a step back (of
      up to 3 hours) fixed-time schedules (daily, fixed cron, one-shots) are not run again,
      while wildcard cron schedules follow the new clock. A step back of more than 3 hours is
      a reset: every wall-clock trigger plans its next fire from the new time. What a step
      forward skipped over is handled by the misfire grace time and coalescing.
    """
    if type(schedule) is _Interval:
        return schedule, created + delta, nxt + delta
    if type(schedule) is _Time:
        return None
    moved = schedule.shifted(delta)  # type: ignore[union-attr]  # a trigger
    if moved is not None:
        return moved, created, nxt + delta
    if delta < 0 and (delta < -VIXIE_RESET_MICROS or schedule.follows_wall_clock):  # type: ignore[union-attr]
        replanned = next_after(schedule, created, now)
        if replanned is not None and replanned < nxt:
            return schedule, created, replanned
    return None
