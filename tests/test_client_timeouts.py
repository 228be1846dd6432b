"""Call deadlines: one timeout task per connection keeps every call's deadline.

A call registered later with a shorter timeout must still time out first, a call that got its
answer leaves nothing behind, and the connection stays usable after a timeout.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _client_support import FakeServer, FakeSocket, answer_ok

from spacetime_sched import CallTimeoutError
from spacetime_sched.client import DbConnection, DbConnectionBuilder
from spacetime_sched.client._calls import _COMPACT_SLACK


def builder(server: FakeServer) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


async def never_answer(ws: FakeSocket, message: Any) -> None:
    pass


async def test_a_shorter_timeout_registered_later_fires_first() -> None:
    server = FakeServer(never_answer)
    outcomes: list[tuple[str, float]] = []

    async def call(name: str, seconds: float) -> None:
        started = anyio.current_time()
        with pytest.raises(CallTimeoutError, match=f"no answer within {seconds} s"):
            await conn.call_reducer_raw("add", b"", timeout=seconds)
        outcomes.append((name, anyio.current_time() - started))

    async with builder(server).build() as conn:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "long", 1.0)
                await anyio.sleep(0.01)
                tg.start_soon(call, "short", 0.05)
        assert conn.pending_calls == 0
    assert [name for name, _ in outcomes] == ["short", "long"]
    assert outcomes[0][1] < 0.5
    assert outcomes[1][1] >= 1.0


async def test_answered_calls_leave_no_deadlines_behind() -> None:
    server = FakeServer(answer_ok)
    async with builder(server).build() as conn:
        calls = _COMPACT_SLACK + 100
        for _ in range(calls):
            await conn.call_reducer_raw("add", b"\0" * 8, timeout=60)
        assert conn.pending_calls == 0
        # The long deadlines of answered calls were swept out once they piled up.
        assert len(conn._pending._deadlines) < calls - _COMPACT_SLACK
        result = await conn.call_reducer_raw("add", b"\0" * 8, timeout=1)
        assert result.reducer == "add"
