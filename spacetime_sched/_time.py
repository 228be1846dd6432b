"""SpacetimeDB's time types: :class:`Timestamp`, :class:`TimeDuration` and :class:`ScheduleAt`.

All three are small immutable values holding exact integer microseconds, the unit SpacetimeDB
puts on the wire. Both integers live in the signed 64-bit range (:data:`I64_MIN` ..
:data:`I64_MAX`); any operation that would leave it raises :class:`~spacetime_sched.TimeRangeError`
instead of wrapping around or silently turning into a float.

Floats are accepted only by the ``from_*`` constructors (and by ``TimeDuration * float`` and
``TimeDuration / number``). They are converted *exactly*: the float's binary value is turned into
a :class:`fractions.Fraction`, multiplied by the unit, and rounded to the nearest microsecond with
ties going to the even neighbour (Python's :func:`round`). So ``TimeDuration.from_micros(2.5)`` is
2 µs and ``TimeDuration.from_micros(3.5)`` is 4 µs, and no precision is lost to a float
multiplication on the way.

Every :class:`~datetime.datetime` that enters the library goes through one function,
:func:`datetime_to_micros`: an aware datetime names its own instant; a *naive* one is read as
local time, exactly as the standard library's :meth:`datetime.datetime.timestamp` reads it
(``fold`` picks the first or second reading of a repeated wall time).
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias, overload
from zoneinfo import ZoneInfo

import attrs

from ._errors import NaiveDatetimeError, TimeRangeError

__all__ = [
    "I64_MAX",
    "I64_MIN",
    "EnhancedTimeDuration",
    "EnhancedTimestamp",
    "ScheduleAt",
    "ScheduleAtInterval",
    "ScheduleAtTime",
    "TimeDuration",
    "Timestamp",
    "datetime_to_micros",
    "duration_from_hours",
    "duration_from_minutes",
    "duration_from_seconds",
    "timestamp_now",
]

I64_MIN: Final = -(2**63)
I64_MAX: Final = 2**63 - 1

MICROS_PER_MILLI: Final = 1_000
MICROS_PER_SECOND: Final = 1_000_000
MICROS_PER_MINUTE: Final = 60 * MICROS_PER_SECOND
MICROS_PER_HOUR: Final = 60 * MICROS_PER_MINUTE
MICROS_PER_DAY: Final = 24 * MICROS_PER_HOUR

_UTC: Final = _dt.timezone.utc
_EPOCH_UTC: Final = _dt.datetime(1970, 1, 1, tzinfo=_UTC)

#: What the ``from_*`` constructors accept: an exact int, or a real number converted exactly.
Number: TypeAlias = int | float | Fraction | Decimal


# --- helpers ----------------------------------------------------------------------------------


def _check_i64(value: int, what: str) -> int:
    if I64_MIN <= value <= I64_MAX:
        return value
    raise TimeRangeError(
        f"{what}: {value} µs is outside the signed 64-bit range {I64_MIN}..{I64_MAX} "
        "that SpacetimeDB stores"
    )


def _require_int(value: object, what: str) -> int:
    """Return ``value`` as a plain int, refusing bools, floats and strings (no silent coercion)."""
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # IntEnum, numpy-like int subclasses: store a plain int
    hint = (
        " (use a from_* constructor to convert seconds/floats)" if isinstance(value, float) else ""
    )
    raise TypeError(
        f"{what}: expected int microseconds, got {type(value).__name__} {value!r}{hint}"
    )


def _exact(value: float | int | Fraction | Decimal, what: str) -> Fraction | int:
    """``value`` as an exact int or Fraction (a float's exact binary value), or a clear error."""
    if type(value) is int:
        return value
    try:
        return Fraction(value)
    except OverflowError:
        raise TimeRangeError(f"{what}: {value!r} is infinite, not a representable time") from None
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a number") from None


def _scaled_micros(value: object, unit: int, what: str) -> int:
    """``value * unit`` rounded to the nearest int, ties to even, computed exactly.

    Ints stay ints. Floats, Fractions and Decimals go through :class:`~fractions.Fraction`, which
    takes the exact binary (or decimal) value, so no rounding happens before the final
    :func:`round`.
    """
    if type(value) is int:
        return _check_i64(value * unit, what)
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction, Decimal)):
        raise TypeError(
            f"{what}: expected a number (int, float, Fraction or Decimal), "
            f"got {type(value).__name__} {value!r}"
        )
    if isinstance(value, int):
        return _check_i64(int(value) * unit, what)
    exact = _exact(value, what)
    return _check_i64(round(exact * unit), what)


