"""``conn.db.<table>`` and ``conn.reducers.<name>`` end to end against LocalServer (both
backends): typed rows and reducer arguments of every column type, lookups by primary key and
unique column, ``on_update`` for tables with a primary key, transactions applied atomically, a
raising callback that stops nothing, removable callback handles; event tables against the
scripted server (LocalServer has none).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import pytest
from _client_support import FakeServer, FakeSocket
from _typed_support import COLUMNS, make_typed_module, sample_values

from spacetime_sched import ArgumentError, UnknownNameError
from spacetime_sched.client import DbConnection, row_dict
from spacetime_sched.protocol import (
    BsatnRowList,
    EventTable,
    QueryRows,
    QuerySetUpdate,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    TableUpdate,
    TransactionUpdate,
)
from spacetime_sched.testing import LocalServer


@asynccontextmanager
async def typed_connection() -> AsyncIterator[DbConnection]:
    async with (
        LocalServer(make_typed_module(), database="typed") as server,
        DbConnection.builder()
        .with_uri(server.uri)
        .with_database_name("typed")
        .with_connect_timeout(5)
        .build() as conn,
    ):
        yield conn


def expected_dict(row_id: int, **changes: Any) -> dict[str, Any]:
    """What the codec decodes for a row ``put`` stored (lists for arrays, dicts for structs)."""
    schema = make_typed_module().schema
    codec = schema.table("everything").row_codec
    values = {"id": row_id, **{name: value for name, _, value in COLUMNS}, **changes}
    return codec.decode(codec.encode(values))  # type: ignore[no-any-return]


async def test_typed_rows_and_reducers_for_every_column_type() -> None:
    async with typed_connection() as conn:
        await conn.subscribe("SELECT * FROM everything")
        await conn.reducers.put(*sample_values())
        table = conn.db.everything
        assert table.count() == 1
        (row,) = table
        assert type(row) is table.row_class
        assert row_dict(row) == expected_dict(1)
        # A typed row goes back into a reducer as it is (the argument is the row type).
        await conn.reducers.put_row(attrs.evolve(row, id=0, email="c@d"))
        second = table.email.find("c@d")
        assert second is not None
        assert row_dict(second) == expected_dict(2, email="c@d")
        assert conn.db["everything"] is table
        assert sorted(r.id for r in table.iter()) == [1, 2]
        assert table.rows_as_dicts() == [row_dict(r) for r in table.rows()]


async def test_find_by_primary_key_and_by_unique_column() -> None:
    async with typed_connection() as conn:
        await conn.subscribe(["SELECT * FROM everything", "SELECT * FROM tags"])
        await conn.reducers.put(*sample_values())
        table = conn.db.everything
        assert table.primary_key == "id"
        assert table.find(1) is table.email.find("a@b") is table.column("email").find("a@b")
        assert table.find(2) is None
        assert table.email.find("nobody") is None
        assert table.email.find(["unhashable"]) is None
        with pytest.raises(
            UnknownNameError, match=r"'flag' is not unique.*\(unique columns: id, email\)"
        ):
            table.flag  # noqa: B018 (a column, but not a unique one)
        with pytest.raises(UnknownNameError, match="did you mean 'email'"):
            table.emial  # noqa: B018
        with pytest.raises(ArgumentError, match="'tags' has no primary key"):
            conn.db.tags.find("x")
        with pytest.raises(ArgumentError, match="on_update needs a primary key"):
            conn.db.tags.on_update(print)
        with pytest.raises(UnknownNameError, match="did you mean 'everything'") as caught:
            conn.db.everythng  # noqa: B018
        assert isinstance(caught.value, AttributeError)
        with pytest.raises(KeyError):
            conn.db["nope"]
        assert sorted(t.name for t in conn.db) == ["everything", "log", "tags"]


async def test_on_update_replaces_a_delete_and_an_insert_in_tables_with_a_primary_key() -> None:
    seen: list[Any] = []
    async with typed_connection() as conn:
        await conn.subscribe("SELECT * FROM everything")
        await conn.reducers.put(*sample_values())
        table = conn.db.everything
        table.on_insert(lambda row: seen.append(("insert", row.email)))
        table.on_delete(lambda row: seen.append(("delete", row.email)))
        table.on_update(lambda old, new: seen.append(("update", old.email, new.email)))
        olds: list[Any] = []
        table.on_update(lambda old, new: olds.append(old))
        before = table.find(1)
        await conn.reducers.rename(1, "z@z")
        assert seen == [("update", "a@b", "z@z")]
        assert olds[0] is before  # the cached row itself, not a second decoding of it
        assert table.email.find("a@b") is None
        assert table.email.find("z@z") is table.find(1)
        assert table.count() == 1


async def test_an_update_is_only_an_update_even_without_an_on_update_callback() -> None:
    seen: list[str] = []
    async with typed_connection() as conn:
        await conn.subscribe("SELECT * FROM everything")
        conn.db.everything.on_insert(lambda row: seen.append(f"insert {row.email}"))
        conn.db.everything.on_delete(lambda row: seen.append(f"delete {row.email}"))
        await conn.reducers.put(*sample_values())
        await conn.reducers.rename(1, "z@z")  # same primary key: an update, as the SDKs say
        assert seen == ["insert a@b"]
        assert conn.db.everything.email.find("z@z") is conn.db.everything.find(1)


async def test_a_transaction_is_in_the_cache_before_any_callback_runs() -> None:
    seen: list[tuple[str, bool]] = []
    async with typed_connection() as conn:
        # Two query sets: the transaction's changes to both arrive in one message.
        await conn.subscribe("SELECT * FROM log")
        await conn.subscribe("SELECT * FROM everything")

        def on_log(row: Any) -> None:
            seen.append(("log", conn.db.everything.email.find("pair@x") is not None))

        def on_everything(row: Any) -> None:
            seen.append(("everything", conn.db.log.count() == 1))

        conn.db.log.on_insert(on_log)
        conn.db.everything.on_insert(on_everything)
        await conn.reducers.pair("pair@x", "paired")
    assert sorted(seen) == [("everything", True), ("log", True)]


async def test_a_raising_callback_stops_neither_the_others_nor_the_receive_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    async with typed_connection() as conn:
        await conn.subscribe("SELECT * FROM everything")

        def broken(row: Any) -> None:
            raise RuntimeError("callback bug")

        async def fine(row: Any) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append(row.email)

        conn.db.everything.on_insert(broken)
        conn.db.everything.on_insert(fine)
        with caplog.at_level(logging.ERROR, logger="spacetime_sched.client"):
            await conn.reducers.put(*sample_values())
            values = sample_values()
            values[COLUMNS.index(next(c for c in COLUMNS if c[0] == "email"))] = "second@x"
            await conn.reducers.put(*values)  # the receive loop is still alive
        assert seen == ["a@b", "second@x"]
        assert conn.is_connected
    assert sum("callback bug" in r.exc_text for r in caplog.records if r.exc_text) == 2


async def test_callback_handles_remove_their_callback() -> None:
    seen: list[int] = []
    async with typed_connection() as conn:
        await conn.subscribe("SELECT * FROM everything")
        handle = conn.db.everything.on_insert(lambda row: seen.append(row.id))

        @conn.db.everything.on_delete
        def deleted(row: Any) -> str:
            return "still a function"

        assert deleted(None) == "still a function"  # the handle calls through
        assert handle.is_registered
        await conn.reducers.put(*sample_values())
        handle.remove()
        handle.remove()  # again: nothing happens
        assert not handle.is_registered
        values = sample_values()
        values[[c[0] for c in COLUMNS].index("email")] = "b@c"
        await conn.reducers.put(*values)
        assert seen == [1]


async def test_reducer_names_and_arguments_are_checked_against_the_schema() -> None:
    async with typed_connection() as conn:
        with pytest.raises(UnknownNameError, match="did you mean 'put'"):
            await conn.reducers.putt(1)  # the schema is fetched by the call
        assert not hasattr(conn.reducers, "nope")  # now known: AttributeError at once
        with pytest.raises(AttributeError, match="did you mean 'rename'"):
            conn.reducers.renam  # noqa: B018
        assert "put_row" in dir(conn.reducers)
        with pytest.raises(ArgumentError, match=r"reducer 'rename': args\[0\] \(id\)"):
            await conn.reducers.rename(-1, "x")
        with pytest.raises(ArgumentError, match="takes 2 arguments"):
            await conn.reducers["rename"](1)
        with pytest.raises(ArgumentError, match="timeout"):
            await conn.reducers.rename(1, "x", timeout=-1)
        result = await conn.reducers.tag("t", timeout=5)
        assert result.reducer == "tag"


# --- event tables (LocalServer has none: the scripted server sends EventTable rows) ---------


def person(name: str) -> bytes:
    return len(name).to_bytes(4, "little") + name.encode()


async def test_event_rows_reach_on_insert_once_and_are_never_cached() -> None:
    events = BsatnRowList.from_row_bytes([person("boom"), person("bang")])

    async def script(ws: FakeSocket, message: Any) -> None:
        if isinstance(message, Subscribe):
            empty = QueryRows([SingleTableRows("person", BsatnRowList.from_row_bytes([]))])
            await ws.reply(SubscribeApplied(message.request_id, message.query_set_id, empty))
            if message.query_set_id.id == 2:  # both subscriptions see the same events
                table = TableUpdate("person", [EventTable(events)])
                await ws.reply(
                    TransactionUpdate([QuerySetUpdate(1, [table]), QuerySetUpdate(2, [table])])
                )

    seen: list[str] = []
    got_both = anyio.Event()
    async with (
        DbConnection.builder()
        .with_uri("http://fake.invalid")
        .with_database_name("quickstart")
        .with_transport(FakeServer(script).transport())
        .build() as conn
    ):

        def on_event(row: Any) -> None:
            seen.append(row.name)
            if len(seen) == 2:
                got_both.set()

        conn.db.person.on_insert(on_event)
        await conn.subscribe("SELECT * FROM person")
        handle = await conn.subscribe("SELECT * FROM person")
        with anyio.fail_after(3):
            await got_both.wait()
            update = await handle.__anext__()
        assert [row.name for row in update.for_table("person").events] == ["boom", "bang"]
        await anyio.sleep(0.05)
        assert seen == ["boom", "bang"]  # once each, though two query sets carried them
        assert conn.db.person.count() == 0
