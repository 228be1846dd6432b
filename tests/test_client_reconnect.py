"""Reconnection against a LocalServer that is killed and restarted on the same port.

Every test runs on asyncio and on trio. The server runs a small module built here
(:func:`make_module`): a keyed table ``item(id: u32 pk, label)``, an unkeyed table
``note(text)``, both seeded by ``init`` from a :class:`World` the test controls, so that the
restarted server holds different rows; a reducer ``ping`` that a schedule calls; and an async
procedure ``stall`` that never returns, which keeps the server from reading the connection's
next messages: calls sent after it are in flight, deterministically, when the server dies.

A server runs in a task of the test's own task group (:class:`Servers`), so it can stop and
start again while the connection's ``async with`` block is open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import pytest
from _client_support import FakeServer, FakeSocket

from spacetime_sched import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    ConnectionLostError,
    QueryError,
    ReconnectPolicy,
    sats,
)
from spacetime_sched.client import DbConnection, DbConnectionBuilder, row_dict
from spacetime_sched.protocol import (
    BsatnRowList,
    CallReducer,
    PersistentTable,
    QueryRows,
    QuerySetUpdate,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
)

testing = pytest.importorskip("spacetime_sched.testing")

DATABASE = "recon"
SECRET = b"reconnect-test-secret-0123456789"
#: Small delays so that tests are quick; the backoff rule itself is tested without a server.
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, multiplier=2.0, jitter=0.2)


@attrs.define
class World:
    """What one server run starts with, and what it saw."""

    items: dict[int, str]
    notes: list[str]
    with_notes: bool = True  # False: the module has no ``note`` table (subscriptions to it fail)
    stalled: anyio.Event = attrs.field(factory=anyio.Event)
    pinged: anyio.Event = attrs.field(factory=anyio.Event)
    pings: int = 0


def make_module(world: World) -> Any:
    module = testing.Module(DATABASE)
    module.table("item", [("id", sats.U32), ("label", sats.STRING)], primary_key="id", public=True)
    if world.with_notes:
        module.table("note", [("text", sats.STRING)], public=True)

    @module.init
    def init(ctx: Any) -> None:
        for item_id, label in world.items.items():
            ctx.db.item.insert({"id": item_id, "label": label})
        for text in world.notes if world.with_notes else ():
            ctx.db.note.insert({"text": text})

    @module.reducer(params=[("id", sats.U32), ("label", sats.STRING)])
    def add_item(ctx: Any, item_id: int, label: str) -> None:
        ctx.db.item.insert({"id": item_id, "label": label})

    @module.reducer
    def ping(ctx: Any) -> None:
        world.pings += 1
        world.pinged.set()

    @module.procedure
    async def stall(ctx: Any) -> None:
        world.stalled.set()
        await anyio.sleep_forever()  # cancelled when the server stops

    return module


class Servers:
    """Start and stop LocalServers, each in a task of ``task_group``."""

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        self._stop: anyio.Event | None = None
        self._stopped: anyio.Event | None = None

    async def start(self, world: World, *, port: int = 0, secret: bytes = SECRET) -> Any:
        self._stop, self._stopped = anyio.Event(), anyio.Event()
        return await self._task_group.start(self._serve, world, port, secret)

    async def stop(self) -> None:
        """Kill the running server (its WebSockets close with 1001) and wait until it is gone."""
        assert self._stop is not None
        assert self._stopped is not None
        self._stop.set()
        await self._stopped.wait()

    async def _serve(
        self, world: World, port: int, secret: bytes, *, task_status: anyio.abc.TaskStatus[Any]
    ) -> None:
        stop, stopped = self._stop, self._stopped
        assert stop is not None
        assert stopped is not None
        try:
            async with testing.LocalServer(
                make_module(world), database=DATABASE, port=port, secret=secret
            ) as server:
                task_status.started(server)
                await stop.wait()
        finally:
            stopped.set()


def builder(server: Any, policy: ReconnectPolicy | bool = FAST) -> DbConnectionBuilder[Any]:
    _, token = server.mint_token()
    return (
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name(DATABASE)
        .with_token(token)
        .with_connect_timeout(5)
        .with_reconnect(policy)
    )


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) for a condition that has no event of its own to wait on."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - polling a view that has no event
            await anyio.sleep(0.002)


def task_ids() -> set[int]:
    return {task.id for task in anyio.get_running_tasks()}


def items(conn: DbConnection) -> dict[int, str]:
    return {row["id"]: row["label"] for row in conn.db["item"]}


def notes(conn: DbConnection) -> list[str]:
    return sorted(row["text"] for row in conn.db["note"])


class Recorder:
    """Every row callback of ``conn.db``'s ``item`` and ``note`` tables, in order."""

    def __init__(self, conn: DbConnection) -> None:
        self.calls: list[tuple[Any, ...]] = []
        for table in ("item", "note"):
            cache = conn.db[table]
            # Rows are typed; the calls record their dict form (row_dict).
            cache.on_insert(lambda row, t=table: self.calls.append(("insert", t, row_dict(row))))
            cache.on_delete(lambda row, t=table: self.calls.append(("delete", t, row_dict(row))))
        # on_update is for tables with a primary key (``note`` has none).
        conn.db["item"].on_update(
            lambda old, new: self.calls.append(("update", "item", row_dict(old), row_dict(new)))
        )


