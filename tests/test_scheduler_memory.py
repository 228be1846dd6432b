"""Memory: a pending schedule costs the scheduler well under 500 bytes, so a million fit in
well under 500 MB.

Measured with tracemalloc over 10,000 schedules: everything the scheduler allocates for them
(the schedule object, its id, its ints, the heap entry, the index). The caller's own objects
(arguments, ScheduleAt values) are built before measuring; the benchmark
(benchmarks/bench_scheduler.py) reports the total with them too, at 1,000,000 schedules.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp
from spacetime_sched.scheduler import ReducerScheduler

N = 10_000


async def _target(name: str, *args: object) -> None:
    pass


def _bytes_per_schedule(add: Callable[[ReducerScheduler], None]) -> float:
    scheduler = ReducerScheduler(_target)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        add(scheduler)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(scheduler) == N
    return (after - before) / N


def test_a_pending_one_shot_schedule_costs_under_500_bytes() -> None:
    base = Timestamp.now().micros_since_epoch + 3_600_000_000
    whens = [ScheduleAt.Time(Timestamp(base + i)) for i in range(N)]

    def add(scheduler: ReducerScheduler) -> None:
        for when in whens:
            scheduler.schedule_reducer("tick", (), when)

    assert _bytes_per_schedule(add) < 500


def test_a_pending_interval_schedule_costs_under_500_bytes() -> None:
    intervals = [ScheduleAt.Interval(TimeDuration(1_000_000 + i)) for i in range(N)]
    args = [(i,) for i in range(N)]

    def add(scheduler: ReducerScheduler) -> None:
        for every, arg in zip(intervals, args, strict=True):
            scheduler.schedule_reducer("tick", arg, every)

    assert _bytes_per_schedule(add) < 500


def test_with_the_callers_own_objects_a_one_shot_still_costs_under_500_bytes() -> None:
    base = Timestamp.now().micros_since_epoch + 3_600_000_000

    def add(scheduler: ReducerScheduler) -> None:
        for i in range(N):
            scheduler.schedule_reducer("tick", (), ScheduleAt.Time(Timestamp(base + i)))

    assert _bytes_per_schedule(add) < 500


def test_bulk_adds_are_frozen_out_of_the_collectors_sight_unless_disabled() -> None:
    async def target(name: str, *args: object) -> None:
        pass

    far = Timestamp.now() + TimeDuration.from_hours(1)
    before = gc.get_freeze_count()
    try:
        quiet = ReducerScheduler(target, gc_freeze=False)
        for _ in range(10_000):
            quiet.schedule_at_time("x", (), far)
        assert gc.get_freeze_count() == before  # opted out: the collector is left alone
        bulk = ReducerScheduler(target)
        for _ in range(1000):
            bulk.schedule_at_time("x", (), far)
        assert gc.get_freeze_count() == before  # small schedulers never freeze
        for _ in range(9000):
            bulk.schedule_at_time("x", (), far)
        assert gc.get_freeze_count() > before  # 8,192 added in bulk: frozen
    finally:
        gc.unfreeze()
