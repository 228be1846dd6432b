"""Three scheduler processes on one PostgreSQL, one of them killed with SIGKILL mid-run.

Each process (tests/_multiprocess_child.py) runs a ReducerScheduler on a PostgresStore with a
2 s lease. N one-shot schedules, due within a few seconds, are added once all three run; when
about a third of them have executed, process 0 is killed. Its target does each fire's work and
records the execution in one transaction, so an ``executions`` row exists exactly when that
execution's work committed; a process killed mid-transaction leaves none.

At the moment of the kill the killed process's *in-flight* fires are frozen in the store:
its claims still ``claimed`` (won, not started) or ``running`` (started, not finished). What
each delivery option promises, precisely:

* ``at_least_once``: every fire's work is done (none lost). A fire not in flight in the killed
  process executed exactly once. An in-flight fire is executed exactly once by a live process
  (its re-run), plus once by the killed process only if that execution committed before the
  kill (the window between the target's commit and the store's "done"): exactly once where
  the target is idempotent per fire, as this one's ``work`` is.
* ``at_most_once``: no fire executed twice. An in-flight fire that had started is not run
  again but reported interrupted, once; one that had not started is run by a live process.
  Every other fire executed exactly once. So every fire is executed or reported interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest
from _postgres_support import database_dsn, fresh_schema
from psycopg import sql

from spacetime_sched.scheduler import SchedulePolicy
from spacetime_sched.scheduler._stores import StoredSchedule
from spacetime_sched.scheduler._stores._postgres import PostgresStore

CHILD = Path(__file__).with_name("_multiprocess_child.py")
PROCESSES = 3
#: One-shot schedules per run. 3,000 keeps a run near 12 s on the shared 2-core machine (both
#: delivery options: about 25 s per backend); the issue's 10,000 pass too but take about 23 s
#: a run, 50 s per backend (three processes contend for every claim):
#: ``SPACETIME_SCHED_MP_N=10000``.
N = int(os.environ.get("SPACETIME_SCHED_MP_N", "3000"))
#: Their fire times spread over this many seconds, starting a second after they are added.
SPREAD_SECONDS = 3


def query(dsn: str, text: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(text.encode(), params or None)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


async def q(dsn: str, schema: str, text: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run ``text`` (``{s}`` is the test's schema) in a worker thread; its rows."""
    quoted = sql.Identifier(schema).as_string(None)
    return await anyio.to_thread.run_sync(lambda: query(dsn, text.format(s=quoted), *params))


async def until(condition: Callable[[], Any], seconds: float, what: str) -> None:
    with anyio.move_on_after(seconds):
        while not await condition():  # noqa: ASYNC110 - polling the database
            await anyio.sleep(0.1)
        return
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


