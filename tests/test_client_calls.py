"""Reducer calls, subscriptions and scheduling, against the scripted in-process server.

The end-to-end versions against LocalServer are in ``test_client_e2e.py``; these pin down the
exact messages the client sends and how it treats the answers.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _client_support import FakeServer, FakeSocket, answer_ok

from spacetime_sched import ArgumentError, ReducerError
from spacetime_sched._time import Timestamp
from spacetime_sched.client import (
    DbConnection,
    DbConnectionBuilder,
    SubscriptionUpdate,
    row_dict,
)
from spacetime_sched.protocol import (
    BsatnRowList,
    CallReducer,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTable,
    QueryRows,
    QuerySetUpdate,
    ReducerOk,
    ReducerResult,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
)


def dicts(rows: list[Any]) -> list[Any]:
    """Typed rows in the codec's dict form (rows are typed; the dict form stays available)."""
    return [row_dict(row) for row in rows]


def builder(server: FakeServer) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


def person(name: str) -> bytes:
    return len(name).to_bytes(4, "little") + name.encode()


def rows(*names: str) -> BsatnRowList:
    return BsatnRowList.from_row_bytes(person(name) for name in names)


def changes(query_set_id: int, inserts: BsatnRowList, deletes: BsatnRowList) -> TransactionUpdate:
    table = TableUpdate("person", [PersistentTable(inserts, deletes)])
    return TransactionUpdate([QuerySetUpdate(query_set_id, [table])])


async def test_reducer_arguments_are_encoded_from_the_schema() -> None:
    server = FakeServer()
    async with builder(server).build() as conn:
        result = await conn.call_reducer_async("add", 1, 2)
    assert server.received == [CallReducer(0, 0, "add", b"\x01\x00\x00\x00\x02\x00\x00\x00")]
    assert result.reducer == "add"
    assert result.timestamp == Timestamp(1)


@pytest.mark.anyio  # explicit: parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((1,), r"reducer 'add' takes 2 arguments \(a: u32, b: u32\), got 1"),
        ((1, -1), r"args\[1\] \(b\): expected u32"),
        ((1, "two"), r"args\[1\] \(b\)"),
    ],
)
async def test_bad_arguments_fail_before_anything_is_sent(
    arguments: tuple[Any, ...], message: str
) -> None:
    server = FakeServer()
    async with builder(server).build() as conn:
        with pytest.raises(ArgumentError, match=message):
            await conn.call_reducer_async("add", *arguments)
    assert server.received == []


async def test_an_unknown_reducer_fails_before_anything_is_sent() -> None:
    server = FakeServer()
    async with builder(server).build() as conn:
        with pytest.raises(ArgumentError, match="no reducer 'nope'"):
            await conn.call_reducer_async("nope")
    assert server.received == []


async def test_request_ids_come_from_one_counter_for_all_requests() -> None:
    async def answer(ws: FakeSocket, message: Any) -> None:
        if isinstance(message, OneOffQuery):
            await ws.reply(OneOffQueryResult(message.request_id, QueryRows([])))
        else:
            await answer_ok(ws, message)

    server = FakeServer(answer)
    async with builder(server).build() as conn:
        await conn.call_reducer_async("add", 1, 2)
        assert await conn.query("SELECT * FROM person") == {}
        await conn.call_reducer_raw("add", b"")
    assert [m.request_id for m in server.received] == [0, 1, 2]


async def test_the_callers_own_changes_update_the_cache_before_the_call_returns() -> None:
    async def script(ws: FakeSocket, message: Any) -> None:
        if isinstance(message, Subscribe):
            applied = QueryRows([SingleTableRows("person", rows("Ann"))])
            await ws.reply(SubscribeApplied(message.request_id, message.query_set_id, applied))
        elif isinstance(message, CallReducer):
            update = changes(1, rows("Bob"), rows("Ann"))
            await ws.reply(ReducerResult(message.request_id, Timestamp(7), ReducerOk(b"", update)))
        elif isinstance(message, Unsubscribe):
            await ws.reply(UnsubscribeApplied(message.request_id, message.query_set_id, None))

    inserted: list[Any] = []
    deleted: list[Any] = []
    async with builder(FakeServer(script)).build() as conn:
        conn.db["person"].on_insert(inserted.append)
        conn.db["person"].on_delete(deleted.append)
        handle = await conn.subscribe("SELECT * FROM person")
        assert list(handle.rows) == ["person"]
        assert dicts(handle.rows["person"]) == [{"name": "Ann"}]
        assert handle.is_active
        result = await conn.call_reducer_async("add", 1, 2)
        assert result.transaction_update.query_sets[0].query_set_id.id == 1
        assert conn.db["person"].rows_as_dicts() == [{"name": "Bob"}]
        update = await handle.__anext__()
        assert dicts(update.for_table("person").inserts) == [{"name": "Bob"}]
        assert dicts(update.for_table("person").deletes) == [{"name": "Ann"}]
        await handle.unsubscribe()
        assert handle.is_ended
        assert len(conn.db["person"]) == 0
        assert [u async for u in handle] == []  # iteration ended
    assert dicts(inserted) == [{"name": "Ann"}, {"name": "Bob"}]
    assert dicts(deleted) == [{"name": "Ann"}, {"name": "Bob"}]


