"""Execution statistics: counters, durations and the lateness of fires.

Recording is on the hot path (once per execution), so it only bumps ints and writes one slot
of a fixed-size ring of recent lateness samples; percentiles are computed when asked for.
"""

from __future__ import annotations

from typing import Any, Final

from .._time import TimeDuration

__all__ = ["ExecutionStats", "LATENESS_SAMPLES"]

#: How many recent lateness samples the percentiles are computed from.
LATENESS_SAMPLES: Final = 10_000


class _ReducerStats:
    __slots__ = ("duration", "failed", "ok", "total")

    def __init__(self) -> None:
        self.total = 0
        self.ok = 0
        self.failed = 0
        self.duration = 0


class ExecutionStats:
    """Counters of one scheduler; :meth:`snapshot` turns them into the public mapping."""

    __slots__ = (
        "_lateness",
        "_lateness_next",
        "duration",
        "failed",
        "interrupted",
        "lateness_max",
        "missed",
        "ok",
        "per_reducer",
        "retries",
        "skipped",
        "total",
    )

    def __init__(self) -> None:
        self.total = 0
        self.ok = 0
        self.failed = 0
        self.missed = 0
        self.interrupted = 0  # fires whose instance died running them, not run again
        self.skipped = 0
        self.retries = 0
        self.duration = 0
        self._lateness: list[int] = []
        self._lateness_next = 0
        self.lateness_max = 0
        self.per_reducer: dict[str, _ReducerStats] = {}

    def record_execution(self, reducer: str, ok: bool, duration: int) -> None:
        self.total += 1
        self.duration += duration
        per = self.per_reducer.get(reducer)
        if per is None:
            per = self.per_reducer[reducer] = _ReducerStats()
        per.total += 1
        per.duration += duration
        if ok:
            self.ok += 1
            per.ok += 1
        else:
            self.failed += 1
            per.failed += 1

    def record_lateness(self, micros: int) -> None:
        samples = self._lateness
        if len(samples) < LATENESS_SAMPLES:
            samples.append(micros)
        else:
            samples[self._lateness_next] = micros
            self._lateness_next = (self._lateness_next + 1) % LATENESS_SAMPLES
        if micros > self.lateness_max:
            self.lateness_max = micros

    def lateness_percentile(self, fraction: float) -> TimeDuration | None:
        """The ``fraction`` (0..1) percentile of recent lateness (nearest rank), or None."""
        if not self._lateness:
            return None
        ordered = sorted(self._lateness)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
        return TimeDuration._unchecked(ordered[index])

    def snapshot(self) -> dict[str, Any]:
        def average(total: int, count: int) -> TimeDuration:
            return TimeDuration._unchecked(total // count if count else 0)

        return {
            "total_executions": self.total,
            "successful_executions": self.ok,
            "failed_executions": self.failed,
            "missed_executions": self.missed,
            "interrupted_executions": self.interrupted,
            "skipped_executions": self.skipped,
            "retried_executions": self.retries,
            "success_rate": self.ok / self.total if self.total else 1.0,
            "average_duration": average(self.duration, self.total),
            "lateness_p50": self.lateness_percentile(0.50),
            "lateness_p99": self.lateness_percentile(0.99),
            "lateness_max": TimeDuration._unchecked(self.lateness_max) if self._lateness else None,
            "per_reducer": {
                name: {
                    "total_executions": per.total,
                    "successful_executions": per.ok,
                    "failed_executions": per.failed,
                    "success_rate": per.ok / per.total if per.total else 1.0,
                    "average_duration": average(per.duration, per.total),
                }
                for name, per in self.per_reducer.items()
            },
        }
