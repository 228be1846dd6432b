"""Procedures: plain or async functions that return a value, with transactions on request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from _server_support import session, subscribe_all

from spacetime_sched import sats
from spacetime_sched.protocol import (
    CallProcedure,
    PersistentTable,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    TransactionUpdate,
)
from spacetime_sched.testing._server import LocalServer, Module, ProcedureContext, ReducerContext


def counter_module() -> Module:
    module = Module("counter")
    module.table("hit", [("n", sats.U32)], public=True)

    @module.procedure(params=[("n", sats.U32)], returns=sats.U32)
    def record(ctx: ProcedureContext, n: int) -> int:
        ctx.with_tx(lambda tx: tx.db.hit.insert({"n": n}))
        return n * 2

    @module.procedure(returns=sats.STRING)
    async def slow_hello(ctx: ProcedureContext) -> str:
        await anyio.sleep(0.01)  # procedures may await, unlike reducers
        return f"hello {ctx.sender.to_hex()[:4]}"

    @module.procedure
    def broken(ctx: ProcedureContext) -> None:
        ctx.with_tx(_fail)

    return module


def _fail(ctx: ReducerContext) -> None:
    ctx.db.hit.insert({"n": 0})
    raise ValueError("nope")


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(counter_module()) as server:
        yield server


async def test_a_procedure_returns_its_value_as_bsatn(server: LocalServer) -> None:
    async with session(server) as client:
        await client.send(CallProcedure(1, 0, "slow_hello", b""))
        result = await client.receive()
        assert isinstance(result, ProcedureResult)
        assert isinstance(result.status, ProcedureReturned)
        assert sats.decode(sats.STRING, result.status.value) == "hello c200"
        assert result.total_host_execution_duration.micros >= 10_000


async def test_with_tx_commits_and_subscribers_see_it(server: LocalServer) -> None:
    async with session(server) as watcher, session(server) as caller:
        await subscribe_all(watcher, "SELECT * FROM hit")
        await subscribe_all(caller, "SELECT * FROM hit")
        await caller.send(
            CallProcedure(1, 0, "record", sats.encode(sats.product(("n", sats.U32)), [21]))
        )
        own = await caller.receive()  # the caller's rows change before its result arrives
        result = await caller.receive()
        assert isinstance(own, TransactionUpdate)
        assert isinstance(result, ProcedureResult)
        assert isinstance(result.status, ProcedureReturned)
        assert sats.decode(sats.U32, result.status.value) == 42
        seen = await watcher.receive()
        assert isinstance(seen, TransactionUpdate)
        change = seen.query_sets[0].tables[0].rows[0]
        assert isinstance(change, PersistentTable)
        assert len(change.inserts) == 1
    assert server.host.table("hit").rows() == [{"n": 21}]


async def test_a_failing_transaction_is_an_internal_error_and_rolled_back(
    server: LocalServer,
) -> None:
    async with session(server) as client:
        await client.send(CallProcedure(1, 0, "broken", b""))
        result = await client.receive()
        assert isinstance(result, ProcedureResult)
        assert result.status == ProcedureInternalError("nope")
    assert server.host.table("hit").rows() == []
