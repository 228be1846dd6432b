"""Schedule tables: let the *server* call reducers on a schedule.

A SpacetimeDB module can declare a schedule table: each row holds a ``ScheduleAt`` and the server
calls the table's reducer with that row when it is due, once (``ScheduleAt.Time``) or
repeatedly (``ScheduleAt.Interval``). Nothing on the client has to stay connected for that.

The quickstart module has one: ``tick_schedule(scheduled_id, scheduled_at, label)`` calls
``tick(row)``, which appends a row to ``tick_log``. Its reducers ``schedule_tick(label, at)`` and
``cancel_tick(scheduled_id)`` insert and delete schedule rows. Here we create one of each kind,
watch ``tick_log`` rows arrive through a subscription, and cancel the repeating one.

Runs against a local server in this process, or ``$SPACETIMEDB_URI`` if set.
Run it: ``python examples/server_side_schedules.py``
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp
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
        await conn.subscribe(["SELECT * FROM tick_schedule", "SELECT * FROM tick_log"])
        ticks: list[dict[str, Any]] = []
        three_heartbeats, once_fired = anyio.Event(), anyio.Event()
        ours: set[int] = set()  # the scheduled_ids this run created

        @conn.db["tick_log"].on_insert
        def on_tick(row: dict[str, Any]) -> None:
            if row["scheduled_id"] in ours:
                ticks.append(row)
                print(f"  tick_log: {row['label']!r} fired at {row['fired_at'].to_iso()}")
                if row["label"] == "once":
                    once_fired.set()
                elif sum(1 for t in ticks if t["label"] == "heartbeat") >= 3:
                    three_heartbeats.set()

        async def schedule(label: str, at: ScheduleAt) -> int:
            before = {row["scheduled_id"] for row in conn.db["tick_schedule"]}
            await conn.call_reducer_async("schedule_tick", label, at)
            # The caller's own changes are in the client cache when the call returns.
            (row,) = [r for r in conn.db["tick_schedule"] if r["scheduled_id"] not in before]
            ours.add(row["scheduled_id"])
            print(f"schedule_tick({label!r}, {at!r}) -> scheduled_id {row['scheduled_id']}")
            return int(row["scheduled_id"])

        # Every 300 ms, until cancelled.
        heartbeat = await schedule("heartbeat", ScheduleAt.at_interval(0.3))
        # Once, half a second from now (an aware datetime works too: ScheduleAt.at_time(dt)).
        once = await schedule("once", ScheduleAt.Time(Timestamp.now() + TimeDuration(500_000)))

        with anyio.fail_after(10):
            await three_heartbeats.wait()
            await once_fired.wait()

        # A one-shot's row is deleted by the server after it ran; a repeating one stays.
        left = {row["scheduled_id"] for row in conn.db["tick_schedule"]}
        print(
            "after firing, tick_schedule holds heartbeat:", heartbeat in left, "once:", once in left
        )
        assert heartbeat in left
        assert once not in left

        await conn.call_reducer_async("cancel_tick", heartbeat)
        assert heartbeat not in {row["scheduled_id"] for row in conn.db["tick_schedule"]}
        count = len(ticks)
        await anyio.sleep(0.5)  # nothing more arrives once the row is gone
        assert len(ticks) == count, "heartbeat still ticking after cancel_tick"
        beats = sum(1 for t in ticks if t["label"] == "heartbeat")
        print(f"cancelled heartbeat after {beats} ticks; no tick since")
    print("server-side schedules: OK")


if __name__ == "__main__":
    anyio.run(main)
