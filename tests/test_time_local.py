"""Specification: naive datetimes are local time; ``timezone_info`` is for display only.

Every place that takes a datetime reads a *naive* one exactly as the standard library's
``datetime.timestamp()`` does: in the platform's local zone, ``fold`` choosing between the two
readings of a repeated (or skipped) wall time. These tests pin the local zone to
America/New_York through ``TZ`` and ``time.tzset()`` (restored afterwards), so the daylight-saving
gap (2024-03-10 02:00-03:00) and fold (2024-11-03 01:00-02:00) are known; platforms without
``tzset`` (Windows) cannot switch zones in-process and skip them.

``Timestamp.timezone_info`` is the zone a value was created from or converted to. It changes how
the value is *shown* and nothing else: equality, hashing, ordering and both wire encodings
ignore it.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_sched import (
    EnhancedTimestamp,
    NaiveDatetimeError,
    ReducerScheduler,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    sats,
    schedule_at,
)
from spacetime_sched._time import datetime_to_micros
from spacetime_sched.scheduler import IntervalTrigger, OnceTrigger
from spacetime_sched.testing import VirtualClock

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
SECOND = 1_000_000

needs_tzset = pytest.mark.skipif(
    not hasattr(time, "tzset"),
    reason="time.tzset() (needed to switch the local zone) is POSIX-only",
)


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    """Make ``name`` the process's local zone for the block, then put the old one back."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.fixture
def new_york() -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset() (needed to switch the local zone) is POSIX-only")
    with local_zone("America/New_York"):
        yield


def T(text: str) -> Timestamp:
    return Timestamp.parse(text)


# --- naive datetimes are local time --------------------------------------------------------------


@pytest.mark.parametrize(
    ("naive", "instant"),
    [
        (dt.datetime(2025, 1, 15, 9, 30), "2025-01-15T14:30:00Z"),  # EST, UTC-5
        (dt.datetime(2025, 7, 1, 12, 0, 0, 123_456), "2025-07-01T16:00:00.123456Z"),  # EDT
        # The spring-forward gap: 02:30 never shows on the clock. fold=0 reads it with the
        # offset before the jump (EST), fold=1 with the one after (EDT), as PEP 495 says.
        (dt.datetime(2024, 3, 10, 2, 30), "2024-03-10T07:30:00Z"),
        (dt.datetime(2024, 3, 10, 2, 30, fold=1), "2024-03-10T06:30:00Z"),
        # The fall-back fold: 01:30 shows twice; fold picks the first (EDT) or second (EST).
        (dt.datetime(2024, 11, 3, 1, 30), "2024-11-03T05:30:00Z"),
        (dt.datetime(2024, 11, 3, 1, 30, fold=1), "2024-11-03T06:30:00Z"),
        (dt.datetime(1969, 12, 31, 19, 0), "1970-01-01T00:00:00Z"),
        (dt.datetime(9999, 12, 31, 18, 59, 59, 999_999), "9999-12-31T23:59:59.999999Z"),
    ],
)
@pytest.mark.usefixtures("new_york")
def test_a_naive_datetime_is_local_time_exactly_as_timestamp_reads_it(
    naive: dt.datetime, instant: str
) -> None:
    expected = T(instant)
    assert Timestamp.from_datetime(naive) == expected
    # The same instant the standard library gives: its whole seconds exactly (a float of
    # whole seconds is exact), the microseconds added as an int ...
    whole = naive.replace(microsecond=0).timestamp()
    assert int(whole) * SECOND + naive.microsecond == expected.micros_since_epoch
    # ... and the same as attaching the zone explicitly.
    assert Timestamp.from_datetime(naive.replace(tzinfo=NEW_YORK)) == expected
    assert Timestamp.from_datetime(naive).timezone_info is None  # naive: no zone to display


