"""Schedules files of ``spacetime-sched run``: what they may say, and how a bad one is refused.

The whole file is checked before anything runs, and every problem is reported at once as
``FILE:LINE: KEY: ...``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from spacetime_sched import ScheduleFileError, TimeDuration, Timestamp
from spacetime_sched._cli._schedfile import load_schedules, parse_daily, parse_duration
from spacetime_sched.scheduler import (
    CronTrigger,
    DailyTrigger,
    IntervalTrigger,
    OnceTrigger,
    SchedulePolicy,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(ScheduleFileError) as info:
        load_schedules(path)
    assert info.value.path == str(path)
    return info.value.problems


def test_every_kind_of_schedule_and_policy(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [schedules.cleanup]
        reducer = "cleanup"
        args = [30, "old"]
        every = "1h30m"
        retries = 3
        backoff = "2s"
        timeout = "30s"
        misfire = "unlimited"
        coalesce = "all"
        overlap = "buffer_one"
        jitter = 1.5

        [schedules.report]
        reducer = "send_report"
        daily = "09:00"
        timezone = "America/New_York"

        [schedules."nightly job"]
        reducer = "compact"
        cron = "0 3 * * *"
        timezone = "Europe/Paris"
        misfire = "10m"

        [schedules.launch]
        reducer = "launch"
        at = 2025-06-01T12:00:00Z
        """,
    )
    cleanup, report, nightly, launch = load_schedules(path)
    assert (cleanup.name, cleanup.reducer, cleanup.args) == ("cleanup", "cleanup", (30, "old"))
    assert cleanup.trigger == IntervalTrigger(TimeDuration.from_minutes(90))
    assert SchedulePolicy(**cleanup.policy) == SchedulePolicy(
        max_retries=3,
        backoff_base=TimeDuration.from_seconds(2),
        timeout=TimeDuration.from_seconds(30),
        misfire_grace_time=None,
        coalesce="all",
        overlap="buffer_one",
        jitter=TimeDuration.from_millis(1500),
    )
    assert cleanup.line == 2
    assert report.trigger == DailyTrigger(9, 0, timezone="America/New_York")
    assert report.policy == {}
    assert nightly.name == "nightly job"
    assert nightly.trigger == CronTrigger("0 3 * * *", timezone="Europe/Paris")
    assert nightly.line == 19
    assert launch.trigger == OnceTrigger(Timestamp.parse("2025-06-01T12:00:00Z"))


def test_every_problem_is_reported_with_its_line_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [schedules.a]
        reducer = "tick"
        every = "5 parsecs"

        [schedules.b]
        reducer = "tick"
        daily = "25:00"
        timezone = "Mars/Olympus_Mons"
        retries = -1
        colour = "blue"

        [schedules.c]
        reducer = "tick"
        every = "1s"
        cron = "* * * * *"

        [schedules.d]
        args = [1]
        cron = "61 * * * *"
        """,
    )
    problems = _problems(path)
    assert problems == (
        f"{path}:4: schedules.a.every: expected a duration like '30s', '1h30m', '250ms' or a "
        "number of seconds, got '5 parsecs'",
        f"{path}:11: schedules.b.colour: unknown key; expected one of args, at, backoff, "
        "coalesce, cron, daily, every, jitter, misfire, overlap, reducer, retries, timeout, "
        "timezone",
        f"{path}:8: schedules.b.daily: expected a wall time 'HH:MM' or 'HH:MM:SS' (24-hour), "
        "got '25:00'",
        f"{path}:10: schedules.b.retries: expected a whole number of retries >= 0, got -1",
        f"{path}:13: schedules.c: expected exactly one of at / every / daily / cron, got "
        "every and cron",
        f"{path}:18: schedules.d: missing key 'reducer' (the reducer to call)",
        f"{path}:20: schedules.d.cron: cron expression '61 * * * *': Bad minute",
    )


def test_a_bad_time_zone_is_blamed_on_the_timezone_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [schedules.report]
        reducer = "r"
        daily = "09:00"
        timezone = "Mars/Olympus_Mons"
        """,
    )
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:5: schedules.report.timezone: 'Mars/Olympus_Mons' is not")


def test_a_time_zone_only_goes_with_daily_and_cron(tmp_path: Path) -> None:
    path = _write(tmp_path, '[schedules.x]\nreducer = "r"\nevery = 5\ntimezone = "Europe/Paris"\n')
    assert _problems(path) == (
        f"{path}:4: schedules.x.timezone: only daily and cron schedules have a time zone, "
        "not 'every'",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "{path}:1: schedules: no schedules: add at least one [schedules.NAME] table"),
        ('[schedules.x]\nreducer = "r"\nat = 2025-06-01T12:00:00\n', "with an offset"),
        ('[schedules.x]\nreducer = "r"\nevery = 0\n', "the interval must be positive"),
        ('[schedules.x]\nreducer = ""\nevery = 1\n', "schedules.x.reducer: expected"),
        ('[schedules.x]\nreducer = "r"\nargs = 5\nevery = 1\n', "schedules.x.args: expected"),
        ('[schedules.x]\nreducer = "r"\nevery = 1\noverlap = "queue"\n', "one of skip"),
        ('[schedules.x]\nreducer = "r"\nevery = 1\ntimeout = 0\n', "must be positive"),
        ('title = "mine"\n[schedules.x]\nreducer = "r"\nevery = 1\n', "title: unknown top"),
        ("[schedules.x\n", "invalid TOML: "),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    problems = _problems(path)
    assert len(problems) == 1
    assert message.format(path=path) in problems[0]


def test_toml_syntax_errors_keep_tomllibs_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path, '[schedules.x]\nreducer = "r"\nevery = \n')
    (problem,) = _problems(path)
    assert "(at line 3, column" in problem


def test_a_missing_or_huge_file_is_refused(tmp_path: Path) -> None:
    assert "cannot read" in _problems(tmp_path / "nope.toml")[0]
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (1 << 20) + b"\n")
    assert "larger than 1048576 bytes" in _problems(huge)[0]


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        (90, 90_000_000),
        (0.25, 250_000),
        ("30s", 30_000_000),
        ("1h30m", 5_400_000_000),
        ("250ms", 250_000),
        ("1.5d", 129_600_000_000),
        ("10us", 10),
        ("0.0000005s", 0),  # half a microsecond rounds to even: 0
        ("0.0000015s", 2),
    ],
)
def test_durations(value: object, micros: int) -> None:
    assert parse_duration(value).micros == micros


@pytest.mark.parametrize("value", ["", "5", "5 parsecs", "-1s", "1h 30", True, -1, [1], "x" * 100])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="expected a"):
        parse_duration(value)


def test_daily_times() -> None:
    assert parse_daily("9:05") == (9, 5, 0)
    assert parse_daily("23:59:59") == (23, 59, 59)
    for bad in ("24:00", "12:60", "12", "noon", 900):
        with pytest.raises(ValueError, match="HH:MM"):
            parse_daily(bad)
