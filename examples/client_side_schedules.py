"""Client-side schedules: this library calls any public reducer, on any module, on a schedule.

The scheduler runs in the Python process, inside the connection's ``async with`` block: it can
call any reducer a client may call (the module needs no schedule table, so this works on modules
you do not own), with cron expressions and time zones (DST-correct), retries and statistics. It
stops with the process; for schedules that must outlive it, see ``server_side_schedules.py``
and ``docs/scheduling-concepts.md``.

Here: a public reducer every 200 ms, a one-shot at a given time, and a cron schedule in a time
zone whose next fire time we print (a test with a virtual clock would advance to it; see
``virtual_clock.py``). The typed rows the reducers wrote are read back from ``conn.db``.

Runs against a local server in this process, or ``$SPACETIMEDB_URI`` if set.
Run it: ``python examples/client_side_schedules.py``
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import anyio

from spacetime_sched import TimeDuration, Timestamp
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


async def main() -> None:
    async with (
        quickstart_server() as uri,
        DbConnection.builder()
        .with_uri(uri)
        .with_database_name(DATABASE)
        .with_scheduling()  # conn.scheduler starts with the connection
        .build() as conn,
    ):
        await conn.subscribe("SELECT * FROM person")
        three_calls = anyio.Event()

        @conn.db.person.on_insert
        def on_person(row: Any) -> None:  # rows are typed: row.name
            if sum(1 for r in conn.db.person if r.name == "every 200 ms") >= 3:
                three_calls.set()

        scheduler = conn.scheduler

        # A public reducer, every 200 ms (the first call one period from now).
        every = scheduler.schedule_at_interval("add_person", ("every 200 ms",), 0.2)
        # Once, at a given time (a Timestamp or an aware datetime).
        once = scheduler.schedule_at_time(
            "add_person", ("once",), Timestamp.now() + TimeDuration(300_000)
        )
        # At 09:30 on weekdays, Paris time, summer and winter alike.
        cron = scheduler.schedule_cron(
            "add_person", ("stand-up",), "30 9 * * 1-5", timezone_info=ZoneInfo("Europe/Paris")
        )
        next_standup = scheduler.get_schedule(cron).next_run
        assert next_standup is not None
        print("next stand-up call:", next_standup.to_iso(), "(UTC)")

        with anyio.fail_after(10):
            outcome = await scheduler.wait_for(once)
            assert outcome is not None
            print(f"the one-shot ran {outcome.lateness.format_human_readable()} late")
            await three_calls.wait()
        scheduler.cancel_schedule(every)
        scheduler.cancel_schedule(cron)

        names = sorted(row.name for row in conn.db.person)  # typed rows
        print("person rows written by the schedules:", names)
        assert names.count("once") == 1
        assert names.count("every 200 ms") >= 3
        stats = scheduler.get_execution_stats()
        print(f"{stats['total_executions']} executions, success rate {stats['success_rate']:.0%}")
    print("client-side schedules: OK")


if __name__ == "__main__":
    anyio.run(main)
