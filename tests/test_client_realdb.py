"""The client against a real SpacetimeDB, when one is named by ``SPACETIMEDB_URI``.

Set ``SPACETIMEDB_URI`` (e.g. ``http://127.0.0.1:3000``) and ``SPACETIMEDB_DATABASE`` (default
``quickstart``; the database must run the quickstart module, see docs/client.md). Without them
every test here is skipped with that reason.
"""

from __future__ import annotations

import os

import pytest

from spacetime_sched import ArgumentError, ReducerError
from spacetime_sched._time import Timestamp
from spacetime_sched.client import DbConnection, DbConnectionBuilder, create_identity

URI = os.environ.get("SPACETIMEDB_URI")
DATABASE = os.environ.get("SPACETIMEDB_DATABASE", "quickstart")

pytestmark = [
    pytest.mark.realdb,
    pytest.mark.skipif(URI is None, reason="SPACETIMEDB_URI is not set (no real SpacetimeDB)"),
]


def builder() -> DbConnectionBuilder:
    assert URI is not None
    return DbConnection.builder().with_uri(URI).with_database_name(DATABASE)


async def test_connect_and_call_a_reducer() -> None:
    async with builder().build() as conn:
        assert not conn.identity.is_zero()
        result = await conn.call_reducer_async("add", 1, 2)
        assert isinstance(result.timestamp, Timestamp)


async def test_err_and_argument_checks() -> None:
    async with builder().build() as conn:
        with pytest.raises(ReducerError):
            await conn.call_reducer_async("fail", "expected failure")
        with pytest.raises(ArgumentError):
            await conn.call_reducer_async("add", 1)


async def test_minted_identity_and_query() -> None:
    assert URI is not None
    minted = await create_identity(URI)
    async with builder().with_token(minted.token).build() as conn:
        assert conn.identity == minted.identity
        await conn.call_reducer_async("add_person", f"realdb-{minted.identity.to_hex()[:8]}")
        rows = await conn.query("SELECT * FROM person")
        assert rows.get("person")


@pytest.mark.anyio
@pytest.mark.parametrize("compression", ["none", "gzip", "brotli"])
async def test_subscribe_with_each_compression(compression: str) -> None:
    async with builder().with_compression(compression).build() as conn:
        handle = await conn.subscribe("SELECT * FROM person")
        assert "person" in handle.rows or handle.rows == {}
        await handle.unsubscribe()
