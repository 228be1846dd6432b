"""Triggers: *when* a schedule fires.

A trigger is a small immutable value that answers one question, "what is the first fire time
strictly after this instant?" (:meth:`Trigger.next_fire`). Everything is integer microseconds
(:class:`~spacetime_sched.Timestamp`), so interval schedules never drift and two triggers built
from the same arguments always agree.

* :class:`OnceTrigger`: once, at an instant (SpacetimeDB's ``ScheduleAt.Time``);
* :class:`IntervalTrigger`: every ``every``, anchored at creation (``ScheduleAt.Interval``);
* :class:`DailyTrigger`: every day at a wall-clock time in a time zone;
* :class:`CronTrigger`: a crontab expression in a time zone (parsed by ``cronsim``).

Wall-clock triggers follow the Vixie/Debian cron policy on daylight-saving changes (see
``docs/triggers-and-stores.md``):

* a *fixed* time that falls in the spring-forward gap runs once, right after the jump
  (02:30 on 2024-03-10 in New York runs at 03:00 EDT);
* a *fixed* time that falls in the repeated fall-back hour runs once, at its first occurrence;
* a cron expression with ``*`` at the start of its minute or hour field follows the new wall
  clock: an hourly ``0 * * * *`` runs once per real hour, at 01:00 EDT *and* 01:00 EST on the
  fall-back day, and wall times inside the gap simply never happen.

Naive datetimes are never guessed at: wall times are resolved in their zone with an explicit
``fold``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from cronsim import CronSim, CronSimError

from .._errors import InvalidScheduleError, SchedulerError
from .._time import I64_MAX, ScheduleAt, TimeDuration, Timestamp

__all__ = [
    "MAX_COALESCE_STEPS",
    "CronTrigger",
    "DailyTrigger",
    "IntervalTrigger",
    "OnceTrigger",
    "Trigger",
    "TriggerBase",
    "TimezoneLike",
    "trigger_from_dict",
    "trigger_from_schedule_at",
]

#: What the ``timezone`` argument of the wall-clock triggers accepts.
TimezoneLike: TypeAlias = "ZoneInfo | _dt.timezone | str"

_UTC: Final = _dt.timezone.utc
_EPOCH_UTC: Final = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_NAIVE: Final = _dt.datetime(1970, 1, 1)
_MICROS_PER_SECOND: Final = 1_000_000


@runtime_checkable
class Trigger(Protocol):
    """What the scheduler engine needs from a trigger."""

    def next_fire(self, after: Timestamp) -> Timestamp | None:
        """The first fire time strictly after ``after``, or ``None`` when exhausted."""
        ...

    def initial_fire(self, created_at: Timestamp) -> Timestamp | None:
        """The first fire of a schedule created at ``created_at``.

        Differs from ``next_fire(created_at)`` only for :class:`OnceTrigger`, whose instant is
        returned even when it is already past (the engine then applies its misfire grace).
        """
        ...

    def bind(self, created_at: Timestamp) -> Trigger:
        """This trigger with anchors that depend on the creation time fixed (idempotent)."""
        ...

    def to_schedule_at(self) -> ScheduleAt | None:
        """The SpacetimeDB ``ScheduleAt`` with the same meaning, if there is one."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description; :func:`trigger_from_dict` rebuilds the trigger."""
        ...

    def describe(self) -> str:
        """A short text for people: ``"every 5s"``, ``"daily at 02:30 America/New_York"``."""
        ...

    # The planning questions (:class:`TriggerBase` answers them from ``next_fire``): the
    # engine asks the trigger, never which class it is.

    def next_fire_micros(self, after: int) -> int | None:
        """``next_fire`` in µs since the epoch (the engine's hot path)."""
        ...

    def latest_fire_micros(self, fire: int, now: int) -> int:
        """The latest fire time in ``fire..now`` (``fire`` is one): for coalescing."""
        ...

    @property
    def follows_wall_clock(self) -> bool:
        """Whether, after the wall clock is stepped back, the next fire follows the new clock
        (wildcard cron, Vixie cron's rule) rather than keeping its planned instant."""
        ...

    def shifted(self, delta_micros: int) -> Trigger | None:
        """This trigger moved with a wall-clock step of ``delta_micros`` if it measures elapsed
        time (intervals: no stall after a step back, no burst after a step forward), or
        ``None`` if its fire times are wall-clock times that stay where they are."""
        ...