async def test_updates_from_other_clients_reach_callbacks_and_iterators() -> None:
    async def script(ws: FakeSocket, message: Any) -> None:
        if isinstance(message, Subscribe):
            applied = QueryRows([SingleTableRows("person", rows())])
            await ws.reply(SubscribeApplied(message.request_id, message.query_set_id, applied))
            await ws.reply(changes(message.query_set_id.id, rows("Cy", "Di"), rows()))

    seen: list[SubscriptionUpdate] = []
    async with builder(FakeServer(script)).build() as conn:
        handle = await conn.subscribe(["SELECT * FROM person"], on_update=seen.append)
        with anyio.fail_after(3):
            update = await handle.__anext__()
    assert dicts(update.tables[0].inserts) == [{"name": "Cy"}, {"name": "Di"}]
    assert seen == [update]
    assert handle.is_ended  # the connection closed


async def test_a_rejected_reducer_raises_reducer_error_with_the_message() -> None:
    from spacetime_sched.protocol import ReducerErr

    async def fail(ws: FakeSocket, message: Any) -> None:
        text = b"name must not be empty"
        error = len(text).to_bytes(4, "little") + text
        await ws.reply(ReducerResult(message.request_id, Timestamp(1), ReducerErr(error)))

    async with builder(FakeServer(fail)).build() as conn:
        with pytest.raises(ReducerError, match="name must not be empty") as info:
            await conn.call_reducer_async("add", 1, 2)
    assert info.value.reducer == "add"
    assert info.value.message == "name must not be empty"


async def test_the_auto_started_scheduler_calls_through_the_connection() -> None:
    server = FakeServer()
    async with builder(server).with_scheduling(max_concurrent_executions=2).build() as conn:
        schedule_id = conn.scheduler.schedule_in_seconds("add", (3, 4), 0.01)
        with anyio.fail_after(3):
            await conn.scheduler.wait_for(schedule_id)
    assert server.received == [CallReducer(0, 0, "add", b"\x03\x00\x00\x00\x04\x00\x00\x00")]


async def test_a_scheduler_started_in_the_block_lives_in_the_connection_task_group() -> None:
    server = FakeServer()
    async with builder(server).build() as conn:
        scheduler = conn.scheduler
        assert conn.scheduler is scheduler
        schedule_id = scheduler.schedule_in_seconds("add", (5, 6), 0.01)
        assert not scheduler.running  # the getter never starts a task
        await scheduler.start()
        with anyio.fail_after(3):
            await scheduler.wait_for(schedule_id)
    assert scheduler.closed
    assert len(server.received) == 1


async def test_a_scheduling_block_runs_a_scheduler_for_its_duration() -> None:
    server = FakeServer()
    async with builder(server).build() as conn:
        async with conn.scheduling(max_concurrent_executions=1) as scheduler:
            schedule_id = scheduler.schedule_in_seconds("add", (1, 1), 0.01)
            with anyio.fail_after(3):
                await scheduler.wait_for(schedule_id)
        assert scheduler.closed
    assert len(server.received) == 1


async def test_hundreds_of_calls_in_flight_each_get_their_own_answer() -> None:
    server = FakeServer()
    results: list[int] = []

    async def call(conn: DbConnection) -> None:
        results.append((await conn.call_reducer_async("add", 1, 2)).request_id)

    async with builder(server).build() as conn:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(300):
                    tg.start_soon(call, conn)
        assert conn.pending_calls == 0
    assert sorted(results) == list(range(300))
    assert sorted(m.request_id for m in server.received) == list(range(300))
