"""Tables and transactions: what a reducer can do with ``ctx.db``, and all-or-nothing commits."""

from __future__ import annotations

from typing import Any

import pytest

from spacetime_sched import Identity, ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched.protocol import (
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    TransactionUpdate,
)
from spacetime_sched.testing import example_module
from spacetime_sched.testing._clock import VirtualClock
from spacetime_sched.testing._server import (
    BadArgumentsError,
    Host,
    Module,
    NoSuchFunctionError,
    ReducerContext,
    SenderError,
)

#: A committed call whose caller subscribes to nothing: Ok with no updates, never OkEmpty
#: (crates/core/src/subscription/module_subscription_manager.rs).
COMMITTED = ReducerOk(b"", TransactionUpdate(()))


def inventory_module() -> Module:
    """A table with a primary key, an auto_inc column and a unique column, and reducers that
    run a test-supplied function (so each test states what the reducer does)."""
    module = Module("inventory")
    module.table(
        "item",
        [("id", sats.U32), ("sku", sats.STRING), ("qty", sats.I32), ("seen", sats.TIMESTAMP)],
        primary_key="id",
        auto_inc="id",
        unique="sku",
        public=True,
    )
    module.table("note", [("text", sats.STRING)])  # no primary key

    @module.reducer(params=[("step", sats.U32)])
    def run(ctx: ReducerContext, step: int) -> None:
        STEPS[step](ctx)

    return module


STEPS: dict[int, Any] = {}


async def run(host: Host, body: Any) -> Any:
    """Run ``body(ctx)`` as the reducer ``run``; return the outcome."""
    STEPS[0] = body
    return host.call("run", [0])


async def test_insert_fills_auto_inc_and_returns_the_stored_row() -> None:
    stored: list[dict[str, Any]] = []
    async with Host(inventory_module(), clock=VirtualClock()) as host:

        def body(ctx: ReducerContext) -> None:
            stored.append(ctx.db.item.insert({"sku": "a", "qty": 1, "seen": ctx.timestamp}))
            stored.append(
                ctx.db.item.insert({"id": 0, "sku": "b", "qty": 2, "seen": ctx.timestamp})
            )
            stored.append(
                ctx.db.item.insert({"id": 10, "sku": "c", "qty": 3, "seen": Timestamp(0)})
            )

        assert await run(host, body) == COMMITTED
        assert [row["id"] for row in stored] == [1, 2, 10]
        assert stored[2]["seen"] == Timestamp(0)  # normalized to the SATS value
        assert host.table("item").rows() == stored
        assert host.table("item").count() == 3


async def test_find_filter_update_and_delete() -> None:
    async with Host(inventory_module(), clock=VirtualClock()) as host:

        def fill(ctx: ReducerContext) -> None:
            for sku, qty in [("a", 1), ("b", 2), ("c", 2)]:
                ctx.db.item.insert({"sku": sku, "qty": qty, "seen": ctx.timestamp})

        await run(host, fill)
        items = host.table("item")
        assert items.find(2)["sku"] == "b"  # type: ignore[index]
        assert items.find("c", by="sku")["id"] == 3  # type: ignore[index]
        assert items.find(99) is None
        assert [row["sku"] for row in items.filter(qty=2)] == ["b", "c"]
        assert [row["sku"] for row in items.filter(lambda row: row["qty"] < 2)] == ["a"]

        def change(ctx: ReducerContext) -> None:
            row = ctx.db.item.find(1)
            assert row is not None
            ctx.db.item.update({**row, "qty": 7})
            assert ctx.db.item.delete(2) is True
            assert ctx.db.item.delete(ctx.db.item.find(3)) is True
            assert ctx.db.item.delete(99) is False

        assert await run(host, change) == COMMITTED
        assert [(row["id"], row["qty"]) for row in items.rows()] == [(1, 7)]


async def test_unique_columns_refuse_duplicates_and_the_reducer_fails() -> None:
    async with Host(inventory_module(), clock=VirtualClock()) as host:

        def duplicate(ctx: ReducerContext) -> None:
            ctx.db.item.insert({"sku": "a", "qty": 1, "seen": Timestamp(0)})
            ctx.db.item.insert({"sku": "a", "qty": 2, "seen": Timestamp(0)})

        outcome = await run(host, duplicate)
        # Like Rust's insert, which panics on a duplicate: the reducer crashed.
        assert isinstance(outcome, ReducerInternalError)
        assert (
            outcome.message
            == "table 'item': a row with sku = 'a' already exists (unique constraint)"
        )
        assert host.table("item").rows() == []


