"""Per-schedule policies: misfire grace, coalescing, overlap, retries with backoff, timeouts and
fire-time jitter. Virtual time throughout (times are seconds after START)."""

from __future__ import annotations

import random

import anyio
import pytest
from _scheduler_support import START, FakeClient, Recorder, at, seconds

from spacetime_sched import InvalidScheduleError, ScheduleAt, TimeDuration
from spacetime_sched.scheduler import (
    CoalescePolicy,
    DeliveryPolicy,
    OverlapPolicy,
    ReducerScheduler,
    SchedulePolicy,
    ScheduleResult,
    ScheduleStatus,
)
from spacetime_sched.testing._clock import VirtualClock

# --- misfire grace time -----------------------------------------------------------------------


def test_the_default_misfire_grace_time_is_generous() -> None:
    assert SchedulePolicy().misfire_grace_time == TimeDuration.from_seconds(60)


@pytest.mark.anyio  # parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    ("grace", "runs"),
    [(None, True), (300, True), (60, False), (30, False)],
)
async def test_a_fire_later_than_the_grace_time_is_missed_not_run(
    grace: float | None, runs: bool
) -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    sid = scheduler.schedule_at_time("job", (), at(1), misfire_grace_time=grace)
    errors: list[ScheduleResult] = []
    scheduler.add_error_callback(errors.append)
    await clock.advance(seconds(121))  # the scheduler was down for two minutes
    async with scheduler:
        await clock.settle()
        s = scheduler.get_schedule(sid)
        if runs:
            assert target.times() == [121.0]
            assert s.status is ScheduleStatus.COMPLETED
            assert s.last_result is not None
            assert s.last_result.lateness == seconds(120)
        else:
            assert target.calls == []
            assert s.status is ScheduleStatus.FAILED
            assert s.last_result is not None
            assert s.last_result.missed
            assert "missed its fire time" in str(s.last_result.error)
            assert [r.schedule_id for r in errors] == [sid]
            assert scheduler.get_execution_stats()["missed_executions"] == 1


async def test_a_busy_scheduler_misses_fires_it_could_not_start_in_time() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["blocker"] = 100
    async with ReducerScheduler(
        target, clock=clock, max_concurrent_executions=1, shutdown_timeout=0
    ) as scheduler:
        scheduler.schedule_at_time("blocker", (), at(1))
        scheduler.schedule_at_time("strict", (), at(2), misfire_grace_time=10)
        scheduler.schedule_at_time("patient", (), at(3))  # default grace 60 s
        scheduler.schedule_at_time("forever", (), at(4), misfire_grace_time=None)
        await clock.advance(seconds(120))
        # the only slot frees at 101: strict (99 s late) and patient (98 s late) are missed
        assert target.times() == [1.0, 101.0]
        assert target.calls[1][0] == "forever"


# --- coalescing --------------------------------------------------------------------------------


@pytest.mark.anyio  # parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    ("coalesce", "fire_times"),
    [
        (CoalescePolicy.LATEST, [30.0]),
        (CoalescePolicy.EARLIEST, [10.0]),
        (CoalescePolicy.ALL, [10.0, 20.0, 30.0]),
    ],
)
async def test_missed_ticks_are_coalesced_per_policy(
    coalesce: CoalescePolicy, fire_times: list[float]
) -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    scheduler = ReducerScheduler(target, clock=clock)
    sid = scheduler.schedule_at_interval("tick", (), seconds(10), coalesce=coalesce)
    results: list[ScheduleResult] = []
    scheduler.add_execution_callback(results.append)
    await clock.advance(seconds(35))  # down while ticks 10, 20 and 30 passed
    async with scheduler:
        await clock.settle()
        assert [(r.fire_time - START).total_seconds() for r in results] == fire_times
        assert target.times() == [35.0] * len(fire_times)
        # and the grid is kept: the next tick is 40, not 35 + 10
        assert scheduler.get_schedule(sid).next_run == at(40)
        await clock.advance(seconds(5))
        assert target.times()[-1] == 40.0


async def test_coalesce_all_replays_only_ticks_within_the_grace_time_one_by_one() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["tick"] = 1
    scheduler = ReducerScheduler(target, clock=clock)
    scheduler.schedule_at_interval("tick", (), seconds(10), coalesce="all", misfire_grace_time=25)
    results: list[ScheduleResult] = []
    scheduler.add_execution_callback(results.append)
    await clock.advance(seconds(100))  # ticks 10..100 passed; 80, 90, 100 are within 25 s
    async with scheduler:
        await clock.advance(seconds(5))
    assert [(r.fire_time - START).total_seconds() for r in results] == [80.0, 90.0, 100.0]
    assert target.times() == [100.0, 101.0, 102.0]  # one after another (buffer-all)
    assert target.max_running == 1


