"""ReducerScheduler: what runs when, with which arguments, and how it starts and stops.

Time is virtual (VirtualClock starting at START = 2025-01-01T00:00:00Z), so every timing below is
exact. Each test runs on asyncio and trio.
"""

from __future__ import annotations

import datetime as dt

import anyio
import pytest
from _scheduler_support import START, FakeClient, Recorder, at, seconds

from spacetime_sched import (
    InvalidScheduleError,
    ScheduleAt,
    ScheduleNotFoundError,
    SchedulerClosedError,
    SchedulerError,
    TimeDuration,
)
from spacetime_sched.scheduler import (
    IntervalTrigger,
    OnceTrigger,
    ReducerScheduler,
    ScheduleStatus,
    schedule_at,
    schedule_once,
    schedule_repeating,
)
from spacetime_sched.testing._clock import VirtualClock


async def test_a_time_schedule_fires_once_at_its_time_with_its_args() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_time("send", (1, "a"), at(30))
        await clock.advance(seconds(29.999))
        assert target.calls == []
        await clock.advance(seconds(0.001))
        assert target.calls == [("send", (1, "a"), 30.0)]
        await clock.advance(seconds(3600))
        assert len(target.calls) == 1
        s = scheduler.get_schedule(sid)
        assert s.status is ScheduleStatus.COMPLETED
        assert s.run_count == 1
        assert s.next_run is None
        assert s.last_result is not None
        assert s.last_result.ok
        assert s.last_result.value == "send ok"
        assert s.last_result.fire_time == at(30)


async def test_a_time_in_the_past_fires_at_once() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_at_time("late", (), at(-10))
        await clock.settle()
        assert target.calls == [("late", (), 0.0)]


async def test_an_interval_first_fires_one_interval_after_creation_then_stays_anchored() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["slow"] = 0.7  # execution time must not shift the cadence
    # (shutdown_timeout is real time: the last execution is still "busy" in virtual time)
    async with ReducerScheduler(target, clock=clock, shutdown_timeout=0) as scheduler:
        await clock.advance(seconds(0.25))
        scheduler.schedule_reducer("slow", (), ScheduleAt.Interval(seconds(2)))
        await clock.advance(seconds(10))
        assert target.times("slow") == [2.25, 4.25, 6.25, 8.25, 10.25]


async def test_schedule_in_seconds_and_the_convenience_functions() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_in_seconds("a", (), 5)
        schedule_once(scheduler, "b", [1], delay_seconds=1.5)
        schedule_repeating(scheduler, "c", (), interval_seconds=4)
        schedule_at(scheduler, "d", (), at(3))

        class Conn:  # a connection exposes its scheduler as .scheduler
            pass

        conn = Conn()
        conn.scheduler = scheduler  # type: ignore[attr-defined]
        schedule_once(conn, "e", (), delay_seconds=2)
        await clock.advance(seconds(8))
        assert [(n, t) for n, _, t in target.calls] == [
            ("b", 1.5),
            ("e", 2.0),
            ("d", 3.0),
            ("c", 4.0),
            ("a", 5.0),
            ("c", 8.0),
        ]
        assert target.calls[0][1] == (1,)  # a list of args becomes a tuple
        with pytest.raises(TypeError, match="scheduler"):
            schedule_once(object(), "x", (), 1)


async def test_triggers_are_accepted_and_bound_at_creation() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_reducer("once", (), OnceTrigger(at(2)))
        scheduler.schedule_reducer("every", (), IntervalTrigger(seconds(3)))
        scheduler.schedule_reducer("td", (), dt.timedelta(seconds=5))  # an interval
        await clock.advance(seconds(10))
        assert target.times("once") == [2.0]
        assert target.times("every") == [3.0, 6.0, 9.0]
        assert target.times("td") == [5.0, 10.0]


