"""Protocol negotiation: v3 (several messages per frame) and v2 (one), both ways.

By default the client offers ``v3.bsatn.spacetimedb`` then ``v2.bsatn.spacetimedb`` and speaks
whatever the server picks; ``with_protocol("v2")`` / ``("v3")`` offers only one. Under v3 the
client packs queued calls into shared frames and reads every server frame as possibly several
messages. Each test runs on asyncio and on trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _client_support import FakeServer, FakeSocket

from spacetime_sched import ConfigurationError, ConnectError, ConnectionClosedError, ReducerError
from spacetime_sched._time import Timestamp
from spacetime_sched.client import (
    SUBPROTOCOL_V2,
    SUBPROTOCOL_V3,
    DbConnection,
    DbConnectionBuilder,
    WireProtocol,
)
from spacetime_sched.protocol import ReducerErr, ReducerOkEmpty, ReducerResult

testing = pytest.importorskip("spacetime_sched.testing")

DATABASE = "quickstart"


def fake_builder(server: FakeServer) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name(DATABASE)
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


def local_builder(server: Any) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name(DATABASE)
        .with_connect_timeout(5)
    )


def local_server() -> Any:
    return testing.LocalServer(testing.example_module.make_module(), database=DATABASE)


def bsatn_string(text: str) -> bytes:
    return len(text.encode()).to_bytes(4, "little") + text.encode()


async def pipelined_adds(conn: DbConnection, count: int) -> list[int]:
    sums: list[int] = []

    async def call(a: int) -> None:
        result = await conn.call_reducer_async("add", a, 1)
        sums.append(result.request_id)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for a in range(count):
                tg.start_soon(call, a)
    return sums


async def test_by_default_the_local_server_chooses_v3_and_pipelined_calls_all_succeed() -> None:
    async with local_server() as server, local_builder(server).build() as conn:
        assert conn.protocol == SUBPROTOCOL_V3
        request_ids = await pipelined_adds(conn, 200)
        assert conn.pending_calls == 0
    assert len(set(request_ids)) == 200


@pytest.mark.parametrize("forced", ["v2", "v3", SUBPROTOCOL_V2, WireProtocol.V3])
async def test_a_forced_protocol_is_the_one_spoken(forced: Any) -> None:
    expected = (
        SUBPROTOCOL_V2
        if str(getattr(forced, "value", forced)).startswith("v2")
        else (SUBPROTOCOL_V3)
    )
    async with (
        local_server() as server,
        local_builder(server).with_protocol(forced).build() as conn,
    ):
        assert conn.protocol == expected
        await pipelined_adds(conn, 50)
        people = await conn.query("SELECT * FROM person")
        assert people == {"person": []}


async def test_the_client_offers_v3_first_then_v2() -> None:
    server = FakeServer()
    async with fake_builder(server).build() as conn:
        assert conn.protocol == SUBPROTOCOL_V2
    assert server.offered == [SUBPROTOCOL_V3, SUBPROTOCOL_V2]


async def test_forcing_v2_offers_only_v2_and_sends_one_message_per_frame() -> None:
    server = FakeServer()
    async with fake_builder(server).with_protocol("v2").build() as conn:
        await pipelined_adds(conn, 100)
    assert server.offered == [SUBPROTOCOL_V2]
    assert server.frames == len(server.received) == 100


async def test_under_v3_queued_calls_share_frames() -> None:
    server = FakeServer(subprotocol=SUBPROTOCOL_V3)
    async with fake_builder(server).build() as conn:
        assert conn.protocol == SUBPROTOCOL_V3
        await conn.call_reducer_async("add", 0, 0)  # fetches the schema
        server.frames = 0
        await pipelined_adds(conn, 300)
    assert sorted(m.request_id for m in server.received) == list(range(301))
    assert server.frames < 10  # all 300 calls are queued before the writer runs


async def test_a_v3_frame_of_many_results_answers_each_call_by_request_id() -> None:
    held: list[Any] = []
    everyone_asked = anyio.Event()

    async def answer_all_at_once_in_reverse(ws: FakeSocket, message: Any) -> None:
        held.append(message)
        if len(held) < 100:
            return
        everyone_asked.set()
        # Call i sends add(i, 0). Odd calls fail, even ones commit; all 100 answers go in one
        # frame, in reverse order.
        results = []
        for m in reversed(held):
            i = int.from_bytes(m.args[:4], "little")
            outcome = ReducerErr(bsatn_string(f"no {i}")) if i % 2 else ReducerOkEmpty()
            results.append(ReducerResult(m.request_id, Timestamp(1000 + i), outcome))
        await ws.reply_batch(results)

    server = FakeServer(answer_all_at_once_in_reverse, subprotocol=SUBPROTOCOL_V3)
    outcomes: dict[int, Any] = {}

    async def call(i: int) -> None:
        try:
            result = await conn.call_reducer_async("add", i, 0)
        except Exception as exc:
            outcomes[i] = exc
        else:
            outcomes[i] = result

    async with fake_builder(server).build() as conn:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(100):
                    tg.start_soon(call, i)
        assert everyone_asked.is_set()
        assert conn.pending_calls == 0
    for i, outcome in outcomes.items():
        if i % 2:
            assert isinstance(outcome, ReducerError)
            assert outcome.message == f"no {i}"
        else:
            assert outcome.timestamp == Timestamp(1000 + i)
    assert len(outcomes) == 100


async def test_the_initial_v3_frame_may_carry_more_than_initial_connection() -> None:
    server = FakeServer(subprotocol=SUBPROTOCOL_V3)
    async with fake_builder(server).build() as conn:
        assert conn.protocol == SUBPROTOCOL_V3
        assert (await conn.call_reducer_async("add", 1, 2)).request_id == 0


async def test_an_empty_v3_frame_is_a_protocol_error_that_ends_the_connection() -> None:
    async def empty_frame(ws: FakeSocket, message: Any) -> None:
        await ws.send_raw(b"\x00")

    server = FakeServer(empty_frame, subprotocol=SUBPROTOCOL_V3)
    async with fake_builder(server).build() as conn:
        with pytest.raises(ConnectionClosedError):
            await conn.call_reducer_async("add", 1, 2, timeout=5)
        assert conn.pending_calls == 0
        assert "empty v3 server frame" in str(conn.close_reason)


async def test_a_server_that_picks_an_unoffered_protocol_is_refused() -> None:
    server = FakeServer(subprotocol=SUBPROTOCOL_V3)
    with pytest.raises(ConnectError, match=r"subprotocol v3\.bsatn\.spacetimedb"):
        async with fake_builder(server).with_protocol("v2").build():
            pass


def test_an_unknown_protocol_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="protocol: expected 'auto', 'v3' or 'v2'"):
        DbConnection.builder().with_protocol("v4")