#: How many fire times :meth:`TriggerBase.latest_fire_micros` steps through at most.
MAX_COALESCE_STEPS: Final = 1024


class TriggerBase:
    """Default answers to the planning questions of :class:`Trigger`, from ``next_fire``.

    Every built-in trigger derives from it; a custom trigger can too, and then needs only
    ``next_fire``, ``initial_fire``, ``bind``, ``to_schedule_at``, ``to_dict`` and
    ``describe``.
    """

    __slots__ = ()

    def next_fire(self, after: Timestamp) -> Timestamp | None:
        raise NotImplementedError

    def next_fire_micros(self, after: int) -> int | None:
        nxt = self.next_fire(Timestamp._unchecked(after))
        return None if nxt is None else nxt.micros_since_epoch

    def latest_fire_micros(self, fire: int, now: int) -> int:
        latest = fire
        for _ in range(MAX_COALESCE_STEPS):  # bounded: coalescing never walks a year of ticks
            nxt = self.next_fire_micros(latest)
            if nxt is None or nxt > now:
                break
            latest = nxt
        return latest

    @property
    def follows_wall_clock(self) -> bool:
        return False

    def shifted(self, delta_micros: int) -> Trigger | None:
        return None


# --- argument converters (validators at the edge) ----------------------------------------------


def _to_timestamp(value: object, what: str) -> Timestamp:
    if type(value) is Timestamp:
        return value
    if isinstance(value, _dt.datetime):
        return Timestamp.from_datetime(value)  # naive = local time (see docs/time.md)
    raise InvalidScheduleError(
        f"{what}: expected a Timestamp or a datetime, got {type(value).__name__} {value!r}"
    )


def _convert_at(value: Timestamp | _dt.datetime) -> Timestamp:
    return _to_timestamp(value, "OnceTrigger.at")


def _convert_anchor(value: Timestamp | _dt.datetime | None) -> Timestamp | None:
    return None if value is None else _to_timestamp(value, "IntervalTrigger.anchor")


def _convert_start(value: Timestamp | _dt.datetime | None) -> Timestamp | None:
    return None if value is None else _to_timestamp(value, "IntervalTrigger.start")


def _convert_end(value: Timestamp | _dt.datetime | None) -> Timestamp | None:
    return None if value is None else _to_timestamp(value, "IntervalTrigger.end")


def _convert_every(value: TimeDuration | _dt.timedelta) -> TimeDuration:
    return _to_duration(value)


def _convert_zone(value: TimezoneLike) -> _dt.tzinfo:
    return _to_zone(value)


def _to_duration(value: object) -> TimeDuration:
    if type(value) is TimeDuration:
        duration = value
    elif isinstance(value, _dt.timedelta):
        duration = TimeDuration.from_timedelta(value)
    else:
        raise InvalidScheduleError(
            f"IntervalTrigger.every: expected a TimeDuration or timedelta, "
            f"got {type(value).__name__} {value!r}"
        )
    if duration.micros == 0:
        raise InvalidScheduleError("IntervalTrigger.every: the interval must not be zero")
    return duration


#: A fixed offset must be strictly within a day (what ``datetime.timezone`` accepts).
_MAX_OFFSET: Final = _dt.timedelta(hours=24)
#: The longest IANA zone name is about 30 characters; longer names are refused before the
#: file system is asked (which fails with "File name too long").
_MAX_ZONE_NAME: Final = 255

_OFFSET_NAME = re.compile(r"UTC([+-])(\d{2}):(\d{2})", re.ASCII)


