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
Cancellation works as with any wait: a cancelled caller stops waiting, its parking is then
:meth:`~Parking.done`, and the waker leaves it alone. :func:`parking_clock` is the same
backend's clock, looked up once, for the deadlines of those waits.
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
    """One task waiting to be woken once (``await parking``): the part of an
    ``asyncio.Future[None]`` that a waiter uses, which is what it is on asyncio."""

    def done(self) -> bool:
        """Woken already, or its waiter was cancelled: :meth:`set_result` must not be called."""
        ...

    def set_result(self, result: None, /) -> None:
        """Wake the waiting task; before it waits: let its wait return at once (without
        yielding to the event loop). Call once, and only while not :meth:`done`."""

    def __await__(self) -> Generator[Any, None, None]:
        """Wait until :meth:`set_result` (at most one task may wait)."""
        ...


class _TrioParking:
    # Made only under trio (trio is an optional dependency: imported when first needed).
    __slots__ = ("_cancelled", "_task", "_woken")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._woken = False
        self._cancelled = False

    def done(self) -> bool:
        return self._woken or self._cancelled

    def set_result(self, result: None, /) -> None:
        self._woken = True
        task = self._task
        if task is not None:
            self._task = None
            _trio.lowlevel.reschedule(task)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        # Cancelled while parked: forget the task, so that it is not rescheduled later.
        self._task = None
        self._cancelled = True
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
        # A bare future of the running loop (made in C; no wrapper object).
        return asyncio.get_running_loop().create_future
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