async def test_a_killed_server_comes_back_with_subscriptions_reconciled_and_schedules_running() -> (
    None
):
    before = task_ids()
    first = World(items={1: "one", 2: "two", 3: "three"}, notes=["a", "b"])
    second = World(items={1: "one", 2: "TWO", 4: "four"}, notes=["a", "c"])
    connects: list[Any] = []
    disconnects: list[BaseException | None] = []
    dropped = anyio.Event()
    lost: list[BaseException] = []
    scheduled: list[Any] = []
    retried = anyio.Event()

    def on_disconnect(conn: DbConnection, error: BaseException | None) -> None:
        disconnects.append(error)
        dropped.set()

    def on_result(result: Any) -> None:
        scheduled.append(result)
        if result.reducer_name == "add_item" and result.ok:
            retried.set()

    async def lose(call: Callable[[], Any]) -> None:
        with pytest.raises(ConnectionLostError) as caught:
            await call()
        lost.append(caught.value)

    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(first)
        port = server.port
        connection = (
            builder(server)
            .on_connect(lambda conn, identity, token: connects.append(identity))
            .on_disconnect(on_disconnect)
            .with_scheduling(max_concurrent_executions=4)
            .build()
        )
        async with connection as conn:
            identity = conn.identity
            item_sub = await conn.subscribe("SELECT * FROM item")
            note_sub = await conn.subscribe("SELECT * FROM note")
            published: list[Any] = []
            item_sub.on_update(published.append)
            recorder = Recorder(conn)
            assert items(conn) == first.items
            assert notes(conn) == ["a", "b"]
            conn.scheduler.add_execution_callback(on_result)
            conn.scheduler.schedule_at_interval("ping", [], 0.02)
            with anyio.fail_after(5):
                await first.pinged.wait()

            # The server stalls reading: what is sent from now on is in flight when it dies.
            async with anyio.create_task_group() as calls:
                calls.start_soon(lose, lambda: conn.call_procedure("stall", timeout=30))
                with anyio.fail_after(5):
                    await first.stalled.wait()
                calls.start_soon(lose, lambda: conn.call_reducer_async("add_item", 9, "nine"))
                # A scheduled call in flight too: its policy retries it once.
                conn.scheduler.schedule_in_seconds(
                    "add_item", (7, "seven"), 0, max_retries=1, backoff_base=0.01
                )
                await until(lambda: conn.pending_calls >= 3)
                await servers.stop()
                with anyio.fail_after(5):
                    await dropped.wait()
            assert len(lost) == 2  # neither was retried by the client
            assert not conn.is_connected
            assert conn.is_active
            assert "close code 1001" in str(disconnects[0])

            # While it is down, a call waits for the connection (within its timeout).
            async with anyio.create_task_group() as waiting:
                waiting.start_soon(conn.call_reducer_async, "add_item", 5, "five")
                server = await servers.start(second, port=port)
                with anyio.fail_after(5):
                    await conn.wait_connected()
            assert conn.is_connected
            assert conn.identity == identity
            assert connects == [identity, identity]

            # The cache holds what the new server has (plus the call made while down, and the
            # scheduled call retried), and the callbacks said only what changed.
            with anyio.fail_after(5):
                await retried.wait()
            assert items(conn) == {1: "one", 2: "TWO", 4: "four", 5: "five", 7: "seven"}
            assert notes(conn) == ["a", "c"]
            later = ({"id": 5, "label": "five"}, {"id": 7, "label": "seven"})
            reconciled = [call for call in recorder.calls if call[-1] not in later]
            assert sorted(reconciled, key=repr) == sorted(
                [
                    ("delete", "item", {"id": 3, "label": "three"}),
                    ("insert", "item", {"id": 4, "label": "four"}),
                    ("update", "item", {"id": 2, "label": "two"}, {"id": 2, "label": "TWO"}),
                    ("delete", "note", {"text": "b"}),
                    ("insert", "note", {"text": "c"}),
                ],
                key=repr,
            )
            # Each subscription published its own difference as an update.
            difference = published[0].for_table("item")
            assert sorted(row["label"] for row in difference.deletes) == ["three", "two"]
            assert sorted(row["label"] for row in difference.inserts) == ["TWO", "four"]
            assert item_sub.is_active
            assert note_sub.is_active

            # Schedules kept running: the interval pings the new server, and the lost scheduled
            # call counted as a failed execution, then its retry ran on the new server.
            with anyio.fail_after(5):
                await second.pinged.wait()
            attempts = [r for r in scheduled if r.reducer_name == "add_item"]
            assert [(r.attempt, r.ok) for r in attempts] == [(1, False), (2, True)]
            assert isinstance(attempts[0].error, ConnectionLostError)
            assert conn.scheduler.get_execution_stats()["retried_executions"] >= 1
            assert server.host.table("item").find(7) is not None
        assert disconnects[1:] == [None]  # leaving the block: we closed it
        await servers.stop()
    assert task_ids() <= before