def _to_zone(value: object) -> _dt.tzinfo:
    """Normalise a time zone argument to a ZoneInfo with a key or a ``datetime.timezone``.

    Only those two can be written to a store and read back, so other tzinfo classes are refused.
    ``"UTC"`` and ``ZoneInfo("UTC")`` become ``datetime.timezone.utc``; ``"UTC+05:30"`` is a
    fixed offset (the form :func:`_zone_name` writes).
    """
    if isinstance(value, str):
        if value == "UTC":
            return _UTC
        match = _OFFSET_NAME.fullmatch(value)
        if match is not None:
            sign = -1 if match[1] == "-" else 1
            offset = _dt.timedelta(hours=int(match[2]), minutes=int(match[3])) * sign
            if int(match[3]) >= 60 or not -_MAX_OFFSET < offset < _MAX_OFFSET:
                raise InvalidScheduleError(
                    f"timezone: {value!r} is not a valid offset: it must be strictly between "
                    "UTC-24:00 and UTC+24:00"
                )
            return _to_zone(_dt.timezone(offset))
        if len(value) > _MAX_ZONE_NAME or "\0" in value:
            raise InvalidScheduleError(
                f"timezone: {value[:40]!r}... ({len(value)} characters) is not a known IANA time "
                "zone name (e.g. 'Europe/London') or a fixed offset like 'UTC+05:30'"
            )
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise InvalidScheduleError(
                f"timezone: {value!r} is not a known IANA time zone name "
                "(e.g. 'Europe/London') or a fixed offset like 'UTC+05:30'"
            ) from None
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise InvalidScheduleError(
                "timezone: a ZoneInfo read from a file has no name and cannot be stored; "
                "use ZoneInfo('Area/City')"
            )
        return _UTC if value.key == "UTC" else value
    if isinstance(value, _dt.timezone):
        offset = value.utcoffset(None)
        if offset % _dt.timedelta(minutes=1):
            raise InvalidScheduleError(
                f"timezone: fixed offset {offset} is not a whole number of minutes"
            )
        return _UTC if not offset else _dt.timezone(offset)  # drop any custom display name
    raise InvalidScheduleError(
        "timezone: expected a zoneinfo.ZoneInfo, a datetime.timezone or an IANA name, "
        f"got {type(value).__name__} {value!r}"
    )


def _zone_name(zone: _dt.tzinfo) -> str:
    if isinstance(zone, ZoneInfo):
        return str(zone.key)
    offset = zone.utcoffset(None)
    assert offset is not None  # _to_zone admits only fixed-offset timezones here
    if not offset:
        return "UTC"
    sign = "-" if offset < _dt.timedelta(0) else "+"
    minutes = abs(offset) // _dt.timedelta(minutes=1)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --- wall-clock helpers -------------------------------------------------------------------------


def _naive_micros(wall: _dt.datetime) -> int:
    """Microseconds of a naive datetime read as if it were UTC."""
    delta = wall - _EPOCH_NAIVE
    return (delta.days * 86_400 + delta.seconds) * _MICROS_PER_SECOND + delta.microseconds


def _aware_micros(value: _dt.datetime) -> int:
    delta = value - _EPOCH_UTC  # aware subtraction honours the offset chosen by ``fold``
    return (delta.days * 86_400 + delta.seconds) * _MICROS_PER_SECOND + delta.microseconds


def _offset_micros(wall: _dt.datetime, zone: _dt.tzinfo, fold: int) -> int:
    offset = wall.replace(tzinfo=zone, fold=fold).utcoffset()
    assert offset is not None
    return offset // _dt.timedelta(microseconds=1)


def _offset_at(micros: int, zone: _dt.tzinfo) -> int:
    offset = (_EPOCH_UTC + _dt.timedelta(microseconds=micros)).astimezone(zone).utcoffset()
    assert offset is not None
    return offset // _dt.timedelta(microseconds=1)


def _resolve_fixed(wall: _dt.datetime, zone: _dt.tzinfo) -> int:
    """The instant (µs) a *fixed* wall time runs at under the Vixie cron policy.

    A wall time that exists once is unambiguous. One in the fall-back fold exists twice: the
    first occurrence (``fold=0``) wins. One in the spring-forward gap does not exist: it runs at
    the first instant after the jump, found by bisection between the two readings of the wall
    time (PEP 495: in a gap ``fold=0`` uses the offset before the transition, ``fold=1`` after).
    """
    base = _naive_micros(wall)
    offset_after_jump = _offset_micros(wall, zone, 1)
    before = base - _offset_micros(wall, zone, 0)
    after = base - offset_after_jump
    if before <= after:  # the same instant, or the fold where fold=0 comes first
        return before
    low, high = after, before  # the transition lies in (low, high]
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, zone) == offset_after_jump:
            high = middle
        else:
            low = middle
    return high


def _wall_at(micros: int, zone: _dt.tzinfo) -> _dt.datetime:
    """The naive wall time the clock in ``zone`` shows at an instant."""
    utc = _EPOCH_UTC + _dt.timedelta(microseconds=micros)
    return utc.astimezone(zone).replace(tzinfo=None)


