"""APScheduler 3.11 (AsyncIOScheduler, memory job store) side of benchmarks/bench_scheduler.py.

Run by the benchmark in its own throwaway venv; prints one JSON object. asyncio only (APScheduler
3 has no trio support). Not part of the library.
Usage: python _peer_apscheduler3.py WORKLOAD N [DURATION]   (WORKLOAD: add, fire, lateness, memory)
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

from _latency import summarize  # benchmarks/_latency.py, beside this script
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

DONE = 0


async def noop() -> None:
    global DONE
    DONE += 1


def scheduler() -> AsyncIOScheduler:
    # misfire_grace_time=None: APScheduler 3's default of 1 s would drop most fires of a burst
    return AsyncIOScheduler(
        timezone=timezone.utc, job_defaults={"misfire_grace_time": None, "coalesce": True}
    )


async def add(n: int) -> dict[str, float]:
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    s = scheduler()
    s.start()
    start = time.perf_counter()
    for i in range(n):
        s.add_job(noop, "date", run_date=far + timedelta(microseconds=i))
    elapsed = time.perf_counter() - start
    s.shutdown(wait=False)
    return {"n": n, "seconds": elapsed, "per_second": n / elapsed}


async def fire(n: int) -> dict[str, float]:
    now = datetime.now(timezone.utc)
    s = scheduler()
    for _ in range(n):
        s.add_job(noop, "date", run_date=now)
    start = time.perf_counter()
    s.start()  # the pending jobs go to the store and are all due
    while n > DONE:  # noqa: ASYNC110 - polling keeps the peer's code untouched
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    s.shutdown(wait=False)
    return {"n": n, "seconds": elapsed, "per_second": n / elapsed}


async def lateness(n: int, duration: float) -> dict[str, float]:
    samples: list[float] = []

    def on_submitted(event: JobSubmissionEvent) -> None:
        now = datetime.now(timezone.utc)
        for scheduled in event.scheduled_run_times:
            samples.append((now - scheduled).total_seconds() * 1000)

    s = scheduler()
    s.add_listener(on_submitted, EVENT_JOB_SUBMITTED)
    t0 = datetime.now(timezone.utc) + timedelta(seconds=2)
    for i in range(n):
        first = t0 + timedelta(milliseconds=i % 1000)
        s.add_job(noop, "interval", seconds=1, start_date=first)
    s.start()
    await asyncio.sleep((t0 - datetime.now(timezone.utc)).total_seconds() + duration)
    s.shutdown(wait=False)
    return summarize(samples, n, duration)


async def memory(n: int) -> dict[str, float]:
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    s = scheduler()
    s.start()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        s.add_job(noop, "date", run_date=far + timedelta(microseconds=i))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    s.shutdown(wait=False)
    return {"n": n, "bytes_per_schedule": (after - before) / n}


def main() -> None:
    workload, n = sys.argv[1], int(sys.argv[2])
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    runs = {
        "add": lambda: add(n),
        "fire": lambda: fire(n),
        "lateness": lambda: lateness(n, duration),
        "memory": lambda: memory(n),
    }
    print(json.dumps(asyncio.run(runs[workload]())))


if __name__ == "__main__":
    main()