@contextmanager
def processes(args: list[list[str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    started = [
        subprocess.Popen([sys.executable, str(CHILD), *a], env=env, stderr=subprocess.PIPE)
        for a in args
    ]
    try:
        yield started
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stderr is not None:
                p.stderr.close()


def one_shot(i: int, at: int, delivery: str) -> StoredSchedule:
    policy = SchedulePolicy(delivery=delivery, misfire_grace_time=None)
    return StoredSchedule(
        id=f"job{i:05d}",
        reducer_name="work",
        args=(f"job{i:05d}",),
        trigger={"type": "once", "at": at},
        policy=policy.to_dict(),
        metadata={},
        status="pending",
        run_count=0,
        next_run_micros=at,
        created_at_micros=at - 1_000_000,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("delivery", ["at_least_once", "at_most_once"])
async def test_three_processes_one_killed_each_fire_once_by_delivery(
    delivery: str, tmp_path: Path, anyio_backend: str
) -> None:
    dsn, schema = database_dsn(), fresh_schema()
    owners = [f"p{i}" for i in range(PROCESSES)]
    # The store's own tables come from the first store to open; the target's tables are ours.
    async with PostgresStore(dsn, schema=schema, owner="seeder") as seeder:
        for table in ("executions", "interrupted", "ready"):
            await q(dsn, schema, f"CREATE TABLE {{s}}.{table} (key text NOT NULL, owner text)")
        await q(dsn, schema, "CREATE TABLE {s}.work (key text PRIMARY KEY)")
        stop = tmp_path / "stop"
        with processes([[dsn, schema, anyio_backend, o, str(stop)] for o in owners]) as procs:

            async def all_ready() -> bool:
                for p in procs:
                    if p.poll() is not None:
                        err = p.stderr.read().decode() if p.stderr else ""
                        pytest.fail(f"a scheduler process exited early:\n{err[-3000:]}")
                rows = await q(dsn, schema, "SELECT count(*) FROM {s}.ready")
                return bool(rows[0][0] == PROCESSES)

            await until(all_ready, 60, "the three schedulers to start")
            t0 = time.monotonic()
            # Added while they run: the instances learn of them by NOTIFY ("reload all").
            start = time.time_ns() // 1000 + 1_000_000
            step = SPREAD_SECONDS * 1_000_000 // N
            await seeder.save_many(one_shot(i, start + i * step, delivery) for i in range(N))

            async def a_third_executed() -> bool:
                rows = await q(dsn, schema, "SELECT count(*) FROM {s}.executions")
                return bool(rows[0][0] >= N // 3)

            await until(a_third_executed, 60, "a third of the fires to execute")
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            # A statement the server was already executing for it finishes (a COMMIT it had
            # received still commits); then the server sees the closed socket and rolls back
            # the rest. Half a second is ample, and far less than the 2 s lease (renewed at
            # most 0.67 s before the kill), so no take-over has begun.
            await anyio.sleep(0.5)
            # The dead process's claims are frozen now: its in-flight fires.
            in_flight = dict(
                await q(
                    dsn,
                    schema,
                    "SELECT schedule_id, state FROM {s}.fires "
                    "WHERE owner = %s AND state IN ('claimed', 'running')",
                    owners[0],
                )
            )

            async def all_settled() -> bool:
                rows = await q(
                    dsn,
                    schema,
                    "SELECT count(*) FROM {s}.fires WHERE state IN ('done', 'interrupted')",
                )
                # ... and each interrupted fire's report written (callbacks run after it)
                reported = await q(
                    dsn,
                    schema,
                    "SELECT (SELECT count(*) FROM {s}.fires WHERE state = 'interrupted')"
                    " = (SELECT count(*) FROM {s}.interrupted)",
                )
                return bool(rows[0][0] == N and reported[0][0])

            await until(all_settled, 90, "every fire to be done or interrupted")
            elapsed = time.monotonic() - t0
            stop.touch()
            with anyio.fail_after(30):
                while any(p.poll() is None for p in procs[1:]):  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            assert [p.returncode for p in procs[1:]] == [0, 0]

    executions: dict[str, list[str]] = {}
    for key, owner in await q(dsn, schema, "SELECT key, owner FROM {s}.executions"):
        executions.setdefault(key, []).append(owner)
    interrupted: dict[str, list[str]] = {}
    for key, owner in await q(dsn, schema, "SELECT key, owner FROM {s}.interrupted"):
        interrupted.setdefault(key, []).append(owner)
    keys = [f"job{i:05d}" for i in range(N)]
    killed = owners[0]
    assert in_flight, "the kill should catch fires in flight (the test would prove nothing)"
    for key in keys:
        runs = executions.get(key, [])
        live_runs = [o for o in runs if o != killed]
        reports = interrupted.get(key, [])
        state = in_flight.get(key)
        if state is None:  # not in flight in the killed process: exactly once, by anyone
            assert len(runs) == 1, (key, runs)
            assert reports == [], (key, reports)
        elif delivery == "at_least_once" or state == "claimed":
            # re-run once by a live process; the killed one may have committed it before dying
            assert len(live_runs) == 1, (key, state, runs)
            assert runs.count(killed) <= 1, (key, state, runs)
            assert reports == [], (key, reports)
        else:  # at_most_once and it had started: reported interrupted once, not run again
            assert live_runs == [], (key, runs)
            assert len(runs) <= 1, (key, runs)
            assert len(reports) == 1, (key, reports)
            assert reports[0] != killed
    work = await q(dsn, schema, "SELECT count(*) FROM {s}.work")
    if delivery == "at_least_once":
        assert work[0][0] == N  # none lost
    else:  # nothing twice; every fire executed or reported interrupted
        assert all(len(executions.get(k, [])) <= 1 for k in keys)
        assert all(k in executions or k in interrupted for k in keys)
    assert sum(len(v) for v in interrupted.values()) == (
        0
        if delivery == "at_least_once"
        else sum(1 for state in in_flight.values() if state == "running")
    )
    print(  # the figures of this run, for the report (pytest -s)
        f"\n{delivery}: {N} fires, {len(in_flight)} in flight at the kill "
        f"({sum(1 for s in in_flight.values() if s == 'running')} running), "
        f"{sum(len(v) for v in executions.values())} executions, "
        f"{sum(len(v) for v in interrupted.values())} interrupted, settled in {elapsed:.1f} s"
    )
