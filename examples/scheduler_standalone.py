"""The scheduler on its own: no SpacetimeDB, just an async function as the target.

``ReducerScheduler`` calls ``target(reducer_name, *args)`` at the times its schedules say. The
target is usually a ``DbConnection``, but any ``async def`` works, which makes the scheduler
useful (and easy to try) on its own. This script shows, in about three seconds of real time:

* intervals, one-shots, a six-field cron expression with seconds, and a daily time in a zone;
* retries with exponential backoff for a flaky call;
* the overlap policy (a slow job that fires again while still running is skipped);
* the misfire policy (a fire more than ``misfire_grace_time`` late is counted as missed);
* execution and error callbacks, and the statistics every scheduler keeps.

Run it: ``python examples/scheduler_standalone.py`` (add ``trio`` to run on trio).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter

import anyio

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.scheduler import ReducerScheduler, ScheduleResult

calls: Counter[str] = Counter()


async def target(reducer_name: str, *args: object) -> str:
    """Stands in for a database: every "reducer" is a little coroutine."""
    calls[reducer_name] += 1
    if reducer_name == "flaky" and calls["flaky"] <= 2:
        raise ConnectionError(f"flaky backend, try {calls['flaky']}")
    if reducer_name == "slow_report":
        await anyio.sleep(0.7)  # longer than its 0.3 s interval: fires overlap
    return f"{reducer_name}{args} done"


def on_error(result: ScheduleResult) -> None:
    what = "missed" if result.missed else f"attempt {result.attempt} failed: {result.error}"
    print(f"  ! {result.reducer_name}: {what}")


async def main() -> None:
    async with ReducerScheduler(target, max_concurrent_executions=4) as scheduler:
        scheduler.add_error_callback(on_error)

        # Repeats every 0.5 s, first at now + 0.5 s (SpacetimeDB's ScheduleAt.Interval meaning).
        heartbeat = scheduler.schedule_at_interval("heartbeat", (), 0.5)
        # A one-shot in one second.
        once = scheduler.schedule_in_seconds("send_reminder", ("alice",), 1.0)
        # Cron with a seconds field: every second.
        cron = scheduler.schedule_cron("tick", (), "* * * * * *")
        # Wall-clock schedules in a time zone, DST-correct: they will not fire during this
        # run, but their next fire times are known now.
        daily = scheduler.schedule_daily("daily_report", (), 9, 0, timezone_info="America/New_York")
        weekdays = scheduler.schedule_cron(
            "standup", (), "30 9 * * MON-FRI", timezone_info="Europe/Paris"
        )

        # Retries: fails twice, then succeeds; 0.1 s, then 0.2 s of backoff.
        flaky = scheduler.schedule_in_seconds(
            "flaky", (), 0.2, max_retries=3, backoff_base=0.1, backoff_jitter=0
        )
        # Overlap: SKIP (the default) drops a fire while the previous run is still going.
        slow = scheduler.schedule_at_interval("slow_report", (), 0.3, overlap="skip")
        # Misfire: a one-shot that was due 10 s ago, with 1 s of grace, is missed, not run.
        late = scheduler.schedule_at_time(
            "too_late", (), Timestamp.now() - TimeDuration.from_seconds(10), misfire_grace_time=1.0
        )

        for schedule_id in (daily, weekdays):
            s = scheduler.get_schedule(schedule_id)
            assert s.next_run is not None
            local = s.next_run.to_timezone(s.schedule.timezone)  # type: ignore[union-attr]
            print(f"{s.describe()}\n  next local time: {local.isoformat()}")

        result = await scheduler.wait_for(flaky)
        assert result is not None
        assert result.ok, result
        print(f"flaky succeeded on attempt {result.attempt}: {result.value}")

        await anyio.sleep(2.6)  # let the repeating schedules run for a while

        for schedule_id in (heartbeat, once, cron, slow, late):
            print(" ", scheduler.get_schedule(schedule_id).describe())
        stats = scheduler.get_execution_stats()

    # Leaving the block stopped the scheduler; nothing keeps running.
    print(
        "stats: {total_executions} executions, {failed_executions} failed, "
        "{retried_executions} retried, {skipped_executions} skipped (overlap), "
        "{missed_executions} missed".format(**stats)
    )
    p50 = stats["lateness_p50"].format_human_readable()
    print(f"success rate {stats['success_rate']:.0%}, lateness p50 {p50}")
    # What this run must have done (the test suite runs every example):
    assert calls["heartbeat"] >= 4
    assert calls["send_reminder"] == 1
    assert calls["tick"] >= 2
    assert stats["retried_executions"] == 2
    assert stats["missed_executions"] == 1
    assert stats["skipped_executions"] >= 1
    print("scheduler standalone: OK")


if __name__ == "__main__":
    # The scheduler logs through `logging` (logger "spacetime_sched.scheduler"): a missed fire
    # is a warning, a failed attempt is info.
    logging.basicConfig(level=logging.WARNING, format="  log %(name)s: %(message)s")
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