def datetime_to_micros(value: _dt.datetime, what: str = "datetime") -> int:
    """Exact microseconds since the Unix epoch of ``value``: the one place a datetime becomes
    an instant (``Timestamp.from_datetime``, ``ScheduleAt.at_time``, the SATS codecs and the
    scheduler's triggers all come here).

    * An *aware* datetime names its own instant.
    * A *naive* datetime is local time, read exactly as :meth:`datetime.datetime.timestamp`
      reads it: the platform's local zone (``TZ``), ``fold=0`` for the first and ``fold=1``
      for the second reading of a wall time repeated when clocks go back, and a wall time
      skipped when clocks go forward counts with the offset before (``fold=0``) or after
      (``fold=1``) the jump, as PEP 495 says. So ``datetime.now()`` is now.

    :class:`~spacetime_sched.NaiveDatetimeError` is left for what has no reading: a naive
    datetime that ``timestamp()`` itself cannot place (on 0001-01-01, or 9999-12-31 east of
    UTC: CPython's local-time lookup looks a day either side and runs out of datetime's range)
    and a datetime whose ``tzinfo`` answers ``utcoffset() is None``.
    """
    if value.tzinfo is None:
        try:
            # With microsecond=0 the float holds a whole number of seconds (exact below 2**53);
            # the microseconds are added as an int, so nothing is rounded.
            seconds = value.replace(microsecond=0).timestamp()
        except (OverflowError, OSError, ValueError) as exc:
            raise NaiveDatetimeError(
                f"{what}: {value!r} is naive, so it is read as local time, but the platform "
                f"cannot place it in the local zone ({exc}); give it a tzinfo, e.g. "
                ".replace(tzinfo=datetime.timezone.utc)"
            ) from None
        return int(seconds) * MICROS_PER_SECOND + value.microsecond
    if value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{what}: {value!r} has tzinfo {value.tzinfo!r} but its utcoffset() is None, so "
            "it names no instant (reading it as local time would contradict its tzinfo); "
            "use a tzinfo that knows its offset, such as zoneinfo.ZoneInfo"
        )
    delta = value - _EPOCH_UTC  # aware subtraction: exact, and honours fold
    return (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def _round_div(numerator: int, divisor: Fraction | int) -> int:
    """``numerator / divisor`` rounded to the nearest int, ties to even, computed exactly."""
    return round(Fraction(numerator) / divisor)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, any year)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of :func:`_days_from_civil`: (year, month, day) for days since 1970-01-01."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _format_year(year: int) -> str:
    # RFC 3339 has exactly four digits; outside 0..9999 we follow chrono and ISO 8601's expanded
    # form (explicit sign, at least four digits) so every i64 Timestamp still has a string.
    return f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"


def _split_utc(micros: int) -> tuple[str, int, int, int, int]:
    """(date string, hour, minute, second, microsecond) of a Timestamp in UTC."""
    days, rest = divmod(micros, MICROS_PER_DAY)
    year, month, day = _civil_from_days(days)
    seconds, micro = divmod(rest, MICROS_PER_SECOND)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    return f"{_format_year(year)}-{month:02d}-{day:02d}", hour, minute, second, micro


_RFC3339 = re.compile(
    r"""
    (?P<year>[+-]\d{4,6}|\d{4}) - (?P<month>\d{2}) - (?P<day>\d{2})
    [Tt\ ]
    (?P<hour>\d{2}) : (?P<minute>\d{2}) : (?P<second>\d{2})
    (?: \. (?P<fraction>\d+) )?
    (?P<offset> [Zz] | (?P<sign>[+-]) (?P<off_h>\d{2}) : (?P<off_m>\d{2}) )
    """,
    re.VERBOSE | re.ASCII,
)


# --- TimeDuration -----------------------------------------------------------------------------


