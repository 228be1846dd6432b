"""The reducer-call hot path: one parked wait per call, cleaned up however the wait ends.

A call registers a waiter, sends, parks (a bare future on asyncio, a parked task on trio; see
``client/_parking.py``) and forgets the waiter in a ``finally``. These tests pin what that must
keep doing: a caller cancelled while it waits leaves nothing behind and its late answer is
ignored, the connection goes on serving calls, and the bytes sent are those of the checked
encoder.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _client_support import FakeServer, FakeSocket

from spacetime_sched import EncodeError, ProtocolError
from spacetime_sched._time import Timestamp
from spacetime_sched.client import DbConnection, DbConnectionBuilder
from spacetime_sched.client._calls import PendingRequests
from spacetime_sched.client._parking import parking_factory
from spacetime_sched.protocol import (
    BsatnRowList,
    CallReducer,
    PersistentTable,
    PlainReducerResult,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    TableUpdate,
    TransactionUpdate,
    decode_server_frame,
    decode_server_frame_plain,
    encode_call_reducer,
    encode_client_message,
    encode_server_frame,
    encode_server_message,
)
from spacetime_sched.protocol._codec import read_plain_reducer_result


def builder(server: FakeServer) -> DbConnectionBuilder:
    return (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


class HoldFirstCall:
    """A script that keeps the first call's answer until :meth:`release`, answers the rest."""

    def __init__(self) -> None:
        self.first: Any = None
        self.first_arrived = anyio.Event()
        self._ws: FakeSocket | None = None

    async def __call__(self, ws: FakeSocket, message: Any) -> None:
        if self.first is None:
            self.first, self._ws = message, ws
            self.first_arrived.set()
            return
        await ws.reply(ReducerResult(message.request_id, Timestamp(2), ReducerOkEmpty()))

    async def release(self) -> None:
        assert self._ws is not None
        await self._ws.reply(ReducerResult(self.first.request_id, Timestamp(1), ReducerOkEmpty()))


async def test_a_caller_cancelled_while_waiting_leaves_no_pending_call() -> None:
    script = HoldFirstCall()
    async with builder(FakeServer(script)).build() as conn:
        with anyio.fail_after(5):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:

                    async def cancel_once_sent() -> None:
                        await script.first_arrived.wait()
                        assert conn.pending_calls == 1
                        scope.cancel()

                    tg.start_soon(cancel_once_sent)
                    await conn.call_reducer_raw("add", b"\0" * 8, timeout=None)
            assert scope.cancelled_caught
            assert conn.pending_calls == 0
            # The answer that comes after all is dropped; the next call gets its own.
            await script.release()
            result = await conn.call_reducer_raw("add", b"\0" * 8)
            assert result.timestamp == Timestamp(2)
            assert conn.pending_calls == 0


async def test_a_caller_cancelled_with_a_deadline_set_leaves_no_pending_call() -> None:
    script = HoldFirstCall()
    async with builder(FakeServer(script)).build() as conn:
        with anyio.fail_after(5):
            with anyio.move_on_after(0.05) as scope:
                await conn.call_reducer_raw("add", b"\0" * 8, timeout=60)
            assert scope.cancelled_caught
            assert conn.pending_calls == 0
            await script.release()
            assert (await conn.call_reducer_raw("add", b"\0" * 8, timeout=60)).request_id == 1


async def test_many_callers_each_get_their_own_answer() -> None:
    async def answer_with_the_request_id(ws: FakeSocket, message: Any) -> None:
        stamp = Timestamp(message.request_id)
        await ws.reply(ReducerResult(message.request_id, stamp, ReducerOkEmpty()))

    async with builder(FakeServer(answer_with_the_request_id)).build() as conn:
        seen: list[tuple[int, Timestamp]] = []

        async def call() -> None:
            result = await conn.call_reducer_raw("add", b"\0" * 8)
            seen.append((result.request_id, result.timestamp))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(200):
                    tg.start_soon(call)
        assert sorted(seen) == [(i, Timestamp(i)) for i in range(200)]
        assert conn.pending_calls == 0


async def test_a_parking_woken_before_its_wait_returns_at_once() -> None:
    parking = parking_factory()()
    assert not parking.done()
    parking.set_result(None)
    assert parking.done()
    with anyio.fail_after(1):
        await parking


async def test_a_parking_whose_waiter_was_cancelled_is_done() -> None:
    parking = parking_factory()()
    with anyio.move_on_after(0.01) as scope:
        await parking
    assert scope.cancelled_caught
    assert parking.done()  # so the waker leaves it alone: no task waits any more
    await anyio.sleep(0.01)


async def test_a_parking_wakes_a_waiting_task() -> None:
    parking = parking_factory()()
    woken = []

    async def waiter() -> None:
        await parking
        woken.append(True)

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            assert woken == []
            parking.set_result(None)
    assert woken == [True]