@pytest.mark.usefixtures("new_york")
def test_every_place_that_takes_a_datetime_reads_a_naive_one_as_local_time() -> None:
    naive = dt.datetime(2024, 11, 3, 1, 30, fold=1)  # the second 01:30: EST
    expected = T("2024-11-03T06:30:00Z")
    micros = expected.micros_since_epoch
    assert datetime_to_micros(naive) == micros
    assert ScheduleAt.at_time(naive) == ScheduleAt.Time(expected)
    assert ScheduleAt.coerce(naive) == ScheduleAt.Time(expected)
    # The SATS codecs (reducer arguments, rows): BSATN and SATS-JSON.
    assert sats.encode(sats.TIMESTAMP, naive) == sats.encode(sats.TIMESTAMP, expected)
    assert sats.encode(sats.SCHEDULE_AT, naive) == sats.encode(
        sats.SCHEDULE_AT, ScheduleAt.Time(expected)
    )
    assert sats.to_json(sats.TIMESTAMP, naive) == sats.to_json(sats.TIMESTAMP, expected)
    # The scheduler's triggers.
    assert OnceTrigger(naive).at == expected
    every = TimeDuration.from_minutes(5)
    trigger = IntervalTrigger(every, anchor=naive, start=naive, end=naive + dt.timedelta(hours=1))
    assert (trigger.anchor, trigger.start) == (expected, expected)
    assert trigger.end == expected + TimeDuration.from_hours(1)


async def test_the_scheduler_fires_a_naive_datetime_at_that_local_time(new_york: None) -> None:
    start = T("2024-11-03T05:00:00Z")  # 01:00 EDT, half an hour before the first 01:30
    clock = VirtualClock(start)
    fired: list[tuple[str, Timestamp]] = []

    async def target(reducer: str, *args: Any) -> None:
        fired.append((reducer, Timestamp(clock.now_micros())))

    first, second = dt.datetime(2024, 11, 3, 1, 30), dt.datetime(2024, 11, 3, 1, 30, fold=1)
    async with ReducerScheduler(target, clock=clock) as scheduler:
        scheduler.schedule_at_time("edt", (), first)
        scheduler.schedule_reducer("est", (), second)
        schedule_at(scheduler, "est_too", (), second)
        await clock.advance(TimeDuration.from_hours(2))
    assert fired == [
        ("edt", T("2024-11-03T05:30:00Z")),
        ("est", T("2024-11-03T06:30:00Z")),
        ("est_too", T("2024-11-03T06:30:00Z")),
    ]


def test_datetime_now_is_now() -> None:
    # The design document's ScheduleAt.at_time(datetime.now()): whatever the local zone.
    before = Timestamp.now()
    schedule = ScheduleAt.at_time(dt.datetime.now())
    after = Timestamp.now()
    assert isinstance(schedule, ScheduleAt.Time)
    assert before <= schedule.value <= after


@needs_tzset
@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC"])
def test_datetime_now_is_now_in_any_local_zone(zone: str) -> None:
    with local_zone(zone):
        before = Timestamp.now()
        at = Timestamp.from_datetime(dt.datetime.now())
        after = Timestamp.now()
    assert before <= at <= after


@needs_tzset
@given(
    naive=st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1)),
    fold=st.sampled_from([0, 1]),
)
def test_naive_is_the_local_zone_as_zoneinfo_reads_it(naive: dt.datetime, fold: int) -> None:
    naive = naive.replace(fold=fold)
    with local_zone("America/New_York"):
        local = Timestamp.from_datetime(naive)
        whole = naive.replace(microsecond=0).timestamp()
    assert local == Timestamp.from_datetime(naive.replace(tzinfo=NEW_YORK))
    assert local.micros_since_epoch == int(whole) * SECOND + naive.microsecond


@needs_tzset
def test_a_naive_datetime_the_platform_cannot_place_is_refused(new_york: None) -> None:
    # datetime.timestamp() itself raises here: its local-time lookup looks a day either side.
    edge = dt.datetime(1, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="out of range"):
        edge.timestamp()
    with pytest.raises(NaiveDatetimeError) as info:
        ScheduleAt.at_time(edge)
    message = str(info.value)
    assert "Timestamp.from_datetime" in message
    assert "local time" in message
    assert "tzinfo" in message  # says how to fix it
    with pytest.raises(sats.EncodeError, match="naive"):
        sats.encode(sats.TIMESTAMP, edge)


# --- timezone_info: display only -----------------------------------------------------------------


def test_timezone_info_is_none_unless_created_from_or_converted_to_a_zone() -> None:
    assert Timestamp.now().timezone_info is None
    assert EnhancedTimestamp.now().timezone_info is None
    assert Timestamp(0).timezone_info is None
    assert T("2025-07-01T12:00:00+02:00").timezone_info is None  # an offset, not a zone
    aware = dt.datetime(2025, 7, 1, 8, 0, tzinfo=NEW_YORK)
    created = Timestamp.from_datetime(aware)
    assert created.timezone_info is NEW_YORK
    converted = Timestamp(0).with_timezone("Europe/London")
    assert converted.timezone_info == ZoneInfo("Europe/London")
    assert converted.with_timezone(None).timezone_info is None
    assert Timestamp(0, timezone_info="Asia/Tokyo").timezone_info == ZoneInfo("Asia/Tokyo")


