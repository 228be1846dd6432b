"""Write your module's logic in Python and test your client against it, in-process.

``LocalServer`` serves a :class:`Module` you declare in Python the way a SpacetimeDB module
declares tables and reducers: same wire protocol, same schema format, same schedule-table
semantics. Point your client code at ``server.uri`` and test it without installing SpacetimeDB.
(A Python module only runs on the local server: a real SpacetimeDB runs Rust, C# or TypeScript
modules; keep both in step with a shared test suite such as the one below.)

This file declares a small "reminders" module and four tests. The server runs on a
``VirtualClock``, so its schedule tables fire when a test advances the clock: a reminder due
tomorrow is tested in milliseconds. Run it as a script
(``python examples/own_module_tests.py``), or put the tests in a pytest file with a fixture::

    @pytest.fixture
    def clock():
        return VirtualClock(START)

    @pytest.fixture
    async def conn(clock):                 # anyio's pytest plugin runs async fixtures
        async with serve(make_module(), clock) as conn:
            yield conn

    async def test_reminder_fires_once_a_day_later(conn, clock): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from spacetime_sched import ReducerError, ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched.client import DbConnection, row_dict
from spacetime_sched.testing import LocalServer, Module, ReducerContext, SenderError, VirtualClock


def make_module() -> Module:
    """The module under test: tasks, and reminders the *server* sends on a schedule."""
    module = Module("reminders")
    module.table(
        "task",
        [("id", sats.U64), ("title", sats.STRING), ("done", sats.BOOL)],
        primary_key="id",
        auto_inc="id",
        public=True,
    )
    # A schedule table: the server calls `remind(row)` when the row's `scheduled_at` is due.
    reminder = module.table(
        "reminder",
        [("scheduled_id", sats.U64), ("scheduled_at", sats.SCHEDULE_AT), ("task_id", sats.U64)],
        primary_key="scheduled_id",
        auto_inc="scheduled_id",
        scheduled="remind",
        public=True,
    )
    module.table(
        "notification",
        [("id", sats.U64), ("task_id", sats.U64), ("sent_at", sats.TIMESTAMP)],
        primary_key="id",
        auto_inc="id",
        public=True,
    )

    @module.reducer(params=[("title", sats.STRING)])
    def add_task(ctx: ReducerContext, title: str) -> None:
        if not title.strip():
            raise SenderError("a task needs a title")  # the caller gets ReducerError
        ctx.db.task.insert({"title": title, "done": False})

    @module.reducer(params=[("task_id", sats.U64)])
    def complete_task(ctx: ReducerContext, task_id: int) -> None:
        task = ctx.db.task.find(task_id)
        if task is None:
            raise SenderError(f"no task {task_id}")
        ctx.db.task.update({**task, "done": True})
        for row in ctx.db.reminder.filter(task_id=task_id):
            ctx.db.reminder.delete(row)  # a deleted schedule row never fires

    @module.reducer(params=[("task_id", sats.U64), ("delay", sats.TIME_DURATION)])
    def remind_in(ctx: ReducerContext, task_id: int, delay: TimeDuration) -> None:
        at = ScheduleAt.Time(ctx.timestamp + delay)
        ctx.db.reminder.insert({"scheduled_at": at, "task_id": task_id})

    @module.reducer(params=[("row", reminder)])
    def remind(ctx: ReducerContext, row: dict[str, Any]) -> None:
        ctx.db.notification.insert({"task_id": row["task_id"], "sent_at": ctx.timestamp})

    return module


#: Where every test's virtual clock starts.
START = Timestamp.parse("2025-06-02T09:00:00Z")


@asynccontextmanager
async def serve(module: Module, clock: VirtualClock) -> AsyncIterator[DbConnection]:
    """A fresh server for one test, on a virtual clock, and a connection to it."""
    async with (
        LocalServer(module, database="reminders", clock=clock) as server,
        DbConnection.builder().with_uri(server.uri).with_database_name("reminders").build() as conn,
    ):
        yield conn


# --- the tests ------------------------------------------------------------------------------
# Each test gets a connection to its own fresh server and the server's clock. The clock is
# virtual: reducers see its time as ctx.timestamp, and schedule tables fire when the test
# advances it, so a reminder due tomorrow is tested in milliseconds.


async def test_add_and_complete_task(conn: DbConnection, clock: VirtualClock) -> None:
    await conn.call_reducer_async("add_task", "write the report")
    (task,) = (await conn.query("SELECT * FROM task"))["task"]
    # Rows are typed (frozen classes named after the table); row_dict gives the dict form.
    assert (task.id, task.title, task.done) == (1, "write the report", False)
    assert row_dict(task) == {"id": 1, "title": "write the report", "done": False}
    await conn.call_reducer_async("complete_task", task.id)
    assert (await conn.query("SELECT * FROM task"))["task"][0].done is True


async def test_bad_input_is_rejected(conn: DbConnection, clock: VirtualClock) -> None:
    # (with pytest: `with pytest.raises(ReducerError, match="needs a title"):`)
    error: ReducerError | None = None
    try:
        await conn.call_reducer_async("add_task", "   ")
    except ReducerError as exc:
        error = exc
    assert error is not None, "add_task('   ') should fail"
    assert error.message == "a task needs a title", error.message
    # The failed call changed nothing: its transaction was rolled back.
    assert (await conn.query("SELECT * FROM task")).get("task", []) == []


async def test_reminder_fires_once_a_day_later(conn: DbConnection, clock: VirtualClock) -> None:
    await conn.subscribe(["SELECT * FROM notification", "SELECT * FROM reminder"])
    sent, done = anyio.Event(), anyio.Event()
    conn.db["notification"].on_insert(lambda row: sent.set())
    conn.db["reminder"].on_delete(lambda row: done.set())

    await conn.call_reducer_async("add_task", "call Bob")
    await conn.call_reducer_async("remind_in", 1, TimeDuration.from_days(1))
    assert len(conn.db["reminder"]) == 1

    await clock.advance(TimeDuration.from_hours(23))  # not yet due: nothing happens
    assert (await conn.query("SELECT * FROM notification")).get("notification", []) == []
    await clock.advance(TimeDuration.from_hours(1))  # due now
    with anyio.fail_after(5):  # a test that waits for the network needs a deadline
        await sent.wait()
        await done.wait()  # a ScheduleAt.Time row is deleted once it ran

    (note,) = conn.db["notification"].rows()
    assert row_dict(note) == {"id": 1, "task_id": 1, "sent_at": START + TimeDuration.from_days(1)}
    assert len(conn.db["reminder"]) == 0


async def test_completed_task_gets_no_reminder(conn: DbConnection, clock: VirtualClock) -> None:
    await conn.call_reducer_async("add_task", "water the plants")
    await conn.call_reducer_async("remind_in", 1, TimeDuration.from_hours(2))
    await conn.call_reducer_async("complete_task", 1)
    await clock.advance(TimeDuration.from_days(7))  # long past the reminder's time
    assert (await conn.query("SELECT * FROM notification")).get("notification", []) == []
    assert (await conn.query("SELECT * FROM reminder")).get("reminder", []) == []


TESTS: list[Callable[[DbConnection, VirtualClock], Awaitable[None]]] = [
    test_add_and_complete_task,
    test_bad_input_is_rejected,
    test_reminder_fires_once_a_day_later,
    test_completed_task_gets_no_reminder,
]


async def main() -> None:
    for test in TESTS:
        clock = VirtualClock(START)
        async with serve(make_module(), clock) as conn:  # every test gets its own database
            await test(conn, clock)
        print("PASSED", test.__name__)
    print(f"own module tests: {len(TESTS)} passed")


if __name__ == "__main__":
    anyio.run(main)
