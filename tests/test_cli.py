"""The ``spacetime-sched`` command: help, version, exit statuses, ``next``, ``reducers``, ``run``,
and Ctrl-C on every long-running command (exit status 130, no traceback, both backends).

Exit statuses (docs/cli.md): 0 success, 1 failure while running, 2 usage error, 130 Ctrl-C.
"""

from __future__ import annotations

import io
import json
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _cli_support import run_on_terminal, start

import spacetime_sched
from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched._cli import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from spacetime_sched._cli._next import next_fires
from spacetime_sched._cli._output import CLI_EXTRA, ScheduleBoard, load_rich
from spacetime_sched._cli._reducers import describe_reducers
from spacetime_sched._cli._run import UsageError, open_store, run_scheduler
from spacetime_sched._cli._schedfile import ScheduleEntry, load_schedules
from spacetime_sched._cli._signals import StopRequest
from spacetime_sched.client import DbConnection
from spacetime_sched.scheduler import CronTrigger, DailyTrigger, ReducerScheduler, SQLiteStore
from spacetime_sched.testing import LocalServer, RecordingTarget, VirtualClock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")

BACKENDS = ["asyncio", "trio"]
COMMANDS = ["run", "next", "reducers", "serve", "demo"]


def _lines(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


# --- help, version, exit statuses --------------------------------------------------------------


def test_exit_statuses_are_the_documented_ones() -> None:
    assert (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED) == (0, 1, 2, 130)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    for status in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert status in doc


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: spacetime-sched")
    for command in COMMANDS:
        assert f"    {command}" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"spacetime-sched {spacetime_sched.__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: spacetime-sched {command}")


