"""A reducer target that records its calls, for testing code that schedules reducers."""

from __future__ import annotations

from typing import Any

import attrs

from .._clock import Clock
from .._time import Timestamp

__all__ = ["RecordedCall", "RecordingTarget"]


@attrs.frozen
class RecordedCall:
    """One call a :class:`RecordingTarget` received: the reducer, its arguments, and when (on
    the target's clock)."""

    reducer: str
    args: tuple[Any, ...]
    at: Timestamp


class RecordingTarget:
    """An async reducer target (``await target(reducer_name, *args)``) that records every call
    instead of calling a server, for a :class:`~spacetime_sched.scheduler.ReducerScheduler`::

        target = RecordingTarget(clock)
        async with ReducerScheduler(target, clock=clock) as scheduler:
            scheduler.schedule_at_interval("sync", (), TimeDuration.from_hours(1))
            await clock.advance(TimeDuration.from_days(1))
        assert target.names() == ["sync"] * 24

    ``clock`` stamps the calls (default: the system clock; pass the scheduler's virtual clock).
    :meth:`fail` makes calls of a reducer raise, to test retries and error callbacks; failed
    calls are recorded too.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._failures: dict[str, BaseException] = {}
        #: Every call received, in order.
        self.calls: list[RecordedCall] = []

    def __repr__(self) -> str:
        return f"<RecordingTarget {len(self.calls)} calls>"

    async def __call__(self, reducer_name: str, *args: Any) -> None:
        now = self._clock.now() if self._clock is not None else Timestamp.now()
        self.calls.append(RecordedCall(reducer_name, args, now))
        error = self._failures.get(reducer_name)
        if error is not None:
            raise error

    def fail(self, reducer_name: str, error: BaseException | None) -> None:
        """Make every later call of ``reducer_name`` raise ``error`` (``None``: succeed again)."""
        if error is None:
            self._failures.pop(reducer_name, None)
        else:
            self._failures[reducer_name] = error

    def names(self) -> list[str]:
        """The reducer names called, in order."""
        return [call.reducer for call in self.calls]

    def calls_to(self, reducer_name: str) -> list[RecordedCall]:
        """The calls of one reducer, in order."""
        return [call for call in self.calls if call.reducer == reducer_name]