# --- overlap -----------------------------------------------------------------------------------


@pytest.mark.anyio  # parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    ("overlap", "starts", "max_running"),
    [
        (OverlapPolicy.SKIP, [1.0, 4.0, 7.0], 1),
        (OverlapPolicy.BUFFER_ONE, [1.0, 3.2, 5.4, 7.6], 1),
        (OverlapPolicy.ALLOW_ALL, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 3),
    ],
)
async def test_overlap_policy_decides_about_fires_during_a_running_execution(
    overlap: OverlapPolicy, starts: list[float], max_running: int
) -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["slow"] = 2.2
    async with ReducerScheduler(target, clock=clock, shutdown_timeout=0) as scheduler:
        scheduler.schedule_at_interval("slow", (), seconds(1), overlap=overlap)
        await clock.advance(seconds(8))
        assert [round(t, 6) for t in target.times()] == starts
        assert target.max_running == max_running
        if overlap is OverlapPolicy.SKIP:
            assert scheduler.get_execution_stats()["skipped_executions"] == 5  # 2, 3, 5, 6, 8


# --- retries -----------------------------------------------------------------------------------


async def test_failures_are_retried_with_exponential_backoff() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.fail["flaky"] = 3
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_time(
            "flaky", (), at(1), max_retries=5, backoff_base=1, backoff_factor=2, backoff_jitter=0
        )
        await clock.advance(seconds(60))
        assert target.times() == [1.0, 2.0, 4.0, 8.0]  # waits of 1, 2, 4 s
        s = scheduler.get_schedule(sid)
        assert s.status is ScheduleStatus.COMPLETED
        assert s.run_count == 1  # one fire, four attempts
        assert s.last_result is not None
        assert s.last_result.attempt == 4
        stats = scheduler.get_execution_stats()
        assert (stats["failed_executions"], stats["successful_executions"]) == (3, 1)
        assert stats["retried_executions"] == 3


async def test_a_one_shot_that_keeps_failing_ends_failed_and_the_scheduler_goes_on() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.fail["bad"] = 100
    async with ReducerScheduler(target, clock=clock) as scheduler:
        bad = scheduler.schedule_at_time("bad", (), at(1), max_retries=1, backoff_max=5)
        scheduler.schedule_at_interval("good", (), seconds(10))
        await clock.advance(seconds(30))
        s = scheduler.get_schedule(bad)
        assert s.status is ScheduleStatus.FAILED
        assert s.last_result is not None
        assert isinstance(s.last_result.error, RuntimeError)
        assert len(target.times("bad")) == 2
        assert target.times("good") == [10.0, 20.0, 30.0]


async def test_a_failing_repeating_schedule_keeps_its_cadence() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.fail["tick"] = 2
    async with ReducerScheduler(target, clock=clock) as scheduler:
        sid = scheduler.schedule_at_interval("tick", (), seconds(5))
        await clock.advance(seconds(20))
        assert target.times() == [5.0, 10.0, 15.0, 20.0]
        assert scheduler.get_schedule(sid).status is ScheduleStatus.PENDING
        assert scheduler.get_execution_stats()["success_rate"] == 0.5


def test_backoff_grows_exponentially_is_capped_and_jitter_only_shortens() -> None:
    policy = SchedulePolicy(backoff_base=2, backoff_factor=3, backoff_max=50, backoff_jitter=0.5)
    assert [policy.backoff_delay(n, 0.0) for n in (1, 2, 3, 4)] == [
        2_000_000,
        6_000_000,
        18_000_000,
        50_000_000,
    ]
    assert policy.backoff_delay(1, 0.999) > 1_000_000
    assert policy.backoff_delay(1, 0.5) == 1_500_000


# --- timeouts ----------------------------------------------------------------------------------


async def test_an_execution_longer_than_its_timeout_fails_with_timeout_error() -> None:
    clock = VirtualClock(START)
    client = FakeClient()
    client.hang = True
    async with ReducerScheduler(client, clock=clock) as scheduler:
        sid = scheduler.schedule_at_time("hang", (), at(0), timeout=0.05)
        with anyio.fail_after(5):
            result = await scheduler.wait_for(sid)
        assert result is not None
        assert isinstance(result.error, TimeoutError)
        assert client.calls == [("hang", (), 0.05)]
        assert scheduler.get_schedule(sid).status is ScheduleStatus.FAILED


