"""The HTTP API of LocalServer, over loopback with httpx, as SpacetimeDB answers it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from spacetime_sched import Identity, Timestamp
from spacetime_sched.testing import example_module
from spacetime_sched.testing._server import LocalServer

DB = "/v1/database/quickstart"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(example_module.make_module(), database="quickstart") as server:
        yield server


@pytest.fixture
async def http(server: LocalServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.uri, verify=False) as client:
        yield client


async def test_the_server_listens_on_a_free_loopback_port(server: LocalServer) -> None:
    assert server.uri == f"http://127.0.0.1:{server.port}"
    assert server.ws_uri == f"ws://127.0.0.1:{server.port}"
    assert server.database == "quickstart"
    assert server.port > 0


async def test_ping(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/ping")).status_code == 200


async def test_post_identity_mints_an_identity_and_a_token(
    http: httpx.AsyncClient, server: LocalServer
) -> None:
    body = (await http.post("/v1/identity")).json()
    identity = Identity.from_hex(body["identity"])
    assert len(body["identity"]) == 64
    assert body["identity"].startswith("c200")
    # The token stands for that identity on every database route.
    response = await http.get(f"{DB}/unstable/timestamp", headers=bearer(body["token"]))
    assert response.headers["spacetime-identity"] == identity.to_hex()
    assert response.headers["spacetime-identity-token"] == body["token"]


async def test_anonymous_requests_get_a_fresh_identity_in_the_headers(
    http: httpx.AsyncClient,
) -> None:
    first = await http.get(f"{DB}/unstable/timestamp")
    second = await http.get(f"{DB}/unstable/timestamp")
    assert first.headers["spacetime-identity"].startswith("c200")
    assert first.headers["spacetime-identity"] != second.headers["spacetime-identity"]


async def test_websocket_token_needs_a_valid_bearer_token(http: httpx.AsyncClient) -> None:
    token = (await http.post("/v1/identity")).json()["token"]
    short = (await http.post("/v1/identity/websocket-token", headers=bearer(token))).json()
    same = await http.get(f"{DB}/unstable/timestamp", headers=bearer(short["token"]))
    mine = await http.get(f"{DB}/unstable/timestamp", headers=bearer(token))
    assert same.headers["spacetime-identity"] == mine.headers["spacetime-identity"]
    assert (await http.post("/v1/identity/websocket-token")).status_code == 401
    bad = await http.post("/v1/identity/websocket-token", headers=bearer("x.y.z"))
    assert bad.status_code == 401


@pytest.mark.anyio  # explicit: parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",  # well-formed, wrong signature
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # unsigned
    ],
)
async def test_a_bad_token_is_refused_with_401(http: httpx.AsyncClient, token: str) -> None:
    response = await http.get(f"{DB}/unstable/timestamp", headers=bearer(token))
    assert response.status_code == 401
    assert token not in response.text


async def test_a_token_from_another_server_is_refused(http: httpx.AsyncClient) -> None:
    async with (
        LocalServer(example_module.module) as other,
        httpx.AsyncClient(verify=False) as client,
    ):
        foreign = (await client.post(f"{other.uri}/v1/identity")).json()["token"]
    assert (await http.get(f"{DB}/unstable/timestamp", headers=bearer(foreign))).status_code == 401


async def test_the_same_secret_keeps_tokens_valid_across_servers() -> None:
    secret = b"s" * 32
    async with (
        LocalServer(example_module.module, secret=secret) as one,
        httpx.AsyncClient(base_url=one.uri, verify=False) as client,
    ):
        body = (await client.post("/v1/identity")).json()
    async with (
        LocalServer(example_module.module, secret=secret) as two,
        httpx.AsyncClient(base_url=two.uri, verify=False) as client,
    ):
        response = await client.get(f"{DB}/unstable/timestamp", headers=bearer(body["token"]))
    assert response.headers["spacetime-identity"] == body["identity"]


async def test_schema_is_the_modules_v9_json(http: httpx.AsyncClient, server: LocalServer) -> None:
    response = await http.get(f"{DB}/schema", params={"version": "9"})
    assert response.status_code == 200
    assert response.json() == server.host.schema.to_json()
    assert (await http.get(f"{DB}/schema", params={"version": "8"})).status_code == 400


async def test_the_database_can_be_named_by_its_identity(
    http: httpx.AsyncClient, server: LocalServer
) -> None:
    hex_identity = (await http.get(f"{DB}/identity")).text
    assert hex_identity == server.host.identity.to_hex()
    info = (await http.get(f"/v1/database/{hex_identity}")).json()
    assert info["database_identity"] == {"__identity__": f"0x{hex_identity}"}
    assert set(info) == {"database_identity", "owner_identity", "host_type", "initial_program"}


async def test_an_unknown_database_is_404_with_the_identity_headers(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/v1/database/nope/schema", params={"version": "9"})
    assert response.status_code == 404
    assert "spacetime-identity" in response.headers


async def test_unstable_timestamp_is_the_server_clock(http: httpx.AsyncClient) -> None:
    before = Timestamp.now().micros_since_epoch
    body = (await http.get(f"{DB}/unstable/timestamp")).json()
    after = Timestamp.now().micros_since_epoch
    assert before <= body["__timestamp_micros_since_unix_epoch__"] <= after


async def test_call_commits_and_returns_200_empty(
    http: httpx.AsyncClient, server: LocalServer
) -> None:
    response = await http.post(f"{DB}/call/add_person", json=["Ada"])
    assert (response.status_code, response.text) == (200, "")
    by_name = await http.post(f"{DB}/call/add_person", json={"name": "Grace"})
    assert by_name.status_code == 200
    assert [row["name"] for row in server.host.table("person")] == ["Ada", "Grace"]
    # Each HTTP call runs the connect and disconnect lifecycle reducers around it.
    events = [row["event"] for row in server.host.table("connection_log")]
    assert events == ["init"] + ["connected", "disconnected"] * 2


async def test_call_sats_json_arguments_with_special_types(
    http: httpx.AsyncClient, server: LocalServer
) -> None:
    response = await http.post(
        f"{DB}/call/record_event",
        json=[
            "e",
            {"__timestamp_micros_since_unix_epoch__": -1},
            {"Interval": {"__time_duration_micros__": 5}},
        ],
        headers=bearer((await http.post("/v1/identity")).json()["token"]),
    )
    assert response.status_code == 200
    (row,) = server.host.table("event").rows()
    assert row["at"] == Timestamp(-1)
    assert row["sender"] == Identity.from_hex(response.headers["spacetime-identity"])


@pytest.mark.anyio  # explicit: parametrized coroutine tests need the marker at collection
@pytest.mark.parametrize(
    ("reducer", "body", "status", "text"),
    [
        ("fail", ["boom"], 530, "boom"),
        ("add", [1], 400, "invalid arguments for 'add'"),
        ("add", ["x", 1], 400, "invalid arguments for 'add'"),
        ("nope", [], 404, "no such reducer: 'nope'"),
        ("tick", [], 404, "no such reducer: 'tick'"),  # scheduled reducers are private
        ("init", [], 400, "lifecycle reducer 'init' cannot be called"),
    ],
)
async def test_call_failures(
    http: httpx.AsyncClient, reducer: str, body: list[object], status: int, text: str
) -> None:
    response = await http.post(f"{DB}/call/{reducer}", json=body)
    assert response.status_code == status
    assert text in response.text


async def test_call_needs_exactly_application_json(http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{DB}/call/add_person",
        content=b'["Ada"]',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 415


async def test_a_procedure_over_http_returns_its_value_as_json(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{DB}/call/server_time", json=[])
    assert response.status_code == 200
    (micros,) = response.json()  # untyped SATS-JSON: a product is an array
    assert abs(micros - Timestamp.now().micros_since_epoch) < 60_000_000


async def test_sql_answers_each_statement_with_untyped_rows(
    http: httpx.AsyncClient, server: LocalServer
) -> None:
    token = (await http.post("/v1/identity")).json()["token"]
    await http.post(f"{DB}/call/add_person", json=["Ada"])
    await http.post(
        f"{DB}/call/record_event",
        json=[
            "e",
            {"__timestamp_micros_since_unix_epoch__": 7},
            {"Time": {"__timestamp_micros_since_unix_epoch__": 9}},
        ],
        headers=bearer(token),
    )
    response = await http.post(
        f"{DB}/sql", content="SELECT * FROM person WHERE name = 'Ada'; SELECT * FROM event"
    )
    assert response.status_code == 200
    people, events = response.json()
    assert [e["name"]["some"] for e in people["schema"]["elements"]] == ["id", "name", "created_at"]
    ((person_id, name, (created,)),) = people["rows"]
    assert (person_id, name) == (1, "Ada")
    assert isinstance(created, int)
    sender = Identity.from_hex(
        (await http.get(f"{DB}/identity", headers=bearer(token))).headers["spacetime-identity"]
    )
    assert events["rows"] == [[1, "e", [7], [1, [9]], [f"0x{sender.to_hex()}"]]]
    assert events["stats"] == {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0}
    assert isinstance(events["total_duration_micros"], int)


async def test_sql_refuses_what_it_cannot_run(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{DB}/sql", content="SELECT * FROM connection_log")
    assert response.status_code == 400
    assert "no such table" in response.text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_port_in_use_fails_at_once(server: LocalServer, http: httpx.AsyncClient) -> None:
    with pytest.raises(OSError):
        async with LocalServer(example_module.module, port=server.port):
            pass
    assert (await http.get("/v1/ping")).status_code == 200  # the first server is unharmed


async def test_an_exception_in_the_block_propagates_unchanged() -> None:
    with pytest.raises(LookupError, match="from the test"):
        async with LocalServer(example_module.module):
            raise LookupError("from the test")