def _occurrences(wall: _dt.datetime, zone: _dt.tzinfo) -> list[int]:
    """The instants (µs, ascending) at which the clock in ``zone`` shows ``wall``: none in a
    spring-forward gap, two in a fall-back fold, otherwise one."""
    found: list[int] = []
    for fold in (0, 1):
        micros = _aware_micros(wall.replace(tzinfo=zone, fold=fold))
        if micros not in found and _wall_at(micros, zone) == wall:
            found.append(micros)
    return sorted(found)


#: How far ahead a fall-back can still repeat wall times that are behind the current one: the
#: clock moves back by at most a few hours (2 h in tzdb since 1970); a day is generous.
_FOLD_HORIZON_MICROS: Final = 26 * 3600 * _MICROS_PER_SECOND


def _fall_back_ahead(after: int, zone: _dt.tzinfo) -> tuple[int, int] | None:
    """(instant, new offset in µs) of a fall-back transition within the horizon after
    ``after``, found by bisection; None when the offset does not go down in that time."""
    offset = _offset_at(after, zone)
    low, high = after, after + _FOLD_HORIZON_MICROS
    if _offset_at(high, zone) >= offset:
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, zone) < offset:
            high = middle
        else:
            low = middle
    return high, _offset_at(high, zone)


#: A day into year 1, so that local times in any zone are still representable datetimes.
_EARLIEST_MICROS: Final = _aware_micros(_dt.datetime(1, 1, 2, tzinfo=_UTC))


def _local(after: Timestamp, zone: _dt.tzinfo) -> _dt.datetime | None:
    """``after`` as an aware local datetime (with the right ``fold``), or None past the year
    9999 (no wall-clock trigger fires out there). Instants before the year 1 are moved up to
    it: nothing can fire earlier, so the first fire after that is the answer."""
    micros = max(after.micros_since_epoch, _EARLIEST_MICROS)
    try:
        return (_EPOCH_UTC + _dt.timedelta(microseconds=micros)).astimezone(zone)
    except OverflowError:
        return None


def _timestamp_or_none(micros: int) -> Timestamp | None:
    return Timestamp._unchecked(micros) if micros <= I64_MAX else None


# --- OnceTrigger --------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OnceTrigger(TriggerBase):
    """Fire once, at ``at`` (a :class:`Timestamp` or an aware datetime).

    ``next_fire(after)`` is ``at`` while ``at`` is still ahead and ``None`` afterwards;
    :meth:`initial_fire` returns ``at`` even when it is already in the past, so a one-shot
    created late still runs (subject to the engine's misfire grace).
    """

    at: Timestamp = attrs.field(converter=_convert_at)

    def next_fire(self, after: Timestamp) -> Timestamp | None:
        return self.at if self.at > after else None

    def initial_fire(self, created_at: Timestamp) -> Timestamp | None:
        return self.at

    def bind(self, created_at: Timestamp) -> OnceTrigger:
        return self

    def to_schedule_at(self) -> ScheduleAt:
        return ScheduleAt.Time(self.at)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "once", "at": self.at.micros_since_epoch}

    def describe(self) -> str:
        return f"once at {self.at.to_iso()}"


# --- IntervalTrigger ----------------------------------------------------------------------------


