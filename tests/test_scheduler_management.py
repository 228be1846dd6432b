"""Managing schedules while the scheduler runs: list, get, cancel, pause, resume, reschedule,
trigger now, next execution time, and how long finished schedules are remembered."""

from __future__ import annotations

import pytest
from _scheduler_support import START, Recorder, at, seconds

from spacetime_sched import InvalidScheduleError, ScheduleAt, SchedulerClosedError
from spacetime_sched.scheduler import CronTrigger, ReducerScheduler, ScheduleStatus
from spacetime_sched.testing._clock import VirtualClock


async def test_list_and_get_schedules_with_filters() -> None:
    clock = VirtualClock(START)
    async with ReducerScheduler(Recorder(clock), clock=clock) as scheduler:
        a = scheduler.schedule_at_time("a", (), at(1), metadata={"owner": "me"})
        b = scheduler.schedule_at_interval("b", (), seconds(10))
        c = scheduler.schedule_at_time("a", (), at(100))
        await clock.advance(seconds(2))
        assert [s.id for s in scheduler.list_schedules()] == [a, b, c]
        assert [s.id for s in scheduler.list_schedules(reducer_name="a")] == [a, c]
        assert [s.id for s in scheduler.list_schedules(status="completed")] == [a]
        assert [s.id for s in scheduler.list_schedules(ScheduleStatus.PENDING)] == [b, c]
        s = scheduler.get_schedule(a)
        assert dict(s.metadata) == {"owner": "me"}
        assert s.created_at == START
        assert "a() at" in s.describe()
        assert a in scheduler
        assert len(scheduler) == 3


async def test_cancel_stops_future_fires_and_lets_a_running_execution_finish() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["tick"] = 3
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_interval("tick", (), seconds(5))
        await clock.advance(seconds(6))  # first run: 5..8
        assert scheduler.cancel_schedule(sid) is True
        assert scheduler.get_schedule(sid).status is ScheduleStatus.CANCELLED
        await clock.advance(seconds(30))
        assert target.times() == [5.0]
        assert target.running == 0  # it finished at 8
        assert scheduler.get_schedule(sid).status is ScheduleStatus.CANCELLED
        assert scheduler.cancel_schedule(sid) is False
        assert scheduler.get_next_execution_time() is None


async def test_pause_and_resume_skip_the_fires_missed_while_paused() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_interval("tick", (), seconds(10))
        await clock.advance(seconds(10))
        scheduler.pause(sid)
        assert scheduler.get_schedule(sid).status is ScheduleStatus.PAUSED
        assert scheduler.get_schedule(sid).next_run is None
        await clock.advance(seconds(25))  # 20 and 30 pass while paused
        scheduler.resume(sid)
        assert scheduler.get_schedule(sid).next_run == at(40)
        await clock.advance(seconds(10))
        assert target.times() == [10.0, 40.0]
        with pytest.raises(InvalidScheduleError, match="not paused"):
            scheduler.resume(sid)


async def test_a_one_shot_resumed_after_its_time_runs_at_once() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_time("once", (), at(5))
        scheduler.pause(sid)
        await clock.advance(seconds(20))
        assert target.calls == []
        scheduler.resume(sid)
        await clock.settle()
        assert target.times() == [20.0]


async def test_reschedule_replaces_the_timing_and_revives_finished_schedules() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_time("job", (), at(100))
        scheduler.reschedule(sid, ScheduleAt.Time(at(5)))
        await clock.advance(seconds(10))
        assert target.times() == [5.0]
        assert scheduler.get_schedule(sid).status is ScheduleStatus.COMPLETED
        scheduler.reschedule(sid, ScheduleAt.Interval(seconds(4)))  # counts from now (10)
        assert scheduler.get_schedule(sid).status is ScheduleStatus.PENDING
        await clock.advance(seconds(9))
        assert target.times() == [5.0, 14.0, 18.0]
        scheduler.reschedule(sid, CronTrigger("0 * * * *"))
        assert scheduler.get_schedule(sid).next_run == at(3600)
        scheduler.cancel_schedule(sid)
        with pytest.raises(InvalidScheduleError, match="cancelled"):
            scheduler.reschedule(sid, ScheduleAt.Time(at(50)))


async def test_trigger_now_runs_an_extra_execution_even_while_paused() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    sid = scheduler.schedule_at_interval("tick", (), seconds(60))
    with pytest.raises(SchedulerClosedError, match="not running"):
        scheduler.trigger_now(sid)
    async with scheduler:
        await clock.advance(seconds(1))
        scheduler.trigger_now(sid)
        await clock.settle()
        scheduler.pause(sid)
        scheduler.trigger_now(sid)
        await clock.settle()
        assert target.times() == [1.0, 1.0]
        assert scheduler.get_schedule(sid).run_count == 2
        assert scheduler.get_schedule(sid).status is ScheduleStatus.PAUSED


async def test_get_next_execution_time_ignores_cancelled_and_paused_schedules() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    assert scheduler.get_next_execution_time() is None
    a = scheduler.schedule_at_time("a", (), at(1))
    b = scheduler.schedule_at_time("b", (), at(2))
    scheduler.schedule_at_time("c", (), at(3))
    assert scheduler.get_next_execution_time() == at(1)
    scheduler.cancel_schedule(a)
    assert scheduler.get_next_execution_time() == at(2)
    scheduler.pause(b)
    assert scheduler.get_next_execution_time() == at(3)
    scheduler.resume(b)
    assert scheduler.get_next_execution_time() == at(2)


async def test_finished_schedules_are_remembered_up_to_the_retention_limit() -> None:
    clock = VirtualClock(START)
    async with ReducerScheduler(Recorder(clock), clock=clock, finished_retention=3) as scheduler:
        ids = [scheduler.schedule_at_time("x", (), at(i)) for i in range(1, 6)]
        keep = scheduler.schedule_at_interval("y", (), seconds(100))
        await clock.advance(seconds(10))
        assert [s.id for s in scheduler.list_schedules()] == [*ids[2:], keep]
        assert scheduler.remove_finished() == 3
        assert [s.id for s in scheduler.list_schedules()] == [keep]


async def test_cancelling_many_schedules_compacts_the_heap() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    ids = [scheduler.schedule_at_time("x", (), at(10 + i)) for i in range(5000)]
    for sid in ids[:4000]:
        scheduler.cancel_schedule(sid)
    assert len(scheduler._queue) < 5000  # stale entries were dropped, not kept forever
    assert scheduler.get_next_execution_time() == at(4010)
