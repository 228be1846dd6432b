"""The schedule timer: when each armed schedule-table row is due, and one task that waits.

Rows are keyed by ``(table name, row id)``. A :class:`~spacetime_sched._deadlines.DeadlineHeap`
orders the due times; re-arming or disarming a row leaves its old entry behind, skipped later
because it no longer matches the row's current due time (lazy deletion keeps every change
O(log n)). The task sleeps until
the earliest due time, and is woken early whenever a row is armed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import anyio
import anyio.lowlevel

from ..._deadlines import DeadlineHeap
from ..._time import ScheduleAtInterval, ScheduleAtTime, Timestamp

if TYPE_CHECKING:
    from ._host import ServerClock

__all__ = ["MAX_SCHEDULE_DELAY_MICROS", "RowKey", "ScheduleTimer", "first_due", "next_tick"]

#: SpacetimeDB refuses schedules further ahead than 64**6 - 1 milliseconds (about 2.18 years).
MAX_SCHEDULE_DELAY_MICROS: Final = (64**6 - 1) * 1000

#: A schedule-table row: (table name, row id).
RowKey = tuple[str, int]


def first_due(schedule: Any, now: Timestamp) -> int:
    """When a row inserted (or updated) ``now`` first fires, in µs since the epoch: a
    ``Time`` at its time, an ``Interval`` one |interval| later (at least 1 µs)."""
    if isinstance(schedule, ScheduleAtTime):
        return int(schedule.value.micros_since_epoch)
    if isinstance(schedule, ScheduleAtInterval):
        return now.micros_since_epoch + max(abs(schedule.value.micros), 1)
    raise TypeError(f"expected a ScheduleAt, got {schedule!r}")


def next_tick(schedule: ScheduleAtInterval, intended: int, now: int) -> int:
    """The tick after an interval row fired for ``intended``: the first ``intended + k·|d|``
    after ``now`` (k ≥ 1), so missed ticks are skipped rather than bunched."""
    every = max(abs(schedule.value.micros), 1)
    return intended + max((now - intended) // every + 1, 1) * every


class ScheduleTimer:
    """Due times of armed rows, and :meth:`run`, the task that fires them in order."""

    def __init__(self, clock: ServerClock) -> None:
        self._clock = clock
        self._due: dict[RowKey, int] = {}
        self._heap: DeadlineHeap[tuple[int, int, str, int]] = DeadlineHeap(self._is_live)
        self._sequence = 0  # FIFO among equal due times
        self._wake: anyio.Event | None = None

    def arm(self, key: RowKey, due: int) -> None:
        """(Re)schedule ``key`` for ``due`` (µs since the epoch)."""
        self._due[key] = due
        self._sequence += 1
        self._heap.push((due, self._sequence, *key))
        if self._wake is not None:
            self._wake.set()

    def disarm(self, key: RowKey) -> None:
        self._due.pop(key, None)

    def is_armed(self, key: RowKey) -> bool:
        return key in self._due

    def _is_live(self, entry: tuple[int, int, str, int]) -> bool:
        # stale: the row was deleted, changed or re-armed since this entry was pushed
        due, _, table, row_id = entry
        return self._due.get((table, row_id)) == due

    def next_due(self) -> int | None:
        """The earliest due time, or ``None`` when nothing is armed."""
        entry = self._heap.peek()
        return None if entry is None else entry[0]

    async def run(self, fire: Callable[[RowKey, int], None]) -> NoReturn:
        """Forever: wait for the earliest due row, disarm it and call ``fire(key, due)``."""
        while True:
            self._wake = wake = anyio.Event()
            due = self.next_due()
            if due is None:
                await wake.wait()
                continue
            if due > self._clock.now().micros_since_epoch:
                await self._sleep_or_wake(Timestamp(due), wake)
                continue
            popped = self._heap.pop()
            assert popped is not None  # next_due() just found it
            _, _, table, row_id = popped
            self.disarm((table, row_id))
            fire((table, row_id), due)
            await anyio.lowlevel.checkpoint()

    async def _sleep_or_wake(self, deadline: Timestamp, wake: anyio.Event) -> None:
        async with anyio.create_task_group() as task_group:

            async def sleep() -> None:
                await self._clock.sleep_until(deadline)
                task_group.cancel_scope.cancel()

            async def woken() -> None:
                await wake.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(sleep)
            task_group.start_soon(woken)
