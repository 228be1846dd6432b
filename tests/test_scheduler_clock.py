"""Wall-clock jumps: a system clock set forward or back neither stalls nor bursts the scheduler.

Interval schedules measure elapsed time, so the engine moves their grid with a clock step.
Wall-clock schedules (a fixed time, daily, cron) keep their wall times; what a step forward
skipped over is handled by the misfire grace time and coalescing (at most one run each).
"""

from __future__ import annotations

import time

import anyio
from _scheduler_support import START, Recorder, at, seconds

from spacetime_sched import Timestamp
from spacetime_sched.scheduler import ReducerScheduler, ScheduleResult, ScheduleStatus, SystemClock
from spacetime_sched.testing._clock import VirtualClock

HOUR = 3600.0


async def test_clock_set_back_an_hour_does_not_stall_interval_schedules() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_interval("tick", (), seconds(10))
        await clock.advance(seconds(25))  # fired at 10, 20
        await clock.jump(-HOUR)  # wall clock now reads 25 - 3600
        await clock.advance(seconds(30))
        # three more ticks, 10 s apart in real time, on the moved grid
        assert target.times() == [10.0, 20.0, 30.0 - HOUR, 40.0 - HOUR, 50.0 - HOUR]
        assert scheduler.get_schedule(sid).next_run == at(60 - HOUR)


async def test_clock_set_forward_an_hour_does_not_burst_interval_schedules() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_at_interval("tick", (), seconds(10))
        await clock.advance(seconds(25))
        await clock.jump(HOUR)
        await clock.advance(seconds(30))
        # no catch-up of 360 "missed" ticks: the cadence simply continues
        assert target.times() == [10.0, 20.0, 30.0 + HOUR, 40.0 + HOUR, 50.0 + HOUR]


async def test_wall_clock_schedules_keep_their_wall_times_across_a_step_back() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_at_time("at_60", (), at(60))
        scheduler.schedule_cron("minutely", (), "* * * * *")
        await clock.advance(seconds(61))  # both ran at 60
        await clock.jump(-120)  # wall clock reads -59: "at 60" is not run a second time
        await clock.advance(seconds(120))  # wall clock reaches 61 again
        assert target.times("at_60") == [60.0]
        # a wildcard cron follows the new wall clock (Vixie cron): minutes 0 and 60 again
        assert target.times("minutely") == [60.0, 0.0, 60.0]


async def test_a_step_forward_counts_as_lateness_for_wall_clock_schedules() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        strict = scheduler.schedule_at_time("strict", (), at(40))  # default grace: 60 s
        patient = scheduler.schedule_at_time("patient", (), at(40), misfire_grace_time=None)
        scheduler.schedule_cron("minutely", (), "* * * * *")
        results: list[ScheduleResult] = []
        scheduler.add_execution_callback(results.append)
        await clock.advance(seconds(10))
        await clock.jump(600)  # ten minutes forward: 40 s and ten cron minutes skipped over
        assert scheduler.get_schedule(strict).status is ScheduleStatus.FAILED  # 570 s late
        assert target.times("patient") == [610.0]
        assert scheduler.get_schedule(patient).status is ScheduleStatus.COMPLETED
        # the cron schedule is coalesced to one run, for its latest minute (10 s late)
        assert target.times("minutely") == [610.0]
        assert [r.fire_time for r in results if r.reducer_name == "minutely"] == [at(600)]


async def test_a_step_back_of_more_than_three_hours_resets_wall_clock_schedules() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_daily("daily", (), 0, 1)  # 00:01 UTC
        await clock.advance(seconds(61))  # ran at 00:01
        await clock.jump(-2 * HOUR)  # a small step back: 00:01 is not run again
        await clock.advance(2 * HOUR)
        assert target.times() == [60.0]
        await clock.jump(-4 * HOUR)  # a big step back is a reset, as in Vixie cron
        await clock.advance(4 * HOUR)
        assert target.times() == [60.0, 60.0]


class JumpingClock(SystemClock):
    """The real clock with an adjustable wall-clock offset (what ``date -s`` would do)."""

    def __init__(self) -> None:
        super().__init__(check_interval_micros=20_000)
        self.offset = 0

    def now_micros(self) -> int:
        return time.time_ns() // 1000 + self.offset


async def test_on_the_real_clock_a_jump_is_noticed_within_the_check_interval() -> None:
    clock = JumpingClock()
    fires: list[int] = []

    async def target(name: str, *args: object) -> None:
        fires.append(time.monotonic_ns())

    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_at_interval("tick", (), 0.05)
        with anyio.fail_after(10):
            while len(fires) < 3:  # noqa: ASYNC110 - polling on purpose, real time
                await anyio.sleep(0.01)
            clock.offset -= 3_600_000_000  # set back one hour: must not stall
            count = len(fires)
            while len(fires) < count + 3:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            clock.offset += 7_200_000_000  # set forward two hours: must not burst
            count = len(fires)
            await anyio.sleep(0.3)
        assert len(fires) - count <= 8  # about 6 in 0.3 s, not thousands


async def test_the_system_clock_never_sleeps_longer_than_its_check_interval() -> None:
    clock = SystemClock(check_interval_micros=20_000)
    start = time.monotonic()
    await clock.sleep_toward(clock.now_micros() + 10_000_000)
    await clock.sleep_toward(None)
    assert time.monotonic() - start < 1.0
    deadline = clock.now_micros() + 30_000
    await clock.sleep_until(Timestamp(deadline))
    assert clock.now_micros() >= deadline
