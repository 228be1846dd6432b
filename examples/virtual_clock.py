"""Testing a whole day of schedules in milliseconds with ``VirtualClock``.

Give the scheduler a ``VirtualClock`` instead of the system clock and time only moves when the
test says so. ``await clock.advance(...)`` walks through every wake-up in order and lets all tasks
run between steps, so what you observe is exactly what a real day would produce, only without
the waiting.

The day chosen is 2025-03-09, when New York springs forward: at 02:00 EST the clocks jump to
03:00 EDT, so that local day has only 23 hours. Watch what each kind of schedule does with it.

Run it: ``python examples/virtual_clock.py`` (add ``trio`` to run on trio).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.scheduler import ReducerScheduler
from spacetime_sched.testing import VirtualClock

NEW_YORK = ZoneInfo("America/New_York")
#: Midnight, local time, on the day of the spring-forward change (05:00 UTC), and the next one.
START = Timestamp.from_datetime(datetime(2025, 3, 9, tzinfo=NEW_YORK))
END = Timestamp.from_datetime(datetime(2025, 3, 10, tzinfo=NEW_YORK))


async def main() -> None:
    clock = VirtualClock(START)
    fired: dict[str, list[Timestamp]] = {}

    async def target(reducer_name: str, *args: object) -> None:
        # Record the *virtual* time each call happens at.
        fired.setdefault(reducer_name, []).append(clock.now())

    wall_start = time.perf_counter()
    async with ReducerScheduler(target, clock=clock) as scheduler:
        # Every hour of elapsed time, whatever the wall clock does: 23 runs in a 23-hour day.
        scheduler.schedule_at_interval("hourly_sync", (), TimeDuration.from_hours(1))
        # Every 15 minutes by the wall clock: the skipped local hour has no quarter hours.
        scheduler.schedule_cron("quarter_hour", (), "*/15 * * * *", timezone_info=NEW_YORK)
        # 02:30 does not exist today: Vixie cron rules run it right after the jump, at 03:00.
        scheduler.schedule_daily("nightly_backup", (), 2, 30, timezone_info=NEW_YORK)
        # 09:00 local is 13:00 UTC today (EDT), not 14:00 as yesterday.
        scheduler.schedule_daily("morning_report", (), 9, 0, timezone_info=NEW_YORK)

        await clock.advance_to(END)  # the whole local day, midnight to midnight
        stats = scheduler.get_execution_stats()
    elapsed_ms = (time.perf_counter() - wall_start) * 1000

    def local(t: Timestamp) -> str:
        return t.to_timezone(NEW_YORK).strftime("%H:%M %Z")

    hours = (END - START).total_seconds() / 3600
    print(f"simulated New York's spring-forward day ({hours:.0f} h) in {elapsed_ms:.0f} ms")
    for name, times in fired.items():
        print(f"  {name:15} {len(times):3} runs, first {local(times[0])}, last {local(times[-1])}")

    # These are the assertions a test would make.
    assert len(fired["hourly_sync"]) == 23
    assert len(fired["quarter_hour"]) == 23 * 4  # 00:15 .. 00:00 the next day
    assert [local(t) for t in fired["nightly_backup"]] == ["03:00 EDT"]
    assert fired["morning_report"] == [Timestamp.parse("2025-03-09T13:00:00Z")]
    # Virtual time: every fire started exactly on time.
    assert stats["lateness_max"] == TimeDuration(0)
    print(f"{stats['total_executions']} executions, all on time; virtual clock: OK")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
