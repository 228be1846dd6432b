"""Schedules files for ``spacetime-sched run``: TOML in, checked schedules out.

The format (docs/cli.md has the full reference)::

    [schedules.cleanup]               # the schedule's name (its id in a store)
    reducer = "cleanup"
    args = [30]                       # the reducer's arguments, in order (default none)
    every = "5m"                      # exactly one of: at / every / daily / cron
    retries = 3                       # the policies, all optional
    timeout = "30s"
    misfire = "1m"                    # or "unlimited"
    coalesce = "latest"               # latest | earliest | all
    overlap = "skip"                  # skip | buffer_one | allow_all
    jitter = "2s"

    [schedules.report]
    reducer = "send_report"
    daily = "09:00"                   # HH:MM or HH:MM:SS wall time ...
    timezone = "America/New_York"     # ... in this zone (default UTC; also for cron)

The whole file is checked before anything runs; every problem is reported, as
``FILE:LINE: KEY: what is wrong``, in one :class:`~spacetime_sched.ScheduleFileError`.

Line numbers: :mod:`tomllib` reports them for syntax errors only, not for the keys of a parsed
document, so :class:`_Lines` finds them with a small scan of the source: the line of the
table header ``[schedules.NAME]`` (quoted names too), then the first line in that table that
starts with ``KEY =``. A key written another way (an inline table, a dotted key) is reported
at its table's header line, or at line 1 if no header matches.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs

from .._errors import ScheduleFileError, SpacetimeSchedError
from .._time import TimeDuration, Timestamp
from ..scheduler import (
    CronTrigger,
    DailyTrigger,
    IntervalTrigger,
    OnceTrigger,
    SchedulePolicy,
    Trigger,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (3.10)
    import tomli as tomllib

__all__ = ["ScheduleEntry", "load_schedules", "parse_daily", "parse_duration"]

#: Bounds on the input: a schedules file is written by hand, so these are generous.
MAX_FILE_BYTES: Final = 1 << 20
MAX_SCHEDULES: Final = 10_000

_TRIGGER_KEYS: Final = ("at", "every", "daily", "cron")
#: Schedule keys -> SchedulePolicy fields.
_POLICY_KEYS: Final = {
    "retries": "max_retries",
    "backoff": "backoff_base",
    "timeout": "timeout",
    "misfire": "misfire_grace_time",
    "coalesce": "coalesce",
    "overlap": "overlap",
    "jitter": "jitter",
}
_KNOWN_KEYS: Final = frozenset({"reducer", "args", "timezone", *_TRIGGER_KEYS, *_POLICY_KEYS})
_UNLIMITED: Final = "unlimited"

_UNITS: Final = {
    "us": TimeDuration.from_micros,
    "µs": TimeDuration.from_micros,
    "ms": TimeDuration.from_millis,
    "s": TimeDuration.from_seconds,
    "m": TimeDuration.from_minutes,
    "h": TimeDuration.from_hours,
    "d": TimeDuration.from_days,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h|d)")
_DAILY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", re.ASCII)


@attrs.frozen
class ScheduleEntry:
    """One checked schedule of the file: ``name`` (its ``[schedules.NAME]``), the reducer and
    its arguments, the trigger, the :class:`SchedulePolicy` keywords, and its header's line."""

    name: str
    reducer: str
    args: tuple[Any, ...]
    trigger: Trigger
    policy: Mapping[str, Any]
    line: int