async def test_a_client_target_gets_the_timeout_keyword() -> None:
    clock = VirtualClock(START)
    client = FakeClient()
    async with ReducerScheduler(client, clock=clock) as scheduler:
        scheduler.schedule_in_seconds("plain", ("x",), 1)
        scheduler.schedule_in_seconds("limited", (), 1, timeout=2.5)
        await clock.advance(seconds(1))
    # same fire time: both start; their relative order is up to the event loop
    assert sorted(client.calls) == [("limited", (), 2.5), ("plain", ("x",), None)]


async def test_schedules_added_before_start_run_once_started() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    scheduler.schedule_in_seconds("early", (), 1)
    async with scheduler:
        await clock.advance(seconds(1))
    assert target.times() == [1.0]


async def test_it_can_run_inside_the_callers_task_group_and_stop() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        assert scheduler.running
        scheduler.schedule_at_interval("tick", (), seconds(1))
        await clock.advance(seconds(3))
        scheduler.stop()
    assert scheduler.closed
    assert target.times() == [1.0, 2.0, 3.0]


async def test_cancelling_the_enclosing_scope_stops_everything() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["long"] = 1000
    with anyio.CancelScope() as scope:
        async with ReducerScheduler(target, clock=clock) as scheduler:
            scheduler.schedule_at_interval("long", (), seconds(1))
            await clock.advance(seconds(1))
            assert target.running == 1
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert target.running == 0  # the execution was cancelled, not leaked
    assert scheduler.closed


async def test_an_exception_in_the_body_propagates_unwrapped() -> None:
    clock = VirtualClock(START)
    with pytest.raises(KeyError, match="boom"):
        async with ReducerScheduler(Recorder(clock), clock=clock):
            raise KeyError("boom")


async def test_a_closed_scheduler_refuses_new_schedules_and_cannot_restart() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    async with scheduler:
        pass
    with pytest.raises(SchedulerClosedError, match="closed"):
        scheduler.schedule_in_seconds("x", (), 1)
    with pytest.raises(SchedulerError, match="already closed"):
        await scheduler.run()


def test_bad_arguments_are_refused_with_a_clear_message() -> None:
    async def target(name: str, *args: object) -> None:
        pass

    scheduler = ReducerScheduler(target)
    with pytest.raises(InvalidScheduleError, match="reducer_name"):
        scheduler.schedule_in_seconds("", (), 1)
    with pytest.raises(InvalidScheduleError, match="args of 'x'"):
        scheduler.schedule_in_seconds("x", "abc", 1)
    with pytest.raises(InvalidScheduleError, match="must not be zero"):
        scheduler.schedule_reducer("x", (), ScheduleAt.Interval(TimeDuration(0)))
    with pytest.raises(InvalidScheduleError, match="unknown schedule option"):
        scheduler.schedule_in_seconds("x", (), 1, retries=3)
    with pytest.raises(InvalidScheduleError, match="coalesce"):
        scheduler.schedule_in_seconds("x", (), 1, coalesce="sometimes")
    with pytest.raises(InvalidScheduleError, match="schedule: expected"):
        scheduler.schedule_reducer("x", (), 42)  # type: ignore[arg-type]
    with pytest.raises(ScheduleNotFoundError, match="'nope'"):
        scheduler.get_schedule("nope")
    with pytest.raises(TypeError, match="call_reducer_async"):
        ReducerScheduler(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrent_executions"):
        ReducerScheduler(target, max_concurrent_executions=0)


def test_named_schedules_are_unique_unless_replaced() -> None:
    async def target(name: str, *args: object) -> None:
        pass

    scheduler = ReducerScheduler(target)
    scheduler.schedule_in_seconds("x", (), 1, schedule_id="nightly")
    with pytest.raises(InvalidScheduleError, match="already exists"):
        scheduler.schedule_in_seconds("x", (), 1, schedule_id="nightly")
    scheduler.schedule_in_seconds("y", (), 1, schedule_id="nightly", replace_existing=True)
    assert scheduler.get_schedule("nightly").reducer_name == "y"
    assert len(scheduler) == 1
