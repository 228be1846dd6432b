"""Hostile clients cannot make the local server hold unbounded memory or stop serving others.

Each scenario asserts a clear error or close reason, that the server keeps serving a
well-behaved client, and that nothing is left behind (the ``async with`` blocks end, which
they could not with a task still running). The limits are :class:`ServerLimits`
(``docs/testing-server.md``); their defaults are a real server's.
"""

from __future__ import annotations

import base64
import os
import time
import tracemalloc
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from _server_support import V2, args, session
from anyio.abc import SocketStream

from spacetime_sched import protocol, sats
from spacetime_sched.protocol import CallReducer, InitialConnection, OneOffQuery, Subscribe
from spacetime_sched.testing import (
    LocalServer,
    Module,
    ReducerContext,
    ServerLimits,
    example_module,
)

DB = "/v1/database/quickstart"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    limits = ServerLimits(max_body_bytes=64 * 1024, max_outbox_messages=16, close_timeout=0.2)
    async with LocalServer(example_module.make_module(), database="quickstart", limits=limits) as s:
        yield s


@pytest.fixture
async def http(server: LocalServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.uri) as client:
        yield client


async def _still_serves(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{DB}/call/add", json=[1, 2])
    assert response.status_code == 200


# --- a raw WebSocket client, so that "never reads" really never reads -----------------------------


def _masked_binary_frame(payload: bytes) -> bytes:
    """One masked binary frame, as RFC 6455 requires of a client."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x82, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x82, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x82, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _raw_websocket(server: LocalServer) -> SocketStream:
    """Upgrade a plain TCP connection (and read nothing after the 101 response)."""
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /v1/database/{server.database}/subscribe?compression=None HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: {V2}\r\n\r\n"
    )
    await stream.send(request.encode())
    response = b""
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in response:
            response += await stream.receive(1)  # byte by byte: leave the frames unread
    assert response.startswith(b"HTTP/1.1 101"), response
    return stream


# --- scenarios ----------------------------------------------------------------------------------


def blob_module() -> Module:
    """One row, rewritten by every call: the database stays small, the updates do not."""
    module = Module("quickstart")
    module.table("blob", [("id", sats.U8), ("data", sats.STRING)], primary_key="id", public=True)

    @module.reducer(params=[("data", sats.STRING)])
    def set_blob(ctx: ReducerContext, data: str) -> None:
        if ctx.db.blob.find(0) is None:
            ctx.db.blob.insert({"id": 0, "data": data})
        else:
            ctx.db.blob.update({"id": 0, "data": data})

    return module


async def test_a_subscriber_that_never_reads_is_disconnected_and_others_are_not() -> None:
    limits = ServerLimits(max_outbox_messages=16, close_timeout=0.2)
    async with (
        LocalServer(blob_module(), limits=limits) as server,
        httpx.AsyncClient(base_url=server.uri) as http,
    ):
        await _flood_a_client_that_never_reads(server, http)


async def _flood_a_client_that_never_reads(server: LocalServer, http: httpx.AsyncClient) -> None:
    stream = await _raw_websocket(server)
    subscribe = protocol.encode_client_frame(Subscribe(1, 1, ["SELECT * FROM blob"]))
    await stream.send(_masked_binary_frame(subscribe))
    with anyio.fail_after(5):
        while not any(c.query_sets for c in server.host.connections):  # noqa: ASYNC110
            await anyio.sleep(0.01)
    (slow,) = server.host.connections
    async with session(server) as writer:
        tracemalloc.start()
        try:
            started = time.monotonic()
            sent = 0
            # Fill the socket buffers, then the outbox: the server must give up on the client.
            while slow in server.host.connections and time.monotonic() - started < 20:
                sent += 1
                big = str(sent % 10) * 60_000  # each update carries the old and new 60 kB row
                await writer.send(CallReducer(sent, 0, "set_blob", args(server, "set_blob", big)))
                await writer.receive()  # the writer, who reads, is answered every time
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert slow not in server.host.connections, f"still connected after {sent} updates"
        assert slow.close_reason is not None
        code, reason = slow.close_reason
        assert code == 1013
        assert "too slow: 16 messages were waiting" in reason
        # Bounded: the outbox (16 updates of 120 kB) and a few in flight, not one per update.
        assert peak < 8 * 1024 * 1024, f"peak {peak} bytes after {sent} updates"
        response = await http.post(f"/v1/database/{server.database}/call/set_blob", json=["ok"])
        assert response.status_code == 200
    await stream.aclose()


async def test_a_client_that_asks_but_never_reads_the_answers_is_disconnected() -> None:
    limits = ServerLimits(max_outbox_messages=16, close_timeout=0.2)
    async with (
        LocalServer(blob_module(), limits=limits) as server,
        httpx.AsyncClient(base_url=server.uri) as http,
    ):
        database = f"/v1/database/{server.database}"
        assert (
            await http.post(f"{database}/call/set_blob", json=["y" * 60_000])
        ).status_code == 200
        stream = await _raw_websocket(server)
        with anyio.fail_after(5):
            while not server.host.connections:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        (greedy,) = server.host.connections
        query = _masked_binary_frame(
            protocol.encode_client_frame(OneOffQuery(1, "SELECT * FROM blob"))
        )
        with anyio.fail_after(20):
            while greedy in server.host.connections:
                await stream.send(query)  # each answer carries the 60 kB row
        assert greedy.close_reason is not None
        assert greedy.close_reason[0] == 1013
        assert (await http.post(f"{database}/call/set_blob", json=["z"])).status_code == 200
        await stream.aclose()


async def test_garbage_instead_of_http_is_refused_and_the_server_keeps_serving(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    await stream.send(os.urandom(4096) + b"\r\n\r\n")
    with anyio.fail_after(5):
        try:
            answer = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
    await stream.aclose()
    await _still_serves(http)


async def test_garbage_websocket_frames_close_that_socket_with_a_reason(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    for frame in (b"\x00" * 5000, os.urandom(1024), b"\x01" + b"\xff" * 8):
        stream = await _raw_websocket(server)
        await stream.send(_masked_binary_frame(frame))
        received = b""
        with anyio.fail_after(5):
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        # The InitialConnection frame, then a close frame: 0x88, its length, code 1011, reason.
        close_at = received.rfind(b"\x88")
        assert close_at > 0, received[-200:]
        assert received[close_at + 2 : close_at + 4] == (1011).to_bytes(2, "big")
        assert b"invalid client message" in received[close_at:]
        await stream.aclose()
    assert server.host.connections == set()
    await _still_serves(http)


async def test_hundreds_of_connections_are_served_and_all_cleaned_up(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    count = 200
    greeted = 0

    async def one(ready: anyio.Event, done: anyio.Event) -> None:
        nonlocal greeted
        async with session(server) as client:
            assert isinstance(client.hello, InitialConnection)
            greeted += 1
            if greeted == count:
                ready.set()
            await done.wait()

    ready, done = anyio.Event(), anyio.Event()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one, ready, done)
            await ready.wait()
            assert len(server.host.connections) == count
            await _still_serves(http)
            done.set()
    with anyio.fail_after(10):
        while server.host.connections:  # noqa: ASYNC110 (the server sees the closes late)
            await anyio.sleep(0.01)
    # Idle TCP connections that never speak do not stop the server either.
    idle = [await anyio.connect_tcp("127.0.0.1", server.port) for _ in range(100)]
    await _still_serves(http)
    for stream in idle:
        await stream.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["/call/add_person", "/sql"])
async def test_a_huge_body_is_413_without_being_read(
    server: LocalServer, http: httpx.AsyncClient, route: str
) -> None:
    # Declared too large: refused before any of it is read.
    headers = {"content-type": "application/json"}
    declared = await http.post(f"{DB}{route}", content=b"x" * (65 * 1024), headers=headers)
    assert declared.status_code == 413
    assert "length limit exceeded" in declared.text
    # Streamed (no length): the server answers once the limit is passed, without waiting for
    # the other 99.9 MiB this client claims to be sending.
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    head = (
        f"POST {DB}{route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * (100 * 1024)
    await stream.send(head.encode() + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    answer = b""
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in answer:
            answer += await stream.receive()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    await stream.aclose()
    await _still_serves(http)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 60_000, "nested deeper than 128 levels"),
        (b'{"a":' * 12_000, "nested deeper than 128 levels"),
        (b"[" * 129 + b"]" * 129, "nested deeper than 128 levels"),
        # Brackets inside a string are not nesting: shallow, but not two u32s.
        (b'["' + b"[" * 60_000 + b'"]', "invalid arguments for 'add'"),
        # An unterminated string of escaped quotes: no quadratic scan, just "not JSON".
        (b'"' + b'\\"' * 30_000, "the body is not JSON"),
    ],
)
async def test_deep_or_malformed_json_is_a_400_with_a_message(
    http: httpx.AsyncClient, body: bytes, message: str
) -> None:
    started = time.monotonic()
    response = await http.post(
        f"{DB}/call/add", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.text
    assert time.monotonic() - started < 10
    await _still_serves(http)


def test_server_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be a positive number"):
        ServerLimits(max_body_bytes=0)
    with pytest.raises(ValueError, match="max_outbox_messages"):
        ServerLimits(max_outbox_messages=-1)