async def test_a_long_outage_takes_several_attempts_and_calls_time_out_meanwhile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = task_ids()
    world = World(items={1: "one"}, notes=[])
    caplog.set_level(logging.INFO, logger="spacetime_sched.client")
    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(world)
        port = server.port
        async with builder(server).build() as conn:
            await conn.subscribe("SELECT * FROM item")
            await servers.stop()
            await until(lambda: not conn.is_connected)
            with pytest.raises(CallTimeoutError, match=r"not back within 0\.05 s"):
                await conn.call_reducer_async("add_item", 2, "two", timeout=0.05)
            with pytest.raises(CallTimeoutError):
                await conn.wait_connected(timeout=0.01)
            # Down for longer than several backoff steps (0.01, 0.02, 0.04, 0.05, ...).
            await until(
                lambda: sum("reconnect attempt" in r.getMessage() for r in caplog.records) >= 4
            )
            again = World(items={1: "uno", 3: "three"}, notes=[])
            await servers.start(again, port=port)
            with anyio.fail_after(5):
                await conn.wait_connected()
            assert items(conn) == {1: "uno", 3: "three"}
            await conn.call_reducer_async("add_item", 2, "two")
            assert items(conn) == {1: "uno", 2: "two", 3: "three"}
        await servers.stop()
    assert task_ids() <= before


async def test_a_subscription_the_restarted_server_refuses_ends_with_its_error_callback() -> None:
    world = World(items={1: "one"}, notes=["a"])
    changed = World(items={1: "one"}, notes=[], with_notes=False)
    errors: list[BaseException] = []
    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(world)
        port = server.port
        async with builder(server).build() as conn:
            item_sub = await conn.subscribe("SELECT * FROM item")
            note_sub = await conn.subscribe("SELECT * FROM note", on_error=errors.append)
            deleted: list[Any] = []
            conn.db["note"].on_delete(deleted.append)
            await servers.stop()
            await until(lambda: not conn.is_connected)
            await servers.start(changed, port=port)
            with anyio.fail_after(5):
                await conn.wait_connected()
            assert note_sub.is_ended
            assert not item_sub.is_ended
            assert len(errors) == 1
            assert isinstance(errors[0], QueryError)
            assert "refused after reconnecting" in str(errors[0])
            assert note_sub.error
            assert "note" in note_sub.error
            assert [row_dict(row) for row in deleted] == [{"text": "a"}]
            assert len(conn.db["note"]) == 0
            assert items(conn) == {1: "one"}
        await servers.stop()


