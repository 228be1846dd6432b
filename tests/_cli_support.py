"""Running ``python -m spacetime_sched ...`` in a subprocess from an async test."""

from __future__ import annotations

import os
import signal
import sys
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
