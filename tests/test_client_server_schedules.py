"""The module's own schedule tables from a client (both backends, LocalServer): listing them
from the schema, and watching one with next fire times on the *server's* clock.

The server runs on a VirtualClock set years in the past, so its clock is far from ours: a
next fire time that came from our clock instead of the server's estimate would be off by
years, not milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from spacetime_sched import (
    ArgumentError,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    UnknownNameError,
)
from spacetime_sched.client import DbConnection, ScheduleChange, ScheduleTable
from spacetime_sched.testing import LocalServer, VirtualClock, example_module

START = Timestamp.parse("2020-01-01T00:00:00Z")
HOUR = TimeDuration.from_hours(1)
#: Skew estimates over loopback on a loaded machine are good to well under this.
TOLERANCE_MICROS = 2_000_000


@asynccontextmanager
async def quickstart(clock: VirtualClock) -> AsyncIterator[DbConnection]:
    async with (
        LocalServer(example_module.make_module(), database="quickstart", clock=clock) as server,
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name("quickstart")
        .with_connect_timeout(5)
        .build() as conn,
    ):
        yield conn


async def next_change(changes: AsyncIterator[ScheduleChange]) -> ScheduleChange:
    with anyio.fail_after(5):
        return await changes.__anext__()


async def test_schedule_tables_are_listed_from_the_schema() -> None:
    async with quickstart(VirtualClock(START)) as conn:
        assert await conn.schedule_tables() == [
            ScheduleTable("tick_schedule", "tick", "scheduled_at", "scheduled_id", True)
        ]


async def test_server_schedules_gives_fire_times_on_the_servers_clock() -> None:
    clock = VirtualClock(START)
    async with quickstart(clock) as conn, conn.server_schedules("tick_schedule") as watch:
        # The server's clock is years behind ours; the watch knows by how much.
        assert abs(watch.clock_skew.micros - (START - Timestamp.now()).micros) < TOLERANCE_MICROS
        assert abs((watch.server_now() - START).micros) < TOLERANCE_MICROS
        changes = aiter(watch)

        await conn.reducers.schedule_tick("once", ScheduleAt.Time(START + HOUR))
        added = await next_change(changes)
        assert added.kind == "added"
        once = added.schedule
        assert (once.next_fire, once.repeating, once.estimated) == (START + HOUR, False, False)
        expected_local = Timestamp.now() + HOUR
        assert abs((once.next_fire_local - expected_local).micros) < TOLERANCE_MICROS
        assert once.row.label == "once"

        await conn.reducers.schedule_tick(
            "beat", ScheduleAt.Interval(TimeDuration.from_minutes(10))
        )
        beat = (await next_change(changes)).schedule
        assert beat.repeating
        assert beat.estimated
        # Counted from when the client first saw the row (the insert time is not in the row).
        assert beat.next_fire == beat.first_seen + TimeDuration.from_minutes(10)
        assert [entry.row.label for entry in watch.entries()] == ["beat", "once"]  # soonest first
        assert watch.get(once.id) == once

        # The server fires the one-shot at its time and deletes its row.
        await clock.advance(HOUR)
        fired = await next_change(changes)
        assert (fired.kind, fired.schedule.id) == ("removed", once.id)
        assert watch.get(once.id) is None

        # Cancelled through the module's own reducer.
        await conn.reducers.cancel_tick(beat.id)
        cancelled = await next_change(changes)
        assert (cancelled.kind, cancelled.schedule.id) == ("removed", beat.id)
        assert watch.entries() == []
    # Leaving the block unsubscribed: the rows left the cache.
    assert conn.db["tick_schedule"].count() == 0


async def test_rows_already_there_are_in_the_first_entries() -> None:
    clock = VirtualClock(START)
    async with quickstart(clock) as conn:
        await conn.reducers.schedule_tick("early", ScheduleAt.Time(START + HOUR))
        async with conn.server_schedules("tick_schedule") as watch:
            (entry,) = watch.entries()
            assert (entry.row.label, entry.next_fire) == ("early", START + HOUR)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("table", "error", "message"),
    [
        ("person", ArgumentError, "'person' is not a schedule table"),
        ("tick_schedul", UnknownNameError, "did you mean 'tick_schedule'"),
    ],
)
async def test_server_schedules_refuses_other_tables(
    table: str, error: type[Exception], message: str
) -> None:
    async with quickstart(VirtualClock(START)) as conn:
        with pytest.raises(error, match=message):
            async with conn.server_schedules(table):
                pass  # pragma: no cover
