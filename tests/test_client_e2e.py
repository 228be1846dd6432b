"""The client end to end against LocalServer running the quickstart module, over loopback.

Every test runs on asyncio and on trio. The quickstart module has tables ``person``, ``event``,
``tick_schedule`` and ``tick_log``; reducers ``add_person(name)``, ``record_event(name, at,
schedule)``, ``schedule_tick(label, at)``, ``cancel_tick(scheduled_id)``, ``fail(message)``
(returns Err) and ``add(a: u32, b: u32)``; procedure ``server_time() -> Timestamp``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from spacetime_sched import ArgumentError, ConnectError, QueryError, ReducerError
from spacetime_sched._time import ScheduleAt, TimeDuration, Timestamp
from spacetime_sched.client import (
    DbConnection,
    DbConnectionBuilder,
    SpacetimeHttpClient,
    create_identity,
    row_dict,
)

testing = pytest.importorskip("spacetime_sched.testing")
if not hasattr(testing, "LocalServer"):
    pytest.skip("spacetime_sched.testing.LocalServer is not available yet", allow_module_level=True)

DATABASE = "quickstart"


@asynccontextmanager
async def local_server() -> AsyncIterator[Any]:
    async with testing.LocalServer(
        testing.example_module.make_module(), database=DATABASE
    ) as server:
        yield server


def builder(server: Any) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name(DATABASE)
        .with_connect_timeout(5)
    )


def names(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(row["name"] for row in rows)


async def test_connecting_gives_an_identity_a_connection_id_and_a_token() -> None:
    connected: list[Any] = []
    async with local_server() as server:
        on_connect = builder(server).on_connect(lambda c, identity, token: connected.append(c))
        async with on_connect.build() as conn:
            assert conn.is_active
            assert not conn.identity.is_zero()
            assert not conn.connection_id.is_zero()
            assert conn.token
            assert connected == [conn]
        assert not conn.is_active


async def test_a_credentials_file_brings_back_the_same_identity(tmp_path: Path) -> None:
    path = tmp_path / "creds" / "quickstart.json"
    async with local_server() as server:
        async with builder(server).with_credentials_file(path).build() as first:
            identity = first.identity
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        async with builder(server).with_credentials_file(path).build() as second:
            assert second.identity == identity
        async with builder(server).build() as anonymous:
            assert anonymous.identity != identity


async def test_a_minted_token_connects_as_the_minted_identity() -> None:
    async with local_server() as server:
        minted = await create_identity(server.uri)
        async with builder(server).with_token(minted.token).build() as conn:
            assert conn.identity == minted.identity


async def test_a_garbage_token_is_rejected_on_connect() -> None:
    async with local_server() as server:
        with pytest.raises(ConnectError, match="rejected the token"):
            async with builder(server).with_token("not-a-valid-jwt").build():
                pytest.fail("must not connect")


async def test_reducers_commit_and_their_rows_become_visible() -> None:
    async with local_server() as server, builder(server).build() as conn:
        result = await conn.call_reducer_async("add_person", "Alice")
        assert isinstance(result.timestamp, Timestamp)
        await conn.call_reducer_async("add", 1, 2)
        rows = await conn.query("SELECT * FROM person")
        assert names(rows["person"]) == ["Alice"]


async def test_a_reducer_that_returns_err_raises_reducer_error() -> None:
    async with local_server() as server, builder(server).build() as conn:
        with pytest.raises(ReducerError) as info:
            await conn.call_reducer_async("fail", "out of widgets")
        assert info.value.reducer == "fail"
        assert "out of widgets" in info.value.message
        await conn.call_reducer_async("add", 1, 2)  # the connection is still fine


async def test_bad_calls_raise_argument_error_naming_the_parameter() -> None:
    async with local_server() as server, builder(server).build() as conn:
        with pytest.raises(ArgumentError, match="no reducer 'no_such_reducer'"):
            await conn.call_reducer_async("no_such_reducer")
        with pytest.raises(ArgumentError, match="takes 2 arguments"):
            await conn.call_reducer_async("add", 1)
        with pytest.raises(ArgumentError, match=r"args\[1\] \(b\)"):
            await conn.call_reducer_async("add", 1, -5)
        with pytest.raises(ArgumentError, match=r"args\[0\] \(name\)"):
            await conn.call_reducer_async("add_person", 42)
        assert conn.pending_calls == 0


async def test_special_types_travel_as_arguments() -> None:
    now = Timestamp.now()
    async with local_server() as server, builder(server).build() as conn:
        await conn.call_reducer_async(
            "record_event", "launch", now, ScheduleAt.Interval(TimeDuration(5_000_000))
        )
        rows = (await conn.query("SELECT * FROM event"))["event"]
        assert [row["name"] for row in rows] == ["launch"]
        assert rows[0].at == now  # rows are typed; row_dict(row) is the dict form
        assert now in row_dict(rows[0]).values()


async def test_a_procedure_returns_its_decoded_value() -> None:
    async with local_server() as server, builder(server).build() as conn:
        before = Timestamp.now()
        value = await conn.call_procedure_async("server_time")
        assert isinstance(value, Timestamp)
        assert abs((value - before).micros) < 60_000_000


async def test_a_subscription_sees_rows_added_by_another_connection() -> None:
    async with (
        local_server() as server,
        builder(server).build() as watcher,
        builder(server).build() as writer,
    ):
        await writer.call_reducer_async("add_person", "Early")
        handle = await watcher.subscribe(["SELECT * FROM person"])
        assert names(handle.rows["person"]) == ["Early"]
        await writer.call_reducer_async("add_person", "Late")
        with anyio.fail_after(5):
            update = await handle.__anext__()
        assert names(update.for_table("person").inserts) == ["Late"]
        assert names(watcher.db["person"].rows()) == ["Early", "Late"]
        await handle.unsubscribe()
        assert len(watcher.db["person"]) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("compression", ["none", "gzip", "brotli"])
async def test_every_compression_delivers_the_same_rows(
    compression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spacetime_sched.client import _dispatch

    tags: set[int] = set()
    decode = _dispatch.decode_server_frame_plain

    def spy(frame: bytes, **options: Any) -> Any:
        tags.add(frame[0])
        return decode(frame, **options)

    monkeypatch.setattr(_dispatch, "decode_server_frame_plain", spy)
    many = [f"person-{i:04d}-{'x' * 60}" for i in range(40)]  # > 1 KiB: gets compressed
    async with local_server() as server:
        async with builder(server).build() as writer, anyio.create_task_group() as tg:
            for name in many:  # pipelined: all 40 calls in flight at once
                tg.start_soon(writer.call_reducer_async, "add_person", name)
        async with builder(server).with_compression(compression).build() as reader:
            handle = await reader.subscribe("SELECT * FROM person")
            assert names(handle.rows["person"]) == sorted(many)
            assert names((await reader.query("SELECT * FROM person"))["person"]) == sorted(many)
    # Big frames came compressed as asked (tag 1 brotli, 2 gzip); small ones never are.
    assert max(tags) == {"none": 0, "brotli": 1, "gzip": 2}[compression]


async def test_the_connection_scheduler_calls_reducers_on_the_server() -> None:
    async with (
        local_server() as server,
        builder(server).with_scheduling(max_concurrent_executions=2).build() as conn,
    ):
        schedule_id = conn.scheduler.schedule_in_seconds("add_person", ("Scheduled",), 0.05)
        with anyio.fail_after(5):
            result = await conn.scheduler.wait_for(schedule_id)
        assert result is not None
        rows = await conn.query("SELECT * FROM person")
        assert names(rows["person"]) == ["Scheduled"]


async def test_a_scheduling_block_on_a_live_connection() -> None:
    async with local_server() as server, builder(server).build() as conn:
        async with conn.scheduling(max_concurrent_executions=1) as scheduler:
            ids = [scheduler.schedule_in_seconds("add_person", (n,), 0.01) for n in "ABC"]
            with anyio.fail_after(5):
                for schedule_id in ids:
                    await scheduler.wait_for(schedule_id)
        assert names((await conn.query("SELECT * FROM person"))["person"]) == ["A", "B", "C"]


async def test_a_server_side_schedule_fires_and_is_seen_through_a_subscription() -> None:
    async with local_server() as server, builder(server).build() as conn:
        handle = await conn.subscribe(["SELECT * FROM tick_log"])
        soon = Timestamp.now() + TimeDuration(50_000)
        await conn.call_reducer_async("schedule_tick", "once", ScheduleAt.Time(soon))
        with anyio.fail_after(5):
            update = await handle.__anext__()
        assert len(update.for_table("tick_log").inserts) == 1


async def test_the_http_helpers_read_the_server_clock() -> None:
    async with local_server() as server, builder(server).build() as conn:
        skew = await conn.estimate_clock_skew(samples=3)
        assert abs(skew.micros) < 5_000_000  # same machine, same clock
        stamp = await SpacetimeHttpClient(server.uri).server_timestamp(DATABASE)
        assert abs((stamp - Timestamp.now()).micros) < 5_000_000


async def test_bad_sql_raises_query_error() -> None:
    async with local_server() as server, builder(server).build() as conn:
        with pytest.raises(QueryError):
            await conn.query("SELECT * FROM no_such_table")
        with pytest.raises(QueryError):
            await conn.subscribe("SELECT * FROM no_such_table")
        assert conn.is_active


async def test_async_callbacks_are_awaited() -> None:
    seen: list[str] = []

    async def on_connect(conn: DbConnection, identity: Any, token: str) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append("connect")

    async def on_disconnect(conn: DbConnection, error: BaseException | None) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(f"disconnect {error}")

    async with local_server() as server:
        connection = builder(server).on_connect(on_connect).on_disconnect(on_disconnect)
        async with connection.build():
            assert seen == ["connect"]
        assert seen == ["connect", "disconnect None"]
