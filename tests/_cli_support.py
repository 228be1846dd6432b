"""Running ``python -m spacetime_sched ...`` in a subprocess from an async test."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc

COMMAND = [sys.executable, "-m", "spacetime_sched"]


class Command:
    """A running command: read its output until a line appears, signal it, collect the rest."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.stdout = b""
        self.stderr = b""

    async def wait_for(self, text: bytes, seconds: float = 30) -> None:
        assert self.process.stdout is not None
        with anyio.fail_after(seconds):
            while text not in self.stdout:
                chunk = await self.process.stdout.receive()
                self.stdout += chunk

    async def finish(self, signum: int | None = None, seconds: float = 30) -> int:
        """Send ``signum`` (if any), read everything left, return the exit status."""
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        if signum is not None:
            self.process.send_signal(signal.Signals(signum))
        with anyio.fail_after(seconds):
            async with anyio.create_task_group() as tg:

                async def drain_stderr() -> None:
                    assert self.process.stderr is not None
                    async for chunk in self.process.stderr:
                        self.stderr += chunk

                tg.start_soon(drain_stderr)
                async for chunk in self.process.stdout:
                    self.stdout += chunk
            return await self.process.wait()


@asynccontextmanager
async def start(args: Sequence[str], env: dict[str, str] | None = None) -> AsyncIterator[Command]:
    """Start ``spacetime-sched ARGS``; kill it if the test leaves early."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    async with await anyio.open_process([*COMMAND, *args], env=full_env) as process:
        command = Command(process)
        try:
            yield command
        finally:
            if process.returncode is None:
                process.kill()


def run_on_terminal(
    args: Sequence[str], ready: bytes, signum: int | None, seconds: float = 60
) -> tuple[int, str, bytes]:
    """Run ``spacetime-sched ARGS`` on a pseudo-terminal (Linux): wait until its output matches
    the regex ``ready``, send ``signum`` (if any), and return (status, terminal text, stderr)."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"}
    process = subprocess.Popen(
        [*COMMAND, *args], stdin=follower, stdout=follower, stderr=subprocess.PIPE, env=env
    )
    os.close(follower)
    seen, deadline = b"", time.monotonic() + seconds

    def read(wait: float) -> bool:
        nonlocal seen
        if select.select([leader], [], [], wait)[0]:
            try:
                seen += os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                return False
        return True

    try:
        while not re.search(ready, seen) and time.monotonic() < deadline and read(0.5):
            pass
        if signum is not None:
            process.send_signal(signum)
        while process.poll() is None and time.monotonic() < deadline and read(0.2):
            pass
        while read(0):  # what is left in the terminal's buffer
            if not select.select([leader], [], [], 0)[0]:
                break
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert process.stderr is not None
    return status, seen.decode(errors="replace"), process.stderr.read()
