"""Precise timing helpers: :class:`PrecisionTimer` and :class:`TimeMetrics`.

Both use :func:`time.perf_counter_ns`, the highest-resolution monotonic clock Python offers,
and report :class:`~spacetime_sched.TimeDuration` (whole microseconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from .._time import TimeDuration

__all__ = ["PrecisionTimer", "TimeMetrics"]


class PrecisionTimer:
    """Measure one span of time::

        with PrecisionTimer() as timer:
            await do_work()
        print(timer.elapsed)          # TimeDuration

        timer = PrecisionTimer().start()
        ...
        took = timer.stop()           # TimeDuration

    ``elapsed`` is live while running and frozen after :meth:`stop`.
    """

    __slots__ = ("_start", "_stop")

    def __init__(self) -> None:
        self._start: int | None = None
        self._stop: int | None = None

    def start(self) -> PrecisionTimer:
        self._start = time.perf_counter_ns()
        self._stop = None
        return self

    def stop(self) -> TimeDuration:
        """Stop the timer and return the elapsed time."""
        if self._start is None:
            raise RuntimeError("PrecisionTimer.stop() called before start()")
        if self._stop is None:
            self._stop = time.perf_counter_ns()
        return self.elapsed

    @property
    def elapsed(self) -> TimeDuration:
        """Time since :meth:`start` (until :meth:`stop` if stopped), in whole microseconds."""
        if self._start is None:
            return TimeDuration.ZERO
        end = self._stop if self._stop is not None else time.perf_counter_ns()
        return TimeDuration._unchecked((end - self._start) // 1000)

    @property
    def elapsed_ns(self) -> int:
        """Like :attr:`elapsed`, in nanoseconds."""
        if self._start is None:
            return 0
        end = self._stop if self._stop is not None else time.perf_counter_ns()
        return end - self._start

    def __enter__(self) -> PrecisionTimer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stop is not None else "running" if self._start else "idle"
        return f"PrecisionTimer({state}, elapsed={self.elapsed})"


class TimeMetrics:
    """Named timings: ``with metrics.measure("call"): ...`` then ask for averages.

    Keeps a count, total, minimum and maximum per name (constant memory per name).
    """

    __slots__ = ("_stats",)

    def __init__(self) -> None:
        # name -> [count, total_ns, min_ns, max_ns]
        self._stats: dict[str, list[int]] = {}

    @contextmanager
    def measure(self, name: str) -> Iterator[PrecisionTimer]:
        """Time the body of the ``with`` block under ``name`` (also when it raises)."""
        timer = PrecisionTimer().start()
        try:
            yield timer
        finally:
            timer.stop()
            self.record(name, timer.elapsed_ns)

    def record(self, name: str, elapsed_ns: int) -> None:
        """Add one measurement of ``elapsed_ns`` nanoseconds under ``name``."""
        entry = self._stats.get(name)
        if entry is None:
            self._stats[name] = [1, elapsed_ns, elapsed_ns, elapsed_ns]
            return
        entry[0] += 1
        entry[1] += elapsed_ns
        entry[2] = min(entry[2], elapsed_ns)
        entry[3] = max(entry[3], elapsed_ns)

    def get_average_duration(self, name: str) -> TimeDuration | None:
        """The mean duration measured under ``name``, or None if nothing was measured."""
        entry = self._stats.get(name)
        if entry is None:
            return None
        return TimeDuration._unchecked(entry[1] // entry[0] // 1000)

    def get_count(self, name: str) -> int:
        entry = self._stats.get(name)
        return 0 if entry is None else entry[0]

    def get_summary(self, name: str) -> dict[str, TimeDuration | int] | None:
        """``count``, ``total``, ``average``, ``min`` and ``max`` for ``name``, or None."""
        entry = self._stats.get(name)
        if entry is None:
            return None
        count, total, low, high = entry
        return {
            "count": count,
            "total": TimeDuration._unchecked(total // 1000),
            "average": TimeDuration._unchecked(total // count // 1000),
            "min": TimeDuration._unchecked(low // 1000),
            "max": TimeDuration._unchecked(high // 1000),
        }

    def names(self) -> list[str]:
        return list(self._stats)

    def reset(self) -> None:
        self._stats.clear()
