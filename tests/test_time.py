"""Specification of the time types: Timestamp, TimeDuration and ScheduleAt.

Values are exact integer microseconds in the signed 64-bit range; floats are rounded to the
nearest microsecond (ties to even) from their exact binary value; strings follow SpacetimeDB's
Rust Display and the TypeScript SDK.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import pickle
import time
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import pytest

import spacetime_sched
from spacetime_sched import NaiveDatetimeError, SpacetimeSchedError, TimeRangeError
from spacetime_sched._time import (
    I64_MAX,
    I64_MIN,
    EnhancedTimeDuration,
    EnhancedTimestamp,
    ScheduleAt,
    ScheduleAtInterval,
    ScheduleAtTime,
    TimeDuration,
    Timestamp,
    duration_from_hours,
    duration_from_minutes,
    duration_from_seconds,
    timestamp_now,
)

UTC = dt.timezone.utc
SECOND = 1_000_000
# 2025-02-17T10:30:45.123456Z, computed independently of the code under test.
T_2025 = calendar.timegm((2025, 2, 17, 10, 30, 45)) * SECOND + 123_456


def test_i64_bounds_are_the_wire_range() -> None:
    assert I64_MIN == -(2**63)
    assert I64_MAX == 2**63 - 1


# --- TimeDuration: construction and validation --------------------------------------------------


def test_duration_holds_exact_int_micros() -> None:
    d = TimeDuration(1_500_000)
    assert d.micros == 1_500_000
    assert type(d.micros) is int


@pytest.mark.parametrize("micros", [I64_MIN, -1, 0, 1, I64_MAX])
def test_duration_accepts_the_whole_i64_range(micros: int) -> None:
    assert TimeDuration(micros).micros == micros


@pytest.mark.parametrize("micros", [I64_MIN - 1, I64_MAX + 1, 10**30])
def test_duration_outside_i64_raises_time_range_error(micros: int) -> None:
    with pytest.raises(TimeRangeError, match="signed 64-bit range") as info:
        TimeDuration(micros)
    assert isinstance(info.value, OverflowError)
    assert isinstance(info.value, SpacetimeSchedError)


@pytest.mark.parametrize("bad", [True, False, 1.0, "5", None, Decimal(1)])
def test_duration_field_wants_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match="TimeDuration: expected int microseconds"):
        TimeDuration(bad)  # type: ignore[arg-type]


def test_float_for_the_raw_field_points_to_from_constructors() -> None:
    with pytest.raises(TypeError, match="from_\\* constructor"):
        TimeDuration(1.5)  # type: ignore[arg-type]


def test_duration_is_frozen_and_slotted() -> None:
    d = TimeDuration(1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.micros = 2  # type: ignore[misc]
    assert not hasattr(d, "__dict__")


def test_unchecked_builds_an_equal_duration() -> None:
    assert TimeDuration._unchecked(42) == TimeDuration(42)
    assert hash(TimeDuration._unchecked(42)) == hash(TimeDuration(42))


@pytest.mark.parametrize(
    ("constructor", "value", "micros"),
    [
        (TimeDuration.from_micros, 7, 7),
        (TimeDuration.from_millis, 7, 7_000),
        (TimeDuration.from_seconds, 7, 7_000_000),
        (TimeDuration.from_minutes, 7, 420_000_000),
        (TimeDuration.from_hours, 7, 25_200_000_000),
        (TimeDuration.from_days, 7, 604_800_000_000),
        (TimeDuration.from_seconds, 1.5, 1_500_000),
        (TimeDuration.from_minutes, 0.5, 30_000_000),
        (TimeDuration.from_hours, -0.25, -900_000_000),
        (TimeDuration.from_seconds, Fraction(1, 3), 333_333),
        (TimeDuration.from_seconds, Decimal("0.0000015"), 2),  # an exact tie: half to even
        (TimeDuration.from_millis, -0.005, -5),
    ],
)
def test_unit_constructors(constructor, value, micros) -> None:  # type: ignore[no-untyped-def]
    assert constructor(value) == TimeDuration(micros)


@pytest.mark.parametrize(
    ("micros", "expected"),
    [(0.5, 0), (1.5, 2), (2.5, 2), (3.5, 4), (-0.5, 0), (-1.5, -2), (-2.5, -2), (0.49, 0)],
)
def test_float_ties_round_half_to_even(micros: float, expected: int) -> None:
    assert TimeDuration.from_micros(micros).micros == expected


def test_seconds_tie_that_is_exact_in_binary_rounds_to_even() -> None:
    # 1/128 s is exactly 7812.5 µs (a dyadic float): a true tie, which goes to the even 7812.
    assert TimeDuration.from_seconds(1 / 128).micros == 7812
    assert TimeDuration.from_seconds(3 / 128).micros == 23438  # 23437.5 -> even neighbour


def test_float_rounding_uses_the_exact_binary_value_not_a_float_product() -> None:
    # 0.0000005 is stored as slightly *less* than 5e-7: 0.4999... µs rounds to 0.
    assert TimeDuration.from_seconds(0.0000005).micros == 0
    # 0.0000025 is stored slightly *above* 2.5e-6, so it is 3 µs. A float multiplication
    # (0.0000025 * 1e6 == 2.5 exactly after rounding) would wrongly tie to 2.
    assert round(0.0000025 * 1e6) == 2
    assert TimeDuration.from_seconds(0.0000025).micros == 3
    # ...and 0.0000035 is stored slightly below 3.5e-6: 3 µs, where the float product says 4.
    assert TimeDuration.from_seconds(0.0000035).micros == 3


def test_unit_constructor_overflow() -> None:
    assert TimeDuration.from_micros(I64_MAX).micros == I64_MAX
    with pytest.raises(TimeRangeError, match="from_days"):
        TimeDuration.from_days(10**9)
    with pytest.raises(TimeRangeError):
        TimeDuration.from_seconds(1e300)
    with pytest.raises(TimeRangeError, match="infinite"):
        TimeDuration.from_seconds(float("inf"))


def test_unit_constructor_rejects_nan_and_non_numbers() -> None:
    with pytest.raises(ValueError, match="not a number"):
        TimeDuration.from_seconds(float("nan"))
    with pytest.raises(TypeError, match="expected a number"):
        TimeDuration.from_seconds("1.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a number"):
        TimeDuration.from_seconds(True)


def test_timedelta_round_trip_is_exact() -> None:
    delta = dt.timedelta(days=-3, seconds=5, microseconds=7)
    d = TimeDuration.from_timedelta(delta)
    assert d.micros == (-3 * 86_400 + 5) * SECOND + 7
    assert d.to_timedelta() == delta
    assert TimeDuration(I64_MIN).to_timedelta() == dt.timedelta(microseconds=I64_MIN)
    assert TimeDuration.from_timedelta(dt.timedelta(microseconds=I64_MAX)).micros == I64_MAX


def test_timedelta_outside_i64_is_refused() -> None:
    with pytest.raises(TimeRangeError):
        TimeDuration.from_timedelta(dt.timedelta.max)
    with pytest.raises(TypeError, match=r"expected datetime\.timedelta"):
        TimeDuration.from_timedelta(5)  # type: ignore[arg-type]


def test_zero_and_small_helpers() -> None:
    assert TimeDuration(0) == TimeDuration.ZERO
    assert not TimeDuration.ZERO
    assert TimeDuration(1)
    assert TimeDuration(-1_500).millis == -1  # truncated toward zero, like the TypeScript SDK
    assert TimeDuration(2_999).millis == 2
    assert TimeDuration(1_500_000).total_seconds() == 1.5
    assert TimeDuration(-9).to_micros() == -9


def test_clamp() -> None:
    low, high = TimeDuration(10), TimeDuration(20)
    assert TimeDuration(5).clamp(low, high) == low
    assert TimeDuration(15).clamp(low, high) == TimeDuration(15)
    assert TimeDuration(25).clamp(low, high) == high
    with pytest.raises(ValueError, match="greater than high"):
        TimeDuration(5).clamp(high, low)


# --- TimeDuration: arithmetic -------------------------------------------------------------------


def test_add_and_subtract() -> None:
    a, b = TimeDuration(5), TimeDuration(3)
    assert a + b == TimeDuration(8)
    assert a - b == TimeDuration(2)
    assert a + dt.timedelta(microseconds=1) == TimeDuration(6)
    assert dt.timedelta(microseconds=1) + a == TimeDuration(6)
    assert a - dt.timedelta(microseconds=1) == TimeDuration(4)
    assert dt.timedelta(microseconds=1) - a == TimeDuration(-4)


def test_add_overflow_raises_instead_of_wrapping() -> None:
    with pytest.raises(TimeRangeError, match="TimeDuration \\+ TimeDuration"):
        TimeDuration(I64_MAX) + TimeDuration(1)
    with pytest.raises(TimeRangeError):
        TimeDuration(I64_MIN) - TimeDuration(1)


def test_negation_and_abs() -> None:
    assert -TimeDuration(5) == TimeDuration(-5)
    assert +TimeDuration(5) == TimeDuration(5)
    assert abs(TimeDuration(-5)) == TimeDuration(5)
    assert -TimeDuration(I64_MAX) == TimeDuration(I64_MIN + 1)
    with pytest.raises(TimeRangeError):
        -TimeDuration(I64_MIN)
    with pytest.raises(TimeRangeError):
        abs(TimeDuration(I64_MIN))


def test_multiply() -> None:
    assert TimeDuration(5) * 3 == TimeDuration(15)
    assert 3 * TimeDuration(5) == TimeDuration(15)
    assert TimeDuration(5) * 0.5 == TimeDuration(2)  # 2.5 -> even
    assert TimeDuration(7) * 0.5 == TimeDuration(4)  # 3.5 -> even
    assert 1.5 * TimeDuration(SECOND) == TimeDuration(1_500_000)
    assert TimeDuration(3) * Fraction(1, 3) == TimeDuration(1)
    with pytest.raises(TimeRangeError):
        TimeDuration(I64_MAX) * 2
    with pytest.raises(TypeError):
        TimeDuration(1) * TimeDuration(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        TimeDuration(1) * True


def test_true_division() -> None:
    assert TimeDuration(3) / TimeDuration(2) == 1.5
    assert TimeDuration(5) / 2 == TimeDuration(2)  # 2.5 -> even
    assert TimeDuration(7) / 2 == TimeDuration(4)  # 3.5 -> even
    assert TimeDuration(10) / 3 == TimeDuration(3)
    assert TimeDuration(SECOND) / 0.5 == TimeDuration(2 * SECOND)
    with pytest.raises(ZeroDivisionError):
        TimeDuration(1) / 0
    with pytest.raises(ZeroDivisionError):
        TimeDuration(1) / TimeDuration(0)
    with pytest.raises(TimeRangeError):
        TimeDuration(I64_MAX) / 0.5


def test_floor_division_and_modulo() -> None:
    assert TimeDuration(7) // TimeDuration(2) == 3
    assert TimeDuration(-7) // TimeDuration(2) == -4
    assert TimeDuration(7) // 2 == TimeDuration(3)
    assert TimeDuration(-7) // 2 == TimeDuration(-4)  # floor, like Python ints
    assert TimeDuration(7) % TimeDuration(2) == TimeDuration(1)
    assert TimeDuration(-7) % TimeDuration(2) == TimeDuration(1)
    assert divmod(TimeDuration(7), TimeDuration(2)) == (3, TimeDuration(1))
    with pytest.raises(TimeRangeError):
        TimeDuration(I64_MIN) // -1
    with pytest.raises(TypeError):
        TimeDuration(7) // 2.0  # type: ignore[operator]


def test_duration_comparisons_and_hashing() -> None:
    assert TimeDuration(1) < TimeDuration(2) <= TimeDuration(2) < TimeDuration(3)
    assert TimeDuration(3) > TimeDuration(2) >= TimeDuration(2)
    assert sorted([TimeDuration(3), TimeDuration(-1), TimeDuration(2)]) == [
        TimeDuration(-1),
        TimeDuration(2),
        TimeDuration(3),
    ]
    assert len({TimeDuration(1), TimeDuration(1), TimeDuration(2)}) == 2
    assert TimeDuration(1) != 1  # type: ignore[comparison-overlap]
    assert TimeDuration(1) != dt.timedelta(microseconds=1)
    with pytest.raises(TypeError):
        TimeDuration(1) < 2  # type: ignore[operator]  # noqa: B015


# --- TimeDuration: formatting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "+0.000000"),
        (1_500_000, "+1.500000"),
        (-5, "-0.000005"),
        (-1_500_000, "-1.500000"),
        (86_400 * SECOND, "+86400.000000"),
        (I64_MAX, "+9223372036854.775807"),
        (I64_MIN, "-9223372036854.775808"),
    ],
)
def test_str_is_spacetimedb_display(micros: int, text: str) -> None:
    assert str(TimeDuration(micros)) == text


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "P0D"),
        (1_500_000, "PT1.5S"),
        (-SECOND, "-PT1S"),
        (1440 * SECOND, "PT1440S"),
        (-1, "-PT0.000001S"),
        (1_000_010, "PT1.00001S"),
        (-1_500_000, "-PT1.5S"),
    ],
)
def test_to_iso8601_matches_rust(micros: int, text: str) -> None:
    assert TimeDuration(micros).to_iso8601() == text


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0.0µs"),
        (999, "999.0µs"),
        (-500, "-500.0µs"),
        (1_500, "1.5ms"),
        (30_500_000, "30.5s"),
        (-1_234_567, "-1.2s"),
        (90 * SECOND, "1.5min"),
        (30 * 60 * SECOND, "30.0min"),  # the design document's example
        (2 * 3600 * SECOND, "2.0h"),
        (4500 * SECOND, "1.2h"),  # 1.25 h: a tie, to the even tenth
        (3 * 86_400 * SECOND + 1, "3.0d"),
        (59_999_000, "1.0min"),  # 60.0 s would be a whole minute: shown in minutes
        (1_050, "1.0ms"),  # 1.05 ms is a tie: to the even tenth
        (1_150, "1.2ms"),
    ],
)
def test_format_human_readable(micros: int, text: str) -> None:
    assert TimeDuration(micros).format_human_readable() == text


def test_format_precise_and_repr() -> None:
    assert TimeDuration(30_500_000).format_precise() == "30500000µs"
    assert repr(TimeDuration(-5)) == "TimeDuration(micros=-5)"
    assert eval(repr(TimeDuration(7)), {"TimeDuration": TimeDuration}) == TimeDuration(7)


# --- Timestamp: construction --------------------------------------------------------------------


def test_timestamp_field_and_range() -> None:
    assert Timestamp(T_2025).micros_since_epoch == T_2025
    assert Timestamp(I64_MIN).micros_since_epoch == I64_MIN
    with pytest.raises(TimeRangeError):
        Timestamp(I64_MAX + 1)
    with pytest.raises(TypeError, match="Timestamp: expected int"):
        Timestamp(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Timestamp(True)
    assert Timestamp._unchecked(5) == Timestamp(5) == Timestamp.from_micros(5)
    assert Timestamp(0) == Timestamp.UNIX_EPOCH


def test_now_is_exact_wall_clock_micros() -> None:
    before = time.time_ns() // 1000
    now = Timestamp.now()
    after = time.time_ns() // 1000
    assert before <= now.micros_since_epoch <= after
    assert type(now.micros_since_epoch) is int
    assert before <= timestamp_now().micros_since_epoch


def test_from_datetime_is_exact() -> None:
    aware = dt.datetime(2025, 2, 17, 10, 30, 45, 123_456, tzinfo=UTC)
    assert Timestamp.from_datetime(aware).micros_since_epoch == T_2025
    plus_one = dt.datetime(
        2025, 2, 17, 11, 30, 45, 123_456, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    assert Timestamp.from_datetime(plus_one).micros_since_epoch == T_2025
    new_york = dt.datetime(2025, 2, 17, 5, 30, 45, 123_456, tzinfo=ZoneInfo("America/New_York"))
    assert Timestamp.from_datetime(new_york).micros_since_epoch == T_2025


def test_from_datetime_extremes_of_datetime() -> None:
    low = Timestamp.from_datetime(dt.datetime.min.replace(tzinfo=UTC))
    assert low.to_iso() == "0001-01-01T00:00:00.000000Z"
    high = Timestamp.from_datetime(dt.datetime.max.replace(tzinfo=UTC))
    assert high.to_iso() == "9999-12-31T23:59:59.999999Z"


def test_a_datetime_whose_tzinfo_knows_no_offset_is_refused_with_a_fix() -> None:
    # Naive by Python's definition, yet it names a zone: reading it as local time would be a
    # guess against its own tzinfo. (Plain naive datetimes are local time: test_time_local.py.)
    class Unknown(dt.tzinfo):
        def utcoffset(self, value: dt.datetime | None) -> None:
            return None

    with pytest.raises(NaiveDatetimeError) as info:
        Timestamp.from_datetime(dt.datetime(2025, 1, 1, tzinfo=Unknown()))
    message = str(info.value)
    assert "utcoffset() is None" in message
    assert "Timestamp.from_datetime" in message
    assert isinstance(info.value, ValueError)


def test_from_datetime_wants_a_datetime() -> None:
    with pytest.raises(TypeError, match=r"expected a datetime\.datetime"):
        Timestamp.from_datetime(dt.date(2025, 1, 1))  # type: ignore[arg-type]


def test_ambiguous_local_time_follows_fold() -> None:
    # 2025-11-02 01:30 happens twice in New York; fold picks the instance, an hour apart.
    zone = ZoneInfo("America/New_York")
    first = Timestamp.from_datetime(dt.datetime(2025, 11, 2, 1, 30, tzinfo=zone, fold=0))
    second = Timestamp.from_datetime(dt.datetime(2025, 11, 2, 1, 30, tzinfo=zone, fold=1))
    assert second - first == TimeDuration.from_hours(1)


def test_from_unix_seconds_and_millis() -> None:
    assert Timestamp.from_unix_seconds(1).micros_since_epoch == SECOND
    assert Timestamp.from_unix_seconds(1.5).micros_since_epoch == 1_500_000
    assert Timestamp.from_unix_seconds(-0.0000025).micros_since_epoch == -3
    assert Timestamp.from_unix_seconds(1 / 128).micros_since_epoch == 7812  # tie -> even
    assert Timestamp.from_millis(1_500).micros_since_epoch == 1_500_000
    assert Timestamp.from_millis(0.0015).micros_since_epoch == 2  # 1.5000000000000000312 µs
    with pytest.raises(TimeRangeError):
        Timestamp.from_unix_seconds(1e20)


# --- Timestamp: parsing and formatting ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-17T10:30:45.123456Z",
        "2025-02-17t10:30:45.123456z",
        "2025-02-17 10:30:45.123456Z",
        "2025-02-17T11:30:45.123456+01:00",
        "2025-02-17T05:00:45.123456-05:30",
        "2025-02-17T10:30:45.123456+00:00",
        "2025-02-17T10:30:45.123456-00:00",
        "2025-02-17T10:30:45.1234561Z",  # seventh digit truncated
        "2025-02-17T10:30:45.123456999Z",
    ],
)
def test_parse_rfc3339(text: str) -> None:
    assert Timestamp.parse(text).micros_since_epoch == T_2025
    assert Timestamp.from_iso(text) == Timestamp(T_2025)


def test_parse_fraction_lengths() -> None:
    base = T_2025 - 123_456
    assert Timestamp.parse("2025-02-17T10:30:45Z").micros_since_epoch == base
    assert Timestamp.parse("2025-02-17T10:30:45.5Z").micros_since_epoch == base + 500_000
    assert Timestamp.parse("2025-02-17T10:30:45.123Z").micros_since_epoch == base + 123_000


def test_parse_truncates_extra_digits_toward_the_past_like_spacetimedb() -> None:
    # chrono's timestamp_micros() drops the nanoseconds, also before the epoch.
    assert Timestamp.parse("1969-12-31T23:59:59.9999999Z").micros_since_epoch == -1
    assert Timestamp.parse("1970-01-01T00:00:00.0000009Z").micros_since_epoch == 0


def test_parse_leap_second_counts_as_the_next_second() -> None:
    leap = Timestamp.parse("2016-12-31T23:59:60Z")
    assert leap == Timestamp.parse("2017-01-01T00:00:00Z")
    assert Timestamp.parse("2016-12-31T23:59:60.5Z") == Timestamp.parse("2017-01-01T00:00:00.5Z")


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-17T10:30:45",  # no offset: a local time, not an instant
        "2025-02-17",
        "2025-02-17T10:30Z",
        "20250217T103045Z",
        "2025-13-01T00:00:00Z",
        "2025-00-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2025-04-31T00:00:00Z",
        "2025-02-17T24:00:00Z",
        "2025-02-17T10:60:00Z",
        "2025-02-17T10:30:61Z",
        "2025-02-17T10:30:45.Z",
        "2025-02-17T10:30:45+24:00",
        "2025-02-17T10:30:45+0100",
        " 2025-02-17T10:30:45Z",
        "2025-02-17T10:30:45Z\n",
        "\uff12\uff10\uff12\uff15-02-17T10:30:45Z",  # full-width digits are not ASCII digits
    ],
)
def test_parse_rejects_non_rfc3339(text: str) -> None:
    with pytest.raises(ValueError, match=r"Timestamp\.parse"):
        Timestamp.parse(text)


def test_parse_wants_a_string() -> None:
    with pytest.raises(TypeError, match="expected str"):
        Timestamp.parse(b"2025-02-17T10:30:45Z")  # type: ignore[arg-type]


def test_parse_accepts_leap_day_and_year_zero() -> None:
    assert Timestamp.parse("2024-02-29T00:00:00Z").to_iso() == "2024-02-29T00:00:00.000000Z"
    assert Timestamp.parse("2000-02-29T00:00:00Z").to_iso() == "2000-02-29T00:00:00.000000Z"
    assert Timestamp.parse("0000-01-01T00:00:00Z").to_iso() == "0000-01-01T00:00:00.000000Z"


def test_to_iso_always_has_six_digits_and_z() -> None:
    assert Timestamp(T_2025).to_iso() == "2025-02-17T10:30:45.123456Z"
    assert Timestamp(0).to_iso() == "1970-01-01T00:00:00.000000Z"
    assert Timestamp(-1).to_iso() == "1969-12-31T23:59:59.999999Z"
    assert Timestamp(-1_500_000).to_iso() == "1969-12-31T23:59:58.500000Z"


def test_to_iso_covers_the_whole_i64_range() -> None:
    # Well-known extremes of i64 microseconds since the Unix epoch (proleptic Gregorian).
    assert Timestamp(I64_MAX).to_iso() == "+294247-01-10T04:00:54.775807Z"
    assert Timestamp(I64_MIN).to_iso() == "-290308-12-21T19:59:05.224192Z"
    assert Timestamp.parse(Timestamp(I64_MAX).to_iso()) == Timestamp(I64_MAX)
    assert Timestamp.parse(Timestamp(I64_MIN).to_iso()) == Timestamp(I64_MIN)
    with pytest.raises(TimeRangeError):
        Timestamp.parse("+294247-01-10T04:00:54.775808Z")


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (T_2025, "2025-02-17T10:30:45.123456+00:00"),
        (T_2025 - 456, "2025-02-17T10:30:45.123+00:00"),
        (T_2025 - 123_456, "2025-02-17T10:30:45+00:00"),
        (0, "1970-01-01T00:00:00+00:00"),
        (-1, "1969-12-31T23:59:59.999999+00:00"),
    ],
)
def test_str_is_rust_display(micros: int, text: str) -> None:
    assert str(Timestamp(micros)) == text
    assert Timestamp.parse(text) == Timestamp(micros)


def test_repr_is_readable_and_evaluates_back() -> None:
    t = Timestamp(T_2025)
    assert repr(t) == "Timestamp.parse('2025-02-17T10:30:45.123456Z')"
    assert eval(repr(t), {"Timestamp": Timestamp}) == t


# --- Timestamp: conversions ---------------------------------------------------------------------


def test_to_datetime_is_exact_utc() -> None:
    t = Timestamp(T_2025)
    expected = dt.datetime(2025, 2, 17, 10, 30, 45, 123_456, tzinfo=UTC)
    assert t.to_datetime() == expected
    assert t.to_datetime().tzinfo is UTC
    assert t.to_utc() == expected
    assert Timestamp(-1).to_datetime() == dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_to_datetime_outside_datetime_range_is_a_clear_error() -> None:
    with pytest.raises(TimeRangeError, match="outside the range of datetime") as info:
        Timestamp(I64_MAX).to_datetime()
    assert "+294247-01-10T04:00:54.775807Z" in str(info.value)
    too_early = Timestamp.from_datetime(dt.datetime.min.replace(tzinfo=UTC)) - TimeDuration(1)
    with pytest.raises(TimeRangeError):
        too_early.to_datetime()


def test_to_timezone_by_name_and_tzinfo() -> None:
    winter = Timestamp(T_2025)
    ny = winter.to_timezone("America/New_York")
    assert (ny.hour, ny.minute, ny.utcoffset()) == (5, 30, dt.timedelta(hours=-5))
    assert winter.to_timezone("Europe/London").utcoffset() == dt.timedelta(0)
    summer = Timestamp.parse("2025-07-01T12:00:00Z")
    assert summer.to_timezone("America/New_York").utcoffset() == dt.timedelta(hours=-4)
    london = summer.to_timezone(ZoneInfo("Europe/London"))
    assert (london.hour, london.utcoffset()) == (13, dt.timedelta(hours=1))
    assert Timestamp.from_datetime(london) == summer
    assert summer.to_datetime(dt.timezone(dt.timedelta(hours=9))).hour == 21


def test_to_timezone_errors() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        Timestamp(0).to_timezone("Mars/Olympus_Mons")
    with pytest.raises(TypeError, match="time zone name"):
        Timestamp(0).to_timezone(5)  # type: ignore[arg-type]


def test_unix_seconds_and_millis() -> None:
    assert Timestamp(1_500_000).to_unix_seconds() == 1.5
    assert Timestamp(1_500_999).to_millis() == 1_500
    assert Timestamp(-1).to_millis() == -1  # floored: the millisecond that contains the instant
    assert Timestamp(7).to_micros() == 7


@pytest.mark.parametrize(
    ("offset_micros", "text"),
    [
        (0, "just now"),
        (499_999, "just now"),
        (-499_999, "just now"),
        (999_999, "1 second ago"),  # nearest, not rounded down
        (SECOND, "1 second ago"),
        (45 * SECOND, "45 seconds ago"),
        (-2 * 60 * SECOND, "in 2 minutes"),
        (3 * 3600 * SECOND, "3 hours ago"),
        (90 * 60 * SECOND, "2 hours ago"),  # 1.5 h: a tie, to the even count
        (-86_400 * SECOND, "in 1 day"),
        (400 * 86_400 * SECOND, "400 days ago"),
    ],
)
def test_format_relative(offset_micros: int, text: str) -> None:
    now = Timestamp(T_2025)
    assert (now - TimeDuration(offset_micros)).format_relative(now) == text


def test_format_relative_defaults_to_now() -> None:
    assert Timestamp.now().format_relative() == "just now"
    assert (Timestamp.now() - TimeDuration.from_hours(5)).format_relative() == "5 hours ago"


# --- Timestamp: arithmetic and ordering ---------------------------------------------------------


def test_timestamp_arithmetic() -> None:
    t = Timestamp(T_2025)
    d = TimeDuration.from_seconds(90)
    assert t + d == Timestamp(T_2025 + 90 * SECOND)
    assert d + t == t + d
    assert t - d == Timestamp(T_2025 - 90 * SECOND)
    assert t + dt.timedelta(seconds=90) == t + d
    assert dt.timedelta(seconds=90) + t == t + d
    assert t - dt.timedelta(seconds=90) == t - d
    assert (t + d) - t == d
    assert t - (t + d) == -d
    assert (t + d).since(t) == d
    assert (t + d).duration_since(t) == d
    assert t.duration_since(t + d) is None
    assert t.duration_since(t) == TimeDuration.ZERO


def test_timestamp_arithmetic_overflow() -> None:
    with pytest.raises(TimeRangeError, match="Timestamp \\+ TimeDuration"):
        Timestamp(I64_MAX) + TimeDuration(1)
    with pytest.raises(TimeRangeError):
        Timestamp(I64_MIN) - TimeDuration(1)
    with pytest.raises(TimeRangeError, match="Timestamp - Timestamp"):
        Timestamp(I64_MAX) - Timestamp(-1)


def test_timestamp_arithmetic_type_errors() -> None:
    with pytest.raises(TypeError):
        Timestamp(0) + Timestamp(0)  # type: ignore[operator]
    with pytest.raises(TypeError):
        Timestamp(0) + 5  # type: ignore[operator]
    with pytest.raises(TypeError, match="expected Timestamp"):
        Timestamp(0).since(TimeDuration(0))  # type: ignore[arg-type]


def test_timestamp_ordering_and_hashing() -> None:
    a, b = Timestamp(-5), Timestamp(5)
    assert a < b and a <= b and b > a and b >= a and a != b  # noqa: PT018
    assert max(a, b) is b
    assert {Timestamp(1), Timestamp(1)} == {Timestamp(1)}
    assert Timestamp(1) != TimeDuration(1)  # type: ignore[comparison-overlap]
    assert Timestamp(0) != dt.datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        Timestamp(0) < TimeDuration(0)  # type: ignore[operator]  # noqa: B015


def test_values_pickle_and_copy() -> None:
    for value in (TimeDuration(-5), Timestamp(T_2025), ScheduleAt.Interval(TimeDuration(1))):
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.deepcopy(value) == value


# --- ScheduleAt ---------------------------------------------------------------------------------


def test_schedule_at_variants_and_tags() -> None:
    every = ScheduleAt.Interval(TimeDuration(SECOND))
    once = ScheduleAt.Time(Timestamp(T_2025))
    assert isinstance(every, ScheduleAt) and isinstance(once, ScheduleAt)  # noqa: PT018
    assert (every.tag, once.tag) == (0, 1)
    assert every.value == TimeDuration(SECOND) and once.value == Timestamp(T_2025)  # noqa: PT018
    assert every.is_interval() and not every.is_time()  # noqa: PT018
    assert once.is_time() and not once.is_interval()  # noqa: PT018


def test_schedule_at_works_with_match() -> None:
    def describe(schedule: ScheduleAt) -> str:
        match schedule:
            case ScheduleAt.Interval(every):
                return f"every {every.format_human_readable()}"
            case ScheduleAt.Time(at):
                return f"at {at.to_iso()}"
        return "unknown"

    assert describe(ScheduleAt.Interval(TimeDuration.from_minutes(5))) == "every 5.0min"
    assert describe(ScheduleAt.Time(Timestamp(0))) == "at 1970-01-01T00:00:00.000000Z"


def test_schedule_at_equality_and_hash() -> None:
    assert ScheduleAt.Interval(TimeDuration(1)) == ScheduleAt.Interval(TimeDuration(1))
    assert ScheduleAt.Interval(TimeDuration(1)) != ScheduleAt.Interval(TimeDuration(2))
    # Same micros, different variant: never equal.
    assert ScheduleAt.Interval(TimeDuration(1)) != ScheduleAt.Time(Timestamp(1))  # type: ignore[comparison-overlap]
    assert len({ScheduleAt.Time(Timestamp(1)), ScheduleAt.Time(Timestamp(1))}) == 1


def test_schedule_at_payload_is_checked() -> None:
    with pytest.raises(
        TypeError, match=r"ScheduleAt\.Interval: expected TimeDuration.*at_interval"
    ):
        ScheduleAt.Interval(dt.timedelta(seconds=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ScheduleAt\.Time: expected Timestamp"):
        ScheduleAt.Time(TimeDuration(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sum type"):
        ScheduleAt()
    schedule = ScheduleAt.Time(Timestamp(1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        schedule.value = Timestamp(2)  # type: ignore[misc]


def test_schedule_at_repr() -> None:
    assert repr(ScheduleAt.Interval(TimeDuration(5))) == (
        "ScheduleAt.Interval(TimeDuration(micros=5))"
    )
    assert repr(ScheduleAt.Time(Timestamp(0))) == (
        "ScheduleAt.Time(Timestamp.parse('1970-01-01T00:00:00.000000Z'))"
    )


def test_at_time_accepts_timestamp_datetime_or_unix_seconds() -> None:
    expected = ScheduleAt.Time(Timestamp(T_2025))
    assert ScheduleAt.at_time(Timestamp(T_2025)) == expected
    aware = dt.datetime(2025, 2, 17, 10, 30, 45, 123_456, tzinfo=UTC)
    assert ScheduleAt.at_time(aware) == expected
    assert ScheduleAt.at_time(1.5) == ScheduleAt.Time(Timestamp(1_500_000))
    assert ScheduleAt.at_time(2) == ScheduleAt.Time(Timestamp(2 * SECOND))
    naive = dt.datetime(2025, 1, 1)  # local time, as naive.timestamp() reads it
    assert ScheduleAt.at_time(naive) == ScheduleAt.Time(
        Timestamp(round(naive.timestamp()) * SECOND)
    )
    with pytest.raises(TypeError, match="at_time"):
        ScheduleAt.at_time("2025-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_at_interval_accepts_duration_timedelta_or_seconds() -> None:
    expected = ScheduleAt.Interval(TimeDuration(1_500_000))
    assert ScheduleAt.at_interval(TimeDuration(1_500_000)) == expected
    assert ScheduleAt.at_interval(dt.timedelta(seconds=1.5)) == expected
    assert ScheduleAt.at_interval(1.5) == expected
    with pytest.raises(TypeError, match="at_interval"):
        ScheduleAt.at_interval(True)


def test_coerce() -> None:
    every = ScheduleAt.Interval(TimeDuration(1))
    assert ScheduleAt.coerce(every) is every
    assert ScheduleAt.coerce(TimeDuration(1)) == every
    assert ScheduleAt.coerce(dt.timedelta(microseconds=1)) == every
    assert ScheduleAt.coerce(Timestamp(1)) == ScheduleAt.Time(Timestamp(1))
    assert ScheduleAt.coerce(dt.datetime(1970, 1, 1, tzinfo=UTC)) == ScheduleAt.Time(Timestamp(0))
    with pytest.raises(TypeError, match=r"ScheduleAt\.coerce"):
        ScheduleAt.coerce(5)  # type: ignore[arg-type]


def test_to_timestamp_from_and_to_duration_from() -> None:
    now = Timestamp(T_2025)
    minute = TimeDuration.from_minutes(1)
    assert ScheduleAt.Interval(minute).to_timestamp_from(now) == now + minute
    # A negative interval counts by its magnitude, as in SpacetimeDB.
    assert ScheduleAt.Interval(-minute).to_timestamp_from(now) == now + minute
    assert ScheduleAt.Interval(-minute).to_duration_from(now) == minute
    later = ScheduleAt.Time(now + minute)
    assert later.to_timestamp_from(now) == now + minute
    assert later.to_duration_from(now) == minute
    # A time in the past is due now: zero, never negative.
    assert ScheduleAt.Time(now - minute).to_duration_from(now) == TimeDuration.ZERO
    # |I64_MIN| does not fit: saturated like Rust's saturating_abs.
    most_negative = ScheduleAt.Interval(TimeDuration(I64_MIN))
    assert most_negative.to_duration_from(now) == TimeDuration(I64_MAX)
    assert most_negative.to_timestamp_from(Timestamp(-1)) == Timestamp(I64_MAX - 1)


# --- names from earlier designs ------------------------------------------------------------------


def test_aliases() -> None:
    assert EnhancedTimestamp is Timestamp
    assert EnhancedTimeDuration is TimeDuration
    assert ScheduleAtTime is ScheduleAt.Time
    assert ScheduleAtInterval is ScheduleAt.Interval
    assert duration_from_seconds(1.5) == TimeDuration(1_500_000)
    assert duration_from_minutes(2) == TimeDuration(120 * SECOND)
    assert duration_from_hours(0.5) == TimeDuration(1800 * SECOND)
    assert isinstance(timestamp_now(), Timestamp)


def test_top_level_exports() -> None:
    assert spacetime_sched.Timestamp is Timestamp
    assert spacetime_sched.TimeDuration is TimeDuration
    assert spacetime_sched.ScheduleAt is ScheduleAt
    assert spacetime_sched.ScheduleAtInterval is ScheduleAt.Interval
