"""Bad arguments to the scheduler's public API fail at the call, with the project's own error
naming the argument (issue 8, item 9), never with an error from deep inside."""

from __future__ import annotations

import pytest

from spacetime_sched import InvalidScheduleError
from spacetime_sched.scheduler import CronTrigger, DailyTrigger, ReducerScheduler


async def _target(name: str, *args: object) -> None:
    pass


def test_metadata_must_be_a_mapping() -> None:
    scheduler = ReducerScheduler(_target)
    with pytest.raises(InvalidScheduleError, match="metadata of 'x': expected a mapping"):
        scheduler.schedule_in_seconds("x", (), 1, metadata=5)
    with pytest.raises(InvalidScheduleError, match="metadata"):
        scheduler.schedule_in_seconds("x", (), 1, metadata=["a", "b"])
    assert len(scheduler) == 0  # nothing half-added
    sid = scheduler.schedule_in_seconds("x", (), 1, metadata={"owner": "me"})
    assert scheduler.get_schedule(sid).metadata == {"owner": "me"}


def test_list_schedules_refuses_an_unknown_status() -> None:
    scheduler = ReducerScheduler(_target)
    with pytest.raises(InvalidScheduleError, match=r"status must be .*'pending'.*got 'bogus'"):
        scheduler.list_schedules(status="bogus")
    with pytest.raises(InvalidScheduleError, match="reducer_name must be a str"):
        scheduler.list_schedules(reducer_name=5)  # type: ignore[arg-type]
    assert scheduler.list_schedules(status="pending") == []


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("UTC+99:00", "'UTC\\+99:00' is not a valid offset"),
        ("UTC+05:75", "not a valid offset"),
        ("a" * 5000, "5000 characters"),
        ("Nowhere/Special", "not a known IANA time zone"),
    ],
)
def test_time_zones_are_checked_at_the_call(zone: str, message: str) -> None:
    scheduler = ReducerScheduler(_target)
    with pytest.raises(InvalidScheduleError, match=f"timezone: .*{message}"):
        scheduler.schedule_daily("x", (), 9, 0, timezone_info=zone)
    with pytest.raises(InvalidScheduleError, match="timezone"):
        scheduler.schedule_cron("x", (), "0 9 * * *", timezone_info=zone)
    with pytest.raises(InvalidScheduleError, match="timezone"):
        DailyTrigger(9, 0, timezone=zone)
    with pytest.raises(InvalidScheduleError, match="timezone"):
        CronTrigger("0 9 * * *", timezone=zone)


def test_valid_offsets_within_a_day_are_accepted() -> None:
    scheduler = ReducerScheduler(_target)
    scheduler.schedule_daily("x", (), 9, 0, timezone_info="UTC+23:59")
    scheduler.schedule_daily("x", (), 9, 0, timezone_info="UTC-05:30")
    assert len(scheduler) == 2


def test_max_concurrent_executions_is_checked() -> None:
    with pytest.raises(InvalidScheduleError, match="max_concurrent_executions"):
        ReducerScheduler(_target, max_concurrent_executions=0)


def test_a_store_must_implement_the_store_protocol() -> None:
    class NotAStore:
        async def load_all(self) -> list[object]:
            return []

    with pytest.raises(InvalidScheduleError, match=r"ScheduleStore protocol.*NotAStore"):
        ReducerScheduler(_target, store=NotAStore())  # type: ignore[arg-type]