async def test_a_server_that_refuses_the_token_after_restart_ends_the_block() -> None:
    before = task_ids()
    world = World(items={1: "one"}, notes=[])
    failures: list[BaseException] = []
    ended: list[BaseException] = []
    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(world)
        port = server.port
        conn = builder(server).on_connect_error(failures.append).build()

        async def run() -> None:
            async with conn:
                await conn.subscribe("SELECT * FROM item", on_error=ended.append)
                await servers.stop()
                # Another signing key: the old token is worthless now.
                await servers.start(world, port=port, secret=b"another-key-" * 3)
                await anyio.sleep_forever()  # the give-up cancels the body

        with pytest.raises(ConnectError) as caught:
            await run()
        message = str(caught.value)
        # The first attempt may still find the port closed (the restart races it); the 401
        # ends the attempts at once, whichever attempt meets it.
        assert re.search(
            r"after \d+ attempts?; last reason: the server rejected the token", message
        )
        assert failures == [caught.value]
        assert ended == [caught.value]  # the subscription ended with it
        assert not conn.is_active
        assert conn.close_reason is caught.value
        with pytest.raises(ConnectionClosedError):
            await conn.call_reducer_async("ping")
        await servers.stop()
    assert task_ids() <= before


async def test_max_attempts_exhausted_ends_the_block_naming_attempts_and_last_reason() -> None:
    before = task_ids()
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=3)
    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(World(items={}, notes=[]))
        conn = builder(server, policy).with_scheduling().build()

        async def call_while_down() -> None:
            # It waits for the connection; the give-up ends it with the connection's error, or
            # cancels it first (whichever the event loop runs first).
            with pytest.raises(ConnectionClosedError, match="gave up"):
                await conn.call_reducer_async("ping")

        async def run() -> None:
            async with conn:
                conn.scheduler.schedule_at_interval("ping", [], 0.01)
                await servers.stop()
                async with anyio.create_task_group() as calls:
                    calls.start_soon(call_while_down)
                    await anyio.sleep_forever()  # the give-up cancels the body

        with pytest.raises(ConnectError, match=r"after 3 attempts; last reason: .*could not reach"):
            await run()
        assert not conn.is_active
        assert isinstance(conn.close_reason, ConnectError)
    assert task_ids() <= before


async def test_leaving_the_block_or_disconnecting_while_reconnecting_is_prompt() -> None:
    before = task_ids()
    slow = ReconnectPolicy(initial_delay=30, max_delay=60)
    closed: list[BaseException] = []
    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(World(items={}, notes=[]))
        with anyio.fail_after(5):  # far less than the backoff or the calls' timeouts
            async with builder(server, slow).with_scheduling().build() as conn:
                ping = conn.scheduler.schedule_at_interval("ping", [], 0.01, timeout=60)
                await servers.stop()
                await until(lambda: not conn.is_connected)
                # A fire waits for the connection (up to its 60 s timeout).
                await until(lambda: conn.scheduler.get_schedule(ping).running > 0)
                async with anyio.create_task_group() as calls:

                    async def call() -> None:
                        with pytest.raises(ConnectionClosedError) as caught:
                            await conn.call_reducer_async("ping", timeout=60)
                        closed.append(caught.value)

                    calls.start_soon(call)
                    await until(lambda: conn.pending_calls == 0 and len(closed) == 0)
                    await conn.disconnect()
                assert not conn.is_active
                assert len(closed) == 1
            server = await servers.start(World(items={}, notes=[]))
            reasons: list[BaseException | None] = []
            connection = builder(server, slow).with_scheduling()
            connection.on_disconnect(lambda conn, error: reasons.append(error))
            async with connection.build() as conn:
                ping = conn.scheduler.schedule_at_interval("ping", [], 0.01, timeout=60)
                await servers.stop()
                await until(lambda: not conn.is_connected)
                await until(lambda: conn.scheduler.get_schedule(ping).running > 0)
        assert not conn.is_active
        assert len(reasons) == 1  # the drop; leaving the block does not report it twice
        assert reasons[0] is not None
    assert task_ids() <= before


