"""The connection object's life, as the design document shows it.

``builder().build()`` and ``ModernSpacetimeDBClient()`` return an object that is not yet
connected; its scheduler takes schedules at once; ``async with client:`` connects, runs them,
and ends every task when the block ends. The scheduler plugs into the client through a seam
(``register_scheduler_factory``), tested here with a fake as well as with the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import anyio.abc
import pytest
from _client_support import FakeServer

from spacetime_sched import (
    ClientError,
    ConfigurationError,
    ConnectionClosedError,
    ModernSpacetimeDBClient,
    ReducerScheduler,
)
from spacetime_sched.client import DEFAULT_URI, DbConnection, DbConnectionBuilder
from spacetime_sched.client import _scheduling as seam
from spacetime_sched.protocol import CallReducer


def builder(server: FakeServer) -> DbConnectionBuilder[DbConnection]:
    return (
        ModernSpacetimeDBClient.builder()
        .with_uri("ws://localhost:3000")
        .with_module_name("game_server")
        .with_transport(server.transport())
        .with_connect_timeout(3)
    )


# --- the object before it connects ------------------------------------------------------------


def test_the_documented_builder_chain_returns_an_unconnected_client_with_a_scheduler() -> None:
    client = (
        ModernSpacetimeDBClient.builder()
        .with_uri("ws://localhost:3000")
        .with_module_name("game_server")
        .with_scheduling(auto_start=True, max_concurrent_executions=5)
        .build()
    )
    assert isinstance(client, DbConnection)
    assert not client.is_connected
    assert client.uri == "http://localhost:3000/"
    assert client.database_name == "game_server"
    scheduler = client.scheduler
    assert isinstance(scheduler, ReducerScheduler)
    assert client.scheduler is scheduler
    assert not scheduler.running
    assert "max_concurrent=5" in repr(scheduler)


def test_a_client_made_with_no_arguments_takes_its_server_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPACETIMEDB_URI", raising=False)
    monkeypatch.delenv("SPACETIMEDB_DATABASE", raising=False)
    client = ModernSpacetimeDBClient()
    assert client.uri == DEFAULT_URI + "/"
    assert client.database_name == ""
    assert isinstance(client.scheduler, ReducerScheduler)

    monkeypatch.setenv("SPACETIMEDB_URI", "wss://db.example.com/prefix")
    monkeypatch.setenv("SPACETIMEDB_DATABASE", "quickstart")
    client = ModernSpacetimeDBClient()
    assert client.uri == "https://db.example.com/prefix"
    assert client.database_name == "quickstart"


def test_a_bad_uri_in_the_environment_is_reported_with_the_option_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPACETIMEDB_URI", "ftp://x")
    with pytest.raises(ConfigurationError, match="uri"):
        ModernSpacetimeDBClient()


async def test_connecting_without_a_database_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPACETIMEDB_DATABASE", raising=False)
    with pytest.raises(ConfigurationError, match="SPACETIMEDB_DATABASE"):
        async with ModernSpacetimeDBClient():
            pass


async def test_calls_before_the_block_say_the_client_is_not_connected() -> None:
    client = builder(FakeServer()).build()
    with pytest.raises(ConnectionClosedError, match="not connected yet"):
        await client.call_reducer_raw("add", b"")
    with pytest.raises(ConnectionClosedError, match="known once the connection is up"):
        _ = client.identity


# --- connecting ------------------------------------------------------------------------------


async def test_async_with_client_connects_and_the_object_is_its_own_context_manager() -> None:
    server = FakeServer()
    client = builder(server).build()
    async with client as conn:
        assert conn is client
        assert client.is_connected
        await client.call_reducer_raw("add", b"")
    assert not client.is_connected
    assert not client.is_active
    assert server.received == [CallReducer(0, 0, "add", b"")]


async def test_a_client_connects_once() -> None:
    client = builder(FakeServer()).build()
    async with client:
        pass
    with pytest.raises(ClientError, match="connects once"):
        async with client:
            pass


async def test_schedules_added_before_the_block_run_once_it_starts() -> None:
    server = FakeServer()
    client = builder(server).with_scheduling(auto_start=True).build()
    schedule_id = client.scheduler.schedule_in_seconds("add", (1, 2), 0.01)
    await anyio.sleep(0.05)  # due, but nothing runs before the connection does
    assert server.received == []
    async with client:
        with anyio.fail_after(3):
            result = await client.scheduler.wait_for(schedule_id)
        assert result is not None
        assert result.ok
    assert server.received == [CallReducer(0, 0, "add", b"\x01\x00\x00\x00\x02\x00\x00\x00")]


async def test_auto_start_starts_on_connect_and_a_second_start_is_a_no_op() -> None:
    async with builder(FakeServer()).with_scheduling(auto_start=True).build() as conn:
        assert conn.scheduler.running
        await conn.scheduler.start()
        assert conn.scheduler.running
    assert conn.scheduler.closed


async def test_without_auto_start_the_scheduler_starts_at_start_and_ends_at_stop() -> None:
    server = FakeServer()
    async with builder(server).with_scheduling(auto_start=False).build() as conn:
        scheduler = conn.scheduler
        schedule_id = scheduler.schedule_in_seconds("add", (0, 0), 0.01)
        await anyio.sleep(0.05)
        assert not scheduler.running
        assert server.received == []
        await scheduler.start()
        with anyio.fail_after(3):
            await scheduler.wait_for(schedule_id)
        await scheduler.stop()
        assert scheduler.closed
        assert conn.is_connected  # stopping the scheduler leaves the connection alone
    assert len(server.received) == 1


async def test_the_scheduler_runs_in_the_connection_task_group_and_ends_with_the_block() -> None:
    before = {task.id for task in anyio.get_running_tasks()}
    async with builder(FakeServer()).build() as conn:
        connected = {task.id for task in anyio.get_running_tasks()}
        assert conn.scheduler is not None
        assert {task.id for task in anyio.get_running_tasks()} == connected  # getter: no task
        await conn.scheduler.start()
        assert len({task.id for task in anyio.get_running_tasks()}) > len(connected)
    assert {task.id for task in anyio.get_running_tasks()} <= before
    assert conn.scheduler.closed


# --- the seam, with a fake scheduler ------------------------------------------------------------


class FakeScheduler:
    """Records what the connection asks of it; implements the ConnectionScheduler protocol."""

    def __init__(self, target: Any, **options: Any) -> None:
        self.target = target
        self.options = options
        self.calls: list[str] = []
        self.task_group: anyio.abc.TaskGroup | None = None

    def bind(self, task_group: anyio.abc.TaskGroup) -> None:
        self.calls.append("bind")
        self.task_group = task_group

    def unbind(self) -> None:
        self.calls.append("unbind")
        self.task_group = None

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")


@pytest.fixture
def fake_factory() -> Iterator[list[FakeScheduler]]:
    made: list[FakeScheduler] = []

    def factory(target: Any, **options: Any) -> FakeScheduler:
        made.append(FakeScheduler(target, **options))
        return made[-1]

    previous = seam.register_scheduler_factory(factory)
    try:
        yield made
    finally:
        seam.register_scheduler_factory(previous)


async def test_the_seam_binds_starts_stops_and_unbinds_in_that_order(
    fake_factory: list[FakeScheduler],
) -> None:
    client = builder(FakeServer()).with_scheduling(max_concurrent_executions=3).build()
    fake = client.scheduler
    assert fake_factory == [fake]
    assert fake.target is client
    assert fake.options == {"max_concurrent_executions": 3}
    assert fake.calls == []  # made, not bound or started, before the block
    async with client:
        assert fake.calls == ["bind", "start"]
        assert fake.task_group is not None
    assert fake.calls == ["bind", "start", "stop", "unbind"]


async def test_a_scheduler_first_asked_for_inside_the_block_is_bound_but_not_started(
    fake_factory: list[FakeScheduler],
) -> None:
    async with builder(FakeServer()).build() as conn:
        fake = conn.scheduler
        assert fake.calls == ["bind"]
        assert fake.options == {}  # the scheduler's own default concurrency
    assert fake.calls == ["bind", "stop", "unbind"]


async def test_without_a_registered_scheduler_the_getter_says_what_is_missing(
    fake_factory: list[FakeScheduler],
) -> None:
    seam.register_scheduler_factory(None)
    with pytest.raises(ConfigurationError, match="no scheduler is registered"):
        _ = builder(FakeServer()).build().scheduler


def test_the_client_package_does_not_import_the_scheduler() -> None:
    import ast
    import pathlib

    import spacetime_sched.client as client

    for path in pathlib.Path(client.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []  # type-only imports are not imports at run time
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert "scheduler" not in module, f"{path.name} imports {module}"


def test_the_client_modules_import_each_other_without_a_cycle() -> None:
    import ast
    import graphlib
    import pathlib

    import spacetime_sched.client as client

    graph: dict[str, set[str]] = {}
    for path in pathlib.Path(client.__file__).parent.glob("_*.py"):
        imports = graph.setdefault(path.stem, set())
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                imports.add(node.module)
    del graph["__init__"]  # the package re-exports every room
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle
    assert order[-1] == "_connection"  # the one module that knows the whole
