"""Concurrency, scale and shutdown: the limiter bounds executions, a thousand schedules and a
day of virtual time run exactly, callbacks cannot hurt the scheduler, and stopping is clean."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
from collections import Counter
from zoneinfo import ZoneInfo

import anyio
import pytest
from _scheduler_support import START, Recorder, at, seconds

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.scheduler import ReducerScheduler, ScheduleResult, ScheduleStatus
from spacetime_sched.testing._clock import VirtualClock


async def test_the_capacity_limiter_bounds_concurrent_executions() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["work"] = 1
    async with ReducerScheduler(target, clock=clock, max_concurrent_executions=5) as scheduler:
        for _ in range(50):
            scheduler.schedule_at_time("work", (), at(1), misfire_grace_time=None)
        await clock.advance(seconds(20))
        assert target.max_running == 5
        assert Counter(target.times()) == {float(t): 5 for t in range(1, 11)}


async def test_a_thousand_interval_schedules_fire_exactly_on_their_grids() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    rng = random.Random(1)
    intervals = {}
    async with ReducerScheduler(target, clock=clock, max_concurrent_executions=50) as scheduler:
        for i in range(1000):
            every = rng.randrange(30, 121)
            intervals[i] = every
            scheduler.schedule_at_interval("tick", (i,), seconds(every))
        await clock.advance(seconds(600))
        fired: dict[int, list[float]] = {}
        for _, (i,), t in target.calls:
            fired.setdefault(i, []).append(t)
        for i, every in intervals.items():
            assert fired.get(i, []) == [float(every * k) for k in range(1, 600 // every + 1)]
        stats = scheduler.get_execution_stats()
        assert stats["total_executions"] == len(target.calls)
        assert stats["lateness_max"] == TimeDuration(0)


async def test_a_day_across_a_dst_change_runs_every_kind_of_schedule_exactly() -> None:
    ny = ZoneInfo("America/New_York")
    start = Timestamp.from_datetime(dt.datetime(2024, 3, 9, 12, tzinfo=ny))
    clock = VirtualClock(start)
    fired: list[tuple[str, dt.datetime]] = []

    async def target(name: str, *args: object) -> None:
        fired.append((name, clock.now().to_datetime(ny)))

    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_daily("daily_0230", (), 2, 30, timezone_info=ny)
        scheduler.schedule_cron("hourly", (), "0 * * * *", timezone_info="America/New_York")
        scheduler.schedule_at_interval("every_hour", (), TimeDuration.from_hours(1))
        await clock.advance(TimeDuration.from_hours(36))

    daily = [t for name, t in fired if name == "daily_0230"]
    # 02:30 does not exist on 2024-03-10: Vixie cron runs it right after the jump, at 03:00 EDT
    assert [t.isoformat() for t in daily] == ["2024-03-10T03:00:00-04:00"]
    hourly = [t for name, t in fired if name == "hourly"]
    # "*" in the hour field follows the wall clock: one run per real hour, and 02:00 (which
    # does not exist on 2024-03-10) is simply not on the clock: 01:00 EST is followed by 03:00 EDT
    assert len(hourly) == 36
    assert not [t for t in hourly if t.day == 10 and t.hour == 2]
    every_hour = [t for name, t in fired if name == "every_hour"]
    assert len(every_hour) == 36  # intervals are real time: exactly 3600 s apart
    # (datetime subtraction within one zone is wall-clock arithmetic; compare real instants)
    gaps = {b.timestamp() - a.timestamp() for a, b in itertools.pairwise(every_hour)}
    assert gaps == {3600.0}


async def test_callbacks_sync_or_async_see_every_result_and_cannot_break_the_scheduler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.fail["bad"] = 1
    seen: list[ScheduleResult] = []
    errors: list[ScheduleResult] = []

    async def async_callback(result: ScheduleResult) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(result)

    def broken(result: ScheduleResult) -> None:
        raise ValueError("callback bug")

    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.add_execution_callback(broken)
        scheduler.add_execution_callback(async_callback)
        scheduler.add_error_callback(errors.append)
        scheduler.schedule_at_time("good", (), at(1))
        scheduler.schedule_at_time("bad", (), at(2))
        scheduler.schedule_at_time("later", (), at(3))
        with caplog.at_level(logging.ERROR, logger="spacetime_sched.scheduler"):
            await clock.advance(seconds(5))
    assert [(r.reducer_name, r.ok) for r in seen] == [
        ("good", True),
        ("bad", False),
        ("later", True),
    ]
    assert [r.reducer_name for r in errors] == ["bad"]
    assert (
        sum("callback bug" in r.getMessage() or "raised" in r.getMessage() for r in caplog.records)
        == 3
    )


async def test_stopping_lets_running_executions_finish_within_the_shutdown_timeout() -> None:
    done = []

    async def target(name: str, *args: object) -> None:
        await anyio.sleep(0.05)  # real time
        done.append(name)

    async with ReducerScheduler(target, shutdown_timeout=5) as scheduler:
        sid = scheduler.schedule_in_seconds("finish_me", (), 0)
        with anyio.fail_after(5):
            while not scheduler.get_schedule(sid).running:  # noqa: ASYNC110 - polling a view
                await anyio.sleep(0.001)
    assert done == ["finish_me"]
    assert scheduler.get_schedule(sid).status is ScheduleStatus.COMPLETED


async def test_executions_still_running_after_the_timeout_are_cancelled_pending_stay() -> None:
    clock = VirtualClock(START)
    cancelled = []

    async def target(name: str, *args: object) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(name)

    with anyio.fail_after(5):
        async with ReducerScheduler(target, clock=clock, shutdown_timeout=0.05) as scheduler:
            hung = scheduler.schedule_at_time("hung", (), at(1))
            tick = scheduler.schedule_at_interval("tick", (), seconds(60))
            later = scheduler.schedule_at_time("later", (), at(3600))
            await clock.advance(seconds(1))
    assert cancelled == ["hung"]
    # the interrupted one-shot is recorded as failed (never run twice) ...
    s = scheduler.get_schedule(hung)
    assert s.status is ScheduleStatus.FAILED
    assert s.last_result is not None
    assert "cancelled because the scheduler stopped" in str(s.last_result.error)
    # ... and schedules that were waiting stay pending (a persistent store keeps them)
    assert scheduler.get_schedule(later).status is ScheduleStatus.PENDING
    assert scheduler.get_schedule(tick).next_run == at(60)


async def test_wait_idle_and_wait_for_on_the_real_clock() -> None:
    calls = []

    async def target(name: str, *args: object) -> str:
        calls.append(name)
        return name.upper()

    async with ReducerScheduler(target) as scheduler:
        sid = scheduler.schedule_in_seconds("soon", (), 0.01)
        for _ in range(20):
            scheduler.schedule_in_seconds("now", (), 0)
        with anyio.fail_after(5):
            result = await scheduler.wait_for(sid)
            await scheduler.wait_idle()
        assert result is not None
        assert result.value == "SOON"
        assert len(calls) == 21