def test_arithmetic_keeps_the_zone_like_an_aware_datetime() -> None:
    t = Timestamp.from_datetime(dt.datetime(2025, 3, 8, 12, 0, tzinfo=NEW_YORK))
    later = t + TimeDuration.from_hours(24)
    assert later.timezone_info is NEW_YORK
    assert later.to_datetime() == dt.datetime(2025, 3, 9, 13, 0, tzinfo=NEW_YORK)  # DST began
    assert (t - dt.timedelta(hours=1)).timezone_info is NEW_YORK
    assert (later - t) == TimeDuration.from_hours(24)


def test_timezone_info_is_for_display() -> None:
    t = T("2025-07-01T12:00:00Z").with_timezone(NEW_YORK)
    assert t.to_datetime() == dt.datetime(2025, 7, 1, 8, 0, tzinfo=NEW_YORK)
    assert t.to_datetime().tzinfo is NEW_YORK
    assert t.to_datetime(UTC).tzinfo is UTC
    assert t.to_utc() == dt.datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert t.to_local_iso() == "2025-07-01T08:00:00.000000-04:00"
    assert T("2025-07-01T12:00:00Z").to_local_iso() == "2025-07-01T12:00:00.000000+00:00"
    # The wire and machine formats are UTC whatever the zone.
    assert t.to_iso() == "2025-07-01T12:00:00.000000Z"
    assert str(t) == "2025-07-01T12:00:00+00:00"
    assert repr(t) == (
        "Timestamp.parse('2025-07-01T12:00:00.000000Z').with_timezone('America/New_York')"
    )


zones = st.sampled_from(
    [None, UTC, NEW_YORK, ZoneInfo("Asia/Kolkata"), dt.timezone(dt.timedelta(hours=-5))]
)
instants = st.integers(min_value=-(2**62), max_value=2**62)


@given(micros=instants, a=zones, b=zones)
def test_equality_hashing_and_ordering_ignore_the_zone(
    micros: int, a: dt.tzinfo | None, b: dt.tzinfo | None
) -> None:
    x, y = Timestamp(micros).with_timezone(a), Timestamp(micros).with_timezone(b)
    assert x == y
    assert hash(x) == hash(y)
    assert len({x, y}) == 1
    assert x <= y and not x < y  # noqa: PT018
    assert ScheduleAt.Time(x) == ScheduleAt.Time(y)
    assert hash(ScheduleAt.Time(x)) == hash(ScheduleAt.Time(y))
    assert x != Timestamp(micros + 1).with_timezone(a)
    assert attrs.astuple(x) == attrs.astuple(y) == (micros,)  # not one of the value's fields


@given(micros=instants, zone=zones)
def test_encodings_ignore_the_zone_and_decode_without_one(
    micros: int, zone: dt.tzinfo | None
) -> None:
    plain, zoned = Timestamp(micros), Timestamp(micros).with_timezone(zone)
    for ty, a, b in [
        (sats.TIMESTAMP, plain, zoned),
        (sats.SCHEDULE_AT, ScheduleAt.Time(plain), ScheduleAt.Time(zoned)),
    ]:
        encoded = sats.encode(ty, b)
        assert encoded == sats.encode(ty, a)
        assert sats.to_json(ty, b) == sats.to_json(ty, a)
        for decoded in (sats.decode(ty, encoded), sats.from_json(ty, sats.to_json(ty, b))):
            stamp = decoded if isinstance(decoded, Timestamp) else decoded.value
            assert stamp == plain
            assert stamp.timezone_info is None


def test_the_zone_survives_pickle_and_copy() -> None:
    t = T("2025-07-01T12:00:00Z").with_timezone(NEW_YORK)
    for back in (pickle.loads(pickle.dumps(t)), copy.copy(t), copy.deepcopy(t)):
        assert back == t
        assert back.timezone_info == NEW_YORK
    plain = pickle.loads(pickle.dumps(Timestamp(5)))
    assert plain == Timestamp(5)
    assert plain.timezone_info is None


# --- format_relative: the nearest unit ------------------------------------------------------------

MINUTE, HOUR, DAY = 60 * SECOND, 3600 * SECOND, 86_400 * SECOND