def parse_duration(value: object) -> TimeDuration:
    """A non-negative duration from seconds (an int or float) or a string of number-unit
    parts: ``"90s"``, ``"1h30m"``, ``"250ms"``, ``"1.5d"`` (units us, ms, s, m, h, d). Each
    part is rounded to the nearest microsecond, ties to even (exact decimal arithmetic).
    Raises ``ValueError`` saying what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or a number of seconds, got {value!r}")
    if isinstance(value, (int, float)):
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"expected a non-negative number of seconds, got {value!r}")
        return TimeDuration.from_seconds(value)
    if isinstance(value, str) and 0 < len(value) <= 64:
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text.replace(" ", ""):
            total = TimeDuration(0)
            for number, unit in parts:
                total += _UNITS[unit](Decimal(number))
            return total
    raise ValueError(
        f"expected a duration like '30s', '1h30m', '250ms' or a number of seconds, got {value!r}"
    )


def parse_daily(text: object) -> tuple[int, int, int]:
    """``(hour, minute, second)`` from ``"HH:MM"`` or ``"HH:MM:SS"`` (24-hour clock)."""
    match = _DAILY.fullmatch(text) if isinstance(text, str) else None
    if match is not None:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour < 24 and minute < 60 and second < 60:
            return hour, minute, second
    raise ValueError(f"expected a wall time 'HH:MM' or 'HH:MM:SS' (24-hour), got {text!r}")


class _Lines:
    """Where a table or key is written in the source (see the module docstring)."""

    def __init__(self, source: str) -> None:
        self._lines = source.splitlines()

    def table(self, name: str) -> int:
        quoted = re.escape(name)
        header = re.compile(
            rf"\s*\[\s*schedules\s*\.\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*\]\s*(#.*)?"
        )
        for number, line in enumerate(self._lines, 1):
            if header.fullmatch(line):
                return number
        return 1

    def key(self, table: str, key: str) -> int:
        start = self.table(table)
        pattern = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for number in range(start + 1, len(self._lines) + 1):
            line = self._lines[number - 1]
            if line.lstrip().startswith("["):
                break
            if pattern.match(line):
                return number
        return start


class _Checker:
    """Collects every problem of one file, with its line."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.lines = _Lines(source)
        self.problems: list[str] = []

    def problem(self, line: int, key: str, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {key}: {message}")

    def entry(self, name: str, table: object) -> ScheduleEntry | None:
        where = f"schedules.{name}"
        header = self.lines.table(name)
        if not isinstance(table, dict):
            self.problem(header, where, "expected a table of schedule settings")
            return None
        count = len(self.problems)

        def bad(key: str, message: str) -> None:
            self.problem(self.lines.key(name, key), f"{where}.{key}", message)

        for key in table:
            if key not in _KNOWN_KEYS:
                bad(key, f"unknown key; expected one of {', '.join(sorted(_KNOWN_KEYS))}")
        reducer = table.get("reducer")
        if not isinstance(reducer, str) or not reducer:
            if "reducer" in table:
                bad("reducer", f"expected the reducer's name, a non-empty string, got {reducer!r}")
            else:
                self.problem(header, where, "missing key 'reducer' (the reducer to call)")
        args = table.get("args", [])
        if not isinstance(args, list):
            bad("args", f"expected an array of the reducer's arguments, got {args!r}")
            args = []
        trigger = self.trigger(name, table, bad, header)
        policy: dict[str, Any] = {}
        for key, field in _POLICY_KEYS.items():
            if key in table:
                try:
                    policy[field] = self.policy_value(key, table[key])
                except ValueError as exc:
                    bad(key, str(exc))
        if len(self.problems) > count:
            return None
        try:
            SchedulePolicy(**policy)
        except SpacetimeSchedError as exc:  # a rule across fields, or one the parser let by
            self.problem(header, where, str(exc))
            return None
        assert isinstance(reducer, str)
        assert trigger is not None
        return ScheduleEntry(name, reducer, tuple(args), trigger, policy, header)

    def trigger(
        self, name: str, table: dict[str, Any], bad: Callable[[str, str], None], header: int
    ) -> Trigger | None:
        given = [key for key in _TRIGGER_KEYS if key in table]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            self.problem(
                header,
                f"schedules.{name}",
                f"expected exactly one of at / every / daily / cron, got {what}",
            )
            return None
        (key,) = given
        value = table[key]
        zone = table.get("timezone", "UTC")
        if "timezone" in table and key in ("at", "every"):
            bad("timezone", f"only daily and cron schedules have a time zone, not {key!r}")
            return None
        try:
            if key == "at":
                return OnceTrigger(_timestamp(value))
            if key == "every":
                every = parse_duration(value)
                if not every:
                    raise ValueError("the interval must be positive, got 0")
                return IntervalTrigger(every)
            if key == "daily":
                hour, minute, second = parse_daily(value)
                return DailyTrigger(hour, minute, second, timezone=zone)
            if not isinstance(value, str):
                raise ValueError(f"expected a crontab expression string, got {value!r}")
            return CronTrigger(value, timezone=zone)
        except (ValueError, SpacetimeSchedError) as exc:
            message = str(exc)
            blame = "timezone" if message.startswith("timezone:") else key
            bad(blame, message.removeprefix("timezone: "))
            return None

    @staticmethod
    def policy_value(key: str, value: object) -> object:
        if key == "retries":
            if type(value) is not int or value < 0:
                raise ValueError(f"expected a whole number of retries >= 0, got {value!r}")
            return value
        if key in ("coalesce", "overlap"):
            choices = ("latest", "earliest", "all") if key == "coalesce" else _OVERLAPS
            if value not in choices:
                raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
            return value
        if key == "misfire" and value == _UNLIMITED:
            return None
        duration = parse_duration(value)
        if key in ("timeout", "backoff") and not duration:
            raise ValueError(f"must be positive, got {value!r}")
        return duration


_OVERLAPS: Final = ("skip", "buffer_one", "allow_all")


def _timestamp(value: object) -> Timestamp:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError(
                f"expected a date-time with an offset (e.g. 2025-06-01T12:00:00Z), got {value}"
            )
        return Timestamp.from_datetime(value)
    if isinstance(value, str):
        return Timestamp.parse(value)
    raise ValueError(f"expected a date-time like 2025-06-01T12:00:00Z, got {value!r}")


def load_schedules(path: str | Path) -> list[ScheduleEntry]:
    """Read and check a schedules file; raise :class:`~spacetime_sched.ScheduleFileError`
    listing every problem (unreadable file, TOML syntax, unknown or invalid keys)."""
    shown = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScheduleFileError(shown, [f"{shown}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScheduleFileError(shown, [f"{shown}: larger than {MAX_FILE_BYTES} bytes"])
    try:
        source = data.decode("utf-8")
        document = tomllib.loads(source)
    except UnicodeDecodeError as exc:
        raise ScheduleFileError(shown, [f"{shown}: not UTF-8 text: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:  # its message says "(at line L, column C)"
        raise ScheduleFileError(shown, [f"{shown}: invalid TOML: {exc}"]) from None
    checker = _Checker(shown, source)
    for key in document:
        if key != "schedules":
            checker.problem(1, key, "unknown top-level key; schedules go in [schedules.NAME]")
    schedules = document.get("schedules")
    if not isinstance(schedules, dict) or not schedules:
        checker.problem(1, "schedules", "no schedules: add at least one [schedules.NAME] table")
        schedules = {}
    if len(schedules) > MAX_SCHEDULES:
        checker.problem(1, "schedules", f"more than {MAX_SCHEDULES} schedules")
        schedules = {}
    entries = [checker.entry(name, table) for name, table in schedules.items()]
    if checker.problems:
        raise ScheduleFileError(shown, checker.problems)
    return [e for e in entries if e is not None]
