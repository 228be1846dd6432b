"""The plain-HTTP side of the client, the builder's checks and the credentials file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from spacetime_sched import ConnectError, ProtocolError
from spacetime_sched._errors import ConfigurationError
from spacetime_sched._identity import Identity
from spacetime_sched._time import TimeDuration
from spacetime_sched.client import (
    Compression,
    CredentialsFile,
    DbConnection,
    ModernSpacetimeDBClient,
    SpacetimeHttpClient,
    http_base_url,
)

HEX = "c200" + "ab" * 30


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://localhost:3000", "http://localhost:3000/"),
        ("https://example.com/", "https://example.com/"),
        ("ws://127.0.0.1:3000", "http://127.0.0.1:3000/"),
        ("wss://maincloud.spacetimedb.com", "https://maincloud.spacetimedb.com/"),
        ("WSS://proxy.example/spacetime/", "https://proxy.example/spacetime"),
    ],
)
def test_base_uris_map_to_http_for_httpx(uri: str, expected: str) -> None:
    assert str(http_base_url(uri)) == expected


@pytest.mark.parametrize("uri", ["ftp://host", "localhost:3000", "http://", "not a url"])
def test_a_bad_uri_is_a_configuration_error(uri: str) -> None:
    with pytest.raises(ConfigurationError, match="uri"):
        http_base_url(uri)


def test_the_builder_requires_a_uri_and_a_database() -> None:
    with pytest.raises(ConfigurationError, match="with_uri"):
        DbConnection.builder().with_database_name("db").build()
    with pytest.raises(ConfigurationError, match="with_database_name"):
        DbConnection.builder().with_uri("http://localhost").build()


def test_with_module_name_is_the_old_name_of_with_database_name() -> None:
    options = ModernSpacetimeDBClient.builder().with_uri("ws://h").with_module_name("m").options()
    assert options.database == "m"
    assert str(options.base_url) == "http://h/"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("none", "None"), ("GZIP", "Gzip"), ("brotli", "Brotli"), (None, "None")],
)
def test_compression_names_are_case_insensitive(given: str | None, expected: str) -> None:
    assert Compression.parse(given).value == expected


def test_an_unknown_compression_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'zstd'"):
        DbConnection.builder().with_compression("zstd")


def test_query_parameters_follow_the_options() -> None:
    builder = DbConnection.builder().with_uri("http://h").with_database_name("d")
    assert builder.options().query_params() == {"compression": "Gzip"}
    builder.with_compression("none").with_confirmed_reads(True)
    assert builder.options().query_params() == {"compression": "None", "confirmed": "true"}


def mock(handler: httpx.MockTransport) -> SpacetimeHttpClient:
    return SpacetimeHttpClient("ws://spacetime.test", transport=handler, token="tok")


async def test_create_identity_posts_without_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"identity": HEX, "token": "new-jwt"})

    minted = await mock(httpx.MockTransport(handler)).create_identity()
    assert minted.identity == Identity.from_hex(HEX)
    assert minted.token == "new-jwt"
    assert "new-jwt" not in repr(minted)
    assert seen[0].method == "POST"
    assert seen[0].url == "http://spacetime.test/v1/identity"
    assert "authorization" not in seen[0].headers


async def test_a_malformed_identity_response_is_a_protocol_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"token": "x"}))
    with pytest.raises(ProtocolError, match="identity"):
        await mock(transport).create_identity()


async def test_the_schema_is_fetched_with_version_9_and_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"typespace": {"types": []}})

    async with mock(httpx.MockTransport(handler)) as client:
        assert await client.schema_json("quickstart") == {"typespace": {"types": []}}
    assert str(seen[0].url) == "http://spacetime.test/v1/database/quickstart/schema?version=9"
    assert seen[0].headers["authorization"] == "Bearer tok"


async def test_a_401_says_the_token_was_rejected_without_showing_it() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(401, text="bad jwt"))
    with pytest.raises(ConnectError, match="rejected the token") as info:
        await mock(transport).schema_json("quickstart")
    assert "tok" not in str(info.value).replace("token", "")


async def test_clock_skew_uses_the_midpoint_of_the_fastest_round_trip() -> None:
    ahead = 5_000_000  # the server's clock runs 5 s ahead

    def handler(request: httpx.Request) -> httpx.Response:
        import time

        now = time.time_ns() // 1000
        return httpx.Response(200, json={"__timestamp_micros_since_unix_epoch__": now + ahead})

    skew = await mock(httpx.MockTransport(handler)).estimate_clock_skew("db", samples=3)
    assert isinstance(skew, TimeDuration)
    assert abs(skew.micros - ahead) < 200_000


async def test_credentials_are_saved_private_and_atomically(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "token.json"
    credentials = CredentialsFile(path)
    assert await credentials.load() is None
    await credentials.save(HEX, "jwt-1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text()) == {"identity": HEX, "token": "jwt-1"}
    await credentials.save(HEX, "jwt-2")
    assert await credentials.load() == "jwt-2"
    assert [p.name for p in path.parent.iterdir()] == ["token.json"]  # no temp files left


async def test_a_bare_token_file_is_accepted_and_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("bare-jwt\n")
    assert await CredentialsFile(path).load() == "bare-jwt"
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="credentials file"):
        await CredentialsFile(path).load()


def test_the_old_protocol_name_still_works_with_a_deprecation_warning() -> None:
    import spacetime_sched.client as client

    with pytest.warns(DeprecationWarning, match="use WireProtocol"):
        old = client.Protocol
    assert old is client.WireProtocol
    assert "Protocol" not in client.__all__  # no longer shadows typing.Protocol on import *
