"""start() / stop() / bind(): running a scheduler in a task group lent by its host, and the
error callbacks of the design document (``on_error(schedule_id, error)``)."""

from __future__ import annotations

import anyio
import pytest
from _scheduler_support import START, Recorder, at, seconds

from spacetime_sched import InvalidScheduleError, SchedulerClosedError, SchedulerError
from spacetime_sched.scheduler import ReducerScheduler, ScheduleResult, ScheduleStatus
from spacetime_sched.testing._clock import VirtualClock


async def test_start_without_an_owner_says_how_to_run_the_scheduler() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    with pytest.raises(SchedulerError) as caught:
        await scheduler.start()
    message = str(caught.value)
    assert "async with ReducerScheduler(...)" in message
    assert "tg.start(scheduler.run)" in message.replace("task_group", "tg")
    assert not scheduler.running  # nothing happened
    assert not scheduler.closed


async def test_start_runs_in_the_lent_task_group_and_keeps_earlier_schedules() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    early = scheduler.schedule_in_seconds("early", (), 1)  # added before start: kept
    async with anyio.create_task_group() as tg:
        scheduler.bind(tg)
        await scheduler.start()
        assert scheduler.running
        await scheduler.start()  # a second start (auto_start and an explicit one) is a no-op
        assert scheduler.running
        await clock.advance(seconds(1))
        assert scheduler.get_schedule(early).status is ScheduleStatus.COMPLETED
        await scheduler.stop()
        assert scheduler.closed  # stop() returned after the run loop ended
    assert target.times() == [1.0]


async def test_the_scheduler_ends_with_the_lent_task_group() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            scheduler.bind(tg)
            await scheduler.start()
            scheduler.schedule_at_interval("tick", (), seconds(1))
            await clock.advance(seconds(2))
            scope.cancel()
    assert scheduler.closed
    assert target.times() == [1.0, 2.0]


async def test_unbind_takes_the_task_group_back() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    async with anyio.create_task_group() as tg:
        scheduler.bind(tg)
        scheduler.unbind()
        with pytest.raises(SchedulerError, match="no task group"):
            await scheduler.start()


async def test_stop_drains_running_executions_within_the_shutdown_timeout() -> None:
    finished: list[str] = []
    started = anyio.Event()

    async def target(name: str, *args: object) -> None:
        started.set()
        await anyio.sleep(0.05)
        finished.append(name)

    scheduler = ReducerScheduler(target, shutdown_timeout=5)
    async with anyio.create_task_group() as tg:
        scheduler.bind(tg)
        await scheduler.start()
        scheduler.schedule_in_seconds("drain_me", (), 0)
        await started.wait()
        with anyio.fail_after(5):
            await scheduler.stop()
        assert finished == ["drain_me"]  # it finished before stop() returned
        assert scheduler.closed


async def test_stop_cancels_what_outlives_the_shutdown_timeout() -> None:
    started = anyio.Event()

    async def target(name: str, *args: object) -> None:
        started.set()
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        scheduler = ReducerScheduler(target, shutdown_timeout=0.05)
        await tg.start(scheduler.run)
        sid = scheduler.schedule_in_seconds("forever", (), 0)
        await started.wait()
        with anyio.fail_after(5):
            await scheduler.stop()
    result = scheduler.get_schedule(sid).last_result
    assert result is not None
    assert "cancelled because the scheduler stopped" in str(result.error)


async def test_stop_before_start_closes_and_start_after_stop_is_refused() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    await scheduler.stop()  # never started: returns at once
    assert scheduler.closed
    async with anyio.create_task_group() as tg:
        scheduler.bind(tg)
        with pytest.raises(SchedulerClosedError, match="stopped"):
            await scheduler.start()


async def test_stop_is_idempotent_and_works_with_async_with() -> None:
    clock = VirtualClock(START)
    async with ReducerScheduler(Recorder(clock), clock=clock) as scheduler:
        await scheduler.stop()
        assert scheduler.closed
        await scheduler.stop()
    assert scheduler.closed


async def test_error_callbacks_get_schedule_id_and_error_sync_or_async() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.fail["bad"] = 1
    plain: list[tuple[str, BaseException]] = []
    awaited: list[tuple[str, BaseException]] = []
    results: list[ScheduleResult] = []

    def on_error(schedule_id: str, error: BaseException) -> None:  # the document's form
        plain.append((schedule_id, error))

    async def on_error_async(schedule_id: str, error: BaseException) -> None:
        await anyio.lowlevel.checkpoint()
        awaited.append((schedule_id, error))

    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.add_error_callback(on_error)
        scheduler.add_error_callback(on_error_async)
        scheduler.add_error_callback(results.append)  # one argument: the whole result
        scheduler.add_execution_callback(results.append)
        good = scheduler.schedule_at_time("good", (), at(1))
        bad = scheduler.schedule_at_time("bad", (), at(2))
        await clock.advance(seconds(3))
    assert [(sid, str(error)) for sid, error in plain] == [(bad, "bad failed")]
    assert [(sid, str(error)) for sid, error in awaited] == [(bad, "bad failed")]
    assert [(r.schedule_id, r.ok) for r in results] == [(good, True), (bad, False), (bad, False)]


async def test_error_callbacks_hear_of_missed_fires() -> None:
    clock = VirtualClock(START)
    seen: list[tuple[str, BaseException]] = []
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    sid = scheduler.schedule_at_time("late", (), at(1), misfire_grace_time=1)
    scheduler.add_error_callback(lambda schedule_id, error: seen.append((schedule_id, error)))
    await clock.advance(seconds(10))  # the scheduler was not running at the fire time
    async with scheduler:
        await clock.settle()
    assert [sid_ for sid_, _ in seen] == [sid]
    assert isinstance(seen[0][1], SchedulerError)
    assert "missed its fire time" in str(seen[0][1])


def test_callbacks_must_be_callable_with_the_documented_arguments() -> None:
    async def target(name: str, *args: object) -> None:
        pass

    scheduler = ReducerScheduler(target)
    with pytest.raises(InvalidScheduleError, match="add_error_callback"):
        scheduler.add_error_callback(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidScheduleError, match="schedule_id, error"):
        scheduler.add_error_callback(lambda: None)
    with pytest.raises(InvalidScheduleError, match="add_execution_callback"):
        scheduler.add_execution_callback("print")  # type: ignore[arg-type]
