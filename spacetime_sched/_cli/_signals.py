"""Running a command on an event loop and stopping it on Ctrl-C or SIGTERM without a traceback.

A ``KeyboardInterrupt`` raised into a running event loop unwinds every task from wherever it
happened to be, and on asyncio the server's shutdown then prints pages of tracebacks. So the
commands never let one happen once they are running: :func:`run_command` opens a signal
receiver (``anyio.open_signal_receiver``) for SIGINT and SIGTERM before the command's body
starts, and turns the first signal into a :class:`StopRequest`:

* a *graceful* command (``run``, ``serve``) is told to stop (``await stop.wait()`` returns) and
  winds down on its own, draining running calls; a second signal cancels it outright;
* any other command (``demo``) is cancelled at once: the scopes it made with
  :meth:`StopRequest.cancel_scope` (or, if none, the whole command), which unwinds its
  ``async with`` blocks like any other cancellation. A command that hosts a local server makes
  its scope *inside* the server's block, so the server shuts down as on a normal exit (hypercorn
  on asyncio does not take cancellation of its serve task quietly); a second signal cancels
  everything.

Exit status: 130 (128 + SIGINT) after Ctrl-C, whatever the body returned; after SIGTERM the
body's own status for a graceful command (stopping is what SIGTERM asks for) and 143 for the
others. A Ctrl-C that arrives before the receiver is open (while Python is still importing)
is caught as ``KeyboardInterrupt`` and also gives 130.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.abc

__all__ = ["EXIT_INTERRUPTED", "StopRequest", "run_command"]

#: 128 + SIGINT, the shell's status for a command ended by Ctrl-C.
EXIT_INTERRUPTED: Final = 128 + signal.SIGINT
#: 128 + SIGTERM, for a command that was terminated rather than asked to stop.
EXIT_TERMINATED: Final = 128 + signal.SIGTERM

_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set when the user (Ctrl-C) or a service manager (SIGTERM) asks the command to stop."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        #: The first stop signal received, or ``None``.
        self.signum: int | None = None
        self._scopes: list[anyio.CancelScope] = []

    def cancel_scope(self) -> anyio.CancelScope:
        """A cancel scope that a stop request cancels (use it as ``with stop.cancel_scope():``
        around the part of a non-graceful command that should end on Ctrl-C)."""
        scope = anyio.CancelScope()
        self._scopes.append(scope)
        if self.requested:
            scope.cancel()
        return scope

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once a stop was requested."""
        await self._event.wait()

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self._event.set()


async def _watch_signals(
    stop: StopRequest,
    scope: anyio.CancelScope,
    graceful: bool,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    try:
        with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                first = not stop.requested
                stop.request(signum)
                if not first:  # a second signal while winding down forces the stop
                    scope.cancel()
                    return
                if not graceful:
                    for inner in stop._scopes or [scope]:
                        inner.cancel()
    except NotImplementedError:  # no signal receivers here (Windows): Ctrl-C still interrupts
        task_status.started()
        await anyio.sleep_forever()


def run_command(
    body: Callable[[StopRequest], Awaitable[int]],
    *,
    backend: str,
    graceful: bool,
) -> int:
    """Run ``body(stop)`` on ``backend`` and return the command's exit status (see above)."""
    stop = StopRequest()

    async def main() -> int:
        status = 0
        async with anyio.create_task_group() as tg:
            await tg.start(_watch_signals, stop, tg.cancel_scope, graceful)
            status = await body(stop)
            tg.cancel_scope.cancel()  # the watcher
        return status

    try:
        status = anyio.run(main, backend=backend)
    except KeyboardInterrupt:
        stop.request(signal.SIGINT)
        status = EXIT_INTERRUPTED
    if stop.signum == signal.SIGINT:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if stop.signum == signal.SIGTERM and not graceful:
        return EXIT_TERMINATED
    return status
