"""The scheduler with a store: schedules outlive the process, and instances sharing a store run
each fire once. (The stores themselves are specified in test_scheduler_stores.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from _scheduler_support import START, Recorder, at, seconds

from spacetime_sched.scheduler import (
    DailyTrigger,
    MemoryStore,
    ReducerScheduler,
    ScheduleStatus,
    SQLiteStore,
)
from spacetime_sched.testing._clock import VirtualClock


class BrokenStore(MemoryStore):
    async def claim_fire(self, schedule_id: str, fire_time: object, owner: str) -> bool:
        raise OSError("disk on fire")

    async def claim_fires(self, fires: object, owner: str) -> list[bool]:
        raise OSError("disk on fire")


class SingleClaimStore(MemoryStore):
    """A store without the batch API: the engine claims one fire at a time."""

    claim_fires = None  # type: ignore[assignment]
    save_many = None  # type: ignore[assignment]
    delete_many = None  # type: ignore[assignment]


async def advance(clock: VirtualClock, scheduler: ReducerScheduler, total: int) -> None:
    """Advance second by second, letting store I/O (in worker threads) finish each time:
    virtual time cannot see into threads, so it must not run ahead of them."""
    for _ in range(total):
        await clock.advance(seconds(1))
        with anyio.fail_after(5):
            await scheduler.wait_idle()


async def test_schedules_survive_a_restart_with_a_sqlite_store(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    path = tmp_path / "schedules.db"
    async with SQLiteStore(path) as store:
        async with ReducerScheduler(target, clock=clock, store=store) as scheduler:
            tick = scheduler.schedule_at_interval("tick", (1, "x"), seconds(10), max_retries=2)
            later = scheduler.schedule_at_time("later", ({"k": [1, 2]},), at(100))
            done = scheduler.schedule_at_time("soon", (), at(5))
            gone = scheduler.schedule_reducer("daily", (), DailyTrigger(3, 0))
            scheduler.cancel_schedule(gone)
            await advance(clock, scheduler, 25)
        assert target.times("tick") == [10.0, 20.0]
        assert target.times("soon") == [5.0]

    # a new process: same file, a fresh scheduler
    target2 = Recorder(clock)
    async with SQLiteStore(path) as store:
        async with ReducerScheduler(target2, clock=clock, store=store) as scheduler:
            ids = {s.id for s in scheduler.list_schedules()}
            assert ids == {tick, later}  # finished and cancelled schedules were dropped
            restored = scheduler.get_schedule(tick)
            assert restored.run_count == 2
            assert restored.next_run == at(30)  # the grid anchored at creation is kept
            assert restored.policy.max_retries == 2
            assert scheduler.get_schedule(later).args == ({"k": [1, 2]},)
            await advance(clock, scheduler, 80)
        assert target2.times("tick") == [30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
        assert target2.times("later") == [100.0]
    assert done not in ids


async def test_a_named_schedule_added_at_every_start_is_not_duplicated(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    path = tmp_path / "schedules.db"
    for _ in range(3):
        async with SQLiteStore(path) as store:
            # added before start: the definition in code wins over the stored row
            scheduler = ReducerScheduler(Recorder(clock), clock=clock, store=store)
            scheduler.schedule_daily("report", (), 9, 0, schedule_id="daily-report")
            async with scheduler:
                # added while running, the stored row is already known: say what you mean
                scheduler.schedule_daily(
                    "report", (), 9, 30, schedule_id="daily-report", replace_existing=True
                )
            [only] = scheduler.list_schedules()
            assert "09:30" in only.describe()
    async with SQLiteStore(path) as store:
        assert [r.id for r in await store.load_all()] == ["daily-report"]


@pytest.mark.anyio  # parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize("store_class", [MemoryStore, SingleClaimStore])
async def test_two_instances_sharing_a_store_run_each_fire_once(
    store_class: type[MemoryStore],
) -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    store = store_class()
    first = ReducerScheduler(target, clock=clock, store=store, instance_id="a")
    second = ReducerScheduler(target, clock=clock, store=store, instance_id="b")
    sid = first.schedule_at_interval("tick", (), seconds(10), schedule_id="shared")
    second.schedule_at_interval("tick", (), seconds(10), schedule_id="shared")
    async with first, second:
        await clock.advance(seconds(60))
    assert target.times() == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    skipped = (
        first.get_execution_stats()["skipped_executions"]
        + second.get_execution_stats()["skipped_executions"]
    )
    assert skipped == 6  # each fire was claimed by one instance and skipped by the other
    assert first.get_schedule(sid).status is ScheduleStatus.PENDING


async def test_a_failing_store_fails_the_fire_but_not_the_scheduler() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock, store=BrokenStore()) as scheduler:
        sid = scheduler.schedule_at_interval("tick", (), seconds(10))
        await clock.advance(seconds(30))
        assert target.calls == []  # never run a fire that could not be claimed
        result = scheduler.get_schedule(sid).last_result
        assert result is not None
        assert isinstance(result.error, OSError)
        assert scheduler.get_execution_stats()["failed_executions"] == 3
        assert scheduler.running


class UnreadableStore(MemoryStore):
    async def load_all(self) -> list[Any]:
        raise OSError("cannot read the store")


async def test_a_store_that_cannot_be_loaded_fails_the_start_with_its_own_error() -> None:
    with pytest.raises(OSError, match="cannot read the store"):
        async with ReducerScheduler(Recorder(VirtualClock(START)), store=UnreadableStore()):
            pass


async def test_a_schedule_the_store_cannot_encode_does_not_lose_the_others(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(START)
    path = tmp_path / "schedules.db"
    async with SQLiteStore(path) as store:
        async with ReducerScheduler(Recorder(clock), clock=clock, store=store) as scheduler:
            good = scheduler.schedule_at_time("good", (1,), at(100))
            scheduler.schedule_at_time("bad", (object(),), at(100))  # not a reducer value
        assert [r.id for r in await store.load_all()] == [good]
