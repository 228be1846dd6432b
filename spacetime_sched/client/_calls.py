"""Request-id correlation: match each server answer to the call that is waiting for it.

One counter numbers every request of a connection (reducer and procedure calls, queries,
subscribes), as the TypeScript SDK does; the server echoes the id in its answer. A waiter is
registered *before* the request is sent, so an answer can never arrive unexpected, and it is
removed when the caller stops waiting for any reason (answer, timeout, cancellation), so
nothing is left behind.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import anyio

from .._deadlines import DeadlineHeap
from .._errors import ArgumentError, CallTimeoutError, ConnectionClosedError, ConnectionLostError
from ._parking import Parking, parking_clock, parking_factory

__all__ = ["PendingRequests", "Waiter", "check_timeout"]

_U32_MASK: Final = 0xFFFF_FFFF

# Stale deadline entries (calls answered long before their deadline) are swept out once there
# are more than this many and they are most of the heap, so it stays proportional to the backlog.
_COMPACT_SLACK: Final = 1024

# A deadline entry: (deadline in the backend's clock seconds, request id, timeout). Numbers only,
# so that an entry left in the heap after its call was answered (until it reaches the top or the
# heap is compacted) keeps nothing else alive: a waiter, its future and its task frames die
# with the call instead of being promoted to the garbage collector's old generations. The
# request id breaks ties: it is unique among the calls in flight.
_Deadline = tuple[float, int, float]


def check_timeout(timeout: object, what: str) -> float | None:
    """A call's ``timeout`` as seconds (``None``: wait for ever), or :class:`ArgumentError`.

    Checked at the call, before anything is sent: a NaN, a negative number or a string would
    otherwise reach the connection's one timeout task and break the whole connection.
    ``0`` is allowed (fail at once unless the answer is already there); ``math.inf`` is
    ``None``.
    """
    if type(timeout) is float and 0.0 <= timeout < math.inf:  # the usual case, checked first
        return timeout
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
        "_deadline",
        "_error",
        "_lost",
        "_owner",
        "_result",
        "_set",
        "_timed_out",
        "parking",
        "request_id",
        "what",
    )

    def __init__(
        self, request_id: int, what: str, owner: PendingRequests, parking: Parking
    ) -> None:
        self.request_id = request_id
        self.what = what
        self._owner = owner
        #: What the caller awaits (then :meth:`answer`).
        self.parking = parking
        self._set = False
        self._result: Any = None
        self._error: BaseException | None = None
        self._timed_out: float | None = None
        self._lost = False  # the request went out on a session that dropped before the answer
        self._deadline: float | None = None  # that of our entry in the owner's heap

    def _wake(self) -> None:
        parking = self.parking
        if not parking.done():  # done: its caller was cancelled and no longer waits
            parking.set_result(None)

    def set_result(self, result: Any) -> None:
        if not self._set:
            self._set = True
            self._result = result
            parking = self.parking  # inlined _wake: this is every call's answer
            if not parking.done():
                parking.set_result(None)

    def set_closed(self, reason: BaseException | None) -> None:
        if not self._set:
            self._set = True
            self._error = reason or ConnectionClosedError("the connection was closed")
            self._wake()

    def set_lost(self, reason: BaseException) -> None:
        if not self._set:
            self._set = True
            self._error = reason
            self._lost = True
            self._wake()

    def _set_timed_out(self, timeout: float) -> None:
        if not self._set:
            self._set = True
            self._timed_out = timeout
            self._wake()

    async def wait(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (the call's deadline)
        """The answer; :class:`CallTimeoutError` after ``timeout`` seconds;
        :class:`ConnectionClosedError` if the connection went away first.

        The deadline is kept by the connection's one timeout task
        (:meth:`PendingRequests.run_timeouts`) rather than a cancel scope per call: with a
        thousand calls in flight, entering and leaving a scope per call was a fifth of the
        client's CPU time. The wait itself is a :class:`~._parking.Parking`, the cheapest
        one-shot wait of the running backend. (Reducer calls inline these three lines.)
        """
        if timeout is not None:
            self._owner.add_deadline(timeout, self)
        await self.parking
        return self.answer()

    def answer(self) -> Any:
        """Once woken: the answer, or the failure that woke the waiter, raised."""
        if self._error is None and self._timed_out is None:
            return self._result
        if self._timed_out is not None:
            raise CallTimeoutError(f"{self.what}: no answer within {self._timed_out} s")
        if self._lost:
            raise ConnectionLostError(
                f"{self.what}: the connection was lost after the request was sent and before "
                f"its answer came, so it may or may not have run; not retried ({self._error})"
            ) from self._error
        raise ConnectionClosedError(
            f"{self.what}: the connection closed before the answer arrived ({self._error})"
        ) from self._error


class PendingRequests:
    """The table of outstanding requests of one connection, keyed by request id, and their
    deadlines (enforced by :meth:`run_timeouts`, which must run while calls wait).

    A call registers (:meth:`register`) before it sends and forgets (:meth:`forget`) in a
    ``finally`` when it stops waiting; :meth:`expect` is the same as a ``with`` block, for
    requests less frequent than calls.
    """

    def __init__(self) -> None:
        self._next_id = 0
        self._waiters: dict[int, Waiter] = {}
        self._closed: BaseException | None = None
        self._is_closed = False
        self._deadlines: DeadlineHeap[_Deadline] = DeadlineHeap(
            self._counts, compact_slack=_COMPACT_SLACK
        )
        self._next_deadline = math.inf
        self._deadline_moved = anyio.Event()
        # The running backend's wait and clock (see ._parking), looked up at the first request.
        self._parking: Callable[[], Parking] | None = None
        self._clock: Callable[[], float] = _unbound_clock

    def __len__(self) -> int:
        return len(self._waiters)

    def register(self, what: str) -> tuple[int, Waiter]:
        """Reserve a request id and register its waiter; the caller must :meth:`forget` it
        (in a ``finally``) when it stops waiting."""
        if self._is_closed:
            raise ConnectionClosedError(f"{what}: the connection is closed") from self._closed
        parking = self._parking
        if parking is None:
            parking = self._bind()
        request_id = self._next_id
        if request_id in self._waiters or request_id == _U32_MASK:
            request_id = self._allocate()  # wrapping around, or skipping an id still in flight
        else:
            self._next_id = request_id + 1
        waiter = Waiter(request_id, what, self, parking())
        self._waiters[request_id] = waiter
        return request_id, waiter

    def forget(self, request_id: int, waiter: Waiter) -> None:
        """Unregister a waiter of :meth:`register` (answered, timed out or cancelled)."""
        del self._waiters[request_id]
        if waiter._deadline is not None:  # answered (or cancelled) before its deadline
            self._deadlines.note_stale()

    @contextmanager
    def expect(self, what: str) -> Iterator[tuple[int, Waiter]]:
        """:meth:`register` and :meth:`forget` around the block."""
        request_id, waiter = self.register(what)
        try:
            yield request_id, waiter
        finally:
            self.forget(request_id, waiter)

    def _bind(self) -> Callable[[], Parking]:
        parking = self._parking = parking_factory()
        self._clock = parking_clock()
        return parking

    def add_deadline(self, timeout: float, waiter: Waiter) -> None:
        """Fail ``waiter`` with :class:`CallTimeoutError` if it is still waiting ``timeout``
        seconds from now (see :meth:`run_timeouts`)."""
        deadline = self._clock() + timeout
        self._deadlines.push((deadline, waiter.request_id, timeout))
        waiter._deadline = deadline
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
                waiter = self._waiters[entry[1]]
                waiter._deadline = None
                waiter._set_timed_out(entry[2])
            first = heap.first_deadline()
            self._next_deadline = math.inf if first is None else first
            self._deadline_moved = anyio.Event()
            with anyio.CancelScope(deadline=self._next_deadline):
                await self._deadline_moved.wait()

    def _counts(self, entry: _Deadline) -> bool:
        """Whether a deadline entry still counts: its call is still waiting on it."""
        waiter = self._waiters.get(entry[1])
        return waiter is not None and waiter._deadline == entry[0]

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


def _unbound_clock() -> float:
    """The clock before the first request bound the backend's (nothing reads it then)."""
    return anyio.current_time()
