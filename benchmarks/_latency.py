"""Fire-lateness summary shared by ``bench_scheduler.py`` and its APScheduler peers.

Plain stdlib on purpose: the peers run in their own venvs without ``spacetime_sched``, and import
this by path (each script runs with ``benchmarks/`` as its directory), so all three sides report
the same figures computed the same way.
"""

from __future__ import annotations

#: The percentiles kept of each lateness run (``quantiles_ms``): enough to draw the distribution
#: (``benchmarks/plot_results.py``) without writing hundreds of thousands of samples.
QUANTILES = (0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


def summarize(samples: list[float], n: int, duration: float) -> dict[str, object]:
    """Percentiles of ``samples`` (lateness in ms, sorted in place) for ``n`` interval schedules
    of 1 s run for ``duration`` s (``expected_fires`` is what a perfect scheduler would fire).

    ``quantiles_ms`` maps each percentile of :data:`QUANTILES` (as a string, ``"99.9"``) to its
    value, plus ``"0"`` (min) and ``"100"`` (max): the lateness distribution in compact form.
    """
    samples.sort()
    if not samples:
        return {"fires": 0, "expected_fires": n * duration}

    def pct(p: float) -> float:
        # Nearest rank below: the sample below which a fraction ``p`` of the samples lie.
        return samples[min(len(samples) - 1, int(p * len(samples)))]

    quantiles = {"0": samples[0]}
    quantiles |= {f"{q:g}": pct(q / 100) for q in QUANTILES}
    quantiles["100"] = samples[-1]
    return {
        "fires": len(samples),
        "expected_fires": n * duration,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": samples[-1],
        "quantiles_ms": quantiles,
    }
