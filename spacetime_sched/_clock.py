"""The clock seam: one protocol and one system clock for everything that waits for a time.

The scheduler engine and the local server's schedule timer never call :func:`time.time` or
:func:`anyio.sleep` directly; they ask a :class:`Clock`. Production uses :class:`SystemClock`;
tests pass a :class:`~spacetime_sched.testing.VirtualClock`, under which a day of schedules runs
in milliseconds.

Two kinds of time are involved and they are kept apart on purpose:

* **wall time** (:meth:`Clock.now`): what schedules are expressed in ("at 09:00", "every 5 s
  from creation"). It can jump when an administrator or NTP sets the system clock.
* **monotonic time** (:meth:`Clock.monotonic_micros`): never jumps; used for sleeping and for
  measuring durations.

The engine sleeps with :meth:`Clock.sleep_toward`, which may return *early*: the system clock
wakes up at least every :data:`WALL_CHECK_INTERVAL_MICROS` (1 s) of monotonic time so the engine
can re-read the wall clock. A clock set forward is noticed within a second (the missed fires
are then handled by the misfire/coalesce policies); a clock set back is noticed just as fast
and the engine re-anchors interval schedules instead of stalling until the wall clock catches up.
"""

from __future__ import annotations

import time
from typing import Final, Protocol, runtime_checkable

import anyio

from ._errors import InvalidScheduleError
from ._time import Timestamp

__all__ = ["WALL_CHECK_INTERVAL_MICROS", "Clock", "SystemClock"]

#: Longest monotonic sleep of :class:`SystemClock` between two readings of the wall clock.
WALL_CHECK_INTERVAL_MICROS: Final = 1_000_000


@runtime_checkable
class Clock(Protocol):
    """What the scheduler and the local server need from a clock."""

    def now(self) -> Timestamp:
        """The current wall-clock time."""
        ...

    def now_micros(self) -> int:
        """``now().micros_since_epoch`` without building a Timestamp (the engine's hot path)."""
        ...

    def monotonic_micros(self) -> int:
        """A reading of a clock that never jumps (arbitrary origin), in microseconds."""
        ...

    async def sleep_until(self, deadline: Timestamp) -> None:
        """Return once the wall clock has reached ``deadline`` (at once if it already has)."""
        ...

    async def sleep_toward(self, deadline_micros: int | None) -> None:
        """Sleep until the wall clock reaches ``deadline_micros`` (``None``: no deadline), or
        return earlier when the wall clock should be re-checked. Callers loop."""
        ...


class SystemClock:
    """The real clock: wall time from :func:`time.time_ns`, sleeping on the monotonic clock.

    ``check_interval_micros`` bounds every single monotonic sleep, so a jump of the system
    clock is seen within that time.
    """

    __slots__ = ("_check_interval",)

    def __init__(self, *, check_interval_micros: int = WALL_CHECK_INTERVAL_MICROS) -> None:
        if check_interval_micros <= 0:
            raise InvalidScheduleError(
                f"SystemClock: check_interval_micros must be positive, got {check_interval_micros}"
            )
        self._check_interval = check_interval_micros

    def now(self) -> Timestamp:
        return Timestamp._unchecked(self.now_micros())

    def now_micros(self) -> int:
        return time.time_ns() // 1000

    def monotonic_micros(self) -> int:
        return time.monotonic_ns() // 1000

    async def sleep_until(self, deadline: Timestamp) -> None:
        target = deadline.micros_since_epoch
        while True:
            remaining = target - self.now_micros()
            if remaining <= 0:
                await anyio.lowlevel.checkpoint()
                return
            await anyio.sleep(min(remaining, self._check_interval) / 1_000_000)

    async def sleep_toward(self, deadline_micros: int | None) -> None:
        if deadline_micros is None:
            await anyio.sleep(self._check_interval / 1_000_000)
            return
        remaining = deadline_micros - self.now_micros()
        if remaining <= 0:
            await anyio.lowlevel.checkpoint()
            return
        await anyio.sleep(min(remaining, self._check_interval) / 1_000_000)

    def __repr__(self) -> str:
        return f"SystemClock(check_interval_micros={self._check_interval})"
