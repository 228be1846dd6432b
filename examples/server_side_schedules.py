"""Schedule tables: let the *database* call reducers on a schedule.

A SpacetimeDB module can declare a schedule table: each row holds a ``ScheduleAt`` and the host
calls the table's reducer with that row when it is due, once (``ScheduleAt.Time``: the host then
deletes the row) or every period (``ScheduleAt.Interval``). It runs inside the database, so it
keeps running when no client is connected, and survives client restarts.

The quickstart module has one: ``tick_schedule(scheduled_id, scheduled_at, label)`` calls
``tick(row)``, which appends a row to ``tick_log``. Its reducers ``schedule_tick(label, at)`` and
``cancel_tick(scheduled_id)`` insert and delete schedule rows (a client cannot insert into the
table, nor call ``tick``, itself). Here we list the module's schedule tables, watch
``tick_schedule`` with ``conn.server_schedules`` (fire times on the server's clock), create one
schedule of each kind, see them fire in ``tick_log``, and cancel the repeating one.

Runs against a local server in this process, or ``$SPACETIMEDB_URI`` if set.
Run it: ``python examples/server_side_schedules.py``
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from spacetime_sched import ScheduleAt, TimeDuration
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
        DbConnection.builder().with_uri(uri).with_database_name(DATABASE).build() as conn,
    ):
        for table in await conn.schedule_tables():
            print(
                f"schedule table {table.table!r}: calls {table.reducer!r} at column "
                f"{table.scheduled_at_column!r}, id column {table.id_column!r}"
            )
        await conn.subscribe("SELECT * FROM tick_log")
        ticks: list[Any] = []
        three_heartbeats, once_fired = anyio.Event(), anyio.Event()
        ours: set[int] = set()  # the scheduled_ids this run created

        @conn.db.tick_log.on_insert
        def on_tick(row: Any) -> None:  # rows are typed: row.label, row.fired_at
            if row.scheduled_id in ours:
                ticks.append(row)
                print(f"  tick_log: {row.label!r} fired at {row.fired_at.to_iso()}")
                if row.label == "once":
                    once_fired.set()
                elif sum(1 for t in ticks if t.label == "heartbeat") >= 3:
                    three_heartbeats.set()

        async with conn.server_schedules("tick_schedule") as watch:
            print(f"the server's clock is {watch.clock_skew.micros} µs ahead of ours")
            changes = aiter(watch)

            async def schedule(label: str, at: ScheduleAt) -> int:
                await conn.reducers.schedule_tick(label, at)
                change = await changes.__anext__()
                ours.add(change.schedule.id)
                when = change.schedule.next_fire.to_iso()
                guess = " (estimated)" if change.schedule.estimated else ""
                print(f"{change.kind} schedule {change.schedule.id} ({label}): fires {when}{guess}")
                return int(change.schedule.id)

            with anyio.fail_after(10):
                # Every 300 ms, until cancelled; and once, half a second from now on the
                # server's clock.
                heartbeat = await schedule("heartbeat", ScheduleAt.at_interval(0.3))
                soon = watch.server_now() + TimeDuration(500_000)
                once = await schedule("once", ScheduleAt.Time(soon))
                print("next to fire:", [e.row.label for e in watch.entries()])
                await three_heartbeats.wait()
                await once_fired.wait()

                # The host deleted the one-shot's row once it ran; the repeating one stays.
                assert watch.get(once) is None
                assert watch.get(heartbeat) is not None
                print("after firing: heartbeat still scheduled, once removed")

                await conn.reducers.cancel_tick(heartbeat)
                assert watch.get(heartbeat) is None
            count = len(ticks)
            await anyio.sleep(0.5)  # nothing more arrives once the row is gone
            assert len(ticks) == count, "heartbeat still ticking after cancel_tick"
            beats = sum(1 for t in ticks if t.label == "heartbeat")
            print(f"cancelled heartbeat after {beats} ticks; no tick since")
    print("server-side schedules: OK")


if __name__ == "__main__":
    anyio.run(main)
