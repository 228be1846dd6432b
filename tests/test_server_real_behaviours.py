"""The local server behaves as a SpacetimeDB 2.x server does, each behaviour with its source.

Paths are in the SpacetimeDB repository (``docs/conformance.md`` lists them all).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import blake3
import httpx
import pytest
from _server_support import V2, args, session
from httpx_ws import WebSocketDisconnect, aconnect_ws

from spacetime_sched import (
    ArgumentError,
    ConnectError,
    InternalError,
    ReducerError,
    TimeDuration,
    sats,
)
from spacetime_sched.client import DbConnection
from spacetime_sched.protocol import CallReducer, ReducerErr, ReducerInternalError, ReducerResult
from spacetime_sched.testing import (
    LocalServer,
    Module,
    ProcedureContext,
    ReducerContext,
    SenderError,
    example_module,
)
from spacetime_sched.testing._server._auth import identity_from_claims

STATUS = sats.SumType(
    (
        sats.SumVariant("Active", sats.UNIT),
        sats.SumVariant("AwayFor", sats.TIME_DURATION),
    )
)


def club_module(log: list[str]) -> Module:
    """A module that logs its lifecycle, stores an enum, and fails in the two ways there are."""
    module = Module("club")
    module.table("member", [("name", sats.STRING), ("status", STATUS)], public=True)

    @module.client_connected
    def client_connected(ctx: ReducerContext) -> None:
        log.append("connected")

    @module.client_disconnected
    def client_disconnected(ctx: ReducerContext) -> None:
        log.append("disconnected")

    @module.reducer(params=[("name", sats.STRING), ("status", STATUS)])
    def join(ctx: ReducerContext, name: str, status: sats.SumValue) -> None:
        log.append(f"join {name} {status.name}")  # the name the module declared
        ctx.db.member.insert({"name": name, "status": status})

    @module.reducer(params=[("message", sats.STRING)])
    def refuse(ctx: ReducerContext, message: str) -> None:
        raise SenderError(message)

    @module.reducer
    def crash(ctx: ReducerContext) -> None:
        raise ZeroDivisionError("division by zero")

    @module.procedure(returns=sats.U32)
    def broken(ctx: ProcedureContext) -> int:
        raise RuntimeError("the procedure broke")

    @module.procedure(returns=STATUS)
    def favourite(ctx: ProcedureContext) -> sats.SumValue:
        return sats.SumValue(1, "AwayFor", TimeDuration(3))

    return module


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
async def server(log: list[str]) -> AsyncIterator[LocalServer]:
    async with LocalServer(club_module(log)) as server:
        yield server


@pytest.fixture
async def http(server: LocalServer) -> AsyncIterator[httpx.AsyncClient]:
    base = f"{server.uri}/v1/database/{server.database}"
    async with httpx.AsyncClient(base_url=base) as client:
        yield client


JSON = {"content-type": "application/json"}


# --- schema -------------------------------------------------------------------------------------


async def test_schema_versions_9_and_10_are_served_and_others_are_400(
    http: httpx.AsyncClient,
) -> None:
    # SchemaQueryParams / SchemaVersion in crates/client-api/src/routes/database.rs.
    v9 = await http.get("/schema", params={"version": "9"})
    assert v9.status_code == 200
    assert "typespace" in v9.json()
    v10 = await http.get("/schema", params={"version": "10"})
    assert v10.status_code == 200
    sections = [next(iter(section)) for section in v10.json()["sections"]]
    assert sections == [
        "Typespace",
        "Types",
        "Tables",
        "Reducers",
        "Procedures",
        "LifeCycleReducers",
        "ExplicitNames",
    ]
    for params in ({}, {"version": "8"}, {"version": "nine"}):
        assert (await http.get("/schema", params=params)).status_code == 400


async def test_enum_variants_are_served_camel_case_and_the_module_sees_its_own_names(
    http: httpx.AsyncClient, log: list[str]
) -> None:
    # validate/v9.rs typespace_case_conversion: enum variants camelCase on the wire.
    types = (await http.get("/schema", params={"version": "9"})).json()["typespace"]["types"]
    member = types[0]["Product"]["elements"]
    variants = member[1]["algebraic_type"]["Sum"]["variants"]
    assert [v["name"]["some"] for v in variants] == ["active", "awayFor"]
    # JSON arguments use the served names; the reducer gets the names it declared.
    call = await http.post("/call/join", json=["Ada", {"awayFor": {"__time_duration_micros__": 5}}])
    assert call.status_code == 200
    assert "join Ada AwayFor" in log
    rows = (await http.post("/sql", content="SELECT * FROM member")).json()[0]["rows"]
    assert rows == [["Ada", [1, [5]]]]
    proc = await http.post("/call/favourite", json=[])
    assert proc.json() == [1, [3]]


# --- HTTP calls ---------------------------------------------------------------------------------


async def test_reducer_errors_and_crashes_are_530_with_their_text(
    http: httpx.AsyncClient,
) -> None:
    # reducer_outcome_response (database.rs): ReducerOutcome::Failed is 530 with the message.
    refused = await http.post("/call/refuse", json=["not today"])
    assert (refused.status_code, refused.text) == (530, "not today")
    crashed = await http.post("/call/crash", json=[])
    assert crashed.status_code == 530
    assert "division by zero" in crashed.text


async def test_call_statuses_and_headers(http: httpx.AsyncClient) -> None:
    ok = await http.post("/call/join", json=["Bo", {"active": []}])
    assert ok.status_code == 200
    # TypedHeader(SpacetimeEnergyUsed), TypedHeader(SpacetimeExecutionDurationMicros) in ``call``.
    assert ok.headers["spacetime-energy-used"] == "0"
    assert int(ok.headers["spacetime-execution-duration-micros"]) >= 0
    # map_procedure_error: ProcedureCallError::InternalError is a 500.
    broken = await http.post("/call/broken", json=[])
    assert broken.status_code == 500
    assert "the procedure broke" in broken.text
    assert "spacetime-execution-duration-micros" in broken.headers
    assert (await http.post("/call/nope", json=[])).status_code == 404
    assert (await http.post("/call/join", json=["x"])).status_code == 400  # bad arguments
    assert (await http.post("/call/client_connected", json=[])).status_code == 400  # lifecycle


async def test_call_needs_a_json_content_type_and_a_body(http: httpx.AsyncClient) -> None:
    # ``call`` takes TypedHeader<ContentType> (missing: 400), assert_content_type_json (415),
    # and parses the body as JSON arguments (empty: 400).
    missing = await http.post("/call/crash", content=b"[]")
    assert missing.status_code == 400
    assert "content-type" in missing.text
    wrong = await http.post("/call/crash", content=b"[]", headers={"content-type": "text/plain"})
    assert wrong.status_code == 415
    empty = await http.post("/call/crash", content=b"", headers=JSON)
    assert empty.status_code == 400
    assert "empty" in empty.text


async def test_connect_and_disconnect_run_around_every_call_and_sql(
    http: httpx.AsyncClient, log: list[str]
) -> None:
    # with_connection in database.rs: client_connected before, client_disconnected after.
    await http.post("/call/join", json=["Cy", {"active": []}])
    await http.post("/call/favourite", json=[])
    await http.post("/sql", content="SELECT * FROM member")
    assert log == [
        "connected",
        "join Cy Active",
        "disconnected",
        "connected",
        "disconnected",
        "connected",
        "disconnected",
    ]


async def test_a_refusing_client_connected_is_403_on_call_and_sql() -> None:
    module = Module("closed")
    module.table("t", [("n", sats.U8)], public=True)

    @module.client_connected
    def client_connected(ctx: ReducerContext) -> None:
        raise SenderError("closed today")

    @module.reducer
    def poke(ctx: ReducerContext) -> None: ...

    @module.procedure(returns=sats.U8)
    def peek(ctx: ProcedureContext) -> int:
        return 1

    async with LocalServer(module) as server, httpx.AsyncClient(base_url=server.uri) as http:
        db = f"/v1/database/{server.database}"
        for response in (
            await http.post(f"{db}/call/poke", json=[]),
            await http.post(f"{db}/call/peek", json=[]),
            await http.post(f"{db}/sql", content="SELECT * FROM t"),
        ):
            assert response.status_code == 403
            assert "closed today" in response.text


async def test_tokens_come_from_bearer_or_the_query_and_a_malformed_header_is_400(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    # SpacetimeCreds::from_request_parts (crates/client-api/src/auth.rs): the Bearer header,
    # else ?token=; a header that is not Bearer is a header error: 400.
    identity, token = server.mint_token()
    for route in ("/schema?version=9", "/unstable/timestamp", "/identity"):
        by_query = await http.get(route, params={"token": token})
        assert by_query.headers["spacetime-identity"] == identity.to_hex()
    by_query = await http.post("/call/crash", params={"token": token}, json=[])
    assert by_query.headers["spacetime-identity"] == identity.to_hex()
    basic = await http.get("/identity", headers={"authorization": "Basic dXNlcjpwdw=="})
    assert basic.status_code == 400


def test_identities_have_the_real_blake3_layout() -> None:
    # Identity::from_claims (crates/lib/src/identity.rs): c2 00, a 4-byte checksum, then the
    # first 26 bytes of blake3("iss|sub"); the checksum is blake3(c2 00 + those 26 bytes)[:4].
    raw = identity_from_claims("https://auth.example", "user-1").to_be_bytes()
    id_hash = blake3.blake3(b"https://auth.example|user-1").digest()[:26]
    assert raw[:2] == b"\xc2\x00"
    assert raw[6:] == id_hash
    assert raw[2:6] == blake3.blake3(b"\xc2\x00" + id_hash).digest()[:4]
    assert identity_from_claims("a", "b") != identity_from_claims("a", "c")


# --- the WebSocket ------------------------------------------------------------------------------


async def test_err_and_internal_error_over_the_websocket(server: LocalServer) -> None:
    # module_subscription_actor.rs, send_reducer_failure_result_v2: FailedUser is Err (a BSATN
    # String), anything else InternalError.
    async with session(server) as client:
        await client.send(CallReducer(1, 0, "refuse", args(server, "refuse", "no")))
        refused = await client.receive()
        await client.send(CallReducer(2, 0, "crash", args(server, "crash")))
        crashed = await client.receive()
    assert isinstance(refused, ReducerResult)
    assert isinstance(refused.result, ReducerErr)
    assert refused.result.message == "no"
    assert isinstance(crashed, ReducerResult)
    assert isinstance(crashed.result, ReducerInternalError)
    assert "division by zero" in crashed.result.message


async def test_our_client_reports_errors_crashes_and_refusals_clearly(server: LocalServer) -> None:
    builder = DbConnection.builder().with_uri(server.uri).with_database_name(server.database)
    async with builder.build() as conn:
        with pytest.raises(ReducerError, match="not today"):
            await conn.call_reducer_async("refuse", "not today")
        with pytest.raises(InternalError, match="division by zero"):
            await conn.call_reducer_async("crash")
        with pytest.raises(ArgumentError, match="lifecycle reducer"):
            await conn.call_reducer_async("client_connected")


async def test_a_scheduled_reducer_is_not_callable_from_the_client() -> None:
    async with LocalServer(example_module.make_module(), database="quickstart") as server:
        builder = DbConnection.builder().with_uri(server.uri).with_database_name("quickstart")
        async with builder.build() as conn:
            with pytest.raises(ArgumentError, match="scheduled by table 'tick_schedule'"):
                await conn.call_reducer_async("tick", {})


async def test_a_refused_connection_is_a_connect_error_that_does_not_blame_the_token() -> None:
    module = Module("picky")

    @module.client_connected
    def client_connected(ctx: ReducerContext) -> None:
        raise SenderError("members only")

    async with LocalServer(module) as server:
        _, token = server.mint_token()
        # The upgrade succeeds (101 with the protocol); the socket then ends without
        # InitialConnection (crates/client-api/src/routes/subscribe.rs).
        url = f"{server.uri}/v1/database/{server.database}/subscribe"
        async with httpx.AsyncClient() as http, aconnect_ws(url, http, subprotocols=[V2]) as ws:
            assert ws.subprotocol == V2
            with pytest.raises(WebSocketDisconnect):
                await ws.receive_bytes()
        builder = (
            DbConnection.builder()
            .with_uri(server.uri)
            .with_database_name(server.database)
            .with_token(token)
        )
        with pytest.raises(ConnectError) as refused:
            async with builder.build():
                pass
    message = str(refused.value)
    assert "client_connected" in message
    assert "the token was not refused" in message
    assert "rejected the token" not in message