@attrs.frozen(slots=True, init=False, repr=False, order=False)
class TimeDuration:
    """A signed span of time in exact integer microseconds (SpacetimeDB's ``TimeDuration``).

    ``TimeDuration(micros)`` takes an int; use the ``from_*`` constructors for other units and
    for floats (rounded to the nearest microsecond, ties to even)::

        >>> TimeDuration.from_seconds(1.5)
        TimeDuration(micros=1500000)
        >>> str(TimeDuration.from_millis(-0.005))
        '-0.000005'

    Arithmetic stays exact and in range (``TimeRangeError`` otherwise):

    * ``d + d``, ``d - d``, ``-d``, ``abs(d)`` -> TimeDuration
    * ``d * int`` -> TimeDuration; ``d * float`` rounds to the nearest µs (ties to even)
    * ``d / d`` -> float ratio; ``d / number`` -> TimeDuration rounded to the nearest µs
    * ``d // d`` -> int; ``d // int`` -> TimeDuration (floor); ``d % d`` -> TimeDuration
    """

    micros: int

    ZERO: ClassVar[TimeDuration]

    def __init__(self, micros: int) -> None:
        _set_duration_micros(self, _check_i64(_require_int(micros, "TimeDuration"), "TimeDuration"))

    @staticmethod
    def _unchecked(micros: int) -> TimeDuration:
        """Trusted fast constructor for callers that know ``micros`` is an in-range int.

        A staticmethod (no class binding) that fills the slot directly: the BSATN decoder calls
        it for every value, so each saved attribute lookup counts."""
        self = _new(TimeDuration)
        _set_duration_micros(self, micros)
        return self

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def from_micros(cls, micros: Number) -> TimeDuration:
        """``micros`` microseconds; a float is rounded to the nearest µs, ties to even."""
        return cls._unchecked(_scaled_micros(micros, 1, "TimeDuration.from_micros"))

    @classmethod
    def from_millis(cls, millis: Number) -> TimeDuration:
        return cls._unchecked(_scaled_micros(millis, MICROS_PER_MILLI, "TimeDuration.from_millis"))

    @classmethod
    def from_seconds(cls, seconds: Number) -> TimeDuration:
        return cls._unchecked(
            _scaled_micros(seconds, MICROS_PER_SECOND, "TimeDuration.from_seconds")
        )

    @classmethod
    def from_minutes(cls, minutes: Number) -> TimeDuration:
        return cls._unchecked(
            _scaled_micros(minutes, MICROS_PER_MINUTE, "TimeDuration.from_minutes")
        )

    @classmethod
    def from_hours(cls, hours: Number) -> TimeDuration:
        return cls._unchecked(_scaled_micros(hours, MICROS_PER_HOUR, "TimeDuration.from_hours"))

    @classmethod
    def from_days(cls, days: Number) -> TimeDuration:
        return cls._unchecked(_scaled_micros(days, MICROS_PER_DAY, "TimeDuration.from_days"))

    @classmethod
    def from_timedelta(cls, delta: _dt.timedelta) -> TimeDuration:
        """The exact span of ``delta`` (timedeltas hold whole microseconds, so nothing rounds)."""
        if not isinstance(delta, _dt.timedelta):
            raise TypeError(
                f"TimeDuration.from_timedelta: expected datetime.timedelta, "
                f"got {type(delta).__name__} {delta!r}"
            )
        micros = (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds
        return cls._unchecked(_check_i64(micros, "TimeDuration.from_timedelta"))

    # --- conversions --------------------------------------------------------------------------

    def to_timedelta(self) -> _dt.timedelta:
        """The same span as a :class:`datetime.timedelta` (exact: every i64 µs value fits)."""
        return _dt.timedelta(microseconds=self.micros)

    @property
    def millis(self) -> int:
        """Whole milliseconds, truncated toward zero (like the TypeScript SDK's ``millis``)."""
        return _trunc_div(self.micros, MICROS_PER_MILLI)

    def to_micros(self) -> int:
        return self.micros

    def clamp(self, low: TimeDuration, high: TimeDuration) -> TimeDuration:
        """This duration limited to ``low..high`` (inclusive)."""
        if high < low:
            raise ValueError(f"TimeDuration.clamp: low {low} is greater than high {high}")
        return low if self < low else high if self > high else self

    def total_seconds(self) -> float:
        """Seconds as a float, for display and for APIs that want one (may lose µs precision)."""
        return self.micros / MICROS_PER_SECOND

    # --- arithmetic ---------------------------------------------------------------------------

    def __add__(self, other: TimeDuration | _dt.timedelta) -> TimeDuration:
        if type(other) is TimeDuration:
            return _duration(self.micros + other.micros, "TimeDuration + TimeDuration")
        if isinstance(other, _dt.timedelta):
            return _duration(
                self.micros + TimeDuration.from_timedelta(other).micros, "TimeDuration + timedelta"
            )
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other: TimeDuration | _dt.timedelta) -> TimeDuration:
        if type(other) is TimeDuration:
            return _duration(self.micros - other.micros, "TimeDuration - TimeDuration")
        if isinstance(other, _dt.timedelta):
            return _duration(
                self.micros - TimeDuration.from_timedelta(other).micros, "TimeDuration - timedelta"
            )
        return NotImplemented

    def __rsub__(self, other: _dt.timedelta) -> TimeDuration:
        if isinstance(other, _dt.timedelta):
            return _duration(
                TimeDuration.from_timedelta(other).micros - self.micros, "timedelta - TimeDuration"
            )
        return NotImplemented

    def __neg__(self) -> TimeDuration:
        return _duration(-self.micros, "-TimeDuration")

    def __pos__(self) -> TimeDuration:
        return self

    def __abs__(self) -> TimeDuration:
        return _duration(abs(self.micros), "abs(TimeDuration)")

    def __mul__(self, factor: Number) -> TimeDuration:
        if type(factor) is int:
            return _duration(self.micros * factor, "TimeDuration * int")
        if isinstance(factor, bool) or not isinstance(factor, (int, float, Fraction, Decimal)):
            return NotImplemented
        return _duration(
            _scaled_micros(factor, self.micros, "TimeDuration * number"), "TimeDuration * number"
        )

    __rmul__ = __mul__

    @overload
    def __truediv__(self, other: TimeDuration) -> float: ...
    @overload
    def __truediv__(self, other: Number) -> TimeDuration: ...
    def __truediv__(self, other: object) -> Any:
        if type(other) is TimeDuration:
            return self.micros / other.micros
        if isinstance(other, bool) or not isinstance(other, (int, float, Fraction, Decimal)):
            return NotImplemented
        divisor = _exact(other, "TimeDuration / number")
        if divisor == 0:
            raise ZeroDivisionError("TimeDuration / 0")
        return _duration(_round_div(self.micros, divisor), "TimeDuration / number")

    @overload
    def __floordiv__(self, other: TimeDuration) -> int: ...
    @overload
    def __floordiv__(self, other: int) -> TimeDuration: ...
    def __floordiv__(self, other: object) -> Any:
        if type(other) is TimeDuration:
            return self.micros // other.micros
        if type(other) is int or (isinstance(other, int) and not isinstance(other, bool)):
            return _duration(self.micros // int(other), "TimeDuration // int")
        return NotImplemented

    def __mod__(self, other: TimeDuration) -> TimeDuration:
        if type(other) is TimeDuration:
            return TimeDuration._unchecked(self.micros % other.micros)
        return NotImplemented

    def __divmod__(self, other: TimeDuration) -> tuple[int, TimeDuration]:
        if type(other) is TimeDuration:
            quotient, rest = divmod(self.micros, other.micros)
            return quotient, TimeDuration._unchecked(rest)
        return NotImplemented

    def __bool__(self) -> bool:
        return self.micros != 0

    # --- ordering (same type only; equality and hashing come from attrs) ----------------------

    def __lt__(self, other: TimeDuration) -> bool:
        if type(other) is TimeDuration:
            return self.micros < other.micros
        return NotImplemented

    def __le__(self, other: TimeDuration) -> bool:
        if type(other) is TimeDuration:
            return self.micros <= other.micros
        return NotImplemented

    def __gt__(self, other: TimeDuration) -> bool:
        if type(other) is TimeDuration:
            return self.micros > other.micros
        return NotImplemented

    def __ge__(self, other: TimeDuration) -> bool:
        if type(other) is TimeDuration:
            return self.micros >= other.micros
        return NotImplemented

    # --- formatting ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"TimeDuration(micros={self.micros})"

    def __str__(self) -> str:
        """SpacetimeDB's own format (Rust ``Display``): sign, seconds, six fraction digits."""
        sign = "-" if self.micros < 0 else "+"
        seconds, micros = divmod(abs(self.micros), MICROS_PER_SECOND)
        return f"{sign}{seconds}.{micros:06d}"

    def format_precise(self) -> str:
        """The exact value in microseconds, e.g. ``30500000µs``."""
        return f"{self.micros}µs"

    def format_human_readable(self) -> str:
        """A short adaptive form for people, always one decimal: ``500.0µs``, ``1.5ms``,
        ``30.5s``, ``30.0min``, ``1.3h``, ``3.0d``, ``-2.0s``.

        The unit is the largest of µs, ms, s, min, h, d that the magnitude reaches (1 ms,
        1 s, 1 min, 1 h, 1 d are the thresholds; below 1 ms it is µs). The value is rounded to
        one decimal, exactly, to the nearest tenth with ties to even; if that rounds up to a
        whole next unit it is shown in that unit (59.96 s reads ``1.0min``, not ``60.0s``).
        A negative duration gets a ``-``. Use :meth:`format_precise` when every µs matters.
        """
        tenths, name = _nearest_in_units(abs(self.micros), _HUMAN_UNITS, 10)
        whole, tenth = divmod(tenths, 10)
        return f"{'-' if self.micros < 0 else ''}{whole}.{tenth}{name}"

    def to_iso8601(self) -> str:
        """ISO 8601 duration like Rust's ``TimeDuration::to_iso8601`` (chrono's ``TimeDelta``
        Display): ``P0D`` for zero, otherwise ``[-]PT<seconds>[.<fraction>]S`` with the fraction's
        trailing zeros removed, e.g. ``PT1.5S``, ``-PT0.000001S``, ``PT86400S``."""
        if self.micros == 0:
            return "P0D"
        sign = "-" if self.micros < 0 else ""
        seconds, micros = divmod(abs(self.micros), MICROS_PER_SECOND)
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        return f"{sign}PT{seconds}{fraction}S"


#: (unit in µs, its name, how many of it make the next unit), smallest first.
_HUMAN_UNITS: Final = (
    (1, "µs", 1000),
    (MICROS_PER_MILLI, "ms", 1000),
    (MICROS_PER_SECOND, "s", 60),
    (MICROS_PER_MINUTE, "min", 60),
    (MICROS_PER_HOUR, "h", 24),
    (MICROS_PER_DAY, "d", None),
)


def _nearest_in_units(
    magnitude: int, units: tuple[tuple[int, str, int | None], ...], steps: int
) -> tuple[int, str]:
    """``magnitude`` µs in ``1/steps`` of a unit, rounded to the nearest (ties to even, exact),
    and the unit's name: the first unit of ``units`` (smallest first) in which the rounded
    count stays below one whole next unit. Both human formats use it (format_human_readable
    in tenths, format_relative in whole units), so both round the same way."""
    for unit, name, per_next in units:
        count = round(Fraction(magnitude * steps, unit))
        if per_next is None or count < per_next * steps:
            return count, name
    raise AssertionError("unreachable: the last unit has no next unit")


_new = object.__new__
# Writing through the slot descriptor skips attrs' frozen __setattr__ guard: the fastest way to
# fill a new instance, used only by the trusted constructors.
_set_duration_micros = TimeDuration.__dict__["micros"].__set__


def _trunc_div(numerator: int, divisor: int) -> int:
    quotient = abs(numerator) // divisor
    return -quotient if numerator < 0 else quotient


def _duration(micros: int, what: str) -> TimeDuration:
    return TimeDuration._unchecked(_check_i64(micros, what))


TimeDuration.ZERO = TimeDuration._unchecked(0)


# --- Timestamp --------------------------------------------------------------------------------


TzLike: TypeAlias = str | _dt.tzinfo


class _DisplayZone:
    """The slot behind :attr:`Timestamp.timezone_info`, kept out of attrs' fields on purpose.

    Outside attrs it takes no part in equality, hashing or ``attrs.astuple``, and a Timestamp
    whose slot was never filled (the trusted constructors and the BSATN decoder, which build
    millions) reads as None, so the hot paths pay nothing for a display-only zone.
    """

    __slots__ = ("_display_zone",)


@attrs.frozen(slots=True, init=False, repr=False, order=False)
class Timestamp(_DisplayZone):
    """A point in time: exact integer microseconds since 1970-01-01T00:00:00Z (Unix epoch).

    SpacetimeDB's ``Timestamp``. Negative values are before the epoch; the range is the signed
    64-bit one (about 292,000 years either way). Timestamps are always UTC; a time zone only
    matters when converting to a :class:`~datetime.datetime` or formatting for people.

    * ``Timestamp.now()``, ``Timestamp.from_datetime(aware_dt)``, ``Timestamp.parse(rfc3339)``
    * ``t + d``, ``t - d`` with a :class:`TimeDuration` or :class:`~datetime.timedelta`
    * ``t2 - t1`` -> :class:`TimeDuration`

    :attr:`timezone_info` is the zone the value was created from (``from_datetime`` of an
    aware datetime) or converted to (:meth:`with_timezone`), else None. It is for display
    only: ``to_datetime()`` and ``to_local_iso()`` show the instant in it. Equality, hashing,
    ordering and the BSATN / SATS-JSON encodings look at :attr:`micros_since_epoch` alone, so
    the same instant in two zones is one value. ``t ± duration`` keeps ``t``'s zone (like an
    aware datetime plus a timedelta); every other constructor gives None.
    """

    micros_since_epoch: int

    UNIX_EPOCH: ClassVar[Timestamp]

    def __init__(self, micros_since_epoch: int, timezone_info: TzLike | None = None) -> None:
        _set_timestamp_micros(
            self, _check_i64(_require_int(micros_since_epoch, "Timestamp"), "Timestamp")
        )
        if timezone_info is not None:
            _set_timestamp_zone(self, _zone(timezone_info))

    @staticmethod
    def _unchecked(micros_since_epoch: int) -> Timestamp:
        """Trusted fast constructor for callers that know the value is an in-range int."""
        self = _new(Timestamp)
        _set_timestamp_micros(self, micros_since_epoch)
        return self

    @property
    def timezone_info(self) -> _dt.tzinfo | None:
        """The zone this instant is displayed in, or None (see the class docstring)."""
        return getattr(self, "_display_zone", None)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle and copy: attrs' own state covers its fields only, not the display zone.
        return (Timestamp, (self.micros_since_epoch, self.timezone_info))

    def _zoned(self, zone: _dt.tzinfo | None) -> Timestamp:
        """This instant with ``zone`` as its display zone (a new value unless nothing changes)."""
        if zone is self.timezone_info:
            return self
        other = _new(Timestamp)
        _set_timestamp_micros(other, self.micros_since_epoch)
        if zone is not None:
            _set_timestamp_zone(other, zone)
        return other

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def now(cls) -> Timestamp:
        """The current wall-clock time (``time.time_ns() // 1000``: exact, no float)."""
        return cls._unchecked(time.time_ns() // 1000)

    @classmethod
    def from_micros(cls, micros_since_epoch: int) -> Timestamp:
        return cls(micros_since_epoch)

    @classmethod
    def from_millis(cls, millis: Number) -> Timestamp:
        return cls._unchecked(_scaled_micros(millis, MICROS_PER_MILLI, "Timestamp.from_millis"))

    @classmethod
    def from_unix_seconds(cls, seconds: Number) -> Timestamp:
        """Unix seconds (int, or float rounded exactly to the nearest µs, ties to even)."""
        return cls._unchecked(
            _scaled_micros(seconds, MICROS_PER_SECOND, "Timestamp.from_unix_seconds")
        )

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> Timestamp:
        """The exact instant of ``value``.

        An aware datetime keeps its zone as :attr:`timezone_info` (for display only). A naive
        one is *local time*, read exactly as ``value.timestamp()`` reads it (``fold``
        respected), so ``Timestamp.from_datetime(datetime.now())`` is now; its
        ``timezone_info`` is None.
        """
        if not isinstance(value, _dt.datetime):
            raise TypeError(
                f"Timestamp.from_datetime: expected a datetime.datetime, "
                f"got {type(value).__name__} {value!r}"
            )
        micros = datetime_to_micros(value, "Timestamp.from_datetime")
        # datetime's years 1..9999 are always in the i64 range.
        return cls._unchecked(micros)._zoned(value.tzinfo)

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse an RFC 3339 timestamp: ``2025-02-17T10:30:45.123456Z``, ``...+01:00``.

        The ``T`` may be a space or ``t``, ``Z`` may be ``z``; an offset is required (RFC 3339
        has no local times). A fraction with more than six digits is truncated toward the past
        to whole microseconds, exactly as SpacetimeDB's ``Timestamp::parse_from_rfc3339``
        (chrono's ``timestamp_micros``) does. A leap second ``:60`` counts as the next second,
        also like chrono. Years outside 0000..9999 may be written with a sign and more digits
        (``+10000-01-01T00:00:00Z``), which is what :meth:`to_iso` prints for them.
        """
        if not isinstance(text, str):
            raise TypeError(f"Timestamp.parse: expected str, got {type(text).__name__} {text!r}")
        match = _RFC3339.fullmatch(text)
        if match is None:
            raise ValueError(
                f"Timestamp.parse: {text!r} is not an RFC 3339 timestamp "
                "(expected e.g. '2025-02-17T10:30:45.123456Z' or '2025-02-17T11:30:45+01:00')"
            )
        year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
        hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
        if not 1 <= month <= 12:
            raise ValueError(f"Timestamp.parse: month {month} out of range in {text!r}")
        days_in_month = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
        if not 1 <= day <= days_in_month:
            raise ValueError(f"Timestamp.parse: day {day} out of range in {text!r}")
        if hour > 23 or minute > 59 or second > 60:
            raise ValueError(f"Timestamp.parse: time of day out of range in {text!r}")
        fraction = match["fraction"] or ""
        micros_part = int(fraction[:6].ljust(6, "0")) if fraction else 0
        offset_seconds = 0
        if match["sign"] is not None:
            off_h, off_m = int(match["off_h"]), int(match["off_m"])
            if off_h > 23 or off_m > 59:
                raise ValueError(f"Timestamp.parse: UTC offset out of range in {text!r}")
            offset_seconds = (off_h * 3600 + off_m * 60) * (-1 if match["sign"] == "-" else 1)
        seconds = (
            _days_from_civil(year, month, day) * 86_400
            + hour * 3600
            + minute * 60
            + second
            - offset_seconds
        )
        return cls._unchecked(
            _check_i64(seconds * MICROS_PER_SECOND + micros_part, f"Timestamp.parse({text!r})")
        )

    from_iso = parse

    # --- conversions --------------------------------------------------------------------------

    def with_timezone(self, tz: TzLike | None) -> Timestamp:
        """The same instant with ``tz`` (an IANA name or a tzinfo; None clears it) as its
        :attr:`timezone_info`, the zone it is displayed in. It still equals ``self``."""
        return self._zoned(None if tz is None else _zone(tz))

    def to_datetime(self, tz: TzLike | None = None) -> _dt.datetime:
        """The instant as an aware datetime in ``tz``: an IANA name or tzinfo; by default
        :attr:`timezone_info`, or UTC when that is None.

        Exact: built as ``epoch + timedelta(microseconds=...)``. Raises
        :class:`~spacetime_sched.TimeRangeError` for instants outside datetime's years 1..9999.
        """
        try:
            utc = _EPOCH_UTC + _dt.timedelta(microseconds=self.micros_since_epoch)
        except OverflowError:
            raise TimeRangeError(
                f"{self.to_iso()} is outside the range of datetime.datetime "
                "(years 1..9999); use micros_since_epoch or to_iso() instead"
            ) from None
        zone = _zone(tz if tz is not None else self.timezone_info or _UTC)
        if zone is _UTC:
            return utc
        try:
            return utc.astimezone(zone)
        except OverflowError:
            raise TimeRangeError(
                f"{self.to_iso()} in {zone} is outside the range of datetime.datetime"
            ) from None

    def to_utc(self) -> _dt.datetime:
        """The instant as an aware datetime in UTC."""
        return self.to_datetime(_UTC)

    def to_timezone(self, tz: TzLike) -> _dt.datetime:
        """The instant as an aware datetime in ``tz``: an IANA name (``"Europe/London"``) or a
        :class:`~datetime.tzinfo`."""
        return self.to_datetime(tz)

    def to_unix_seconds(self) -> float:
        """Unix seconds as a float (for display and float APIs; may lose µs precision)."""
        return self.micros_since_epoch / MICROS_PER_SECOND

    def to_millis(self) -> int:
        """Whole milliseconds since the epoch, floored (like ``time.time_ns() // 10**6``)."""
        return self.micros_since_epoch // MICROS_PER_MILLI

    def to_micros(self) -> int:
        return self.micros_since_epoch

    def to_local_iso(self) -> str:
        """ISO 8601 in :attr:`timezone_info` (UTC when None) with its offset and six fraction
        digits, e.g. ``2025-07-01T08:00:00.000000-04:00``; years 1..9999 only."""
        return self.to_datetime().isoformat(timespec="microseconds")

    def to_iso(self) -> str:
        """``2025-02-17T10:30:45.123456Z``: UTC, always six fraction digits (TypeScript SDK)."""
        date, hour, minute, second, micro = _split_utc(self.micros_since_epoch)
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}Z"

    def __str__(self) -> str:
        """RFC 3339 as SpacetimeDB's Rust ``Display`` prints it (chrono ``to_rfc3339``):
        ``+00:00`` offset, and 0, 3 or 6 fraction digits, as few as show the value."""
        date, hour, minute, second, micro = _split_utc(self.micros_since_epoch)
        if micro == 0:
            fraction = ""
        elif micro % 1000 == 0:
            fraction = f".{micro // 1000:03d}"
        else:
            fraction = f".{micro:06d}"
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}{fraction}+00:00"

    def __repr__(self) -> str:
        zone = self.timezone_info
        if zone is None:
            return f"Timestamp.parse({self.to_iso()!r})"
        shown = getattr(zone, "key", None) or zone
        return f"Timestamp.parse({self.to_iso()!r}).with_timezone({shown!r})"

    def format_relative(self, now: Timestamp | None = None) -> str:
        """How far this is from ``now`` (default :meth:`now`), for people: ``"in 30 minutes"``,
        ``"3 hours ago"``, ``"just now"``.

        The distance is rounded to the *nearest* whole unit (ties to even, exactly, on integer
        microseconds), trying seconds, then minutes, hours and days: a unit is used when the
        count rounds to less than one of the next unit, so 29 min 59.9 s reads "30 minutes",
        59.5 s "1 minute", 59 min 30 s "1 hour" and 23 h 30 min "1 day". Under half a second
        rounds to zero seconds: "just now". A time 30 minutes ahead thus still says "in 30
        minutes" a moment later.
        """
        reference = Timestamp.now() if now is None else now
        delta = reference.micros_since_epoch - self.micros_since_epoch
        count, name = _nearest_in_units(abs(delta), _RELATIVE_UNITS, 1)
        if count == 0:
            return "just now"
        text = f"{count} {name}{'' if count == 1 else 's'}"
        return f"{text} ago" if delta > 0 else f"in {text}"

    # --- arithmetic ---------------------------------------------------------------------------

    def __add__(self, other: TimeDuration | _dt.timedelta) -> Timestamp:
        if type(other) is TimeDuration:
            micros, what = other.micros, "Timestamp + TimeDuration"
        elif isinstance(other, _dt.timedelta):
            micros, what = TimeDuration.from_timedelta(other).micros, "Timestamp + timedelta"
        else:
            return NotImplemented
        moved = _timestamp(self.micros_since_epoch + micros, what)
        return moved if self.timezone_info is None else moved._zoned(self.timezone_info)

    __radd__ = __add__

    @overload
    def __sub__(self, other: Timestamp) -> TimeDuration: ...
    @overload
    def __sub__(self, other: TimeDuration | _dt.timedelta) -> Timestamp: ...
    def __sub__(self, other: object) -> Any:
        if type(other) is Timestamp:
            return _duration(
                self.micros_since_epoch - other.micros_since_epoch, "Timestamp - Timestamp"
            )
        if type(other) is TimeDuration:
            micros, what = other.micros, "Timestamp - TimeDuration"
        elif isinstance(other, _dt.timedelta):
            micros, what = TimeDuration.from_timedelta(other).micros, "Timestamp - timedelta"
        else:
            return NotImplemented
        moved = _timestamp(self.micros_since_epoch - micros, what)
        return moved if self.timezone_info is None else moved._zoned(self.timezone_info)

    def since(self, other: Timestamp) -> TimeDuration:
        """``self - other`` as a (possibly negative) :class:`TimeDuration`."""
        if type(other) is not Timestamp:
            raise TypeError(f"Timestamp.since: expected Timestamp, got {type(other).__name__}")
        return _duration(self.micros_since_epoch - other.micros_since_epoch, "Timestamp.since")

    def duration_since(self, earlier: Timestamp) -> TimeDuration | None:
        """``self - earlier`` if ``earlier`` is not after ``self``, else ``None`` (like Rust's
        ``Timestamp::duration_since``, which never returns a negative duration)."""
        elapsed = self.since(earlier)
        return elapsed if elapsed.micros >= 0 else None

    # --- ordering -----------------------------------------------------------------------------

    def __lt__(self, other: Timestamp) -> bool:
        if type(other) is Timestamp:
            return self.micros_since_epoch < other.micros_since_epoch
        return NotImplemented

    def __le__(self, other: Timestamp) -> bool:
        if type(other) is Timestamp:
            return self.micros_since_epoch <= other.micros_since_epoch
        return NotImplemented

    def __gt__(self, other: Timestamp) -> bool:
        if type(other) is Timestamp:
            return self.micros_since_epoch > other.micros_since_epoch
        return NotImplemented

    def __ge__(self, other: Timestamp) -> bool:
        if type(other) is Timestamp:
            return self.micros_since_epoch >= other.micros_since_epoch
        return NotImplemented


_set_timestamp_micros = Timestamp.__dict__["micros_since_epoch"].__set__

_set_timestamp_zone = _DisplayZone.__dict__["_display_zone"].__set__

#: (unit, its name, how many of it make the next unit), smallest first.
_RELATIVE_UNITS: Final = (
    (MICROS_PER_SECOND, "second", 60),
    (MICROS_PER_MINUTE, "minute", 60),
    (MICROS_PER_HOUR, "hour", 24),
    (MICROS_PER_DAY, "day", None),
)


def _timestamp(micros: int, what: str) -> Timestamp:
    return Timestamp._unchecked(_check_i64(micros, what))


def _zone(tz: TzLike) -> _dt.tzinfo:
    if isinstance(tz, _dt.tzinfo):
        return tz
    if isinstance(tz, str):
        return ZoneInfo(tz)
    raise TypeError(
        f"expected a time zone name (e.g. 'Europe/London') or a datetime.tzinfo, "
        f"got {type(tz).__name__} {tz!r}"
    )


Timestamp.UNIX_EPOCH = Timestamp._unchecked(0)


# --- ScheduleAt -------------------------------------------------------------------------------


class ScheduleAt:
    """When a scheduled reducer runs: SpacetimeDB's ``ScheduleAt`` sum type.

    * ``ScheduleAt.Interval(TimeDuration)`` (SATS tag 0): repeatedly, every interval.
    * ``ScheduleAt.Time(Timestamp)`` (SATS tag 1): once, at that instant.

    Both are frozen value classes that work with ``match``::

        match schedule:
            case ScheduleAt.Interval(every):
                ...
            case ScheduleAt.Time(at):
                ...

    Build them from friendlier values with :meth:`at_time` and :meth:`at_interval`.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # Real aliases for type checkers, so ``x: ScheduleAt.Interval`` is a valid annotation;
        # at runtime the two subclasses are attached right after they are defined.
        Interval: TypeAlias = "ScheduleAtInterval"
        Time: TypeAlias = "ScheduleAtTime"

    def __init__(self) -> None:
        raise TypeError(
            "ScheduleAt is a sum type; create ScheduleAt.Interval(TimeDuration) or "
            "ScheduleAt.Time(Timestamp), or use ScheduleAt.at_interval()/at_time()"
        )

    @property
    def tag(self) -> int:
        """The SATS sum tag: 0 for Interval, 1 for Time."""
        raise NotImplementedError

    @staticmethod
    def coerce(
        value: ScheduleAt | Timestamp | _dt.datetime | TimeDuration | _dt.timedelta,
    ) -> ScheduleAt:
        """``value`` as a ScheduleAt: a ScheduleAt is returned as is; a Timestamp or datetime
        (naive means local time) becomes a Time; a TimeDuration or timedelta becomes an
        Interval. Bare numbers are refused because they could mean either (use
        :meth:`at_time`/:meth:`at_interval`)."""
        if isinstance(value, ScheduleAt):
            return value
        if isinstance(value, (Timestamp, _dt.datetime)):
            return ScheduleAt.at_time(value)
        if isinstance(value, (TimeDuration, _dt.timedelta)):
            return ScheduleAt.at_interval(value)
        raise TypeError(
            "ScheduleAt.coerce: expected a ScheduleAt, Timestamp, datetime, TimeDuration "
            f"or timedelta, got {type(value).__name__} {value!r}"
        )

    @staticmethod
    def at_time(when: Timestamp | _dt.datetime | int | float) -> ScheduleAtTime:
        """Run once at ``when``: a :class:`Timestamp`, a datetime, or Unix seconds.

        A naive datetime is local time, read as ``when.timestamp()`` reads it, so
        ``ScheduleAt.at_time(datetime.now())`` is now."""
        if type(when) is Timestamp:
            return ScheduleAtTime(when)
        if isinstance(when, _dt.datetime):
            return ScheduleAtTime(Timestamp.from_datetime(when))
        if isinstance(when, (int, float)) and not isinstance(when, bool):
            return ScheduleAtTime(Timestamp.from_unix_seconds(when))
        raise TypeError(
            "ScheduleAt.at_time: expected a Timestamp, a datetime or Unix seconds, "
            f"got {type(when).__name__} {when!r}"
        )

    @staticmethod
    def at_interval(every: TimeDuration | _dt.timedelta | int | float) -> ScheduleAtInterval:
        """Run every ``every``: a :class:`TimeDuration`, a timedelta, or seconds."""
        if type(every) is TimeDuration:
            return ScheduleAtInterval(every)
        if isinstance(every, _dt.timedelta):
            return ScheduleAtInterval(TimeDuration.from_timedelta(every))
        if isinstance(every, (int, float)) and not isinstance(every, bool):
            return ScheduleAtInterval(TimeDuration.from_seconds(every))
        raise TypeError(
            "ScheduleAt.at_interval: expected a TimeDuration, a timedelta or seconds, "
            f"got {type(every).__name__} {every!r}"
        )

    def is_time(self) -> bool:
        return isinstance(self, ScheduleAtTime)

    def is_interval(self) -> bool:
        return isinstance(self, ScheduleAtInterval)

    def to_timestamp_from(self, now: Timestamp) -> Timestamp:
        """When this fires next, seen from ``now``: a Time is itself; an Interval is
        ``now + |interval|`` (Rust's ``ScheduleAt::to_timestamp_from``; a negative interval
        counts by its magnitude, saturated at the largest i64, ``2**63 - 1``)."""
        raise NotImplementedError

    def to_duration_from(self, now: Timestamp) -> TimeDuration:
        """How long from ``now`` until this fires, never negative: a Time in the past gives
        zero; an Interval gives ``|interval|`` (Rust's ``ScheduleAt::to_duration_from``)."""
        raise NotImplementedError


@attrs.frozen(slots=True, repr=False)
class ScheduleAtInterval(ScheduleAt):
    """``ScheduleAt.Interval(value)``: run repeatedly, every ``value`` (SATS tag 0)."""

    value: TimeDuration

    def __init__(self, value: TimeDuration) -> None:
        if type(value) is not TimeDuration:
            _bad_payload("Interval", "TimeDuration", value)
        _set_interval_value(self, value)

    @property
    def tag(self) -> int:
        return 0

    def to_timestamp_from(self, now: Timestamp) -> Timestamp:
        return now + self._magnitude()

    def to_duration_from(self, now: Timestamp) -> TimeDuration:
        return self._magnitude()

    def _magnitude(self) -> TimeDuration:
        # Rust uses the saturating absolute value here: |i64::MIN| becomes i64::MAX.
        micros = self.value.micros
        return self.value if micros >= 0 else TimeDuration._unchecked(min(-micros, I64_MAX))

    def __repr__(self) -> str:
        return f"ScheduleAt.Interval({self.value!r})"


@attrs.frozen(slots=True, repr=False)
class ScheduleAtTime(ScheduleAt):
    """``ScheduleAt.Time(value)``: run once, at the instant ``value`` (SATS tag 1)."""

    value: Timestamp

    def __init__(self, value: Timestamp) -> None:
        if type(value) is not Timestamp:
            _bad_payload("Time", "Timestamp", value)
        _set_time_value(self, value)

    @property
    def tag(self) -> int:
        return 1

    def to_timestamp_from(self, now: Timestamp) -> Timestamp:
        return self.value

    def to_duration_from(self, now: Timestamp) -> TimeDuration:
        remaining = self.value.micros_since_epoch - now.micros_since_epoch
        return TimeDuration._unchecked(remaining) if remaining > 0 else TimeDuration.ZERO

    def __repr__(self) -> str:
        return f"ScheduleAt.Time({self.value!r})"


def _bad_payload(variant: str, expected: str, value: object) -> None:
    hint = {
        "Interval": " (use ScheduleAt.at_interval() for timedelta or seconds)",
        "Time": " (use ScheduleAt.at_time() for datetime or Unix seconds)",
    }[variant]
    raise TypeError(
        f"ScheduleAt.{variant}: expected {expected}, got {type(value).__name__} {value!r}{hint}"
    )


_set_interval_value = ScheduleAtInterval.__dict__["value"].__set__
_set_time_value = ScheduleAtTime.__dict__["value"].__set__

setattr(ScheduleAt, "Interval", ScheduleAtInterval)  # noqa: B010 (mypy sees the aliases)
setattr(ScheduleAt, "Time", ScheduleAtTime)  # noqa: B010
ScheduleAtInterval.__qualname__ = "ScheduleAt.Interval"
ScheduleAtTime.__qualname__ = "ScheduleAt.Time"


# --- names used by earlier designs of this project ---------------------------------------------

EnhancedTimestamp = Timestamp
EnhancedTimeDuration = TimeDuration


def timestamp_now() -> Timestamp:
    """The current time; same as :meth:`Timestamp.now`."""
    return Timestamp.now()


def duration_from_seconds(seconds: Number) -> TimeDuration:
    return TimeDuration.from_seconds(seconds)


def duration_from_minutes(minutes: Number) -> TimeDuration:
    return TimeDuration.from_minutes(minutes)


def duration_from_hours(hours: Number) -> TimeDuration:
    return TimeDuration.from_hours(hours)
