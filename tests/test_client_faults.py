"""How the client behaves when the server or the network misbehaves.

Each test drives a scripted in-process server (``_client_support.FakeServer``) and checks that
the failure is reported clearly, that no call waits forever and that no task is left behind
(leaving ``async with`` returns, so the connection's task group ended).
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest
from _client_support import TOKEN, FakeServer, FakeSocket, answer_ok, headers_of

from spacetime_sched import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    ProtocolError,
)
from spacetime_sched._time import Timestamp
from spacetime_sched.client import DbConnection, DbConnectionBuilder
from spacetime_sched.protocol import (
    CallReducer,
    InitialConnection,
    ReducerErr,
    ReducerResult,
    TransactionUpdate,
)


def builder(server: FakeServer) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


async def close_on_call(ws: FakeSocket, message: Any) -> None:
    await ws.close(1011, "module crashed")


async def garbage_on_call(ws: FakeSocket, message: Any) -> None:
    await ws.send_raw(b"\x00\xff\xfe\xfd garbage")


async def text_on_call(ws: FakeSocket, message: Any) -> None:
    await ws.send_text('{"ReducerResult": {}}')


async def silent(ws: FakeSocket, message: Any) -> None:
    pass


async def test_the_server_closing_mid_call_fails_the_call_and_reports_the_disconnect() -> None:
    reasons: list[BaseException | None] = []
    server = FakeServer(close_on_call)
    async with builder(server).on_disconnect(lambda conn, err: reasons.append(err)).build() as c:
        with pytest.raises(ConnectionClosedError, match="close code 1011: module crashed"):
            await c.call_reducer_raw("add", b"", timeout=5)
        assert not c.is_active
        assert c.pending_calls == 0
        with pytest.raises(ConnectionClosedError, match="closed"):
            await c.call_reducer_raw("add", b"", timeout=5)
    assert len(reasons) == 1
    assert isinstance(reasons[0], ConnectionClosedError)
    assert "1011" in str(reasons[0])


async def test_every_pending_call_fails_when_the_connection_drops() -> None:
    calls = 0

    async def close_on_third(ws: FakeSocket, message: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            await ws.close(1001, "going away")

    errors: list[BaseException] = []

    async def call(conn: DbConnection) -> None:
        try:
            await conn.call_reducer_raw("add", b"", timeout=10)
        except ConnectionClosedError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with (
            builder(FakeServer(close_on_third)).build() as conn,
            anyio.create_task_group() as tg,
        ):
            for _ in range(3):
                tg.start_soon(call, conn)
    assert len(errors) == 3


async def test_a_garbage_frame_is_a_protocol_error() -> None:
    reasons: list[BaseException | None] = []
    server = FakeServer(garbage_on_call)
    async with builder(server).on_disconnect(lambda conn, err: reasons.append(err)).build() as c:
        with pytest.raises(ConnectionClosedError) as info:
            await c.call_reducer_raw("add", b"", timeout=5)
        assert isinstance(info.value.__cause__, ProtocolError)
        assert isinstance(c.close_reason, ProtocolError)
    assert isinstance(reasons[0], ProtocolError)


async def test_a_text_frame_is_a_protocol_error() -> None:
    async with builder(FakeServer(text_on_call)).build() as conn:
        with pytest.raises(ConnectionClosedError):
            await conn.call_reducer_raw("add", b"", timeout=5)
        assert isinstance(conn.close_reason, ProtocolError)
        assert "text frame" in str(conn.close_reason)


async def test_a_slow_server_times_the_call_out_and_leaves_nothing_behind() -> None:
    async with builder(FakeServer(silent)).build() as conn:
        with anyio.fail_after(3):
            with pytest.raises(CallTimeoutError, match=r"reducer 'add': no answer within 0\.2 s"):
                await conn.call_reducer_raw("add", b"", timeout=0.2)
        assert conn.pending_calls == 0
        assert conn.is_active


async def test_a_late_answer_after_a_timeout_is_ignored() -> None:
    async def late(ws: FakeSocket, message: Any) -> None:
        await anyio.sleep(0.3)
        await answer_ok(ws, message)

    async with builder(FakeServer(late)).build() as conn:
        with pytest.raises(CallTimeoutError):
            await conn.call_reducer_raw("add", b"", timeout=0.05)
        await anyio.sleep(0.4)
        assert conn.is_active
        assert conn.pending_calls == 0


async def test_a_rejected_token_is_a_connect_error_that_never_shows_the_token() -> None:
    errors: list[BaseException] = []
    server = FakeServer(reject_status=401)
    secret = "secret-jwt-do-not-print"
    with pytest.raises(ConnectError, match="rejected the token") as info:
        async with builder(server).with_token(secret).on_connect_error(errors.append).build():
            pytest.fail("must not connect")
    assert secret not in str(info.value)
    assert errors == [info.value]


async def test_an_unreachable_host_fails_fast() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with anyio.fail_after(5):
        with pytest.raises(ConnectError, match=f"could not reach http://127.0.0.1:{port}"):
            async with (
                DbConnection.builder()
                .with_uri(f"ws://127.0.0.1:{port}")
                .with_database_name("quickstart")
                .build()
            ):
                pytest.fail("must not connect")


async def test_no_initial_connection_within_the_timeout_is_a_connect_error() -> None:
    server = FakeServer(initial=ReducerResult(0, Timestamp(0), ReducerErr(b"")))
    with pytest.raises(ConnectError, match="expected InitialConnection"):
        async with builder(server).build():
            pytest.fail("must not connect")


async def test_a_message_over_the_size_limit_closes_the_connection() -> None:
    async def huge(ws: FakeSocket, message: Any) -> None:
        await ws.send_raw(b"\x00" + b"x" * 4096)

    async with builder(FakeServer(huge)).with_max_message_size(2048).build() as conn:
        with pytest.raises(ConnectionClosedError):
            await conn.call_reducer_raw("add", b"", timeout=5)
        assert "more than 2048 bytes" in str(conn.close_reason)


async def test_an_error_in_the_body_propagates_unwrapped_and_closes_the_connection() -> None:
    with pytest.raises(KeyError, match="boom"):
        async with builder(FakeServer()).build() as conn:
            raise KeyError("boom")
    assert not conn.is_active


async def test_calls_after_the_block_raise_connection_closed() -> None:
    async with builder(FakeServer()).build() as conn:
        await conn.call_reducer_raw("add", b"")
    with pytest.raises(ConnectionClosedError, match="closed"):
        await conn.call_reducer_raw("add", b"")


async def test_disconnect_closes_early_and_reports_no_error() -> None:
    reasons: list[BaseException | None] = []
    async with builder(FakeServer()).on_disconnect(lambda c, e: reasons.append(e)).build() as c:
        await c.disconnect()
        assert not c.is_active
        with pytest.raises(ConnectionClosedError):
            await c.call_reducer_raw("add", b"")
    assert reasons == [None]


async def test_answers_are_matched_by_request_id_even_out_of_order() -> None:
    held: list[CallReducer] = []

    async def reverse_pairs(ws: FakeSocket, message: Any) -> None:
        held.append(message)
        if len(held) == 2:  # answer the second call first
            for call in reversed(held):
                error = call.reducer.encode()
                framed = len(error).to_bytes(4, "little") + error
                await ws.reply(ReducerResult(call.request_id, Timestamp(5), ReducerErr(framed)))
            held.clear()

    async with builder(FakeServer(reverse_pairs)).build() as conn:
        results: dict[str, str] = {}

        async def call(name: str) -> None:
            try:
                await conn.call_reducer_raw(name, b"", timeout=5)
            except Exception as exc:
                results[name] = getattr(exc, "message", "")

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "first")
            await anyio.sleep(0.05)
            tg.start_soon(call, "second")
    assert results == {"first": "first", "second": "second"}


async def test_the_upgrade_request_carries_the_query_and_the_bearer_token() -> None:
    server = FakeServer()
    async with (
        builder(server).with_token("tok").with_compression("brotli").with_confirmed_reads(False)
    ).build() as conn:
        assert conn.token == TOKEN  # the token from InitialConnection replaces ours
    scope = server.requests[0]
    assert scope["path"] == "/v1/database/quickstart/subscribe"
    assert scope["query_string"] in (b"compression=Brotli&confirmed=false",)
    assert headers_of(scope)["authorization"] == "Bearer tok"
    assert "v2.bsatn.spacetimedb" in headers_of(scope)["sec-websocket-protocol"]


async def test_compressed_frames_are_inflated() -> None:
    update = TransactionUpdate(())

    async def gzip_answer(ws: FakeSocket, message: Any) -> None:
        error = ("e" * 3000).encode()
        payload = len(error).to_bytes(4, "little") + error
        await ws.reply(ReducerResult(message.request_id, Timestamp(1), ReducerErr(payload)), "gzip")
        await ws.reply(update, "brotli")

    async with builder(FakeServer(gzip_answer)).build() as conn:
        with pytest.raises(Exception, match=r"e{3000}"):
            await conn.call_reducer_raw("add", b"", timeout=5)
        assert conn.is_active


async def test_reprs_never_show_the_token() -> None:
    b = builder(FakeServer()).with_token("secret-token-value")
    assert "secret-token-value" not in repr(b)
    assert "secret-token-value" not in repr(b.options())
    async with b.build() as conn:
        assert TOKEN not in repr(conn)
        assert TOKEN not in repr(conn.http)
    assert "secret" not in repr(InitialConnection(conn.identity, conn.connection_id, "secret"))


async def test_cancelling_the_block_from_outside_closes_the_connection_promptly() -> None:
    reasons: list[BaseException | None] = []
    server = FakeServer()
    with anyio.fail_after(3), anyio.move_on_after(0.1) as scope:
        async with (
            builder(server)
            .with_scheduling(max_concurrent_executions=1)
            .on_disconnect(lambda c, e: reasons.append(e))
            .build() as conn
        ):
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert not conn.is_active
    assert conn.scheduler.closed
    assert reasons == [None]


async def test_no_task_outlives_the_connection_block() -> None:
    before = {task.id for task in anyio.get_running_tasks()}
    async with builder(FakeServer()).with_scheduling().build() as conn:
        await conn.call_reducer_raw("add", b"")
        assert len(anyio.get_running_tasks()) > len(before)  # receive, writer, scheduler, ...
    async with builder(FakeServer(close_on_call)).build() as conn:
        with pytest.raises(ConnectionClosedError):
            await conn.call_reducer_raw("add", b"")
    assert {task.id for task in anyio.get_running_tasks()} <= before
