"""A big batched (v3) frame is bounded, and applying one does not starve the other tasks.

Regression test for issue 8, defect 4: a 48,904-byte gzip frame decoded to 6,710,886 messages
and the receive task applied them all (13.8 s) before any other task could run.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from _client_support import FakeServer, FakeSocket

from spacetime_sched import ProtocolError
from spacetime_sched._time import Timestamp
from spacetime_sched.client import SUBPROTOCOL_V3, DbConnection
from spacetime_sched.protocol import DEFAULT_MAX_MESSAGES_PER_FRAME, ReducerOkEmpty, ReducerResult

#: Results for request ids nobody waits for: the client logs each one at DEBUG and drops it.
STRAYS = 3000


def connection(server: FakeServer) -> Any:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
        .build()
    )


async def test_the_caller_runs_before_the_rest_of_a_big_frame_is_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def answer_then_strays(ws: FakeSocket, message: Any) -> None:
        answer = ReducerResult(message.request_id, Timestamp(1), ReducerOkEmpty())
        strays = [
            ReducerResult(1_000_000 + i, Timestamp(1), ReducerOkEmpty()) for i in range(STRAYS)
        ]
        await ws.reply_batch([answer, *strays], "gzip")

    def strays_applied() -> int:
        return sum("no caller waits" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.DEBUG, logger="spacetime_sched.client")
    server = FakeServer(answer_then_strays, subprotocol=SUBPROTOCOL_V3)
    async with connection(server) as conn:
        await conn.call_reducer_raw("add", b"\x00" * 8, timeout=10)
        # The call's result was the frame's first message; the receive task yielded soon after
        # it, so the caller ran long before the other 3,000 were applied.
        assert 0 < strays_applied() < STRAYS // 2
        # The rest of the frame is applied before the next frame: nothing is dropped.
        await conn.call_reducer_raw("add", b"\x00" * 8, timeout=10)
        assert strays_applied() >= STRAYS


async def test_a_frame_over_the_message_limit_closes_the_connection_with_a_protocol_error() -> None:
    async def flood(ws: FakeSocket, message: Any) -> None:
        stray = ReducerResult(7, Timestamp(1), ReducerOkEmpty())
        await ws.reply_batch([stray] * (DEFAULT_MAX_MESSAGES_PER_FRAME + 1), "gzip")

    reasons: list[BaseException | None] = []
    server = FakeServer(flood, subprotocol=SUBPROTOCOL_V3)
    builder = (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
        .on_disconnect(lambda conn, err: reasons.append(err))
    )
    async with builder.build() as conn:
        with pytest.raises(Exception, match="max_messages=65536"):
            await conn.call_reducer_raw("add", b"\x00" * 8, timeout=10)
    assert len(reasons) == 1
    assert isinstance(reasons[0], ProtocolError)
    assert "max_messages=65536" in str(reasons[0])