@pytest.mark.parametrize(
    ("request_id", "reducer", "args"),
    [(0, "add", b""), (0xFFFF_FFFF, "add", b"\x01\x02"), (7, "naïve_ünïcode", b"x" * 300)],
)
def test_encode_call_reducer_gives_the_bytes_of_the_checked_encoder(
    request_id: int, reducer: str, args: bytes
) -> None:
    expected = encode_client_message(CallReducer(request_id, 0, reducer, args))
    assert encode_call_reducer(request_id, reducer, args) == expected


@pytest.mark.parametrize(
    ("request_id", "reducer", "args"),
    [(-1, "add", b""), (1 << 32, "add", b""), (0, "\ud800", b""), (0, "add", "not bytes")],
)
def test_encode_call_reducer_rejects_what_the_checked_encoder_rejects(
    request_id: int, reducer: str, args: Any
) -> None:
    with pytest.raises(EncodeError) as expected:
        encode_client_message(CallReducer(request_id, 0, reducer, args))
    with pytest.raises(type(expected.value), match="CallReducer"):
        encode_call_reducer(request_id, reducer, args)


# --- a reducer's answer that changed none of our rows is read without building its objects --


def plain_fields(message: ReducerResult) -> tuple[int, int, bytes] | None:
    """What a PlainReducerResult must say for ``message``, or None if it must not be one."""
    outcome = message.result
    if isinstance(outcome, ReducerOkEmpty):
        return message.request_id, message.timestamp.micros_since_epoch, b""
    if isinstance(outcome, ReducerOk) and not outcome.transaction_update.query_sets:
        return message.request_id, message.timestamp.micros_since_epoch, outcome.ret_value
    return None


EMPTY_ROWS = BsatnRowList.EMPTY
ROW_CHANGES = TransactionUpdate(
    (QuerySetUpdate(1, (TableUpdate("person", (PersistentTable(EMPTY_ROWS, EMPTY_ROWS),)),)),)
)
ANSWERS = [
    ReducerResult(0, Timestamp(5), ReducerOkEmpty()),
    ReducerResult(0xFFFF_FFFF, Timestamp(-3), ReducerOk(b"", TransactionUpdate(()))),
    ReducerResult(
        7, Timestamp(1_700_000_000_000_000), ReducerOk(b"\x2a\0\0\0", TransactionUpdate(()))
    ),
    ReducerResult(8, Timestamp(1), ReducerOk(b"", ROW_CHANGES)),
    ReducerResult(9, Timestamp(1), ReducerErr(b"\x03\0\0\0bad")),
    ReducerResult(10, Timestamp(1), ReducerInternalError("boom")),
]


@pytest.mark.parametrize("message", ANSWERS, ids=lambda m: type(m.result).__name__)
def test_a_reducer_result_is_plain_exactly_when_it_changed_no_rows(message: ReducerResult) -> None:
    data = b"\xff" + encode_server_message(message) + b"\xee"  # read from an offset, in a frame
    found = read_plain_reducer_result(data, 1)
    expected = plain_fields(message)
    if expected is None:
        assert found is None
        return
    assert found is not None
    plain, end = found
    assert (plain.request_id, plain.micros, plain.ret_value) == expected
    assert end == len(data) - 1


def test_a_frame_read_plain_holds_the_same_answers_in_the_same_order() -> None:
    others: list[Any] = [TransactionUpdate(()), *ANSWERS, TransactionUpdate(())]
    for batched in (True, False):
        for messages in ([others[i]] for i in range(len(others))) if not batched else [others]:
            frame = encode_server_frame(messages, batched=batched)
            full = decode_server_frame(frame, batched=batched)
            plain = decode_server_frame_plain(frame, batched=batched)
            assert len(plain) == len(full) == len(messages)
            for got, message in zip(plain, full, strict=True):
                if isinstance(got, PlainReducerResult):
                    assert plain_fields(message) == (got.request_id, got.micros, got.ret_value)
                else:
                    assert got == message


def test_a_truncated_plain_answer_is_a_protocol_error_as_before() -> None:
    frame = encode_server_frame([ANSWERS[2]], batched=True)
    for cut in range(2, len(frame)):
        with pytest.raises(ProtocolError):
            decode_server_frame(frame[:cut], batched=True)
        with pytest.raises(ProtocolError):
            decode_server_frame_plain(frame[:cut], batched=True)


async def test_request_ids_wrap_around_at_u32_and_skip_ids_still_in_flight() -> None:
    pending = PendingRequests()
    pending._next_id = 0xFFFF_FFFE
    first, _ = pending.register("a")
    last, _ = pending.register("b")
    assert (first, last) == (0xFFFF_FFFE, 0xFFFF_FFFF)
    wrapped, _ = pending.register("c")
    assert wrapped == 0
    # Id 1 is free, id 2 is still in flight (a call from before the wrap): it is skipped.
    pending._waiters[2] = pending._waiters.pop(wrapped)
    assert [pending.register(what)[0] for what in "de"] == [1, 3]
