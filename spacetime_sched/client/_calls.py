"""Request-id correlation: match each server answer to the call that is waiting for it.

One counter numbers every request of a connection (reducer and procedure calls, queries,
subscribes), as the TypeScript SDK does; the server echoes the id in its answer. A waiter is
registered *before* the request is sent, so an answer can never arrive unexpected, and it is
removed when the caller stops waiting for any reason (answer, timeout, cancellation), so
nothing is left behind.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import anyio

from .._deadlines import DeadlineHeap
from .._errors import ArgumentError, CallTimeoutError, ConnectionClosedError, ConnectionLostError

__all__ = ["PendingRequests", "Waiter", "check_timeout"]

_U32_MASK: Final = 0xFFFF_FFFF

# Stale deadline entries (calls answered long before their deadline) are swept out once there
# are more than this many and they are most of the heap, so it stays proportional to the backlog.
_COMPACT_SLACK: Final = 1024

# A deadline entry: (deadline in anyio.current_time() seconds, tie-breaker, timeout, waiter).
_Deadline = tuple[float, int, float, "Waiter"]


def check_timeout(timeout: object, what: str) -> float | None:
    """A call's ``timeout`` as seconds (``None``: wait for ever), or :class:`ArgumentError`.

    Checked at the call, before anything is sent: a NaN, a negative number or a string would
    otherwise reach the connection's one timeout task and break the whole connection.
    ``0`` is allowed (fail at once unless the answer is already there); ``math.inf`` is
    ``None``.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ArgumentError(f"{what}: timeout: expected seconds or None, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ArgumentError(f"{what}: timeout: expected seconds >= 0, got {timeout!r}")
    return None if timeout == math.inf else float(timeout)


class Waiter:
    """One outstanding request: set once with the server's answer or with a failure."""

    __slots__ = (
        "_error",
        "_event",
        "_live",
        "_lost",
        "_owner",
        "_queued",
        "_result",
        "_timed_out",
        "what",
    )

    def __init__(self, what: str, owner: PendingRequests) -> None:
        self.what = what
        self._owner = owner
        self._event = anyio.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._timed_out: float | None = None
        self._live = True
        self._lost = False  # the request went out on a session that dropped before the answer
        self._queued = False  # a deadline entry of ours is in the owner's heap

    def set_result(self, result: Any) -> None:
        if not self._event.is_set():
            self._result = result
            self._event.set()

    def set_closed(self, reason: BaseException | None) -> None:
        if not self._event.is_set():
            self._error = reason or ConnectionClosedError("the connection was closed")
            self._event.set()

    def set_lost(self, reason: BaseException) -> None:
        if not self._event.is_set():
            self._error = reason
            self._lost = True
            self._event.set()

    def _set_timed_out(self, timeout: float) -> None:
        if not self._event.is_set():
            self._timed_out = timeout
            self._event.set()

    async def wait(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (the call's deadline)
        """The answer; :class:`CallTimeoutError` after ``timeout`` seconds;
        :class:`ConnectionClosedError` if the connection went away first.

        The deadline is kept by the connection's one timeout task
        (:meth:`PendingRequests.run_timeouts`) rather than a cancel scope per call: with a
        thousand calls in flight, entering and leaving a scope per call was a fifth of the
        client's CPU time.
        """
        if timeout is not None:
            self._owner._add_deadline(anyio.current_time() + timeout, timeout, self)
        await self._event.wait()
        if self._timed_out is not None:
            raise CallTimeoutError(f"{self.what}: no answer within {self._timed_out} s")
        if self._lost:
            raise ConnectionLostError(
                f"{self.what}: the connection was lost after the request was sent and before "
                f"its answer came, so it may or may not have run; not retried ({self._error})"
            ) from self._error
        if self._error is not None:
            raise ConnectionClosedError(
                f"{self.what}: the connection closed before the answer arrived ({self._error})"
            ) from self._error
        return self._result


class PendingRequests:
    """The table of outstanding requests of one connection, keyed by request id, and their
    deadlines (enforced by :meth:`run_timeouts`, which must run while calls wait)."""

    def __init__(self) -> None:
        self._next_id = 0
        self._waiters: dict[int, Waiter] = {}
        self._closed: BaseException | None = None
        self._is_closed = False
        self._deadlines: DeadlineHeap[_Deadline] = DeadlineHeap(
            _waiting, compact_slack=_COMPACT_SLACK
        )
        self._order = itertools.count()
        self._next_deadline = math.inf
        self._deadline_moved = anyio.Event()

    def __len__(self) -> int:
        return len(self._waiters)

    @contextmanager
    def expect(self, what: str) -> Iterator[tuple[int, Waiter]]:
        """Reserve a request id and register its waiter for the duration of the block."""
        if self._is_closed:
            raise ConnectionClosedError(f"{what}: the connection is closed") from self._closed
        request_id = self._allocate()
        waiter = Waiter(what, self)
        self._waiters[request_id] = waiter
        try:
            yield request_id, waiter
        finally:
            waiter._live = False
            del self._waiters[request_id]
            if waiter._queued:  # answered (or cancelled) before its deadline
                self._deadlines.note_stale()

    def _add_deadline(self, deadline: float, timeout: float, waiter: Waiter) -> None:
        self._deadlines.push((deadline, next(self._order), timeout, waiter))
        waiter._queued = True
        if deadline < self._next_deadline:
            self._next_deadline = deadline
            self._deadline_moved.set()

    async def run_timeouts(self) -> None:
        """Fail each waiter whose deadline passed with :class:`CallTimeoutError`; runs until
        cancelled (the connection runs it in its task group)."""
        heap = self._deadlines
        while True:
            now = anyio.current_time()
            while (entry := heap.pop_due(now)) is not None:
                _, _, timeout, waiter = entry
                waiter._queued = False
                waiter._set_timed_out(timeout)
            first = heap.first_deadline()
            self._next_deadline = math.inf if first is None else first
            self._deadline_moved = anyio.Event()
            with anyio.CancelScope(deadline=self._next_deadline):
                await self._deadline_moved.wait()

    def _allocate(self) -> int:
        # u32 on the wire: wrap around, skipping ids still in flight (rare, but never reuse one).
        while True:
            request_id = self._next_id
            self._next_id = (request_id + 1) & _U32_MASK
            if request_id not in self._waiters:
                return request_id

    def resolve(self, request_id: int, answer: Any) -> bool:
        """Hand ``answer`` to the waiter of ``request_id``; ``False`` if nobody waits (any
        more: e.g. the call timed out before the answer came)."""
        waiter = self._waiters.get(request_id)
        if waiter is None:
            return False
        waiter.set_result(answer)
        return True

    def reserve_id(self) -> int:
        """A request id for a request nobody waits on here (a re-sent ``Subscribe`` whose
        answer the reconnecting connection reads itself)."""
        return self._allocate()

    def lose(self, reason: BaseException) -> None:
        """The session dropped: fail every outstanding request with
        :class:`ConnectionLostError`; later requests are accepted (a new session comes)."""
        for waiter in list(self._waiters.values()):
            waiter.set_lost(reason)

    def close(self, reason: BaseException | None) -> None:
        """Fail every outstanding request, and every later one, with ConnectionClosedError."""
        self._is_closed = True
        self._closed = reason
        for waiter in list(self._waiters.values()):
            waiter.set_closed(reason)


def _waiting(entry: _Deadline) -> bool:
    """Whether a deadline entry still counts: its caller is still waiting."""
    return entry[3]._live