@attrs.frozen(slots=True)
class IntervalTrigger(TriggerBase):
    """Fire every ``every``, at ``anchor + k * |every|`` for k = 1, 2, ...

    The anchor is the creation time unless given: :meth:`bind` fills it in. Fire times are
    computed from the anchor with integer division, so they never drift and a late scheduler
    skips straight to the next tick instead of replaying the missed ones. A negative interval
    means its absolute value (as in SpacetimeDB); zero is refused.

    ``start`` and ``end`` (inclusive) optionally bound the fire times; the grid stays anchored.
    """

    every: TimeDuration = attrs.field(converter=_convert_every)
    anchor: Timestamp | None = attrs.field(default=None, converter=_convert_anchor)
    start: Timestamp | None = attrs.field(default=None, kw_only=True, converter=_convert_start)
    end: Timestamp | None = attrs.field(default=None, kw_only=True, converter=_convert_end)

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise InvalidScheduleError(
                f"IntervalTrigger: end {self.end.to_iso()} is before start {self.start.to_iso()}"
            )

    def next_fire(self, after: Timestamp) -> Timestamp | None:
        if self.anchor is None:
            raise SchedulerError(
                "IntervalTrigger has no anchor yet; call bind(created_at) before next_fire()"
            )
        return self._first_at_or_after(self.anchor.micros_since_epoch, after.micros_since_epoch + 1)

    def initial_fire(self, created_at: Timestamp) -> Timestamp | None:
        anchor = created_at if self.anchor is None else self.anchor
        return self._first_at_or_after(anchor.micros_since_epoch, anchor.micros_since_epoch + 1)

    def _first_at_or_after(self, anchor: int, lowest: int) -> Timestamp | None:
        step = abs(self.every.micros)
        if self.start is not None:
            lowest = max(lowest, self.start.micros_since_epoch)
        k = max(1, -((anchor - lowest) // step))  # ceil((lowest - anchor) / step), at least 1
        fire = anchor + k * step
        if self.end is not None and fire > self.end.micros_since_epoch:
            return None
        return _timestamp_or_none(fire)

    def next_fire_micros(self, after: int) -> int | None:
        anchor = self.anchor
        if anchor is None or self.start is not None or self.end is not None:
            return super().next_fire_micros(after)
        # the grid arithmetic without building Timestamps (the hot path of intervals)
        every = abs(self.every.micros)
        base = anchor.micros_since_epoch
        k = (after - base) // every + 1
        return base + (k if k > 1 else 1) * every

    def latest_fire_micros(self, fire: int, now: int) -> int:
        anchor = self.anchor
        if anchor is None or self.start is not None or self.end is not None:
            return super().latest_fire_micros(fire, now)
        every = abs(self.every.micros)
        base = anchor.micros_since_epoch
        return max(fire, base + (now - base) // every * every)

    def shifted(self, delta_micros: int) -> IntervalTrigger:
        if self.anchor is None:
            return self
        return attrs.evolve(
            self, anchor=Timestamp._unchecked(self.anchor.micros_since_epoch + delta_micros)
        )

    def bind(self, created_at: Timestamp) -> IntervalTrigger:
        return self if self.anchor is not None else attrs.evolve(self, anchor=created_at)

    def to_schedule_at(self) -> ScheduleAt | None:
        if self.start is not None or self.end is not None:
            return None  # SpacetimeDB intervals have no bounds
        return ScheduleAt.Interval(self.every)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "interval",
            "every": self.every.micros,
            "anchor": _micros_or_none(self.anchor),
            "start": _micros_or_none(self.start),
            "end": _micros_or_none(self.end),
        }

    def describe(self) -> str:
        text = f"every {abs(self.every).format_human_readable()}"
        if self.start is not None:
            text += f" from {self.start.to_iso()}"
        if self.end is not None:
            text += f" until {self.end.to_iso()}"
        return text


def _micros_or_none(value: Timestamp | None) -> int | None:
    return None if value is None else value.micros_since_epoch


# --- DailyTrigger -------------------------------------------------------------------------------


def _check_range(name: str, low: int, high: int) -> Any:
    def check(instance: object, attribute: object, value: object) -> None:
        if type(value) is not int or not low <= value <= high:
            raise InvalidScheduleError(
                f"DailyTrigger.{name}: expected an int in {low}..{high}, got {value!r}"
            )

    return check


@attrs.frozen(slots=True)
class DailyTrigger(TriggerBase):
    """Fire every day at ``hour:minute:second`` wall-clock time in ``timezone``.

    Daylight-saving changes follow the Vixie cron policy for fixed times: a time inside the
    spring-forward gap runs once, right after the jump; a time inside the repeated fall-back
    hour runs once, at its first occurrence. ``timezone`` is a :class:`zoneinfo.ZoneInfo`, a
    :class:`datetime.timezone` or an IANA name such as ``"America/New_York"``.
    """

    hour: int = attrs.field(validator=_check_range("hour", 0, 23))
    minute: int = attrs.field(validator=_check_range("minute", 0, 59))
    second: int = attrs.field(default=0, validator=_check_range("second", 0, 59))
    timezone: _dt.tzinfo = attrs.field(default=_UTC, converter=_convert_zone)

    def next_fire(self, after: Timestamp) -> Timestamp | None:
        local = _local(after, self.timezone)
        if local is None:
            return None
        at = _dt.time(self.hour, self.minute, self.second)
        # Yesterday's wall time can still be ahead of ``after`` right after a fall-back, and a
        # resolved time can fall behind ``after``; three days of candidates always suffice.
        start = local.toordinal() - 1
        for ordinal in range(max(start, 1), start + 4):
            try:
                wall = _dt.datetime.combine(_dt.date.fromordinal(ordinal), at)
                fire = _resolve_fixed(wall, self.timezone)
            except (OverflowError, ValueError):  # past the year 9999
                return None
            if fire > after.micros_since_epoch:
                return _timestamp_or_none(fire)
        raise AssertionError("unreachable: a daily time always recurs within three days")

    def initial_fire(self, created_at: Timestamp) -> Timestamp | None:
        return self.next_fire(created_at)

    def bind(self, created_at: Timestamp) -> DailyTrigger:
        return self

    def to_schedule_at(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "daily",
            "hour": self.hour,
            "minute": self.minute,
            "second": self.second,
            "timezone": _zone_name(self.timezone),
        }

    def describe(self) -> str:
        seconds = f":{self.second:02d}" if self.second else ""
        return f"daily at {self.hour:02d}:{self.minute:02d}{seconds} {_zone_name(self.timezone)}"


# --- CronTrigger --------------------------------------------------------------------------------

#: Debian cron's nicknames. ``@hourly`` has ``*`` in its hour, so it follows the wall clock.
_NICKNAMES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _check_expression(instance: CronTrigger, attribute: object, expression: str) -> None:
    if not isinstance(expression, str):
        raise InvalidScheduleError(
            f"CronTrigger.expression: expected str, got {type(expression).__name__} {expression!r}"
        )
    fields = _NICKNAMES.get(expression.strip().lower(), expression).split()
    if len(fields) not in (5, 6):
        raise InvalidScheduleError(
            f"cron expression {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or 6 with seconds first, got {len(fields)}"
        )
    try:
        CronSim(" ".join(fields), _EPOCH_NAIVE)
    except CronSimError as exc:
        raise InvalidScheduleError(f"cron expression {expression!r}: {exc}") from None


@attrs.frozen(slots=True)
class CronTrigger(TriggerBase):
    """Fire whenever the wall clock in ``timezone`` matches a crontab ``expression``.

    Five fields (minute hour day-of-month month day-of-week) or six with seconds first, in the
    syntax of Debian cron as implemented by ``cronsim`` (ranges, steps, names, ``L``, ``LW``,
    ``5#2``, ...), plus the nicknames ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and
    ``@yearly``. Day-of-month and day-of-week combine with OR unless one starts with ``*``.

    Daylight saving (Vixie cron policy, also for six-field expressions):

    * *fixed-time* expressions (neither minute nor hour starts with ``*``) run a time inside the
      spring-forward gap once, right after the jump, and a time inside the repeated hour once,
      at its first occurrence;
    * *wildcard* expressions (minute or hour starts with ``*``) follow the wall clock: wall times
      in the gap never happen, and the repeated hour runs again.
    """

    expression: str = attrs.field(validator=_check_expression)
    timezone: _dt.tzinfo = attrs.field(default=_UTC, converter=_convert_zone)
    _fields: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    _fixed_time: bool = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        fields = tuple(_NICKNAMES.get(self.expression.strip().lower(), self.expression).split())
        minute, hour = fields[-5], fields[-4]
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(
            self, "_fixed_time", not minute.startswith("*") and not hour.startswith("*")
        )

    @property
    def fixed_time(self) -> bool:
        """Whether the fixed-time DST policy applies (neither minute nor hour starts with ``*``)."""
        return self._fixed_time

    @property
    def follows_wall_clock(self) -> bool:
        return not self._fixed_time

    def next_fire(self, after: Timestamp) -> Timestamp | None:
        local = _local(after, self.timezone)
        if local is None:
            return None
        threshold = max(after.micros_since_epoch, _EARLIEST_MICROS)  # as _local moved it
        try:
            if self._fixed_time:
                return self._next_fixed(local, threshold)
            return self._next_wildcard(local, threshold)
        except (StopIteration, OverflowError):  # cronsim gives up after 50 years without a match
            return None

    def _cronsim(self, start: _dt.datetime) -> CronSim:
        # cronsim's own DST fix-up applies only to 5-field expressions; we resolve fixed times
        # ourselves (for 6-field ones too), so it gets naive wall times or wildcard expressions.
        return CronSim(" ".join(self._fields), start)

    def _next_fixed(self, local: _dt.datetime, threshold: int) -> Timestamp | None:
        # Walk the matching wall times from the local wall time of ``after`` and resolve each
        # one; a wall time earlier than that cannot resolve to an instant after ``after``. A
        # candidate can fall behind (``after`` in the second pass of a fold): take the next one.
        for wall in self._cronsim(local.replace(tzinfo=None, fold=0)):
            fire = _resolve_fixed(wall, self.timezone)
            if fire > threshold:
                return _timestamp_or_none(fire)
        return None

    def _next_wildcard(self, local: _dt.datetime, threshold: int) -> Timestamp | None:
        # The clock shows every matching wall time at each instant it reads that way: none in a
        # gap, twice in a fold. Walking the matching wall times from the wall time of ``after``
        # and taking each one's first occurrence after ``after`` finds the next fire, except
        # for the second pass of a fold that starts soon after ``after``: its wall times are
        # behind the walk's start, so that pass is searched separately and the earlier wins.
        # (cronsim's own aware-datetime mode is not used: it jumps minutes through UTC by a
        # wall-clock delta and misses e.g. 02:30 after Lord Howe's 30-minute spring jump.)
        fire: int | None = None
        for wall in self._cronsim(local.replace(tzinfo=None, fold=0)):
            later = [m for m in _occurrences(wall, self.timezone) if m > threshold]
            if later:
                fire = later[0]
                break
        fall_back = _fall_back_ahead(threshold, self.timezone)
        if fall_back is not None:
            transition, offset = fall_back
            second_pass = _wall_at(transition, self.timezone)
            for wall in self._cronsim(second_pass - _dt.timedelta(seconds=1)):
                candidate = _naive_micros(wall) - offset
                if _wall_at(candidate, self.timezone) == wall and (
                    fire is None or candidate < fire
                ):
                    fire = candidate
                break
        return None if fire is None else _timestamp_or_none(fire)

    def initial_fire(self, created_at: Timestamp) -> Timestamp | None:
        return self.next_fire(created_at)

    def bind(self, created_at: Timestamp) -> CronTrigger:
        return self

    def to_schedule_at(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "cron",
            "expression": self.expression,
            "timezone": _zone_name(self.timezone),
        }

    def describe(self) -> str:
        return f"cron {self.expression!r} in {_zone_name(self.timezone)}"


# --- conversions --------------------------------------------------------------------------------


def trigger_from_schedule_at(schedule_at: ScheduleAt, created_at: Timestamp) -> Trigger:
    """The trigger with SpacetimeDB's meaning of ``schedule_at`` for a row created at
    ``created_at``: ``Time`` fires once, ``Interval`` every ``|interval|`` from creation."""
    if isinstance(schedule_at, ScheduleAt.Time):
        return OnceTrigger(schedule_at.value)
    if isinstance(schedule_at, ScheduleAt.Interval):
        return IntervalTrigger(schedule_at.value, anchor=created_at)
    raise InvalidScheduleError(
        f"expected ScheduleAt.Time or ScheduleAt.Interval, got {type(schedule_at).__name__}"
    )


def _field(data: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    if key not in data:
        if optional:
            return None
        raise InvalidScheduleError(f"trigger {data.get('type')!r}: missing field {key!r}")
    value = data[key]
    if value is None and optional:
        return None
    if type(value) is not kind:
        raise InvalidScheduleError(
            f"trigger {data.get('type')!r}: field {key!r} must be {kind.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def _timestamp_field(data: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    micros = _field(data, key, int, optional=optional)
    return None if micros is None else Timestamp(micros)


def trigger_from_dict(data: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from :meth:`Trigger.to_dict` output (for stores).

    Raises :class:`~spacetime_sched.InvalidScheduleError` naming the bad field.
    """
    if not isinstance(data, dict):
        raise InvalidScheduleError(f"trigger: expected a dict, got {type(data).__name__}")
    kind = data.get("type")
    if kind == "once":
        return OnceTrigger(_timestamp_field(data, "at"))
    if kind == "interval":
        return IntervalTrigger(
            TimeDuration(_field(data, "every", int)),
            _timestamp_field(data, "anchor", optional=True),
            start=_timestamp_field(data, "start", optional=True),
            end=_timestamp_field(data, "end", optional=True),
        )
    if kind == "daily":
        return DailyTrigger(
            _field(data, "hour", int),
            _field(data, "minute", int),
            _field(data, "second", int),
            _field(data, "timezone", str),
        )
    if kind == "cron":
        return CronTrigger(_field(data, "expression", str), _field(data, "timezone", str))
    raise InvalidScheduleError(
        f"trigger: unknown type {kind!r} (expected 'once', 'interval', 'daily' or 'cron')"
    )
