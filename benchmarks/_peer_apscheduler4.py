"""APScheduler 4.0.0a6 (MemoryDataStore) side of benchmarks/bench_scheduler.py.

Run by the benchmark in its own throwaway venv; prints one JSON object. Not part of the library.
Usage: python _peer_apscheduler4.py WORKLOAD N BACKEND [DURATION]
(WORKLOAD: add, fire, lateness, memory).
"""

from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

import anyio
from _latency import summarize  # benchmarks/_latency.py, beside this script
from apscheduler import AsyncScheduler, JobReleased
from apscheduler.datastores.memory import MemoryDataStore
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

DONE = 0


async def noop() -> None:
    global DONE
    DONE += 1


def scheduler() -> AsyncScheduler:
    return AsyncScheduler(data_store=MemoryDataStore(), max_concurrent_jobs=100)


async def add(n: int) -> dict[str, float]:
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    async with scheduler() as s:
        start = time.perf_counter()
        for i in range(n):
            await s.add_schedule(noop, DateTrigger(far + timedelta(microseconds=i)))
        elapsed = time.perf_counter() - start
    return {"n": n, "seconds": elapsed, "per_second": n / elapsed}


async def fire(n: int) -> dict[str, float]:
    now = datetime.now(timezone.utc)
    async with scheduler() as s:
        for _ in range(n):
            await s.add_schedule(noop, DateTrigger(now))
        start = time.perf_counter()
        await s.start_in_background()
        while n > DONE:  # noqa: ASYNC110 - polling keeps the peer's code untouched
            await anyio.sleep(0.005)
        elapsed = time.perf_counter() - start
        await s.stop()
    return {"n": n, "seconds": elapsed, "per_second": n / elapsed}


async def lateness(n: int, duration: float) -> dict[str, float]:
    samples: list[float] = []

    def on_released(event: JobReleased) -> None:
        if event.started_at is not None and event.scheduled_start is not None:
            samples.append((event.started_at - event.scheduled_start).total_seconds() * 1000)

    async with scheduler() as s:
        s.subscribe(on_released, JobReleased, is_async=False)
        t0 = datetime.now(timezone.utc) + timedelta(seconds=2)
        for i in range(n):
            first = t0 + timedelta(milliseconds=i % 1000)
            await s.add_schedule(noop, IntervalTrigger(seconds=1, start_time=first))
        await s.start_in_background()
        await anyio.sleep((t0 - datetime.now(timezone.utc)).total_seconds() + duration)
        await s.stop()
    return summarize(samples, n, duration)


async def memory(n: int) -> dict[str, float]:
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    async with scheduler() as s:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            await s.add_schedule(noop, DateTrigger(far + timedelta(microseconds=i)))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return {"n": n, "bytes_per_schedule": (after - before) / n}


def main() -> None:
    workload, n, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    duration = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    runs = {
        "add": lambda: add(n),
        "fire": lambda: fire(n),
        "lateness": lambda: lateness(n, duration),
        "memory": lambda: memory(n),
    }
    result = anyio.run(runs[workload], backend=backend)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
