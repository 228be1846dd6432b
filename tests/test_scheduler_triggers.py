"""Triggers, as a specification: when does a schedule fire?

DST behaviour of the wall-clock triggers lives in ``test_scheduler_triggers_dst.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_sched._errors import InvalidScheduleError, NaiveDatetimeError, SchedulerError
from spacetime_sched._time import I64_MAX, I64_MIN, ScheduleAt, TimeDuration, Timestamp
from spacetime_sched.scheduler._triggers import (
    CronTrigger,
    DailyTrigger,
    IntervalTrigger,
    OnceTrigger,
    Trigger,
    trigger_from_dict,
    trigger_from_schedule_at,
)

T = Timestamp.parse
SECOND = 1_000_000


def seconds(n: float) -> TimeDuration:
    return TimeDuration.from_seconds(n)


# --- OnceTrigger ------------------------------------------------------------------------------


def test_once_fires_at_its_instant_while_it_is_ahead() -> None:
    trigger = OnceTrigger(T("2025-01-01T12:00:00Z"))
    assert trigger.next_fire(T("2025-01-01T11:59:59.999999Z")) == T("2025-01-01T12:00:00Z")
    assert trigger.next_fire(T("2025-01-01T12:00:00Z")) is None  # strictly after
    assert trigger.next_fire(T("2025-01-02T00:00:00Z")) is None


def test_once_initial_fire_is_its_instant_even_when_already_past() -> None:
    # The engine decides (misfire grace) what a late one-shot does; the trigger just says when.
    trigger = OnceTrigger(T("2025-01-01T12:00:00Z"))
    assert trigger.initial_fire(T("2025-06-01T00:00:00Z")) == T("2025-01-01T12:00:00Z")


def test_once_accepts_an_aware_datetime_and_reads_a_naive_one_as_local_time() -> None:
    aware = dt.datetime(2025, 1, 1, 13, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert OnceTrigger(aware).at == T("2025-01-01T12:00:00Z")
    naive = dt.datetime(2025, 1, 1, 13, 0)
    assert OnceTrigger(naive).at == Timestamp(round(naive.timestamp()) * 1_000_000)
    with pytest.raises(NaiveDatetimeError):  # a naive datetime the platform cannot place
        OnceTrigger(dt.datetime.min + dt.timedelta(hours=1))
    with pytest.raises(InvalidScheduleError, match=r"OnceTrigger\.at"):
        OnceTrigger(1735732800)  # type: ignore[arg-type]


def test_once_maps_to_schedule_at_time_and_back() -> None:
    at = T("2025-01-01T12:00:00Z")
    assert OnceTrigger(at).to_schedule_at() == ScheduleAt.Time(at)
    assert trigger_from_schedule_at(ScheduleAt.Time(at), T("2024-01-01T00:00:00Z")) == OnceTrigger(
        at
    )


# --- IntervalTrigger --------------------------------------------------------------------------


def test_interval_fires_on_the_grid_anchored_at_creation() -> None:
    created = T("2025-01-01T00:00:00Z")
    trigger = IntervalTrigger(seconds(5)).bind(created)
    assert trigger.anchor == created
    assert trigger.initial_fire(created) == T("2025-01-01T00:00:05Z")  # k >= 1: never at creation
    assert trigger.next_fire(created) == T("2025-01-01T00:00:05Z")
    assert trigger.next_fire(T("2025-01-01T00:00:05Z")) == T("2025-01-01T00:00:10Z")
    assert trigger.next_fire(T("2025-01-01T00:00:09.999999Z")) == T("2025-01-01T00:00:10Z")


def test_interval_skips_missed_ticks_without_drifting() -> None:
    trigger = IntervalTrigger(seconds(5), T("2025-01-01T00:00:00Z"))
    # A scheduler that wakes up an hour and 2.5 s late lands on the grid, not 5 s after waking.
    assert trigger.next_fire(T("2025-01-01T01:00:02.5Z")) == T("2025-01-01T01:00:05Z")


def test_interval_before_its_anchor_fires_one_step_after_the_anchor() -> None:
    trigger = IntervalTrigger(seconds(5), T("2025-01-01T00:00:00Z"))
    assert trigger.next_fire(T("2024-01-01T00:00:00Z")) == T("2025-01-01T00:00:05Z")


def test_negative_interval_means_its_absolute_value_like_spacetimedb() -> None:
    trigger = IntervalTrigger(seconds(-5), T("2025-01-01T00:00:00Z"))
    assert trigger.next_fire(T("2025-01-01T00:00:00Z")) == T("2025-01-01T00:00:05Z")
    assert trigger.describe() == "every 5.0s"


def test_zero_interval_is_refused() -> None:
    with pytest.raises(InvalidScheduleError, match="must not be zero"):
        IntervalTrigger(TimeDuration(0))


def test_interval_accepts_timedelta_and_refuses_bare_numbers() -> None:
    assert IntervalTrigger(dt.timedelta(minutes=1)).every == TimeDuration.from_minutes(1)
    with pytest.raises(InvalidScheduleError, match="expected a TimeDuration or timedelta"):
        IntervalTrigger(5)  # type: ignore[arg-type]


def test_unbound_interval_refuses_next_fire_but_knows_its_initial_fire() -> None:
    trigger = IntervalTrigger(seconds(5))
    with pytest.raises(SchedulerError, match="bind"):
        trigger.next_fire(T("2025-01-01T00:00:00Z"))
    assert trigger.initial_fire(T("2025-01-01T00:00:00Z")) == T("2025-01-01T00:00:05Z")


def test_bind_fixes_the_anchor_once() -> None:
    bound = IntervalTrigger(seconds(5)).bind(T("2025-01-01T00:00:00Z"))
    assert bound.bind(T("2030-01-01T00:00:00Z")) is bound


def test_interval_start_and_end_bound_the_grid() -> None:
    trigger = IntervalTrigger(
        seconds(10),
        T("2025-01-01T00:00:00Z"),
        start=T("2025-01-01T00:01:03Z"),
        end=T("2025-01-01T00:02:00Z"),
    )
    assert trigger.next_fire(T("2025-01-01T00:00:00Z")) == T("2025-01-01T00:01:10Z")  # on grid
    assert trigger.next_fire(T("2025-01-01T00:01:50Z")) == T("2025-01-01T00:02:00Z")  # inclusive
    assert trigger.next_fire(T("2025-01-01T00:02:00Z")) is None
    assert trigger.to_schedule_at() is None  # SpacetimeDB intervals have no bounds
    with pytest.raises(InvalidScheduleError, match="before start"):
        IntervalTrigger(seconds(1), start=T("2025-01-02T00:00:00Z"), end=T("2025-01-01T00:00:00Z"))


def test_interval_running_off_the_end_of_time_is_exhausted() -> None:
    trigger = IntervalTrigger(seconds(10), Timestamp(I64_MAX - 15 * SECOND))
    assert trigger.next_fire(Timestamp(I64_MAX - 14 * SECOND)) == Timestamp(I64_MAX - 5 * SECOND)
    assert trigger.next_fire(Timestamp(I64_MAX - 5 * SECOND)) is None


def test_interval_maps_to_schedule_at_interval_and_back() -> None:
    created = T("2025-01-01T00:00:00Z")
    trigger = trigger_from_schedule_at(ScheduleAt.Interval(seconds(30)), created)
    assert trigger == IntervalTrigger(seconds(30), created)
    assert trigger.to_schedule_at() == ScheduleAt.Interval(seconds(30))


timestamps = st.integers(min_value=-(2**52), max_value=2**52).map(Timestamp)
steps = st.integers(min_value=1, max_value=10**12) | st.integers(min_value=-(10**12), max_value=-1)


@given(anchor=timestamps, every=steps, after=timestamps)
def test_interval_next_fire_is_after_anchored_and_the_first_such(
    anchor: Timestamp, every: int, after: Timestamp
) -> None:
    trigger = IntervalTrigger(TimeDuration(every), anchor)
    fire = trigger.next_fire(after)
    assert fire is not None
    step = abs(every)
    assert fire > after
    assert fire > anchor
    assert (fire.micros_since_epoch - anchor.micros_since_epoch) % step == 0
    # The first such point: one step earlier is either not after ``after`` or is the anchor.
    previous = fire.micros_since_epoch - step
    assert previous <= after.micros_since_epoch or previous == anchor.micros_since_epoch


@given(anchor=timestamps, every=steps, a=timestamps, b=timestamps)
def test_interval_next_fire_is_monotone(
    anchor: Timestamp, every: int, a: Timestamp, b: Timestamp
) -> None:
    trigger = IntervalTrigger(TimeDuration(every), anchor)
    early, late = sorted((a, b), key=lambda t: t.micros_since_epoch)
    first, second = trigger.next_fire(early), trigger.next_fire(late)
    assert first is not None
    assert second is not None
    assert first <= second


# --- DailyTrigger and CronTrigger (UTC; zones in the DST module) -----------------------------


def test_daily_fires_every_day_at_the_wall_time() -> None:
    trigger = DailyTrigger(9, 15, 30, timezone="Europe/Paris")
    assert trigger.next_fire(T("2025-01-01T00:00:00Z")) == T("2025-01-01T08:15:30Z")
    assert trigger.next_fire(T("2025-01-01T08:15:30Z")) == T("2025-01-02T08:15:30Z")
    assert trigger.initial_fire(T("2025-07-01T12:00:00Z")) == T("2025-07-02T07:15:30Z")  # CEST


def test_daily_validates_its_fields() -> None:
    with pytest.raises(InvalidScheduleError, match=r"DailyTrigger.hour: expected an int in 0..23"):
        DailyTrigger(25, 0)
    with pytest.raises(InvalidScheduleError, match=r"DailyTrigger\.minute"):
        DailyTrigger(1, 60)
    with pytest.raises(InvalidScheduleError, match=r"DailyTrigger\.second"):
        DailyTrigger(1, 0, 1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidScheduleError, match="'Mars/Olympus_Mons' is not a known IANA"):
        DailyTrigger(1, 0, timezone="Mars/Olympus_Mons")


def test_timezones_are_normalised_to_storable_forms() -> None:
    assert DailyTrigger(1, 0, timezone="UTC").timezone is dt.timezone.utc
    assert DailyTrigger(1, 0, timezone=ZoneInfo("UTC")).timezone is dt.timezone.utc
    assert DailyTrigger(1, 0, timezone=ZoneInfo("Asia/Tokyo")) == DailyTrigger(
        1, 0, timezone="Asia/Tokyo"
    )
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
    trigger = DailyTrigger(1, 0, timezone=ist)
    assert trigger.to_dict()["timezone"] == "UTC+05:30"
    assert trigger.next_fire(T("2025-01-01T00:00:00Z")) == T("2025-01-01T19:30:00Z")


def test_cron_fires_at_matching_wall_times() -> None:
    weekdays_at_nine = CronTrigger("0 9 * * 1-5", "Europe/London")
    friday_evening = T("2025-01-03T18:00:00Z")
    assert weekdays_at_nine.next_fire(friday_evening) == T("2025-01-06T09:00:00Z")  # Monday
    every_5_seconds = CronTrigger("*/5 * * * * *")
    assert every_5_seconds.next_fire(T("2025-01-01T00:00:01.5Z")) == T("2025-01-01T00:00:05Z")


def test_cron_accepts_debian_nicknames() -> None:
    assert CronTrigger("@daily").next_fire(T("2025-01-01T00:00:00Z")) == T("2025-01-02T00:00:00Z")
    assert CronTrigger("@hourly").next_fire(T("2025-01-01T00:30:00Z")) == T("2025-01-01T01:00:00Z")
    assert not CronTrigger("@hourly").fixed_time
    assert CronTrigger("@weekly").fixed_time


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ("* * *", "expected 5 fields"),
        ("*/0 * * * *", "Bad minute"),
    ],
)
def test_bad_cron_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(InvalidScheduleError, match=f"cron expression '.*': {reason}"):
        CronTrigger(expression)


def test_cron_far_ahead_and_beyond_the_calendar() -> None:
    # Rare matches are still found years ahead ...
    leap_day = CronTrigger("0 0 29 2 *")
    assert leap_day.next_fire(T("2025-01-01T00:00:00Z")) == T("2028-02-29T00:00:00Z")
    # ... but past the years a datetime can hold (1..9999) nothing fires any more.
    assert CronTrigger("0 0 1 1 *").next_fire(Timestamp(I64_MAX)) is None
    assert DailyTrigger(0, 0).next_fire(T("9999-12-31T12:00:00Z")) is None
    # Before the year 1 the first fires are in the year 1.
    assert DailyTrigger(0, 0).next_fire(Timestamp(I64_MIN)) == T("0001-01-01T00:00:00Z")
    hourly = CronTrigger("0 * * * *", "America/New_York").next_fire(Timestamp(I64_MIN))
    assert hourly is not None
    assert hourly.to_iso().startswith("0001-01-02T")


# --- protocol, persistence, descriptions -------------------------------------------------------

EXAMPLES: list[Trigger] = [
    OnceTrigger(T("2025-01-01T12:00:00Z")),
    IntervalTrigger(seconds(5)),
    IntervalTrigger(seconds(5), T("2025-01-01T00:00:00Z"), end=T("2026-01-01T00:00:00Z")),
    DailyTrigger(2, 30, timezone="America/New_York"),
    DailyTrigger(23, 59, 59, timezone=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    CronTrigger("0 9 * * 1-5", "Europe/London"),
    CronTrigger("*/10 * * * * *"),
]


@pytest.mark.parametrize("trigger", EXAMPLES, ids=lambda t: t.describe())
def test_every_trigger_follows_the_protocol_and_survives_json(trigger: Trigger) -> None:
    assert isinstance(trigger, Trigger)
    data = json.loads(json.dumps(trigger.to_dict()))
    assert trigger_from_dict(data) == trigger


def test_descriptions_read_like_english() -> None:
    assert IntervalTrigger(seconds(5)).describe() == "every 5.0s"
    assert DailyTrigger(2, 30, timezone="America/New_York").describe() == (
        "daily at 02:30 America/New_York"
    )
    assert CronTrigger("0 9 * * 1-5", "Europe/London").describe() == (
        "cron '0 9 * * 1-5' in Europe/London"
    )
    assert OnceTrigger(T("2025-01-01T12:00:00Z")).describe() == (
        "once at 2025-01-01T12:00:00.000000Z"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "weekly"}, "unknown type 'weekly'"),
        ({"type": "once"}, "missing field 'at'"),
        ({"type": "once", "at": "2025"}, "field 'at' must be int, got str"),
        ({"type": "interval", "every": 0}, "must not be zero"),
        ({"type": "daily", "hour": 25, "minute": 0, "second": 0, "timezone": "UTC"}, "hour"),
        ({"type": "cron", "expression": "nope", "timezone": "UTC"}, "expected 5 fields"),
    ],
)
def test_trigger_from_dict_names_what_is_wrong(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=message):
        trigger_from_dict(data)


zones = st.sampled_from(["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe"])
triggers = st.one_of(
    st.builds(OnceTrigger, timestamps),
    st.builds(
        IntervalTrigger,
        steps.map(TimeDuration),
        st.none() | timestamps,
        end=st.none() | st.just(Timestamp(2**53)),
    ),
    st.builds(
        DailyTrigger,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        zones,
    ),
    st.builds(
        CronTrigger,
        st.sampled_from(["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 0 L * *", "5 4 * * 0"]),
        zones,
    ),
)


@given(triggers)
def test_to_dict_from_dict_round_trip(trigger: Trigger) -> None:
    data = trigger.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-safe
    assert trigger_from_dict(data) == trigger