async def test_a_failing_reducer_rolls_back_inserts_updates_and_deletes() -> None:
    async with Host(inventory_module(), clock=VirtualClock()) as host:
        await run(
            host, lambda ctx: ctx.db.item.insert({"sku": "a", "qty": 1, "seen": Timestamp(0)})
        )
        before = host.table("item").rows()

        def mess_up(ctx: ReducerContext) -> None:
            ctx.db.item.update({**ctx.db.item.find(1), "qty": 100})
            ctx.db.item.insert({"sku": "b", "qty": 2, "seen": Timestamp(0)})
            ctx.db.item.delete(1)
            ctx.db.item.insert(
                {"id": 1, "sku": "a2", "qty": 3, "seen": Timestamp(0)}
            )  # reuses the key
            ctx.db.note.insert({"text": "never"})
            raise SenderError("changed my mind")  # the reducer returns Err

        outcome = await run(host, mess_up)
        assert isinstance(outcome, ReducerErr)
        assert outcome.message == "changed my mind"
        assert host.table("item").rows() == before
        assert host.table("note").rows() == []
        # The unique index is back too: the old key finds the old row, the new one nothing.
        assert host.table("item").find("a", by="sku") == before[0]
        assert host.table("item").find("a2", by="sku") is None


async def test_rows_are_validated_against_the_row_type() -> None:
    async with Host(inventory_module(), clock=VirtualClock()) as host:
        for row, message in [
            ({"sku": "a", "qty": 2**40, "seen": Timestamp(0)}, "item.qty: expected i32"),
            ({"sku": "a", "qty": 1}, "lacks column"),
            ({"sku": "a", "qty": 1, "seen": Timestamp(0), "extra": 1}, "no column"),
        ]:
            outcome = await run(host, lambda ctx, row=row: ctx.db.item.insert(row))
            assert isinstance(outcome, ReducerInternalError)
            assert message in str(outcome.message)


async def test_tables_outside_a_reducer_are_read_only() -> None:
    async with Host(inventory_module(), clock=VirtualClock()) as host:
        with pytest.raises(RuntimeError, match="read-only here"):
            host.table("item").insert({"sku": "a", "qty": 1, "seen": Timestamp(0)})


async def test_a_table_without_primary_key_deletes_by_value() -> None:
    async with Host(inventory_module(), clock=VirtualClock()) as host:
        await run(host, lambda ctx: [ctx.db.note.insert({"text": t}) for t in "xyz"])
        await run(host, lambda ctx: ctx.db.note.delete({"text": "y"}))
        assert [row["text"] for row in host.table("note")] == ["x", "z"]


async def test_calls_check_the_reducer_and_its_arguments() -> None:
    async with Host(example_module.make_module(), clock=VirtualClock()) as host:
        with pytest.raises(NoSuchFunctionError, match="no such reducer: 'nope'"):
            host.call("nope")
        with pytest.raises(BadArgumentsError, match="takes 2 arguments, got 1"):
            host.call("add", [1])
        with pytest.raises(
            BadArgumentsError, match=r"args.a: expected u32 in 0..4294967295, got -1"
        ):
            host.call("add", [-1, 2])
        with pytest.raises(BadArgumentsError, match="lifecycle reducer 'init' cannot be called"):
            host.call("init")


async def test_the_context_carries_sender_timestamp_and_database_identity() -> None:
    clock = VirtualClock()
    async with Host(example_module.make_module(), clock=clock) as host:
        schedule = ScheduleAt.Interval(TimeDuration(5))
        host.call("record_event", ["e", Timestamp(1), schedule])
        (event,) = host.table("event").rows()
        assert event["sender"] == host.owner_identity
        assert isinstance(event["sender"], Identity)
        (init,) = host.table("connection_log").rows()
        assert init["event"] == "init"
        assert init["identity"] == host.identity
        assert init["at"] == clock.now()
        assert host.identity.to_hex().startswith("c200")


async def test_a_failing_init_reducer_stops_the_host_from_starting() -> None:
    module = Module("broken")

    @module.init
    def init(ctx: ReducerContext) -> None:
        raise RuntimeError("no database for you")

    with pytest.raises(RuntimeError, match="the init reducer failed: no database for you"):
        async with Host(module, clock=VirtualClock()):
            pass


async def test_an_exception_in_the_host_block_propagates_unchanged() -> None:
    with pytest.raises(KeyError):
        async with Host(inventory_module(), clock=VirtualClock()):
            raise KeyError("from the test")
