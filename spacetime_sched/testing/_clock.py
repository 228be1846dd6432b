"""A virtual clock: hours, days and DST transitions of scheduling in milliseconds.

Give a :class:`VirtualClock` to a :class:`~spacetime_sched.scheduler.ReducerScheduler` as its
``clock`` and drive time from the test::

    clock = VirtualClock(Timestamp.from_datetime(datetime(2024, 3, 9, tzinfo=UTC)))
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_at_interval("tick", (), TimeDuration.from_hours(1))
        await clock.advance(TimeDuration.from_days(2))   # 48 fires, in order

:meth:`VirtualClock.advance` moves virtual time through every pending wake-up in order and lets
every task run until it blocks again before taking the next step, so what a test observes is
what a real run would produce, step by step, only without the waiting. It works on asyncio and
trio.

The clock has a wall time and a monotonic time. :meth:`advance` moves both; :meth:`jump` moves
only the wall time, the way ``date -s`` or an NTP step does, to test what a scheduler does when
the system clock is set forward or back.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Final

import anyio
import anyio.lowlevel

from .._backend import current_backend
from .._deadlines import DeadlineHeap
from .._time import TimeDuration, Timestamp

__all__ = ["VirtualClock"]

_DEFAULT_START: Final = Timestamp.from_datetime(_dt.datetime(2025, 1, 1, tzinfo=_dt.timezone.utc))
#: On asyncio, how many zero-length yields :meth:`VirtualClock.settle` allows before it falls
#: back to anyio's (slow, 0.1 s polling) ``wait_all_tasks_blocked``.
_MAX_ASYNCIO_YIELDS: Final = 100_000


class _Sleeper:
    """One task waiting for the virtual wall clock to reach ``deadline``."""

    __slots__ = ("cancelled", "deadline", "event")

    def __init__(self, deadline: int) -> None:
        self.deadline = deadline
        self.event = anyio.Event()
        self.cancelled = False


class VirtualClock:
    """A clock whose time moves only when the test says so.

    ``start`` is the initial wall time (default 2025-01-01T00:00:00Z); the monotonic reading
    starts at 0. Implements the scheduler's :class:`~spacetime_sched.scheduler.Clock` protocol.
    """

    def __init__(self, start: Timestamp | None = None) -> None:
        self._now = (start or _DEFAULT_START).micros_since_epoch
        self._monotonic = 0
        self._sleepers: DeadlineHeap[tuple[int, int, _Sleeper]] = DeadlineHeap(_awake_pending)
        self._seq = 0

    # --- readings -----------------------------------------------------------------------------

    def now(self) -> Timestamp:
        """The virtual wall-clock time."""
        return Timestamp._unchecked(self._now)

    def now_micros(self) -> int:
        return self._now

    def monotonic_micros(self) -> int:
        """The virtual monotonic time: moved by :meth:`advance`, not by :meth:`jump`."""
        return self._monotonic

    # --- sleeping -----------------------------------------------------------------------------

    async def sleep_until(self, deadline: Timestamp) -> None:
        """Return once virtual wall time has reached ``deadline``."""
        target = deadline.micros_since_epoch
        while self._now < target:
            await self._wait(target)
        await anyio.lowlevel.checkpoint()

    async def sleep(self, seconds: float | TimeDuration) -> None:
        """Sleep for ``seconds`` (or a TimeDuration) of virtual time."""
        micros = seconds.micros if isinstance(seconds, TimeDuration) else round(seconds * 1e6)
        await self.sleep_until(Timestamp._unchecked(self._now + micros))

    async def sleep_toward(self, deadline_micros: int | None) -> None:
        """Sleep until ``deadline_micros`` (None: until the next :meth:`jump`), or return early
        when the wall clock jumps."""
        if deadline_micros is not None and deadline_micros <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        await self._wait(deadline_micros)

    async def _wait(self, deadline: int | None) -> None:
        sleeper = _Sleeper(deadline if deadline is not None else 2**63)
        self._seq += 1
        self._sleepers.push((sleeper.deadline, self._seq, sleeper))
        try:
            await sleeper.event.wait()
        finally:
            sleeper.cancelled = True  # harmless if it already woke; skipped by advance()
            if not sleeper.event.is_set():  # left its entry behind in the heap
                self._sleepers.note_stale()

    # --- driving time -------------------------------------------------------------------------

    async def advance(self, duration: TimeDuration | float) -> None:
        """Move time forward by ``duration`` (a TimeDuration or seconds), waking every sleeper
        in deadline order and letting all tasks run until they block after each wake-up."""
        micros = duration.micros if isinstance(duration, TimeDuration) else round(duration * 1e6)
        if micros < 0:
            raise ValueError(f"VirtualClock.advance: duration must not be negative, got {micros}")
        await self._advance_to(self._now + micros)

    async def advance_to(self, when: Timestamp) -> None:
        """Move time forward to ``when`` (see :meth:`advance`)."""
        target = when.micros_since_epoch
        if target < self._now:
            raise ValueError(
                f"VirtualClock.advance_to: {when} is before the current virtual time {self.now()}"
            )
        await self._advance_to(target)

    async def _advance_to(self, target: int) -> None:
        await self.settle()
        sleepers = self._sleepers
        while True:
            first = sleepers.peek()
            if first is None or first[0] > target:
                break
            step = first[0]
            self._monotonic += step - self._now
            self._now = step
            while (entry := sleepers.pop_due(step)) is not None:
                entry[2].event.set()
            await self.settle()
        self._monotonic += target - self._now
        self._now = target
        await self.settle()

    async def jump(self, delta: TimeDuration | float) -> None:
        """Set the *wall* clock forward (positive) or back (negative) by ``delta`` without
        moving monotonic time, like an administrator or an NTP step would, then wake every
        sleeper so it re-reads the clock (as the real clock does within a second)."""
        micros = delta.micros if isinstance(delta, TimeDuration) else round(delta * 1e6)
        self._now += micros
        for _, _, sleeper in self._sleepers.drain():
            if not sleeper.cancelled:
                sleeper.event.set()
        await self.settle()

    async def settle(self) -> None:
        """Let every other task run until it is blocked (anyio's ``wait_all_tasks_blocked``
        without the 0.1 s polling of its asyncio implementation)."""
        if current_backend() != "asyncio":  # trio's implementation is exact and fast
            await anyio.wait_all_tasks_blocked()
            return
        this_task = asyncio.current_task()

        def all_blocked() -> bool:
            return all(_is_blocked(t) for t in asyncio.all_tasks() if t is not this_task)

        for _ in range(_MAX_ASYNCIO_YIELDS):
            await asyncio.sleep(0)
            # twice in a row: a task may have been woken by the last one to block
            if all_blocked():
                await asyncio.sleep(0)
                if all_blocked():
                    return
        # Still busy (e.g. a worker thread is running): poll as anyio's implementation does. Not
        # anyio's own function: on Python 3.10 the `taskgroup` backport that hypercorn installs
        # parks tasks on objects that are not futures, which it cannot inspect.
        while not all_blocked():  # noqa: ASYNC110 (polling other tasks, nothing to wait on)
            await asyncio.sleep(0.01)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now()}, pending_sleepers={len(self._sleepers)})"


def _awake_pending(entry: tuple[int, int, _Sleeper]) -> bool:
    return not entry[2].cancelled


def _is_blocked(task: asyncio.Task[object]) -> bool:
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is None:
        return False  # runnable
    done = getattr(waiter, "done", None)
    # A future-like object without done() (the `taskgroup` backport's WaitTaskRescheduled on
    # Python 3.10) only ever parks a task until another task finishes: blocked.
    return done is None or not done()
