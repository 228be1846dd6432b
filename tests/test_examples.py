"""The examples and the demo are part of the product: they must run and say they worked.

Every script in ``examples/`` runs as its own process (the way a user runs it) against the local
server, with a deadline, and must exit 0 and print its closing line; so must the README's first
command, ``python -m spacetime_sched demo``. The demo also runs in-process on each backend and
must report every one of its checks as passed, and fail plainly when it cannot run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spacetime_sched import Identity
from spacetime_sched._cli._demo import DemoReport, add_arguments, main, run_demo

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"

#: script -> a line it prints only when everything in it worked
EXAMPLES = {
    "time_and_codec.py": "time types and codecs: round trips OK",
    "quickstart_asyncio.py": "quickstart (asyncio): OK",
    "quickstart_trio.py": "quickstart (trio): OK",
    "scheduler_standalone.py": "scheduler standalone: OK",
    "virtual_clock.py": "executions, all on time; virtual clock: OK",
    "server_side_schedules.py": "server-side schedules: OK",
    "client_side_schedules.py": "client-side schedules: OK",
    "own_module_tests.py": "own module tests: 4 passed",
}

#: The README's first command, as a user runs it (on trio, to cover that from the CLI too).
DEMO_COMMAND = ["-m", "spacetime_sched", "demo", "--duration", "3", "--backend", "trio"]

#: Generous: the machine is shared; a healthy run of any example takes a few seconds.
EXAMPLE_TIMEOUT = 90.0


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACETIMEDB_")}
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=EXAMPLES_DIR,
    )


def _finish(name: str, proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=EXAMPLE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"{name} still running after {EXAMPLE_TIMEOUT} s:\n{stdout}\n{stderr}")


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Start every example and the demo command at once (they mostly wait on timers), each as
    its own process, the way a user runs it; each test then waits for its own."""
    procs = {script: _start([str(EXAMPLES_DIR / script)]) for script in sorted(EXAMPLES)}
    procs["demo"] = _start(DEMO_COMMAND)
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES_DIR.glob("*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs(script: str, runs: dict[str, subprocess.Popen[str]]) -> None:
    stdout, stderr = _finish(script, runs[script])
    output = f"--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert runs[script].returncode == 0, output
    assert EXAMPLES[script] in stdout, output


def test_demo_command_exits_0(runs: dict[str, subprocess.Popen[str]]) -> None:
    stdout, stderr = _finish("the demo command", runs["demo"])
    output = f"--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert runs["demo"].returncode == 0, output
    assert "== Connect (trio) ==" in stdout, output
    assert "demo OK: all 13 checks passed" in stdout, output


# --- the demo -------------------------------------------------------------------------------

DEMO_CHECKS = {
    "direct call committed",
    "arguments checked against the schema",
    "daily schedule is DST-correct",
    "server interval cancelled",
    "client one-shot ran once",
    "client interval repeated",
    "client cron repeated",
    "failing schedule retried, then failed",
    "event rows arrived through the subscription",
    "server interval schedule fired repeatedly",
    "server one-shot schedule fired once",
    "statistics add up",
    "fires started on time",
}


async def test_demo_passes_every_check(anyio_backend: str) -> None:
    lines: list[str] = []
    report = await run_demo(duration=3.0, out=lines.append)
    transcript = "\n".join(lines)

    assert isinstance(report, DemoReport)
    assert report.error is None, transcript
    assert report.failed == [], transcript
    assert report.ok
    assert {c.name for c in report.checks} == DEMO_CHECKS
    assert report.backend == anyio_backend
    assert isinstance(report.identity, Identity)
    assert report.uri is not None
    assert report.uri.startswith("http://")
    # What it narrated, it saw: the rows and the statistics are in the report too.
    assert any(row["name"] == "one-shot" for row in report.events)
    assert {row["label"] for row in report.ticks} == {"server every second", "server once"}
    assert report.stats["failed_executions"] == 3
    assert report.stats["retried_executions"] == 2
    assert 0 < report.stats["success_rate"] < 1
    assert "lateness p50" in transcript
    assert lines[-1].startswith("demo OK: all 13 checks passed")
    assert report.elapsed < 10


async def test_demo_reports_an_unreachable_server() -> None:
    lines: list[str] = []
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused at once.
    report = await run_demo(duration=3.0, out=lines.append, uri="http://127.0.0.1:9")
    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("ConnectError")
    assert report.checks == ()
    assert "could not finish" in "\n".join(lines)


def test_demo_main_exit_status_is_1_when_the_demo_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--uri", "http://127.0.0.1:9", "--duration", "3"]) == 1
    assert "The demo could not finish: ConnectError" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "1"], "must be at least 3 seconds"),
        (["--duration", "soon"], "expected a number of seconds"),
        (["--backend", "curio"], "invalid choice: 'curio'"),
    ],
)
def test_demo_main_rejects_bad_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


async def test_run_demo_rejects_a_short_duration() -> None:
    with pytest.raises(ValueError, match=r"at least 3\.0 s"):
        await run_demo(duration=1.0)


def test_demo_options_fit_a_cli_subcommand() -> None:
    # How cli.py wires `demo`: a subparser given the demo's own options.
    parser = argparse.ArgumentParser(prog="spacetime-sched")
    demo = parser.add_subparsers(dest="command").add_parser("demo")
    add_arguments(demo)
    args = parser.parse_args(["demo", "--backend", "trio", "--duration", "4", "--uri", "x"])
    assert (args.backend, args.duration, args.uri, args.database) == (
        "trio",
        4.0,
        "x",
        "quickstart",
    )


async def test_demo_without_the_server_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "hypercorn" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    lines: list[str] = []
    report = await run_demo(duration=3.0, out=lines.append)
    assert not report.ok
    assert report.error is not None
    assert "needs hypercorn" in report.error
    assert "pip install 'spacetime-sched[server]', or pass --uri" in report.error