@pytest.mark.parametrize(
    "argv", [["launch"], ["next", "-n", "0", "* * * * *"], ["run"], ["serve", "--backend", "x"]]
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


async def test_the_installed_command_runs_without_a_command() -> None:
    async with start([]) as command:
        assert await command.finish() == 0
    assert command.stdout.startswith(b"usage: spacetime-sched")


# --- next ---------------------------------------------------------------------------------------


def test_next_cron_across_the_spring_forward_gap(capsys: pytest.CaptureFixture[str]) -> None:
    # 02:30 does not exist in New York on 2025-03-09: a fixed-time cron job runs right after the
    # jump, at 03:00 EDT (the scheduler's Vixie cron rule), then at 02:30 again.
    argv = ["next", "30 2 * * *", "--tz", "America/New_York", "-n", "3"]
    assert main([*argv, "--after", "2025-03-08T12:00:00Z"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "cron '30 2 * * *' in America/New_York: the next 3 fire times after "
        "2025-03-08T12:00:00.000000Z",
        "  Sun 2025-03-09 03:00:00 EDT (-04:00)  =  2025-03-09T07:00:00.000000Z",
        "  Mon 2025-03-10 02:30:00 EDT (-04:00)  =  2025-03-10T06:30:00.000000Z",
        "  Tue 2025-03-11 02:30:00 EDT (-04:00)  =  2025-03-11T06:30:00.000000Z",
    ]


def test_next_daily_across_the_fall_back(capsys: pytest.CaptureFixture[str]) -> None:
    # 01:30 happens twice in New York on 2025-11-02: the daily schedule runs at the first.
    argv = ["next", "--daily", "01:30", "--tz", "America/New_York", "-n", "2"]
    assert main([*argv, "--after", "2025-11-01T12:00:00Z"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  Sun 2025-11-02 01:30:00 EDT (-04:00)  =  2025-11-02T05:30:00.000000Z",
        "  Mon 2025-11-03 01:30:00 EST (-05:00)  =  2025-11-03T06:30:00.000000Z",
    ]


def test_next_shows_what_the_scheduler_fires() -> None:
    # The command is the trigger's own initial_fire/next_fire, not a second implementation.
    trigger = CronTrigger("*/20 1-3 * * *", timezone="Europe/London")
    after = Timestamp.parse("2025-10-25T23:00:00Z")
    expected, t = [], trigger.initial_fire(after)
    while t is not None and len(expected) < 12:
        expected.append(t)
        t = trigger.next_fire(t)
    assert next_fires(trigger, after, 12) == expected
    once = next_fires(DailyTrigger(9, 0, timezone="UTC"), after, 1)
    assert once == [Timestamp.parse("2025-10-26T09:00:00Z")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["next"], "give either a cron EXPRESSION or --daily HH:MM"),
        (["next", "* * * * *", "--daily", "09:00"], "give either"),
        (["next", "61 * * * *"], "cron expression '61 * * * *'"),
        (["next", "--daily", "9am"], "expected a wall time 'HH:MM'"),
        (["next", "--daily", "09:00", "--tz", "Mars/Base"], "'Mars/Base' is not a known"),
        (["next", "* * * * *", "--after", "yesterday"], "yesterday"),
    ],
)
def test_next_refuses_bad_input_with_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


# --- reducers -----------------------------------------------------------------------------------


async def test_reducers_lists_callable_reducers_and_marks_scheduled_ones(
    db_connection: DbConnection,
) -> None:
    lines = describe_reducers(await db_connection.module_schema())
    assert "add_person(name: String)" in lines
    assert "add(a: u32, b: u32)" in lines
    assert "schedule_tick(label: String, at: ScheduleAt)" in lines
    (tick,) = [line for line in lines if line.startswith("tick(")]
    assert tick.endswith("  [scheduled by table tick_schedule]")
    # lifecycle reducers are nobody's to call
    assert not [line for line in lines if line.startswith(("init(", "client_connected("))]
    assert lines == sorted(lines)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the test's loop; the child's varies
@pytest.mark.parametrize("backend", BACKENDS)
async def test_reducers_command(local_server: LocalServer, backend: str) -> None:
    args = ["reducers", "--uri", local_server.uri, "--database", local_server.database]
    async with start([*args, "--backend", backend]) as command:
        assert await command.finish() == 0, command.stderr
    out = command.stdout.decode()
    assert out.startswith(f"7 reducers of 'quickstart' at {local_server.uri}:")
    assert "\n  add_person(name: String)\n" in out


async def test_reducers_of_an_unreachable_server_exit_1() -> None:
    args = ["reducers", "--uri", "http://127.0.0.1:9", "--database", "x"]
    async with start(args) as command:
        assert await command.finish() == EXIT_FAILURE
    assert b"ConnectError" in command.stderr
    assert b"Traceback" not in command.stderr


# --- run ----------------------------------------------------------------------------------------

SCHEDULES = """
[schedules.people]
reducer = "add_person"
args = ["Ada"]
every = "300ms"

[schedules.sums]
reducer = "add"
args = [20, 22]
cron = "* * * * * *"
timezone = "Europe/Paris"
retries = 1
timeout = "5s"
"""


@pytest.fixture
def schedules_file(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(textwrap.dedent(SCHEDULES), encoding="utf-8")
    return path


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("backend", "signum"), [(b, s) for b in BACKENDS for s in ("INT", "TERM")])
async def test_run_until_a_signal_then_drain(
    schedules_file: Path, backend: str, signum: str
) -> None:
    async with start(["run", str(schedules_file), "--backend", backend]) as command:
        await command.wait_for(b'"event": "ready"')
        await command.wait_for(b'"event": "fired"')
        status = await command.finish(getattr(signal, f"SIG{signum}"))
    assert status == (EXIT_INTERRUPTED if signum == "INT" else EXIT_OK), command.stderr
    assert b"Traceback" not in command.stderr
    events = _lines(command.stdout)
    ready = events[0]
    assert ready["event"] == "ready"
    assert [s["schedule"] for s in ready["schedules"]] == ["people", "sums"]
    fired = [e for e in events if e["event"] == "fired"]
    assert fired
    assert {e["reducer"] for e in fired} <= {"add_person", "add"}
    assert all(isinstance(e["lateness_us"], int) for e in fired)
    # Calls still running at the signal are drained: their "fired" may follow "stopping".
    names = [e["event"] for e in events]
    assert names[-1] == "stopped"
    assert "stopping" in names
    assert set(names[names.index("stopping") + 1 : -1]) <= {"fired"}
    assert events[-1]["runs"] == len(fired)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_run_against_a_server_named_by_uri(
    schedules_file: Path, local_server: LocalServer, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    args = ["run", str(schedules_file), "--uri", local_server.uri, "--database", "quickstart"]
    async with start([*args, "--store", f"sqlite:{db}", "--log-format", "json"]) as command:
        await command.wait_for(b'"reducer": "add_person", "fire_time"')
        assert await command.finish(signal.SIGTERM) == 0, command.stderr
    people = local_server.host.table("person").rows()
    assert people
    assert {row["name"] for row in people} == {"Ada"}
    assert db.exists()


def test_run_checks_the_whole_file_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[schedules.a]\nreducer = "r"\nevery = "soon"\n[schedules.b]\n', "utf-8")
    assert main(["run", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{path}:3: schedules.a.every: expected a duration" in err
    assert f"{path}:4: schedules.b: missing key 'reducer'" in err


async def test_run_checks_reducers_and_arguments_against_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(
        '[schedules.a]\nreducer = "nope"\nevery = 1\n'
        '[schedules.b]\nreducer = "add"\nargs = [1]\nevery = 1\n',
        "utf-8",
    )
    async with start(["run", str(path)]) as command:
        assert await command.finish() == EXIT_USAGE
    err = command.stderr.decode()
    assert f"{path}:1: schedules.a: " in err
    assert "'nope'" in err
    assert f"{path}:4: schedules.b: " in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--uri", "http://127.0.0.1:9"], "--uri needs --database NAME"),
        (["--store", "redis://x"], "expected sqlite:PATH or postgresql://"),
        (["--store", "postgresql://db/x"], "PostgreSQL store not available"),
    ],
)
def test_run_option_errors_exit_2(
    schedules_file: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "postgresql" in argv[-1]:
        import spacetime_sched.scheduler as scheduler

        if hasattr(scheduler, "PostgresStore"):
            pytest.skip("this build has the PostgreSQL store")
    assert main(["run", str(schedules_file), *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:{tmp_path / 'a.db'}"), SQLiteStore)
    with pytest.raises(UsageError, match="needs a file path"):
        open_store("sqlite:")


# --- the live table -----------------------------------------------------------------------------


async def test_the_live_table_shows_each_schedule(
    virtual_clock: VirtualClock, recording_target: RecordingTarget
) -> None:
    from rich.console import Console

    recording_target.fail("fail", RuntimeError("no"))
    async with ReducerScheduler(recording_target, clock=virtual_clock) as scheduler:
        board = ScheduleBoard(scheduler, {"a": "every minute"}, title="t", zone=None)
        scheduler.add_execution_callback(board.record)
        scheduler.schedule_at_interval("sync", (), 60.0, schedule_id="a")
        scheduler.schedule_cron("fail", (), "30 * * * *", schedule_id="b")
        await virtual_clock.advance(TimeDuration.from_hours(1))
        out = io.StringIO()
        Console(file=out, width=200).print(board.render())
        rows = {row[0]: row for row in board.rows()}
    every = f"every {TimeDuration.from_minutes(1).format_human_readable()}"
    assert rows["every minute"][1:3] == ("sync", every)
    assert rows["every minute"][5:7] == ("60", "0")
    assert rows["every minute"][4] == "2025-01-01 01:01:00 UTC"
    assert rows["b"][5:7] == ("0", "1")
    text = out.getvalue()
    for header in ("schedule", "next fire (local)", "runs", "failures", "last lateness"):
        assert header in text
    assert "every minute" in text


def test_without_rich_the_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.live", None)
    with pytest.raises(ImportError) as info:
        load_rich()
    assert CLI_EXTRA in str(info.value)
    assert "pip install 'spacetime-sched[cli]'" in str(info.value)


# --- Ctrl-C on the long-running commands ---------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_ctrl_c_on_the_demo(backend: str) -> None:
    async with start(["demo", "--backend", backend]) as command:
        await command.wait_for(b"== Watching")
        status = await command.finish(signal.SIGINT)
    assert status == EXIT_INTERRUPTED
    assert b"Traceback" not in command.stderr, command.stderr.decode()
    assert command.stderr.strip() == b"interrupted"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_ctrl_c_on_serve(backend: str) -> None:
    async with start(["serve", "--port", "0", "--backend", backend]) as command:
        await command.wait_for(b"Press Ctrl-C")
        status = await command.finish(signal.SIGINT)
    assert status == EXIT_INTERRUPTED
    assert b"Traceback" not in command.stderr, command.stderr.decode()
    assert b"Stopping." in command.stdout


ON_A_TERMINAL = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pty")


@ON_A_TERMINAL
def test_run_on_a_terminal_shows_the_live_table(schedules_file: Path) -> None:
    # Wait for a redraw with a run of the 300 ms schedule: its last lateness is shown.
    ready = rb"people .*every 300.* [0-9.]+(us|ms|s) "
    status, text, stderr = run_on_terminal(["run", str(schedules_file)], ready, signal.SIGINT)
    assert status == EXIT_INTERRUPTED, stderr
    assert b"Traceback" not in stderr
    for header in ("schedule", "next fire (local)", "runs", "failures", "last lateness"):
        assert header in text
    assert "Stopping: draining running calls." in text
    assert '{"event"' not in text  # no JSON lines on a terminal


@ON_A_TERMINAL
def test_the_demo_on_a_terminal_shows_the_same_table_and_keeps_its_checks() -> None:
    status, text, stderr = run_on_terminal(["demo", "--duration", "3"], rb"\$^", None)
    assert status == 0, text
    assert b"Traceback" not in stderr
    for header in ("client schedules", "next fire (local)", "runs", "failures", "last lateness"):
        assert header in text
    assert "every second" in text
    assert "demo OK: all 13 checks passed" in text


async def test_with_a_store_the_file_is_the_truth(
    tmp_path: Path, recording_target: RecordingTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stored schedule the file still describes is kept as it was (its planned fire too); a
    # changed one is replaced; one the file no longer names is cancelled.
    def entries(text: str) -> list[ScheduleEntry]:
        path = tmp_path / "schedules.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_schedules(path)

    first = entries(
        """
        [schedules.keep]
        reducer = "a"
        every = "1h"
        retries = 2
        [schedules.change]
        reducer = "b"
        args = [1]
        daily = "09:00"
        [schedules.drop]
        reducer = "c"
        cron = "0 * * * *"
        """
    )
    second = entries(
        """
        [schedules.keep]
        reducer = "a"
        every = "1h"
        retries = 2
        [schedules.change]
        reducer = "b"
        args = [2]
        daily = "09:00"
        """
    )
    db = tmp_path / "store.db"
    planned: dict[str, Any] = {}
    for run_entries in (first, second):
        stop = StopRequest()
        stop.request(signal.SIGTERM)  # stop as soon as the schedules are in place
        scheduler = ReducerScheduler(recording_target, store=SQLiteStore(db))
        await run_scheduler(scheduler, run_entries, False, stop, "test")
        if not planned:
            planned = {s.id: s.next_run for s in scheduler.list_schedules()}
        else:
            states = {s.id: s for s in scheduler.list_schedules()}
    assert states["keep"].next_run == planned["keep"]
    assert states["keep"].created_micros < states["change"].created_micros
    assert states["change"].args == (2,)
    assert states["drop"].status.value == "cancelled"
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events == ["ready", "stopping", "stopped"] * 2
