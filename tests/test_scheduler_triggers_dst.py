"""Daylight saving, as a specification: the Vixie/Debian cron policy.

* A *fixed* wall time inside the spring-forward gap runs once, right after the jump.
* A *fixed* wall time inside the repeated fall-back hour runs once, at its first occurrence.
* A cron expression with ``*`` at the start of its minute or hour field follows the new wall
  clock: gap times never happen, repeated times happen again (an hourly job runs every real hour).

For contrast, APScheduler 4 (master f2337f7, see scheduler-anchors.md section 1) *skips* a
``CronTrigger(hour=2, minute=30)`` on the US spring-forward day and fires
``CronTrigger(hour=1, minute=30)`` *twice* on the fall-back day; its CalendarIntervalTrigger also
skips the gap day but fires the repeated time once. Temporal and APScheduler 3 behave like
APScheduler 4's cron. Every pinned case below says what APScheduler 4 does.

The last part checks every answer against a brute-force oracle that walks real time minute by
minute in UTC and reads the wall clock, in zones with unusual transitions too.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetime_sched._time import Timestamp
from spacetime_sched.scheduler._triggers import CronTrigger, DailyTrigger

T = Timestamp.parse
NEW_YORK = (
    "America/New_York"  # 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST
)
LONDON = "Europe/London"  # 2024-03-31 01:00 GMT -> 02:00 BST; 2024-10-27 02:00 BST -> 01:00 GMT


def fires(trigger: DailyTrigger | CronTrigger, start: str, end: str) -> list[str]:
    """Every fire in (start, end] as local wall times with their zone abbreviation."""
    zone = ZoneInfo(trigger.to_dict()["timezone"])
    out: list[str] = []
    after = T(start)
    while True:
        fire = trigger.next_fire(after)
        assert fire is not None
        if fire > T(end):
            return out
        out.append(fire.to_datetime(zone).strftime("%m-%d %H:%M:%S %Z"))
        after = fire


# --- daily at a fixed time ---------------------------------------------------------------------


def test_daily_in_the_us_spring_gap_runs_right_after_the_jump() -> None:
    # 02:30 does not exist on 2024-03-10; it runs at 03:00 EDT (07:00 UTC).
    # APScheduler 4 CronTrigger and CalendarIntervalTrigger: no run that day.
    trigger = DailyTrigger(2, 30, timezone=NEW_YORK)
    assert trigger.next_fire(T("2024-03-10T00:00:00Z")) == T("2024-03-10T07:00:00Z")
    assert fires(trigger, "2024-03-09T00:00:00Z", "2024-03-12T00:00:00Z") == [
        "03-09 02:30:00 EST",
        "03-10 03:00:00 EDT",
        "03-11 02:30:00 EDT",
    ]


def test_daily_in_the_us_repeated_hour_runs_once_at_the_first_occurrence() -> None:
    # 01:30 happens twice on 2024-11-03; it runs at 01:30 EDT (05:30 UTC) only.
    # APScheduler 4 CronTrigger: twice (01:30 EDT and 01:30 EST); CalendarIntervalTrigger: once.
    trigger = DailyTrigger(1, 30, timezone=NEW_YORK)
    assert fires(trigger, "2024-11-02T00:00:00Z", "2024-11-05T00:00:00Z") == [
        "11-02 01:30:00 EDT",
        "11-03 01:30:00 EDT",
        "11-04 01:30:00 EST",
    ]
    # Asked from inside the second pass (01:10 EST), the run already happened: next is tomorrow.
    assert trigger.next_fire(T("2024-11-03T06:10:00Z")) == T("2024-11-04T06:30:00Z")


def test_daily_in_the_london_spring_gap_runs_right_after_the_jump() -> None:
    # 01:30 does not exist on 2024-03-31 in London; it runs at 02:00 BST (01:00 UTC).
    trigger = DailyTrigger(1, 30, timezone=LONDON)
    assert fires(trigger, "2024-03-30T00:00:00Z", "2024-04-02T00:00:00Z") == [
        "03-30 01:30:00 GMT",
        "03-31 02:00:00 BST",
        "04-01 01:30:00 BST",
    ]
    assert trigger.next_fire(T("2024-03-31T00:00:00Z")) == T("2024-03-31T01:00:00Z")


def test_daily_in_the_london_repeated_hour_runs_once() -> None:
    trigger = DailyTrigger(1, 30, timezone=LONDON)
    assert fires(trigger, "2024-10-26T00:00:00Z", "2024-10-29T00:00:00Z") == [
        "10-26 01:30:00 BST",
        "10-27 01:30:00 BST",
        "10-28 01:30:00 GMT",
    ]


def test_daily_with_seconds_in_the_gap_runs_at_the_jump_itself() -> None:
    trigger = DailyTrigger(2, 59, 59, timezone=NEW_YORK)
    assert trigger.next_fire(T("2024-03-10T00:00:00Z")) == T("2024-03-10T07:00:00Z")


def test_daily_in_a_half_hour_dst_zone() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 2024-10-06 02:00 -> 02:30 (+10:30 -> +11).
    trigger = DailyTrigger(2, 15, timezone="Australia/Lord_Howe")
    assert trigger.next_fire(T("2024-10-05T12:00:00Z")) == T("2024-10-05T15:30:00Z")  # 02:30 +11


# --- cron: fixed-time expressions ---------------------------------------------------------------


def test_cron_fixed_time_in_the_gap_runs_once_after_the_jump() -> None:
    # Same as cronsim's own 5-field behaviour, and applied to 6-field expressions too.
    for expression in ("30 2 * * *", "0 30 2 * * *", "15,45 2 * * *"):
        trigger = CronTrigger(expression, NEW_YORK)
        day = fires(trigger, "2024-03-10T05:00:00Z", "2024-03-10T12:00:00Z")
        assert day == ["03-10 03:00:00 EDT"], expression


def test_cron_fixed_time_in_the_repeated_hour_runs_once() -> None:
    # APScheduler 4 CronTrigger(hour=1, minute=30): both 01:30 EDT and 01:30 EST.
    for expression in ("30 1 * * *", "0 30 1 * * *", "0,30 1 * * *"):
        trigger = CronTrigger(expression, NEW_YORK)
        day = fires(trigger, "2024-11-03T04:00:00Z", "2024-11-03T12:00:00Z")
        assert all("EDT" in fire for fire in day), (expression, day)
        assert len(day) == len(set(day)), expression


def test_cron_weekdays_at_nine_in_london_across_both_changes() -> None:
    trigger = CronTrigger("0 9 * * 1-5", LONDON)
    assert trigger.next_fire(T("2024-03-29T12:00:00Z")) == T("2024-04-01T08:00:00Z")  # BST
    assert trigger.next_fire(T("2024-10-25T12:00:00Z")) == T("2024-10-28T09:00:00Z")  # GMT


# --- cron: wildcard expressions follow the wall clock ------------------------------------------


def test_hourly_cron_runs_once_per_real_hour_through_the_us_fall_back() -> None:
    # 01:00 happens twice and runs twice; the gap from 01:00 EST to 02:00 EST is one real hour.
    # cronsim behaves this way on its own (its DST fix-up skips wildcard expressions).
    trigger = CronTrigger("0 * * * *", NEW_YORK)
    assert fires(trigger, "2024-11-03T03:30:00Z", "2024-11-03T08:00:00Z") == [
        "11-03 00:00:00 EDT",
        "11-03 01:00:00 EDT",
        "11-03 01:00:00 EST",
        "11-03 02:00:00 EST",
        "11-03 03:00:00 EST",
    ]


def test_hourly_cron_skips_the_hour_that_does_not_exist() -> None:
    trigger = CronTrigger("0 * * * *", NEW_YORK)
    assert fires(trigger, "2024-03-10T05:30:00Z", "2024-03-10T08:00:00Z") == [
        "03-10 01:00:00 EST",
        "03-10 03:00:00 EDT",  # one real hour after 01:00 EST
        "03-10 04:00:00 EDT",
    ]


def test_every_20_minutes_during_hour_one_repeats_with_the_clock() -> None:
    # "*/20" in the minute field makes it a wildcard job: it follows the clock (Debian cron).
    trigger = CronTrigger("*/20 1 * * *", LONDON)
    assert fires(trigger, "2024-10-26T23:30:00Z", "2024-10-27T03:00:00Z") == [
        "10-27 01:00:00 BST",
        "10-27 01:20:00 BST",
        "10-27 01:40:00 BST",
        "10-27 01:00:00 GMT",
        "10-27 01:20:00 GMT",
        "10-27 01:40:00 GMT",
    ]


def test_half_past_every_hour_survives_a_30_minute_jump() -> None:
    # Lord Howe 2024-10-06: 02:00 +10:30 -> 02:30 +11. Wall time 02:30 exists (it is the jump's
    # landing point), so "30 * * * *" runs there. cronsim's own time-zone mode misses it (it
    # steps minutes through UTC by a wall-clock delta), which is why we do not use that mode.
    trigger = CronTrigger("30 * * * *", "Australia/Lord_Howe")
    assert trigger.next_fire(T("2024-10-05T15:00:00Z")) == T("2024-10-05T15:30:00Z")


# --- against a brute-force oracle ---------------------------------------------------------------

#: Zones with the usual and some unusual transitions: 30-minute DST (Lord Howe), negative DST
#: (Dublin's winter time), transitions at midnight (Havana, Santiago), a southern-hemisphere
#: zone (Sydney), and no DST at all (Kolkata).
ZONES = [
    (NEW_YORK, "2024-03-10T06:00:00Z"),
    (NEW_YORK, "2024-11-03T05:00:00Z"),
    (LONDON, "2024-03-31T01:00:00Z"),
    (LONDON, "2024-10-27T01:00:00Z"),
    ("Australia/Lord_Howe", "2024-10-05T15:30:00Z"),
    ("Australia/Lord_Howe", "2024-04-06T15:00:00Z"),
    ("Europe/Dublin", "2024-10-27T01:00:00Z"),
    ("America/Havana", "2024-03-10T05:00:00Z"),
    ("America/Havana", "2024-11-03T05:00:00Z"),
    ("America/Santiago", "2024-09-08T04:00:00Z"),
    ("America/Santiago", "2024-04-07T03:00:00Z"),
    ("Australia/Sydney", "2024-10-05T16:00:00Z"),
    ("Asia/Kolkata", "2024-06-01T00:00:00Z"),
]

EXPRESSIONS = [
    "30 2 * * *",
    "30 1 * * *",
    "0 0 * * *",
    "15,45 0-3 * * *",
    "0 1,2 * * *",
    "0 * * * *",
    "*/15 * * * *",
    "*/7 1-2 * * *",
    "30 * * * *",
    "59 23 * * *",
]

MINUTE = 60_000_000


def matching_walls(expression: str, first: dt.datetime, last: dt.datetime) -> set[dt.datetime]:
    """Naive wall times in [first, last] that match (cronsim without a zone: a field matcher)."""
    out: set[dt.datetime] = set()
    for wall in CronSim(expression, first - dt.timedelta(seconds=1)):
        if wall > last:
            return out
        out.add(wall)
    return out


def oracle(expression: str, zone_name: str, start: Timestamp, minutes: int) -> list[Timestamp]:
    """Walk real time minute by minute from ``start`` and fire per the Vixie policy."""
    zone = ZoneInfo(zone_name)
    fixed = CronTrigger(expression, zone_name).fixed_time
    day = dt.timedelta(days=1)
    first_wall = start.to_datetime(zone).replace(tzinfo=None)
    matching = matching_walls(expression, first_wall - day, first_wall + 2 * day)
    out: list[Timestamp] = []
    seen: set[dt.datetime] = set()
    previous_wall: dt.datetime | None = None
    one_minute = dt.timedelta(minutes=1)
    utc = start.to_datetime()
    for i in range(minutes):
        wall = (utc + i * one_minute).astimezone(zone).replace(tzinfo=None)
        due = wall in matching
        if fixed:
            due = due and wall not in seen  # a repeated fixed time runs at its first occurrence
            if previous_wall is not None and wall - previous_wall > one_minute:
                skipped = previous_wall + one_minute
                while skipped < wall:  # fixed times in the gap run right after the jump
                    due = due or skipped in matching
                    skipped += one_minute
        if due:
            out.append(Timestamp(start.micros_since_epoch + i * MINUTE))
        seen.add(wall)
        previous_wall = wall
    return out


@pytest.mark.parametrize("expression", EXPRESSIONS)
@pytest.mark.parametrize(("zone", "around"), ZONES)
def test_cron_matches_the_oracle_around_transitions(
    expression: str, zone: str, around: str
) -> None:
    window = 16 * 60  # minutes: from 6 h before the transition to 10 h after
    start = Timestamp(T(around).micros_since_epoch - 6 * 60 * MINUTE)
    # The oracle starts 3 h earlier so its "seen" and "previous" state is realistic.
    warm_up = 3 * 60
    expected = [
        t
        for t in oracle(
            expression,
            zone,
            Timestamp(start.micros_since_epoch - warm_up * MINUTE),
            window + warm_up,
        )
        if t > start
    ]
    trigger = CronTrigger(expression, zone)
    got: list[Timestamp] = []
    after = start
    end = start.micros_since_epoch + window * MINUTE
    while True:
        fire = trigger.next_fire(after)
        assert fire is not None
        if fire.micros_since_epoch >= end:
            break
        got.append(fire)
        after = fire
    assert got == expected


@pytest.mark.parametrize(("zone", "around"), ZONES)
@pytest.mark.parametrize(("hour", "minute"), [(0, 0), (0, 30), (1, 30), (2, 30), (2, 0), (3, 0)])
def test_daily_agrees_with_the_equivalent_fixed_cron(
    zone: str, around: str, hour: int, minute: int
) -> None:
    daily = DailyTrigger(hour, minute, timezone=zone)
    cron = CronTrigger(f"{minute} {hour} * * *", zone)
    after = Timestamp(T(around).micros_since_epoch - 2 * 1440 * MINUTE)
    for _ in range(5):
        expected = cron.next_fire(after)
        assert daily.next_fire(after) == expected
        assert expected is not None
        after = expected


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from([*EXPRESSIONS, "*/10 * * * * *", "0 30 1 * * *", "5 4 * * 0"]),
    zone=st.sampled_from(sorted({zone for zone, _ in ZONES} | {"UTC"})),
    start=st.integers(T("2024-01-01T00:00:00Z").micros_since_epoch, 2**51).map(Timestamp),
)
def test_cron_next_fire_is_strictly_increasing(
    expression: str, zone: str, start: Timestamp
) -> None:
    trigger = CronTrigger(expression, zone)
    after = start
    for _ in range(12):
        fire = trigger.next_fire(after)
        assert fire is not None
        assert fire > after
        after = fire


@settings(max_examples=60, deadline=None)
@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone=st.sampled_from(sorted({zone for zone, _ in ZONES})),
    # Any instant in 2024: every transition of these zones is in range.
    after=st.integers(
        T("2024-01-01T00:00:00Z").micros_since_epoch, T("2025-01-01T00:00:00Z").micros_since_epoch
    ).map(Timestamp),
)
def test_daily_fires_within_a_day_and_at_most_once_per_local_date(
    hour: int, minute: int, zone: str, after: Timestamp
) -> None:
    trigger = DailyTrigger(hour, minute, timezone=zone)
    first = trigger.next_fire(after)
    assert first is not None
    second = trigger.next_fire(first)
    assert second is not None
    assert first > after
    assert (first - after).micros <= 26 * 60 * MINUTE
    local_first, local_second = first.to_datetime(zone), second.to_datetime(zone)
    assert local_second.date() > local_first.date()


@functools.cache
def oracle_fires(expression: str, zone: str, around: str) -> tuple[int, ...]:
    """Oracle fires from 9 h before to 34 h after a transition (µs), warmed up 3 h earlier."""
    start = T(around).micros_since_epoch - 12 * 60 * MINUTE
    fires = oracle(expression, zone, Timestamp(start), (12 + 34) * 60)
    return tuple(
        t.micros_since_epoch for t in fires if t.micros_since_epoch > start + 3 * 60 * MINUTE
    )


@settings(max_examples=200, deadline=None)
@given(
    case=st.sampled_from(ZONES),
    expression=st.sampled_from(EXPRESSIONS),
    # Any microsecond from 9 h before the transition to 9 h after it, including instants in
    # the second pass of a fold and just before or after a jump.
    offset=st.integers(-9 * 60 * MINUTE, 9 * 60 * MINUTE),
)
def test_cron_next_fire_from_any_instant_matches_the_oracle(
    case: tuple[str, str], expression: str, offset: int
) -> None:
    zone, around = case
    after = T(around).micros_since_epoch + offset
    expected = next(t for t in oracle_fires(expression, zone, around) if t > after)
    assert CronTrigger(expression, zone).next_fire(Timestamp(after)) == Timestamp(expected)
