"""Fire-lateness summary shared by ``bench_scheduler.py`` and its APScheduler peers.

Plain stdlib on purpose: the peers run in their own venvs without ``spacetime_sched``, and import
this by path (each script runs with ``benchmarks/`` as its directory), so all three sides report
the same figures computed the same way.
"""

from __future__ import annotations


def summarize(samples: list[float], n: int, duration: float) -> dict[str, float]:
    """Percentiles of ``samples`` (lateness in ms, sorted in place) for ``n`` interval schedules
    of 1 s run for ``duration`` s (``expected_fires`` is what a perfect scheduler would fire)."""
    samples.sort()
    if not samples:
        return {"fires": 0, "expected_fires": n * duration}

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))]

    return {
        "fires": len(samples),
        "expected_fires": n * duration,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": samples[-1],
    }
