"""Properties of the time types, checked with hypothesis over the whole i64 range."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from spacetime_sched import TimeRangeError
from spacetime_sched._time import I64_MAX, I64_MIN, ScheduleAt, TimeDuration, Timestamp

UTC = dt.timezone.utc
i64 = st.integers(min_value=I64_MIN, max_value=I64_MAX)
durations = st.builds(TimeDuration, i64)
timestamps = st.builds(Timestamp, i64)
# Instants that datetime can hold (years 1..9999), and a margin so a zone shift stays in range.
DATETIME_MIN = Timestamp.from_datetime(dt.datetime(1, 1, 2, tzinfo=UTC)).micros_since_epoch
DATETIME_MAX = Timestamp.from_datetime(dt.datetime(9999, 12, 30, tzinfo=UTC)).micros_since_epoch
datetime_timestamps = st.builds(
    Timestamp, st.integers(min_value=DATETIME_MIN, max_value=DATETIME_MAX)
)
ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Pacific/Chatham"]


# --- string round trips -------------------------------------------------------------------------


@given(timestamps)
def test_iso_round_trips_for_every_i64(t: Timestamp) -> None:
    assert Timestamp.parse(t.to_iso()) == t
    assert Timestamp.parse(str(t)) == t


@given(datetime_timestamps)
def test_to_iso_agrees_with_datetime_isoformat(t: Timestamp) -> None:
    as_datetime = t.to_datetime()
    expected = as_datetime.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert t.to_iso() == expected


@given(datetime_timestamps, st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1))
def test_parse_honours_any_offset(t: Timestamp, offset_minutes: int) -> None:
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    text = t.to_datetime(zone).isoformat(timespec="microseconds")
    assert Timestamp.parse(text) == t


@given(durations)
def test_duration_str_spells_the_exact_micros(d: TimeDuration) -> None:
    text = str(d)
    sign = -1 if text[0] == "-" else 1
    seconds, fraction = text[1:].split(".")
    assert len(fraction) == 6
    assert sign * (int(seconds) * 1_000_000 + int(fraction)) == d.micros


@given(durations)
def test_iso8601_spells_the_exact_micros(d: TimeDuration) -> None:
    text = d.to_iso8601()
    if d.micros == 0:
        assert text == "P0D"
        return
    sign = -1 if text.startswith("-") else 1
    body = text.removeprefix("-").removeprefix("PT").removesuffix("S")
    assert sign * Fraction(body) * 1_000_000 == d.micros


# --- exact conversions --------------------------------------------------------------------------


@given(datetime_timestamps, st.sampled_from(ZONES))
def test_datetime_round_trip_in_any_zone(t: Timestamp, zone: str) -> None:
    assert Timestamp.from_datetime(t.to_timezone(zone)) == t
    assert Timestamp.from_datetime(t.to_datetime(ZoneInfo(zone))) == t


@given(st.datetimes(timezones=st.sampled_from([UTC, *map(ZoneInfo, ZONES)])))
@example(dt.datetime(1987, 10, 25, 3, 0, tzinfo=ZoneInfo("Pacific/Chatham")))  # in a DST gap
def test_from_datetime_then_back_is_the_same_instant(value: dt.datetime) -> None:
    assume(value.utcoffset() is not None)
    t = Timestamp.from_datetime(value)
    # Compare in UTC: Python's == between different zones is always False for an ambiguous
    # (repeated) local time (PEP 495), even when the instants agree.
    assert t.to_utc() == value.astimezone(UTC)
    assert t.to_utc() - value == dt.timedelta(0)
    # By default it comes back in the zone it was created from (its timezone_info), as the
    # same instant. (Not compared with `-` in that zone: Python subtracts same-zone datetimes
    # by wall time, and a wall time in a DST gap (which ``value`` may be) comes back as the
    # one the clock really showed.)
    assert t.timezone_info is value.tzinfo
    assert t.to_datetime().tzinfo is value.tzinfo
    assert t.to_datetime().astimezone(UTC) == value.astimezone(UTC)


@given(durations)
def test_timedelta_round_trip(d: TimeDuration) -> None:
    assert TimeDuration.from_timedelta(d.to_timedelta()) == d


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-9e12, max_value=9e12))
def test_float_seconds_round_to_the_nearest_micro(seconds: float) -> None:
    micros = TimeDuration.from_seconds(seconds).micros
    error = abs(Fraction(seconds) * 1_000_000 - micros)
    assert error <= Fraction(1, 2)
    if error == Fraction(1, 2):
        assert micros % 2 == 0  # a true tie goes to the even neighbour


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_int_units_are_exact(n: int) -> None:
    assert TimeDuration.from_millis(n).micros == n * 1_000
    assert TimeDuration.from_seconds(n).micros == n * 1_000_000
    assert Timestamp.from_unix_seconds(n).micros_since_epoch == n * 1_000_000


# --- arithmetic laws ----------------------------------------------------------------------------


@given(i64, i64)
def test_addition_is_exact_or_raises(a: int, b: int) -> None:
    if I64_MIN <= a + b <= I64_MAX:
        assert (TimeDuration(a) + TimeDuration(b)).micros == a + b
        assert (Timestamp(a) + TimeDuration(b)).micros_since_epoch == a + b
    else:
        with pytest.raises(TimeRangeError):
            TimeDuration(a) + TimeDuration(b)
        with pytest.raises(TimeRangeError):
            Timestamp(a) + TimeDuration(b)


@given(timestamps, durations)
def test_adding_then_subtracting_returns_home(t: Timestamp, d: TimeDuration) -> None:
    try:
        moved = t + d
    except TimeRangeError:
        return
    assert moved - d == t
    assert moved - t == d
    assert moved.since(t) == d


@given(timestamps, timestamps)
def test_difference_then_add_returns_the_other(a: Timestamp, b: Timestamp) -> None:
    try:
        delta = b - a
    except TimeRangeError:
        return
    assert a + delta == b
    assert (delta.micros >= 0) == (a <= b)
    assert (b.duration_since(a) is None) == (b < a)


@given(durations, durations)
def test_addition_commutes(a: TimeDuration, b: TimeDuration) -> None:
    try:
        total = a + b
    except TimeRangeError:
        return
    assert total == b + a
    assert total - b == a


@given(durations, st.integers(min_value=-1000, max_value=1000))
def test_multiplication_by_int_is_repeated_addition(d: TimeDuration, n: int) -> None:
    if I64_MIN <= d.micros * n <= I64_MAX:
        assert (d * n).micros == d.micros * n
        assert n * d == d * n


@given(durations, durations.filter(lambda d: d.micros != 0))
def test_divmod_law(a: TimeDuration, b: TimeDuration) -> None:
    quotient, rest = divmod(a, b)
    assert quotient == a // b
    assert rest == a % b
    assert quotient * b.micros + rest.micros == a.micros


@given(durations, st.integers(min_value=1, max_value=10**6))
def test_division_by_int_rounds_to_nearest(d: TimeDuration, n: int) -> None:
    assert abs(Fraction(d.micros, n) - (d / n).micros) <= Fraction(1, 2)
    assert (d // n).micros == d.micros // n


# --- ordering, equality, hashing ----------------------------------------------------------------


@given(i64, i64)
def test_ordering_matches_micros(a: int, b: int) -> None:
    pairs: list[tuple[Any, Any]] = [
        (TimeDuration(a), TimeDuration(b)),
        (Timestamp(a), Timestamp(b)),
    ]
    for x, y in pairs:
        assert (x < y) == (a < b)
        assert (x <= y) == (a <= b)
        assert (x > y) == (a > b)
        assert (x >= y) == (a >= b)
        assert (x == y) == (a == b)
        if a == b:
            assert hash(x) == hash(y)


@given(st.lists(timestamps, max_size=20))
def test_sorting_timestamps_sorts_their_micros(values: list[Timestamp]) -> None:
    assert [t.micros_since_epoch for t in sorted(values)] == sorted(
        t.micros_since_epoch for t in values
    )


@given(timestamps, durations)
def test_schedule_at_next_fire_is_never_in_the_past(now: Timestamp, d: TimeDuration) -> None:
    for schedule in (ScheduleAt.Interval(d), ScheduleAt.Time(Timestamp(d.micros))):
        try:
            wait = schedule.to_duration_from(now)
            fire = schedule.to_timestamp_from(now)
        except TimeRangeError:
            continue
        assert wait.micros >= 0
        if schedule.is_interval():
            assert fire - now == wait
        else:
            assert fire == schedule.value