def test_thirty_minutes_ahead_says_so_even_a_moment_later() -> None:
    # The design document: future = now + duration_from_minutes(30); "in 30 minutes".
    now = Timestamp.now()
    future = now + TimeDuration.from_minutes(30)
    assert future.format_relative() == "in 30 minutes"
    for moment in (1, 1_000, SECOND, 29 * SECOND):
        assert future.format_relative(now + TimeDuration(moment)) == "in 30 minutes"


@pytest.mark.parametrize(
    ("distance", "text"),
    [
        (SECOND // 2 - 1, "just now"),
        (SECOND // 2, "just now"),  # 0.5 s: a tie, to the even count (0)
        (SECOND // 2 + 1, "1 second"),
        (3 * SECOND // 2, "2 seconds"),  # 1.5 s: a tie, to even
        (59 * SECOND + SECOND // 2 - 1, "59 seconds"),
        (59 * SECOND + SECOND // 2, "1 minute"),  # 59.5 s rounds to 60 s: a whole minute
        (29 * MINUTE + 30 * SECOND - 1, "29 minutes"),
        (29 * MINUTE + 30 * SECOND + 1, "30 minutes"),
        (59 * MINUTE + 30 * SECOND - 1, "59 minutes"),
        (59 * MINUTE + 30 * SECOND, "1 hour"),
        (23 * HOUR + 30 * MINUTE - 1, "23 hours"),
        (23 * HOUR + 30 * MINUTE, "1 day"),
        (36 * HOUR + 1, "2 days"),
    ],
)
def test_format_relative_rounds_to_the_nearest_unit(distance: int, text: str) -> None:
    now = Timestamp(1_700_000_000 * SECOND)
    ahead = (now + TimeDuration(distance)).format_relative(now)
    behind = (now - TimeDuration(distance)).format_relative(now)
    if text == "just now":
        assert ahead == behind == "just now"
    else:
        assert (ahead, behind) == (f"in {text}", f"{text} ago")


# --- format_human_readable: one decimal -----------------------------------------------------------


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0.0µs"),
        (1, "1.0µs"),
        (999, "999.0µs"),
        (1_000, "1.0ms"),  # thresholds: 1 ms, 1 s, 1 min, 1 h, 1 d
        (999_949, "999.9ms"),
        (999_950, "1.0s"),  # 999.95 ms rounds to 1000.0 ms: a whole second
        (SECOND, "1.0s"),
        (59 * SECOND + 949_999, "59.9s"),
        (59 * SECOND + 950_000, "1.0min"),
        (MINUTE, "1.0min"),
        (30 * MINUTE, "30.0min"),
        (59 * MINUTE + 57 * SECOND, "1.0h"),
        (HOUR, "1.0h"),
        (23 * HOUR + 57 * MINUTE, "1.0d"),
        (DAY, "1.0d"),
        (1_250, "1.2ms"),  # ties go to the even tenth
        (1_350, "1.4ms"),
        (2**63 - 1, "106751991.2d"),
    ],
)
def test_format_human_readable_boundaries(micros: int, text: str) -> None:
    assert TimeDuration(micros).format_human_readable() == text
    if micros:
        assert TimeDuration(-micros).format_human_readable() == "-" + text


def test_the_design_documents_thirty_minutes() -> None:
    assert TimeDuration.from_minutes(30).format_human_readable() == "30.0min"
    assert TimeDuration(-(2**63)).format_human_readable() == "-106751991.2d"


UNITS = {"µs": 1, "ms": 1_000, "s": SECOND, "min": MINUTE, "h": HOUR, "d": DAY}
NEXT = {"µs": 1_000, "ms": 1_000, "s": 60, "min": 60, "h": 24}


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_format_human_readable_is_the_nearest_tenth_of_the_largest_unit(micros: int) -> None:
    text = TimeDuration(micros).format_human_readable()
    sign = -1 if text.startswith("-") else 1
    number = text.lstrip("-").rstrip("µsminhd")
    unit = text[len(text.rstrip("µsminhd")) :]
    whole, tenth = number.split(".")
    assert len(tenth) == 1
    shown = Fraction(int(whole) * 10 + int(tenth), 10)
    # Within half a tenth of the true value, in a unit it reaches, below the next unit.
    assert abs(shown * UNITS[unit] - abs(micros)) <= Fraction(UNITS[unit], 20)
    assert shown >= 1 or unit == "µs"
    assert unit not in NEXT or shown < NEXT[unit]
    assert sign == (-1 if micros < 0 else 1)
