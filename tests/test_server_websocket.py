"""The ``/subscribe`` WebSocket of LocalServer, spoken to with httpx-ws and our protocol codec."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from _server_support import V2, V3, Session, args, rows, session
from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched.protocol import (
    CallProcedure,
    CallReducer,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTable,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerResult,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
)
from spacetime_sched.testing import example_module
from spacetime_sched.testing._clock import VirtualClock
from spacetime_sched.testing._server import LocalServer, Module, ReducerContext, SenderError

#: A committed call whose caller subscribes to nothing: Ok with no updates, never OkEmpty
#: (crates/core/src/subscription/module_subscription_manager.rs).
COMMITTED = ReducerOk(b"", TransactionUpdate(()))

SECOND = TimeDuration.from_seconds(1)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(example_module.make_module()) as server:
        yield server


async def call(
    client: Session, server: LocalServer, request_id: int, reducer: str, *values: object
) -> ReducerResult:
    await client.send(CallReducer(request_id, 0, reducer, args(server, reducer, *values)))
    result = await client.receive()
    assert isinstance(result, ReducerResult)
    assert result.request_id == request_id
    return result


async def subscribe(client: Session, *queries: str, query_set: int = 1) -> SubscribeApplied:
    await client.send(Subscribe(query_set, query_set, queries))
    applied = await client.receive()
    assert isinstance(applied, SubscribeApplied), applied
    return applied


# --- connecting -------------------------------------------------------------------------------


async def test_the_first_message_is_initial_connection(server: LocalServer) -> None:
    async with session(server) as client:
        hello = client.hello
        assert hello.identity.to_hex().startswith("c200")
        assert not hello.connection_id.is_zero()
        assert client.ws.subprotocol == V2
    # The token brings the same identity back, in the header or in ?token=.
    async with session(server, token=hello.token) as again:
        assert again.hello.identity == hello.identity
        assert again.hello.connection_id != hello.connection_id
    async with session(server, query_token=hello.token) as again:
        assert again.hello.identity == hello.identity


async def test_connect_and_disconnect_run_the_lifecycle_reducers(server: LocalServer) -> None:
    async with session(server) as client:
        identity = client.hello.identity
    # client_disconnected runs once the server sees the close; nothing signals it to us.
    with anyio.fail_after(5):
        while len(server.host.table("connection_log").rows()) < 3:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    log = [(row["event"], row["identity"]) for row in server.host.table("connection_log")]
    assert log[1:] == [("connected", identity), ("disconnected", identity)]


async def test_the_server_prefers_v3_and_batches_messages(server: LocalServer) -> None:
    async with session(server, protocols=(V2, V3)) as client:
        assert client.ws.subprotocol == V3
        result = await call(client, server, 1, "add", 1, 2)
        assert result.result == COMMITTED


async def test_no_matching_protocol_is_refused_with_400(server: LocalServer) -> None:
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with session(server, protocols=("v1.json.spacetimedb",)):
            pass
    assert refused.value.response.status_code == 400
    # The body, as the real server words it (httpx-ws has closed the response; ask again).
    url = f"{server.uri}/v1/database/{server.database}/subscribe"
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "v1.json.spacetimedb",
    }
    async with httpx.AsyncClient(verify=False) as http:
        response = await http.get(url, headers=upgrade)
    assert (response.status_code, response.text) == (400, "no valid protocol selected")


@pytest.mark.anyio  # explicit: parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize("where", ["header", "query"])
async def test_a_bad_token_is_refused_with_401(server: LocalServer, where: str) -> None:
    bad = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    options = {"token": bad} if where == "header" else {"query_token": bad}
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with session(server, **options):
            pass
    assert refused.value.response.status_code == 401


async def test_the_authorization_header_wins_over_the_query_token(server: LocalServer) -> None:
    _, token = server.mint_token()
    async with session(server, token=token, query_token="garbage") as client:
        assert client.hello.token == token
    with pytest.raises(WebSocketUpgradeError):
        async with session(server, token="garbage", query_token=token):
            pass


async def test_an_unknown_database_is_404(server: LocalServer) -> None:
    url = f"{server.uri}/v1/database/nope/subscribe"
    async with httpx.AsyncClient(verify=False) as http:
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with aconnect_ws(url, http, subprotocols=[V2]):
                pass
    assert refused.value.response.status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("frame", [b"\xff", b"\x03\x01\x00\x00\x00\x00"])
async def test_a_garbage_frame_closes_the_socket_with_the_error_as_reason(
    server: LocalServer, frame: bytes
) -> None:
    async with session(server) as client:
        await client.ws.send_bytes(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive()
    # CloseCode::Error with the error as the reason (ws_client_actor in
    # crates/client-api/src/routes/subscribe.rs).
    assert closed.value.code == 1011
    assert "invalid client message" in str(closed.value.reason)


async def test_a_text_frame_closes_the_socket(server: LocalServer) -> None:
    async with session(server) as client:
        await client.ws.send_text("hello")
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive()
    assert closed.value.code == 1011
    assert "text frames are not supported" in str(closed.value.reason)


async def test_leaving_the_server_block_closes_sockets_as_going_away() -> None:
    closed: list[int] = []
    async with (
        anyio.create_task_group() as task_group,
        LocalServer(example_module.module) as server,
    ):
        connected = anyio.Event()

        async def client() -> None:
            async with session(server) as own:
                connected.set()
                with pytest.raises(WebSocketDisconnect) as gone:
                    await own.ws.receive_bytes()
                closed.append(gone.value.code)

        task_group.start_soon(client)
        await connected.wait()
    assert closed == [1001]


# --- reducers ---------------------------------------------------------------------------------


async def test_reducer_results(server: LocalServer) -> None:
    async with session(server) as client:
        before = Timestamp.now()
        ok = await call(client, server, 1, "add_person", "Ada")
        assert ok.result == COMMITTED  # committed; the caller subscribes to nothing
        assert before <= ok.timestamp <= Timestamp.now()
        assert server.host.table("person").rows()[0]["created_at"] == ok.timestamp

        err = await call(client, server, 2, "fail", "boom: ✗")
        assert isinstance(err.result, ReducerErr)
        assert err.result.message == "boom: ✗"
        assert [row["name"] for row in server.host.table("person")] == ["Ada"]  # rolled back


async def test_calls_the_host_cannot_run_are_internal_errors(server: LocalServer) -> None:
    async with session(server) as client:
        cases = [
            ("nope", b"", "no such reducer: 'nope'"),
            ("add", b"\x01", "invalid arguments for 'add'"),
            ("client_connected", b"", "lifecycle reducer 'client_connected' cannot be called"),
        ]
        for request_id, (reducer, data, message) in enumerate(cases):
            await client.send(CallReducer(request_id, 0, reducer, data))
            result = await client.receive()
            assert isinstance(result, ReducerResult)
            assert isinstance(result.result, ReducerInternalError)
            assert message in result.result.message


async def test_procedures_return_their_value(server: LocalServer) -> None:
    async with session(server) as client:
        await client.send(CallProcedure(7, 0, "server_time", b""))
        result = await client.receive()
        assert isinstance(result, ProcedureResult)
        assert result.request_id == 7
        assert isinstance(result.status, ProcedureReturned)
        assert sats.decode(sats.TIMESTAMP, result.status.value) == result.timestamp

        await client.send(CallProcedure(8, 0, "nope", b""))
        missing = await client.receive()
        assert isinstance(missing, ProcedureResult)
        assert isinstance(missing.status, ProcedureInternalError)
        assert "no such procedure" in missing.status.message


# --- subscriptions ----------------------------------------------------------------------------


async def test_subscribers_get_the_rows_then_other_clients_changes(server: LocalServer) -> None:
    async with session(server) as watcher, session(server) as writer:
        await call(writer, server, 1, "add_person", "Ada")
        applied = await subscribe(watcher, "SELECT * FROM person")
        (initial,) = applied.rows.tables
        assert initial.table == "person"
        assert [row["name"] for row in rows(initial.rows, server, "person")] == ["Ada"]

        # Another client's transaction reaches the watcher as a TransactionUpdate...
        result = await call(writer, server, 2, "add_person", "Grace")
        assert result.result == COMMITTED
        update = await watcher.receive()
        assert isinstance(update, TransactionUpdate)
        (query_set,) = update.query_sets
        assert query_set.query_set_id.id == 1
        ((table, (change,)),) = [(t.table_name, t.rows) for t in query_set.tables]
        assert table == "person"
        assert isinstance(change, PersistentTable)
        assert [row["name"] for row in rows(change.inserts, server, "person")] == ["Grace"]
        assert len(change.deletes) == 0

        # ...while the caller's own changes ride in its ReducerResult, and nobody else hears.
        own = await call(watcher, server, 3, "add_person", "Barbara")
        assert isinstance(own.result, ReducerOk)
        (mine,) = own.result.transaction_update.query_sets
        (person,) = mine.tables
        (inserted,) = person.rows
        assert isinstance(inserted, PersistentTable)
        assert [row["name"] for row in rows(inserted.inserts, server, "person")] == ["Barbara"]
        await writer.expect_silence()


async def test_a_where_clause_filters_initial_rows_and_updates(server: LocalServer) -> None:
    async with session(server) as watcher, session(server) as writer:
        await subscribe(watcher, "SELECT * FROM person WHERE name = 'Ada'")
        await call(writer, server, 1, "add_person", "Bob")
        await call(writer, server, 2, "add_person", "Ada")
        update = await watcher.receive()
        assert isinstance(update, TransactionUpdate)
        change = update.query_sets[0].tables[0].rows[0]
        assert isinstance(change, PersistentTable)
        assert [row["name"] for row in rows(change.inserts, server, "person")] == ["Ada"]
        await watcher.expect_silence()


async def test_subscription_errors_and_unsubscribe(server: LocalServer) -> None:
    async with session(server) as client:
        await client.send(Subscribe(1, 1, ["SELECT * FROM no_such_table"]))
        error = await client.receive()
        assert isinstance(error, SubscriptionError)
        assert (error.request_id, error.query_set_id.id) == (1, 1)
        assert "no such table: `no_such_table`" in error.error

        await call(client, server, 2, "add_person", "Ada")
        await subscribe(client, "SELECT * FROM person", query_set=2)
        await client.send(Unsubscribe(3, 2, UnsubscribeFlags.SendDroppedRows))
        dropped = await client.receive()
        assert isinstance(dropped, UnsubscribeApplied)
        assert dropped.rows is not None
        assert [row["name"] for row in rows(dropped.rows.tables[0].rows, server, "person")] == [
            "Ada"
        ]
        # Unsubscribed: the caller's changes no longer come back.
        assert (await call(client, server, 4, "add_person", "Bob")).result == COMMITTED

        await client.send(Unsubscribe(5, 2, UnsubscribeFlags.Default))
        missing = await client.receive()
        assert isinstance(missing, SubscriptionError)
        assert "not subscribed" in missing.error


async def test_one_off_queries(server: LocalServer) -> None:
    async with session(server) as client:
        await call(client, server, 1, "add_person", "Ada")
        await client.send(OneOffQuery(2, "SELECT * FROM person"))
        answer = await client.receive()
        assert isinstance(answer, OneOffQueryResult)
        assert answer.rows is not None
        assert [row["name"] for row in rows(answer.rows.tables[0].rows, server, "person")] == [
            "Ada"
        ]
        await client.send(OneOffQuery(3, "SELECT * FROM connection_log"))
        refused = await client.receive()
        assert isinstance(refused, OneOffQueryResult)
        assert "no such table" in str(refused.error)


@pytest.mark.anyio
@pytest.mark.parametrize(("compression", "tag"), [("Gzip", 2), ("Brotli", 1), ("None", 0)])
async def test_frames_over_1_kib_are_compressed_as_asked(
    server: LocalServer, compression: str, tag: int
) -> None:
    async with session(server, compression=compression) as client:
        await call(client, server, 1, "add_person", "x" * 2000)
        await subscribe(client, "SELECT * FROM person")
        assert client.frames[0][0] == 0  # small frames are never compressed
        assert client.frames[-1][0] == tag


# --- schedule tables --------------------------------------------------------------------------


async def test_a_tick_scheduled_in_the_past_fires_at_once(server: LocalServer) -> None:
    async with session(server) as watcher, session(server) as writer:
        await subscribe(watcher, "SELECT * FROM tick_log", "SELECT * FROM tick_schedule")
        past = ScheduleAt.Time(Timestamp.now() - SECOND * 60)
        await call(writer, server, 1, "schedule_tick", "past", past)
        inserted = await watcher.receive()  # the tick_schedule insert
        fired = await watcher.receive()  # tick's tick_log insert and the row's deletion
        assert isinstance(inserted, TransactionUpdate)
        assert isinstance(fired, TransactionUpdate)
        changes = {t.table_name: t.rows[0] for t in fired.query_sets[0].tables}
        log = changes["tick_log"]
        schedule = changes["tick_schedule"]
        assert isinstance(log, PersistentTable)
        assert isinstance(schedule, PersistentTable)
        ((row,),) = [rows(log.inserts, server, "tick_log")]
        assert (row["label"], row["scheduled_id"]) == ("past", 1)
        assert [r["scheduled_id"] for r in rows(schedule.deletes, server, "tick_schedule")] == [1]
    assert server.host.table("tick_schedule").rows() == []


async def test_an_interval_fires_repeatedly_on_its_anchored_times() -> None:
    clock = VirtualClock()
    async with (
        LocalServer(example_module.module, clock=clock) as server,
        session(server) as client,
    ):
        await subscribe(client, "SELECT * FROM tick_log")
        start = clock.now()
        await call(client, server, 1, "schedule_tick", "every second", ScheduleAt.Interval(SECOND))
        await clock.advance(SECOND * 3 + SECOND / 2)
        fired_at = []
        for _ in range(3):
            update = await client.receive()
            assert isinstance(update, TransactionUpdate)
            change = update.query_sets[0].tables[0].rows[0]
            assert isinstance(change, PersistentTable)
            fired_at += [row["fired_at"] for row in rows(change.inserts, server, "tick_log")]
        assert fired_at == [start + SECOND, start + SECOND * 2, start + SECOND * 3]
        await call(client, server, 2, "cancel_tick", 1)
        await clock.advance(SECOND * 5)
        assert len(server.host.table("tick_log").rows()) == 3


async def test_scheduled_reducers_are_private_to_clients(server: LocalServer) -> None:
    row = {"scheduled_id": 1, "scheduled_at": ScheduleAt.Interval(SECOND), "label": "direct"}
    async with session(server) as client:
        await client.send(CallReducer(1, 0, "tick", args(server, "tick", row)))
        result = await client.receive()
    assert isinstance(result, ReducerResult)
    assert result.result == ReducerInternalError("no such reducer: 'tick'")
    assert server.host.table("tick_log").rows() == []


async def test_clients_that_vanish_mid_stream_leave_no_errors(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with session(server) as writer:
        for round_ in range(5):
            async with session(server) as watcher:
                await subscribe(watcher, "SELECT * FROM person")
                for i in range(20):
                    await writer.send(
                        CallReducer(i, 0, "add_person", args(server, "add_person", f"{round_}.{i}"))
                    )
            # The watcher is gone while updates for it are still being produced.
        for _ in range(100):
            assert isinstance(await writer.receive(), ReducerResult)
    assert len(server.host.table("person").rows()) == 100
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_client_connected_reducer_that_raises_refuses_the_connection() -> None:
    module = Module("picky")

    @module.client_connected
    def client_connected(ctx: ReducerContext) -> None:
        raise SenderError("members only")

    # The real server completes the upgrade (101 with the chosen protocol), runs
    # client_connected, and on rejection drops the socket before InitialConnection
    # (crates/client-api/src/routes/subscribe.rs). ASGI cannot drop a socket without a close
    # frame: hypercorn closes with 1011 and no reason.
    async with LocalServer(module) as server:
        url = f"{server.uri}/v1/database/{server.database}/subscribe"
        async with (
            httpx.AsyncClient() as http,
            aconnect_ws(url, http, subprotocols=[V2]) as ws,
        ):
            assert ws.subprotocol == V2
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_bytes()
        assert closed.value.code == 1011
        assert closed.value.reason == ""
        assert server.host.connections == set()
