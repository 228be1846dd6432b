"""Quickstart on asyncio: connect, call a reducer, schedule reducers, read the results.

Runs against a local SpacetimeDB-compatible server started in this process, or against a real
SpacetimeDB when ``SPACETIMEDB_URI`` is set (its database ``SPACETIMEDB_DATABASE``, default
``quickstart``, must run the quickstart module: tables ``person``, ``event``, ... and reducers
``add_person(name)``, ``add(a, b)``, ...).

Run it: ``python examples/quickstart_asyncio.py``
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from spacetime_sched.client import DbConnection

DATABASE = os.environ.get("SPACETIMEDB_DATABASE", "quickstart")


@asynccontextmanager
async def quickstart_server() -> AsyncIterator[str]:
    """The server's URI: ``$SPACETIMEDB_URI``, or a LocalServer running for the block."""
    uri = os.environ.get("SPACETIMEDB_URI")
    if uri:
        yield uri
        return
    from spacetime_sched.testing import LocalServer, example_module

    async with LocalServer(example_module.make_module(), database=DATABASE) as server:
        yield server.uri


async def main(backend: str = "asyncio") -> None:
    async with quickstart_server() as uri:
        builder = (
            DbConnection.builder()
            .with_uri(uri)
            .with_database_name(DATABASE)
            .with_scheduling()  # gives the connection a scheduler: conn.scheduler
        )
        # Leaving this block stops the scheduler and closes the connection: no task outlives it.
        async with builder.build() as conn:
            print("connected as", conn.identity)

            # 1. Call a reducer and wait for it to commit.
            result = await conn.call_reducer_async("add_person", "Alice")
            print("add_person('Alice') committed at", result.timestamp.to_iso())

            # 2. Schedule calls: once, in half a second; and every 0.2 s.
            scheduler = conn.scheduler
            once = scheduler.schedule_in_seconds("add_person", ("Bob",), 0.5)
            every = scheduler.schedule_at_interval("add", (40, 2), 0.2)

            outcome = await scheduler.wait_for(once)  # the one-shot's result
            assert outcome is not None
            print(
                f"scheduled add_person('Bob') ran {outcome.lateness.format_human_readable()} "
                "after its fire time"
            )
            # anyio's sleep is asyncio.sleep here and trio.sleep under trio (quickstart_trio.py)
            await anyio.sleep(0.5)
            scheduler.cancel_schedule(every)
            print("the interval ran", scheduler.get_schedule(every).run_count, "times")

            # 3. Read what the reducers wrote.
            people = (await conn.query("SELECT * FROM person"))["person"]
            names = sorted(row["name"] for row in people)
            print("person table:", names)
            assert {"Alice", "Bob"} <= set(names)
            stats = scheduler.get_execution_stats()
            print(
                f"{stats['total_executions']} scheduled executions, "
                f"success rate {stats['success_rate']:.0%}"
            )
    print(f"quickstart ({backend}): OK")


if __name__ == "__main__":
    asyncio.run(main())
