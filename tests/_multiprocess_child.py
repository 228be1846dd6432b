"""One scheduler process of tests/test_scheduler_multiprocess.py (run as a script).

``python _multiprocess_child.py DSN SCHEMA BACKEND OWNER STOP_FILE``: runs a ReducerScheduler on
a PostgresStore (lease 2 s) until STOP_FILE exists. Its target does the fire's *work* and
records the execution in one transaction, so a committed execution row means the work was
done and a kill before the commit leaves neither. Interrupted fires reported to it are
recorded too. It writes a ``ready`` row once its scheduler runs.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
from psycopg import sql

from spacetime_sched._time import TimeDuration
from spacetime_sched.scheduler import ReducerScheduler, ScheduleResult
from spacetime_sched.scheduler._stores._postgres import PostgresStore

#: Executions at once per process: most of them only wait for a claim another process wins.
CONCURRENCY = 50
#: Target connections (worker threads doing the work) at once per process.
WORKERS = 10


def main() -> None:
    dsn, schema, backend, owner, stop_file = sys.argv[1:6]
    anyio.run(run, dsn, schema, owner, Path(stop_file), backend=backend)


async def run(dsn: str, schema: str, owner: str, stop_file: Path) -> None:
    s = sql.Identifier(schema)
    local = threading.local()  # one connection per anyio worker thread

    def connection() -> psycopg.Connection[Any]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(dsn, autocommit=True)
        return conn

    def execute(key: str) -> None:
        conn = connection()
        with conn.transaction():
            # The work takes a moment, so fires are in flight when the process is killed.
            conn.execute("SELECT pg_sleep(0.005)")
            conn.execute(
                sql.SQL("INSERT INTO {}.work (key) VALUES (%s) ON CONFLICT DO NOTHING").format(s),
                (key,),
            )
            conn.execute(
                sql.SQL("INSERT INTO {}.executions (key, owner) VALUES (%s, %s)").format(s),
                (key, owner),
            )

    def record(table: str, key: str) -> None:
        conn = connection()
        conn.execute(
            sql.SQL("INSERT INTO {}.{} (key, owner) VALUES (%s, %s)").format(
                s, sql.Identifier(table)
            ),
            (key, owner),
        )

    limiter = anyio.CapacityLimiter(WORKERS)

    async def target(reducer_name: str, key: str) -> None:
        await anyio.to_thread.run_sync(execute, key, limiter=limiter)

    async def on_error(result: ScheduleResult) -> None:
        if result.interrupted:
            await anyio.to_thread.run_sync(record, "interrupted", result.schedule_id)

    store = PostgresStore(dsn, schema=schema, owner=owner, lease_ttl=TimeDuration.from_seconds(2))
    async with (
        store,
        ReducerScheduler(
            target,
            store=store,
            instance_id=owner,
            max_concurrent_executions=CONCURRENCY,
            finished_retention=None,
        ) as scheduler,
    ):
        scheduler.add_error_callback(on_error)
        await anyio.to_thread.run_sync(record, "ready", owner)
        stop = anyio.Path(stop_file)
        while not await stop.exists():  # noqa: ASYNC110 - a file has no event to wait on
            await anyio.sleep(0.1)


if __name__ == "__main__":
    main()
