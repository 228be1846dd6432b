"""Park a task until it is woken once: the cheapest such wait each backend offers.

Every call waits for its answer, so with a thousand calls in flight the wait itself is on the
hot path. A fresh ``anyio.Event`` per call was nearly half of the client's CPU time per call on
asyncio: anyio looks up the backend (sniffio) to make one, wraps an ``asyncio.Event``, whose
first wait binds it to the loop (``_get_loop``) and makes a future, and whose ``set`` goes
through ``call_soon``. What a call needs is less: one task parks, one wake-up. On asyncio that
is a bare future of the running loop; on trio, ``trio.lowlevel.wait_task_rescheduled`` and
``reschedule``, exactly what ``trio.Event`` does underneath minus its bookkeeping for many
waiters.

This module is the one place that knows both: :func:`parking_factory` picks the kind once (per
connection; see :class:`~._calls.PendingRequests`) and everything else sees a :class:`Parking`.
Cancellation works as with any wait: a cancelled caller stops waiting, and a later
:meth:`Parking.wake` is a no-op. :func:`parking_clock` is the same backend's clock, looked up
once, for the deadlines of those waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

from .._backend import current_backend

if TYPE_CHECKING:
    import trio

__all__ = ["Parking", "parking_clock", "parking_factory"]


class Parking(Protocol):
    """One task waiting to be woken once (``await parking``)."""

    def wake(self) -> None:
        """Let the waiting task go on; before it waits: let its wait return at once. Only the
        first call counts."""

    def __await__(self) -> Generator[Any, None, None]:
        """Wait until :meth:`wake` (at most one task may wait)."""
        ...


class _AsyncioParking:
    __slots__ = ("_future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future: asyncio.Future[None] = loop.create_future()

    def wake(self) -> None:
        future = self._future
        if not future.done():  # done: woken already, or its waiter was cancelled
            future.set_result(None)

    def __await__(self) -> Generator[Any, None, None]:
        # A future already done still suspends once (yielding to the loop), like a checkpoint.
        return self._future.__await__()


class _TrioParking:
    # Made only under trio (trio is an optional dependency: imported when first needed).
    __slots__ = ("_task", "_woken")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._woken = False

    def wake(self) -> None:
        if self._woken:
            return
        self._woken = True
        task = self._task
        if task is not None:
            self._task = None
            _trio.lowlevel.reschedule(task)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        # Cancelled while parked: forget the task, so that a later wake() leaves it alone.
        self._task = None
        succeeded: trio.lowlevel.Abort = _trio.lowlevel.Abort.SUCCEEDED
        return succeeded

    def __await__(self) -> Generator[Any, None, None]:
        # Runs when the task awaits (inside it), so current_task() is the waiter; no coroutine
        # of our own around trio's.
        lowlevel = _trio.lowlevel
        if self._woken:
            return lowlevel.checkpoint().__await__()  # type: ignore[no-any-return]
        self._task = lowlevel.current_task()
        return lowlevel.wait_task_rescheduled(self._abort).__await__()  # type: ignore[no-any-return]


def parking_factory() -> Callable[[], Parking]:
    """How to make a :class:`Parking` for the async library running the caller (call it from
    async code; the result is valid for the life of that event loop)."""
    if current_backend() == "asyncio":
        loop = asyncio.get_running_loop()
        return lambda: _AsyncioParking(loop)
    _import_trio()
    return _TrioParking


def parking_clock() -> Callable[[], float]:
    """The running async library's clock (``anyio.current_time()`` without looking the library
    up at every read): seconds, for deadlines of parked waits."""
    if current_backend() == "asyncio":
        return asyncio.get_running_loop().time
    clock: Callable[[], float] = _import_trio().current_time
    return clock


_trio: Any = None


def _import_trio() -> Any:
    global _trio  # one lazy import of an optional dependency
    if _trio is None:
        import trio

        _trio = trio
    return _trio
