"""Bad arguments to the client's public API fail at the call, with the project's own
:class:`ArgumentError` naming the argument, and never harm the connection (issue 8, defects 3
and 9)."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import anyio
import pytest
from _client_support import FakeServer

from spacetime_sched import ArgumentError, CallTimeoutError, ConfigurationError
from spacetime_sched.client import DbConnection, DbConnectionBuilder
from spacetime_sched.protocol import CallReducer


def builder(server: FakeServer) -> DbConnectionBuilder[DbConnection]:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


# --- call timeouts (defect 3) ------------------------------------------------------------------

BAD_TIMEOUTS = [math.nan, -1, -0.001, "5", b"5", True, [1]]


@pytest.mark.parametrize("bad", BAD_TIMEOUTS, ids=repr)
async def test_a_bad_call_timeout_is_refused_at_the_call_and_the_connection_lives_on(
    bad: Any,
) -> None:
    server = FakeServer()
    async with builder(server).build() as conn:
        with pytest.raises(ArgumentError, match="timeout"):
            await conn.call_reducer_async("add", 1, 2, timeout=bad)
        with pytest.raises(ArgumentError, match="timeout"):
            await conn.call_reducer_raw("add", b"", timeout=bad)
        with pytest.raises(ArgumentError, match="timeout"):
            await conn.query("SELECT * FROM person", timeout=bad)
        with pytest.raises(ArgumentError, match="timeout"):
            await conn.subscribe("SELECT * FROM person", timeout=bad)
        await anyio.sleep(0.01)  # let the timeout task run: it must not have died
        result = await conn.call_reducer_async("add", 3, 4, timeout=2)
        assert result.reducer == "add"
        assert conn.is_connected
    # Nothing bad was sent; only the good call reached the server.
    assert server.received == [CallReducer(0, 0, "add", b"\x03\x00\x00\x00\x04\x00\x00\x00")]


@pytest.mark.parametrize("seconds", [None, 0, 0.5, 2, math.inf])
async def test_good_timeouts_are_accepted(seconds: float | None) -> None:
    async with builder(FakeServer()).build() as conn:
        with contextlib.suppress(CallTimeoutError):  # 0 s may expire before the answer
            result = await conn.call_reducer_raw("add", b"", timeout=seconds)
            assert result.reducer == "add"
        assert conn.is_connected


# --- call arguments (defect 9) -----------------------------------------------------------------


async def test_raw_arguments_must_be_bytes() -> None:
    async with builder(FakeServer()).build() as conn:
        with pytest.raises(ArgumentError, match=r"reducer 'add': args: .*bytes, got str"):
            await conn.call_reducer_raw("add", "str")  # type: ignore[arg-type]
        await conn.call_reducer_raw("add", bytearray())


@pytest.mark.parametrize(
    ("queries", "match"),
    [
        (5, r"queries: expected an SQL string or a list of them, got int"),
        (b"SELECT 1", r"queries: .*got bytes"),
        (["SELECT * FROM person", 5], r"queries\[1\]: expected an SQL string, got int"),
        ([], r"queries: expected 1 to \d+ queries, got 0"),
    ],
)
async def test_subscribe_names_the_bad_query(queries: Any, match: str) -> None:
    async with builder(FakeServer()).build() as conn:
        with pytest.raises(ArgumentError, match=match):
            await conn.subscribe(queries)
        assert conn.is_connected


async def test_a_reducer_name_must_be_a_string() -> None:
    async with builder(FakeServer()).build() as conn:
        with pytest.raises(ArgumentError, match="reducer_name"):
            await conn.call_reducer_async(5)  # type: ignore[arg-type]


# --- builder options (defect 9): refused where they are written --------------------------------


@pytest.mark.parametrize(
    ("configure", "match"),
    [
        (lambda b: b.with_uri("ftp://x"), "uri: expected http://"),
        (lambda b: b.with_uri(5), "uri: expected a str"),
        (lambda b: b.with_uri("http://"), "uri"),
        (lambda b: b.with_max_message_size(10**20), "max_message_size: expected 1024 to"),
        (lambda b: b.with_max_message_size(10), "max_message_size"),
        (lambda b: b.with_max_message_size("big"), "max_message_size: expected an int"),
        (lambda b: b.with_connect_timeout(math.nan), "connect_timeout"),
        (lambda b: b.with_connect_timeout("5"), "connect_timeout"),
        (lambda b: b.with_database_name(""), "database"),
        (lambda b: b.with_database_name("a/b"), "database"),
        (lambda b: b.with_token(5), "token"),
        (lambda b: b.with_confirmed_reads("yes"), "confirmed_reads"),
        (lambda b: b.with_verify("no"), "verify"),
        (lambda b: b.with_transport(object()), "transport"),
        (lambda b: b.with_scheduling(max_concurrent_executions=0), "max_concurrent_executions"),
        (lambda b: b.with_scheduling(max_concurrent_executions=2.5), "max_concurrent_executions"),
        (lambda b: b.on_connect(5), "on_connect"),
        (lambda b: b.with_credentials_file(5), "credentials file"),
        (lambda b: b.with_compression(5), "compression"),
        (lambda b: b.with_protocol(5), "protocol"),
    ],
)
def test_a_bad_builder_option_fails_at_the_call_naming_the_option(
    configure: Any, match: str
) -> None:
    with pytest.raises(ArgumentError, match=match) as info:
        configure(DbConnection.builder())
    assert isinstance(info.value, ConfigurationError)  # an ArgumentError about an option


def test_options_other_than_connect_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="options: expected ConnectOptions"):
        DbConnection("ws://localhost:3000")  # type: ignore[arg-type]
