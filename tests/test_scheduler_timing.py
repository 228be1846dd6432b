"""PrecisionTimer, TimeMetrics and execution statistics."""

from __future__ import annotations

import time

import pytest
from _scheduler_support import START, Recorder, at, seconds

from spacetime_sched import TimeDuration
from spacetime_sched.scheduler import PrecisionTimer, ReducerScheduler, TimeMetrics
from spacetime_sched.testing._clock import VirtualClock


def test_precision_timer_measures_a_span_in_whole_microseconds() -> None:
    with PrecisionTimer() as timer:
        time.sleep(0.002)
    took = timer.elapsed
    assert isinstance(took, TimeDuration)
    assert 2_000 <= took.micros < 1_000_000
    assert timer.stop() == took  # stopped: frozen
    assert timer.elapsed_ns >= 2_000_000


def test_precision_timer_start_stop_and_misuse() -> None:
    timer = PrecisionTimer()
    assert timer.elapsed == TimeDuration.ZERO
    with pytest.raises(RuntimeError, match="before start"):
        timer.stop()
    timer.start()
    assert timer.stop().micros >= 0
    assert "stopped" in repr(timer)


def test_time_metrics_average_by_name() -> None:
    metrics = TimeMetrics()
    assert metrics.get_average_duration("call") is None
    for _ in range(3):
        with metrics.measure("call"):
            time.sleep(0.001)
    metrics.record("fixed", 2_000_000)
    metrics.record("fixed", 4_000_000)
    assert metrics.get_average_duration("fixed") == TimeDuration(3_000)
    average = metrics.get_average_duration("call")
    assert average is not None
    assert average.micros >= 1_000
    assert metrics.get_count("call") == 3
    summary = metrics.get_summary("fixed")
    assert summary is not None
    assert (summary["min"], summary["max"]) == (TimeDuration(2_000), TimeDuration(4_000))
    assert sorted(metrics.names()) == ["call", "fixed"]
    metrics.reset()
    assert metrics.names() == []


def test_time_metrics_records_a_body_that_raises() -> None:
    metrics = TimeMetrics()
    with pytest.raises(KeyError), metrics.measure("oops"):
        raise KeyError("x")
    assert metrics.get_count("oops") == 1


async def test_execution_stats_count_durations_lateness_and_per_reducer_figures() -> None:
    clock = VirtualClock(START)
    target = Recorder(clock)
    target.busy["slow"] = 2
    target.fail["bad"] = 1
    async with ReducerScheduler(target, clock=clock, max_concurrent_executions=1) as scheduler:
        scheduler.schedule_at_time("slow", (), at(1))
        scheduler.schedule_at_time("bad", (), at(1))  # waits for the only slot: 2 s late
        scheduler.schedule_at_time("fast", (), at(10))
        await clock.advance(seconds(20))
        stats = scheduler.get_execution_stats()
    assert stats["total_executions"] == 3
    assert stats["successful_executions"] == 2
    assert stats["failed_executions"] == 1
    assert stats["success_rate"] == pytest.approx(2 / 3)
    assert stats["average_duration"] == TimeDuration.from_seconds(2) // 3
    assert stats["lateness_p50"] == TimeDuration(0)
    assert stats["lateness_p99"] == TimeDuration.from_seconds(2)
    assert stats["lateness_max"] == TimeDuration.from_seconds(2)
    assert stats["per_reducer"]["slow"]["average_duration"] == TimeDuration.from_seconds(2)
    assert stats["per_reducer"]["bad"]["success_rate"] == 0.0
    assert stats["pending_schedules"] == 0
    assert stats["running_executions"] == 0


def test_stats_of_a_fresh_scheduler() -> None:
    async def target(name: str, *args: object) -> None:
        pass

    stats = ReducerScheduler(target).get_execution_stats()
    assert stats["total_executions"] == 0
    assert stats["success_rate"] == 1.0
    assert stats["lateness_p99"] is None