# --- jitter ------------------------------------------------------------------------------------


async def test_jitter_delays_each_fire_but_never_past_the_next_one() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    async with ReducerScheduler(target, clock=clock, random=random.Random(7)) as scheduler:
        scheduler.schedule_at_interval("small", (), seconds(10), jitter=3)
        scheduler.schedule_at_interval("huge", (), seconds(10), jitter=3600)
        await clock.advance(seconds(205))
        small, huge = target.times("small"), target.times("huge")
        assert len(small) == 20
        assert len(huge) >= 19
        for k, t in enumerate(small, start=1):
            assert 10 * k <= t <= 10 * k + 3
        for k, t in enumerate(huge, start=1):
            assert 10 * k <= t < 10 * (k + 1)
        assert len(set(small)) > 1  # it really is random


def test_policy_values_are_validated_and_round_trip_through_dicts() -> None:
    policy = SchedulePolicy(
        misfire_grace_time=None, coalesce="all", overlap="allow_all", timeout=1.5, jitter=2
    )
    assert SchedulePolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValueError, match="max_retries"):
        SchedulePolicy(max_retries=-1)
    with pytest.raises(ValueError, match="backoff_factor"):
        SchedulePolicy(backoff_factor=0.5)
    with pytest.raises(ValueError, match="timeout: must not be negative"):
        SchedulePolicy(timeout=-1)


async def test_schedules_with_the_same_options_share_one_policy_object() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    a = scheduler.schedule_reducer("x", (), ScheduleAt.Time(at(1)), max_retries=2)
    b = scheduler.schedule_reducer("x", (), ScheduleAt.Time(at(2)), max_retries=2)
    c = scheduler.schedule_reducer("x", (), ScheduleAt.Time(at(3)))
    assert scheduler.get_schedule(a).policy is scheduler.get_schedule(b).policy
    assert scheduler.get_schedule(c).policy is SchedulePolicy() or (
        scheduler.get_schedule(c).policy == SchedulePolicy()
    )


# --- delivery ----------------------------------------------------------------------------------


def test_delivery_defaults_to_at_most_once_and_is_stored_in_the_policy_dict() -> None:
    assert SchedulePolicy().delivery is DeliveryPolicy.AT_MOST_ONCE
    policy = SchedulePolicy(delivery="at_least_once")
    assert policy.delivery is DeliveryPolicy.AT_LEAST_ONCE
    assert policy.to_dict()["delivery"] == "at_least_once"  # what PostgresStore reads
    assert SchedulePolicy.from_dict(policy.to_dict()) == policy
    assert SchedulePolicy.from_dict({}).delivery is DeliveryPolicy.AT_MOST_ONCE  # older records


@pytest.mark.parametrize(
    "method",
    ["schedule_in_seconds", "schedule_at_interval", "schedule_cron", "schedule_daily"],
)
def test_every_schedule_method_takes_the_delivery_keyword(method: str) -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    when: dict[str, tuple[object, ...]] = {
        "schedule_in_seconds": (5,),
        "schedule_at_interval": (5,),
        "schedule_cron": ("*/5 * * * *",),
        "schedule_daily": (3, 0),
    }
    sid = getattr(scheduler, method)("r", (), *when[method], delivery="at_least_once")
    assert scheduler.get_schedule(sid).policy.delivery is DeliveryPolicy.AT_LEAST_ONCE
    sid = scheduler.schedule_at_time("r", (), at(9), delivery=DeliveryPolicy.AT_LEAST_ONCE)
    assert scheduler.get_schedule(sid).policy.delivery == "at_least_once"
    sid = scheduler.schedule_reducer("r", (), at(9))
    assert scheduler.get_schedule(sid).policy.delivery is DeliveryPolicy.AT_MOST_ONCE


def test_a_bad_delivery_is_refused_at_the_call_naming_the_argument() -> None:
    clock = VirtualClock(START)
    scheduler = ReducerScheduler(Recorder(clock), clock=clock)
    with pytest.raises(InvalidScheduleError, match=r"delivery: expected one of .*'exactly_once'"):
        scheduler.schedule_in_seconds("r", (), 5, delivery="exactly_once")
    with pytest.raises(InvalidScheduleError, match="delivery"):
        SchedulePolicy(delivery=1)  # type: ignore[arg-type]
    assert len(scheduler) == 0
