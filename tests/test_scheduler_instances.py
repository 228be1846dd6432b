"""Several schedulers on one PostgreSQL, as a specification: changes wake the other instances at
once, and the fires of a dead instance are handled by their schedule's ``delivery`` option.

Real PostgreSQL (tests/_postgres_support.py), real time; every test runs on asyncio and trio.
The three-process test with SIGKILL is in tests/test_scheduler_multiprocess.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from _postgres_support import database_dsn, fresh_schema

from spacetime_sched._time import TimeDuration, Timestamp
from spacetime_sched.scheduler import ReducerScheduler, SchedulePolicy, ScheduleResult
from spacetime_sched.scheduler._instances import POLL_EVERY
from spacetime_sched.scheduler._stores import StoredSchedule
from spacetime_sched.scheduler._stores._postgres import PostgresStore

LEASE = TimeDuration.from_seconds(1)


@pytest.fixture
def schema() -> str:
    return fresh_schema()


async def until(condition: Callable[[], bool], seconds: float = 2) -> None:
    """Wait (at most ``seconds``) for a condition that has no event of its own to wait on."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - polling a view that has no event
            await anyio.sleep(0.01)


def store(schema: str, owner: str, lease: TimeDuration = LEASE) -> PostgresStore:
    return PostgresStore(database_dsn(), schema=schema, owner=owner, lease_ttl=lease)


class Calls:
    """A target that records (instance, reducer, wall time in µs) for each call."""

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.calls: list[tuple[str, str, int]] = []
        self.called = anyio.Event()

    async def __call__(self, reducer_name: str, *args: Any) -> None:
        self.calls.append((self.instance, reducer_name, time.time_ns() // 1000))
        self.called.set()


async def test_a_schedule_added_on_one_instance_fires_on_time_from_another(schema: str) -> None:
    # Instance A is running but busy: its only execution slot holds a call that does not end,
    # so it cannot take the new fire itself. B learns of the schedule only through
    # LISTEN/NOTIFY (its safety-net poll is POLL_EVERY = 30 s away) and must run it on time.
    assert POLL_EVERY >= 30
    release = anyio.Event()

    async def busy_target(reducer_name: str, *args: Any) -> None:
        if reducer_name == "block":
            await release.wait()

    b_calls = Calls("B")
    async with store(schema, "A") as store_a, store(schema, "B") as store_b:
        async with ReducerScheduler(
            busy_target, store=store_a, max_concurrent_executions=1, instance_id="A"
        ) as a:
            blocker = a.schedule_in_seconds("block", (), 0)
            # A runs the blocker (before B exists to claim it)
            await until(lambda: a.get_execution_stats()["running_executions"] == 1)
            async with ReducerScheduler(b_calls, store=store_b, instance_id="B") as b:
                sid = a.schedule_in_seconds("tick", (), 0.1)
                due = a.get_schedule(sid).next_run
                assert due is not None
                with anyio.fail_after(2):
                    await b_calls.called.wait()
                (instance, reducer, at), *_ = b_calls.calls
                assert (instance, reducer) == ("B", "tick")
                lateness = at - due.micros_since_epoch
                assert 0 <= lateness < 400_000, f"fired {lateness} µs late"
                assert sid in b
                release.set()
                with anyio.fail_after(5):
                    await a.wait_for(blocker)
        assert await store_a.claimed_by(sid, due) == "B"
        assert await store_a.fire_state(sid, due) == "done"


async def test_pausing_and_cancelling_on_one_instance_reach_the_other_at_once(schema: str) -> None:
    calls = Calls("B")
    async with store(schema, "A") as store_a, store(schema, "B") as store_b:
        async with (
            ReducerScheduler(Calls("A"), store=store_a) as a,
            ReducerScheduler(calls, store=store_b) as b,
        ):
            sid = a.schedule_at_interval("tick", (), 3600)
            await until(lambda: sid in b)
            a.pause(sid)
            await until(lambda: b.get_schedule(sid).status.value == "paused")
            a.cancel_schedule(sid)  # finished: deleted from the store, forgotten by B
            await until(lambda: sid not in b)
        assert calls.calls == []


def one_shot(schedule_id: str, at: int, delivery: str) -> StoredSchedule:
    policy = SchedulePolicy(delivery=delivery, misfire_grace_time=None)
    return StoredSchedule(
        id=schedule_id,
        reducer_name="tick",
        args=(schedule_id,),
        trigger={"type": "once", "at": at},
        policy=policy.to_dict(),
        metadata={},
        status="pending",
        run_count=0,
        next_run_micros=at,
        created_at_micros=at - 1_000_000,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("delivery", "started", "reruns"),
    [
        ("at_most_once", True, False),  # it was running: reported interrupted, not re-run
        ("at_most_once", False, True),  # claimed but never started: it never ran, so it runs
        ("at_least_once", True, True),  # it was running: run again
    ],
)
async def test_a_dead_instances_fire_is_taken_over_by_its_delivery_option(
    schema: str, delivery: str, started: bool, reruns: bool
) -> None:
    due = time.time_ns() // 1000 - 100_000
    fire = Timestamp(due)
    # The "dead" instance: it claimed the fire (and maybe started it), then vanished.
    async with store(schema, "dead", TimeDuration.from_millis(200)) as dead:
        await dead.save(one_shot("job", due, delivery))
        assert await dead.claim_fires([("job", fire)], "dead") == [True]
        if started:
            assert await dead.start_fires([("job", fire)], "dead") == [True]
    calls = Calls("live")
    reports: list[ScheduleResult] = []
    async with store(schema, "live") as live:
        async with ReducerScheduler(calls, store=live, instance_id="live") as scheduler:
            scheduler.add_error_callback(reports.append)
            await until(lambda: bool(calls.calls or reports), 5)
            await anyio.sleep(0.5)  # nothing more happens
            stats = scheduler.get_execution_stats()
        if reruns:
            assert [c[1] for c in calls.calls] == ["tick"]
            assert reports == []
            assert stats["interrupted_executions"] == 0
            assert await live.fire_state("job", fire) == "done"
        else:
            assert calls.calls == []
            (report,) = reports
            assert report.interrupted
            assert not report.ok
            assert report.fire_time == fire
            assert "interrupted" in str(report.error)
            assert "'dead'" in str(report.error)
            assert stats["interrupted_executions"] == 1
            assert await live.fire_state("job", fire) == "interrupted"
        assert await live.claimed_by("job", fire) == "live"
        assert await live.load_many(["job"]) == []  # the one-shot is done with: deleted


async def test_a_graceful_stop_gives_back_claims_it_had_not_started(schema: str) -> None:
    # The store-level release is in test_scheduler_postgres.py; here the engine calls it:
    # a claim left "claimed" by this owner when the scheduler stops is gone afterwards.
    async with store(schema, "me") as mine:
        async with ReducerScheduler(Calls("me"), store=mine, instance_id="me"):
            assert await mine.claim_fires([("orphan", Timestamp(1))], "me") == [True]
        assert await mine.claimed_by("orphan", Timestamp(1)) is None
