"""APScheduler 4.0.0a6 side of benchmarks/bench_scheduler.py (MemoryDataStore) and of
benchmarks/bench_stores.py (SQLAlchemyDataStore on PostgreSQL).

Run by the benchmark in its own throwaway venv; prints one JSON object. Not part of the library.
Usage: python _peer_apscheduler4.py WORKLOAD N BACKEND [DURATION]
(WORKLOAD: add, fire, lateness, memory), or
python _peer_apscheduler4.py sqla_load N asyncio URL T0   (write N one-shots due at T0)
python _peer_apscheduler4.py sqla_fire N asyncio URL T0 INSTANCES   (one instance runs them)
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from typing import Any

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


def sqla_store(url: str, *, fresh: bool = False, broker: bool = False) -> dict[str, Any]:
    """Keywords for AsyncScheduler: the SQLAlchemy data store (and the asyncpg event broker)."""
    from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    kwargs: dict[str, Any] = {"data_store": SQLAlchemyDataStore(engine, start_from_scratch=fresh)}
    if broker:
        from apscheduler.eventbrokers.asyncpg import AsyncpgEventBroker

        kwargs["event_broker"] = AsyncpgEventBroker.from_async_sqla_engine(engine)
    return kwargs


async def sqla_load(n: int, url: str, t0: float) -> dict[str, Any]:
    at = datetime.fromtimestamp(t0, timezone.utc)
    async with AsyncScheduler(**sqla_store(url, fresh=True)) as s:
        for i in range(n):  # not started: this process only writes the schedules
            await s.add_schedule(noop, DateTrigger(at), id=f"s{i}", misfire_grace_time=None)
    return {"loaded": n}


async def sqla_fire(n: int, url: str, t0: float, instances: int) -> dict[str, Any]:
    """One of ``instances`` schedulers sharing the store; with several, they also share the
    asyncpg event broker, APScheduler's recommended set-up for more than one scheduler."""
    samples: list[float] = []
    last = [0.0]

    identity = f"bench-{os.getpid()}"

    def on_released(event: JobReleased) -> None:
        # The shared event broker delivers every instance's events: count this one's only.
        if event.scheduler_id != identity:
            return
        if event.started_at is not None and event.scheduled_start is not None:
            samples.append((event.started_at - event.scheduled_start).total_seconds() * 1000)
            last[0] = time.time()

    kwargs = sqla_store(url, broker=instances > 1)
    async with AsyncScheduler(max_concurrent_jobs=100, identity=identity, **kwargs) as s:
        s.subscribe(on_released, JobReleased, is_async=False)
        await s.start_in_background()
        ready = time.time()
        # Done when nothing ran for 5 s after T0 (a deadline that moves: polled on purpose).
        while time.time() - max(last[0], t0, ready) < 5:  # noqa: ASYNC110
            await anyio.sleep(0.1)
        await s.stop()
    return {"executed": len(samples), "last": last[0], "ready": ready, "samples": samples}


def main() -> None:
    if sys.argv[1].startswith("sqla_"):
        n, url, t0 = int(sys.argv[2]), sys.argv[4], float(sys.argv[5])
        if sys.argv[1] == "sqla_load":
            result = anyio.run(sqla_load, n, url, t0)
        else:
            result = anyio.run(sqla_fire, n, url, t0, int(sys.argv[6]))
        print(json.dumps(result))
        return
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