async def test_without_a_policy_a_drop_still_closes_the_connection_for_good() -> None:
    world = World(items={1: "one"}, notes=[])
    lost: list[BaseException] = []
    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(world)
        async with builder(server, False).build() as conn:
            async with anyio.create_task_group() as calls:

                async def stall() -> None:
                    with pytest.raises(ConnectionLostError) as caught:
                        await conn.call_procedure("stall")
                    lost.append(caught.value)

                calls.start_soon(stall)
                with anyio.fail_after(5):
                    await world.stalled.wait()
                await servers.stop()
            assert not conn.is_active
            assert len(lost) == 1
            with pytest.raises(ConnectionClosedError, match="closed"):
                await conn.wait_connected()
    never_entered = DbConnection.builder().with_uri("http://127.0.0.1:9").with_database_name("x")
    with pytest.raises(ConnectionClosedError, match="not connected yet"):
        await never_entered.with_reconnect().build().wait_connected()


async def test_on_connect_may_call_reducers_after_every_reconnect() -> None:
    first = World(items={}, notes=[])
    second = World(items={}, notes=[])
    results: list[Any] = []

    async def on_connect(conn: DbConnection, identity: Any, token: str) -> None:
        results.append(await conn.call_reducer_async("ping"))

    async with anyio.create_task_group() as task_group:
        servers = Servers(task_group)
        server = await servers.start(first)
        port = server.port
        async with builder(server).on_connect(on_connect).build() as conn:
            assert first.pings == 1
            await servers.stop()
            await until(lambda: not conn.is_connected)
            await servers.start(second, port=port)
            await until(lambda: len(results) == 2)  # the second answered by the new server
            assert second.pings == 1
        await servers.stop()


def people(*names: str) -> BsatnRowList:
    """Rows of the scripted server's ``person(name: String)`` table."""
    return BsatnRowList.from_row_bytes(len(n).to_bytes(4, "little") + n.encode() for n in names)


async def test_changes_that_arrive_while_resubscribing_apply_after_the_reconciliation() -> None:
    # Scripted: on the second session, a transaction touching query set 1 arrives before query
    # set 2 is applied. It must not be lost, nor applied to the state from before the drop.
    sockets: list[FakeSocket] = []

    async def script(ws: FakeSocket, message: Any) -> None:
        if ws not in sockets:
            sockets.append(ws)
        again = len(sockets) > 1
        if isinstance(message, Subscribe):
            query_set = message.query_set_id.id
            names = {
                (False, 1): ("Ann", "Bob"),
                (False, 2): ("Zed",),
                (True, 1): ("Ann",),  # Bob left while we were away
                (True, 2): ("Zed", "Eve"),  # Eve came
            }[again, query_set]
            applied = QueryRows([SingleTableRows("person", people(*names))])
            await ws.reply(SubscribeApplied(message.request_id, message.query_set_id, applied))
            if again and query_set == 1:
                table = TableUpdate("person", [PersistentTable(people("Cy"), people())])
                await ws.reply(TransactionUpdate([QuerySetUpdate(1, [table])]))
        elif isinstance(message, CallReducer):
            await ws.close(1012, "service restart")

    seen: list[tuple[str, str]] = []
    reasons: list[BaseException | None] = []
    server = FakeServer(script)
    connection = (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(server.transport())
        .with_reconnect(FAST)
        .on_disconnect(lambda conn, error: reasons.append(error))
        .build()
    )
    async with connection as conn:
        conn.db["person"].on_insert(lambda row: seen.append(("insert", row["name"])))
        conn.db["person"].on_delete(lambda row: seen.append(("delete", row["name"])))
        await conn.subscribe("SELECT * FROM person WHERE name < 'M'")
        await conn.subscribe("SELECT * FROM person WHERE name > 'M'")
        seen.clear()
        with pytest.raises(ConnectionLostError):
            await conn.call_reducer_async("add", 1, 2)
        with anyio.fail_after(5):
            await conn.wait_connected()
        await until(lambda: len(seen) == 3)
        assert seen == [("delete", "Bob"), ("insert", "Eve"), ("insert", "Cy")]
        assert sorted(row["name"] for row in conn.db["person"]) == ["Ann", "Cy", "Eve", "Zed"]
    assert "close code 1012: service restart" in str(reasons[0])
    assert [type(m).__name__ for m in server.received].count("Subscribe") == 4
