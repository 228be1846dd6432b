"""Schedule stores, as a specification: what survives a restart, and who runs each fire.

Every ``async def`` test runs on asyncio and on trio.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import struct
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetime_sched._errors import InvalidScheduleError, ScheduleStoreError
from spacetime_sched._identity import ConnectionId, Identity
from spacetime_sched._time import ScheduleAt, TimeDuration, Timestamp
from spacetime_sched.sats import Some, SumValue
from spacetime_sched.scheduler._stores import (
    BatchScheduleStore,
    MemoryStore,
    ScheduleStore,
    SQLiteStore,
    StoredSchedule,
    decode_value,
    dumps_value,
    encode_value,
    loads_value,
)
from spacetime_sched.scheduler._triggers import CronTrigger, IntervalTrigger

T = Timestamp.parse
REPO = Path(__file__).resolve().parents[1]


def record(schedule_id: str = "nightly", **changes: Any) -> StoredSchedule:
    fields: dict[str, Any] = {
        "id": schedule_id,
        "reducer_name": "cleanup",
        "args": (1, "two", b"\x03", [4.5, None], {"six": True}),
        "trigger": CronTrigger("0 3 * * *", "Europe/London").to_dict(),
        "policy": {"misfire_grace": 60_000_000, "coalesce": "latest"},
        "metadata": {"owner": "ops", "since": T("2025-01-01T00:00:00Z")},
        "status": "pending",
        "run_count": 3,
        "next_run_micros": T("2025-01-02T03:00:00Z").micros_since_epoch,
        "created_at_micros": T("2025-01-01T00:00:00Z").micros_since_epoch,
    }
    fields.update(changes)
    return StoredSchedule(**fields)


# Marked at collection time so anyio parametrises coroutine tests by backend *in addition to*
# their own parameters (conftest marks them later, when anyio 4.16 would drop ``store_kind``).
pytestmark = pytest.mark.anyio

#: Tests taking ``store_kind`` run on every store (PostgreSQL: see tests/_postgres_support.py).
every_store = pytest.mark.parametrize("store_kind", ["memory", "sqlite", "postgres"])
#: Tests of what only stores that serialise their records check.
persistent_stores = pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])


@asynccontextmanager
async def open_store(kind: str, directory: Path) -> AsyncIterator[ScheduleStore]:
    """A fresh store of ``kind`` (tests taking ``store_kind`` run once with each)."""
    if kind == "memory":
        async with MemoryStore() as memory:
            yield memory
    elif kind == "sqlite":
        async with SQLiteStore(directory / "schedules.db", owner="test") as sqlite:
            yield sqlite
    else:
        from _postgres_support import database_dsn, fresh_schema

        from spacetime_sched.scheduler._stores._postgres import PostgresStore

        async with PostgresStore(database_dsn(), schema=fresh_schema(), owner="test") as pg:
            yield pg


# --- records ------------------------------------------------------------------------------------


@every_store
async def test_a_saved_schedule_loads_back_equal(store_kind: str, tmp_path: Path) -> None:
    async with open_store(store_kind, tmp_path) as store:
        assert isinstance(store, ScheduleStore)
        assert await store.load_all() == []
        await store.save(record("a"))
        await store.save(record("b", next_run_micros=None, status="paused"))
        assert sorted(await store.load_all(), key=lambda r: r.id) == [
            record("a"),
            record("b", next_run_micros=None, status="paused"),
        ]


@every_store
async def test_save_replaces_the_record_with_the_same_id(store_kind: str, tmp_path: Path) -> None:
    async with open_store(store_kind, tmp_path) as store:
        await store.save(record("a"))
        await store.save(record("a", run_count=4, status="completed"))
        assert await store.load_all() == [record("a", run_count=4, status="completed")]


@every_store
async def test_delete_forgets_a_schedule_and_ignores_unknown_ids(
    store_kind: str, tmp_path: Path
) -> None:
    async with open_store(store_kind, tmp_path) as store:
        await store.save(record("a"))
        await store.save(record("b"))
        await store.delete("a")
        await store.delete("never-existed")
        assert [r.id for r in await store.load_all()] == ["b"]


async def test_sqlite_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "schedules.db"
    saved = [
        record("a"),
        record("b", args=(2**256 - 1, -(2**127), ScheduleAt.Interval(TimeDuration(5_000_000)))),
        record(
            "c",
            trigger=IntervalTrigger(TimeDuration(1_000_000), T("2025-01-01T00:00:00Z")).to_dict(),
        ),
    ]
    async with SQLiteStore(path) as first:
        for r in saved:
            await first.save(r)
        assert await first.claim_fire("a", T("2025-01-02T03:00:00Z"), "first")
    async with SQLiteStore(path) as second:
        assert await second.load_all() == saved
        # The claim survived too: the restarted instance does not run that fire again.
        assert not await second.claim_fire("a", T("2025-01-02T03:00:00Z"), "second")
        assert await second.claimed_by("a", T("2025-01-02T03:00:00Z")) == "first"


@persistent_stores
async def test_arguments_that_cannot_be_stored_are_refused_with_their_path(
    store_kind: str, tmp_path: Path
) -> None:
    async with open_store(store_kind, tmp_path) as store:
        with pytest.raises(InvalidScheduleError, match=r"args\[1\]\['k'\]: cannot store a set"):
            await store.save(record("a", args=(1, {"k": {1, 2}})))
        with pytest.raises(InvalidScheduleError, match="schedule 'a': trigger is not JSON"):
            await store.save(record("a", trigger={"at": object()}))
        assert await store.load_all() == []


def test_a_stored_schedule_checks_its_field_types() -> None:
    with pytest.raises(TypeError, match=r"StoredSchedule\.run_count: expected int, got bool"):
        record(run_count=True)
    with pytest.raises(TypeError, match=r"StoredSchedule\.next_run_micros: expected int or None"):
        record(next_run_micros=1.5)
    assert record(args=[1, 2]).args == (1, 2)  # any sequence of arguments becomes a tuple


# --- corrupted stores ---------------------------------------------------------------------------


async def test_a_corrupted_row_is_reported_by_id_and_the_others_still_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        for sid in ("good-1", "bad-args", "bad-trigger", "good-2"):
            await store.save(record(sid))
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schedules SET args = '{\"$pickle\": \"x\"}' WHERE id = 'bad-args'")
        raw.execute("UPDATE schedules SET trigger = 'not json' WHERE id = 'bad-trigger'")
    raw.close()
    caplog.set_level(logging.ERROR, logger="spacetime_sched.scheduler.store")
    async with SQLiteStore(path) as store:
        assert [r.id for r in await store.load_all()] == ["good-1", "good-2"]
        messages = [str(error) for error in store.load_errors]
    assert len(messages) == 2
    assert "schedule 'bad-args'" in messages[0]
    assert "unknown tag '$pickle'" in messages[0]
    assert "schedule 'bad-trigger'" in messages[1]
    assert "bad-args" in caplog.text
    assert "bad-trigger" in caplog.text


async def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database, just some text that is long enough " * 20)
    async with SQLiteStore(path) as store:
        with pytest.raises(ScheduleStoreError, match="not a usable schedule store"):
            await store.load_all()


async def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        await store.load_all()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    raw.close()
    async with SQLiteStore(path) as store:
        with pytest.raises(ScheduleStoreError, match="schema version 99, newer"):
            await store.load_all()


@every_store
async def test_a_closed_store_refuses_work(store_kind: str, tmp_path: Path) -> None:
    async with open_store(store_kind, tmp_path) as store:
        await store.aclose()
        await store.aclose()  # idempotent
        with pytest.raises(ScheduleStoreError, match="closed"):
            await store.save(record("a"))


# --- fire claims ------------------------------------------------------------------------------


@every_store
async def test_each_fire_is_claimed_exactly_once(store_kind: str, tmp_path: Path) -> None:
    async with open_store(store_kind, tmp_path) as store:
        fire = T("2025-01-02T03:00:00Z")
        assert await store.claim_fire("nightly", fire, "instance-1")
        assert not await store.claim_fire("nightly", fire, "instance-1")  # a retry after a crash
        assert not await store.claim_fire("nightly", fire, "instance-2")  # a second instance
        assert await store.claim_fire("nightly", T("2025-01-03T03:00:00Z"), "instance-2")
        assert await store.claim_fire("hourly", fire, "instance-2")


async def test_two_sqlite_stores_on_one_file_racing_claims_get_one_winner_each(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    fires = [Timestamp(1_700_000_000_000_000 + i * 1_000_000) for i in range(150)]
    wins: dict[tuple[str, int], list[str]] = {}

    async def claim_all(store: SQLiteStore, name: str) -> None:
        async def claim(schedule_id: str, fire: Timestamp) -> None:
            if await store.claim_fire(schedule_id, fire, name):
                wins.setdefault((schedule_id, fire.micros_since_epoch), []).append(name)

        async with anyio.create_task_group() as tg:
            for fire in fires:
                for schedule_id in ("a", "b"):
                    tg.start_soon(claim, schedule_id, fire)
                    tg.start_soon(claim, schedule_id, fire)  # and a duplicate of itself

    async with SQLiteStore(path, owner="one") as one, SQLiteStore(path, owner="two") as two:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(claim_all, one, "one")
                tg.start_soon(claim_all, two, "two")
        assert len(wins) == 2 * len(fires)
        assert all(len(winners) == 1 for winners in wins.values())
        for (schedule_id, micros), winners in list(wins.items())[:10]:
            assert await one.claimed_by(schedule_id, Timestamp(micros)) == winners[0]


@every_store
async def test_batches_save_delete_and_claim_in_one_go(store_kind: str, tmp_path: Path) -> None:
    async with open_store(store_kind, tmp_path) as store:
        assert isinstance(store, BatchScheduleStore)
        await store.save_many([record("a"), record("b"), record("c")])
        await store.save_many([record("b", run_count=9)])
        await store.delete_many(["a", "nope"])
        assert sorted(await store.load_all(), key=lambda r: r.id) == [
            record("b", run_count=9),
            record("c"),
        ]
        fire = T("2025-01-02T03:00:00Z")
        assert await store.claim_fire("b", fire, "x")
        wins = await store.claim_fires([("b", fire), ("c", fire), ("c", fire)], "y")
        assert wins == [False, True, False]  # a duplicate inside one batch loses too
        assert await store.claim_fires([], "y") == []


@persistent_stores
async def test_a_batch_with_an_unstorable_record_saves_nothing(
    store_kind: str, tmp_path: Path
) -> None:
    async with open_store(store_kind, tmp_path) as store:
        assert isinstance(store, BatchScheduleStore)
        with pytest.raises(InvalidScheduleError, match=r"args\[0\]: cannot store a set"):
            await store.save_many([record("a"), record("b", args=({1},))])
        assert await store.load_all() == []


async def test_batched_claims_racing_on_one_file_get_one_winner_each(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    fires = [("job", Timestamp(i)) for i in range(300)]
    results: list[list[bool]] = []

    async def claim_in_batches(store: SQLiteStore, owner: str, step: int) -> None:
        for start in range(0, len(fires), step):
            results.append(await store.claim_fires(fires[start : start + step], owner))

    async with SQLiteStore(path) as one, SQLiteStore(path) as two:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(claim_in_batches, one, "one", 7)
                tg.start_soon(claim_in_batches, two, "two", 11)
                tg.start_soon(claim_in_batches, two, "two", 13)
    assert sum(sum(batch) for batch in results) == len(fires)


@persistent_stores
async def test_a_cancelled_call_leaves_the_store_usable(store_kind: str, tmp_path: Path) -> None:
    async with open_store(store_kind, tmp_path) as store:
        with anyio.CancelScope() as scope:
            scope.cancel()  # cancelled before the worker thread even starts
            await store.claim_fire("a", Timestamp(1), "x")
        with anyio.move_on_after(0.0001):  # cancelled while the worker may be running
            await store.claim_fire("a", Timestamp(2), "x")
        assert await store.claim_fire("a", Timestamp(3), "x")
        # Whatever happened to the cancelled calls, the claim ledger is consistent.
        for fire in (1, 2):
            claimed = await store.claimed_by("a", Timestamp(fire))
            assert claimed is None or not await store.claim_fire("a", Timestamp(fire), "y")


_CLAIMER = textwrap.dedent(
    """
    import sys, anyio
    sys.path.insert(0, sys.argv[1])
    from spacetime_sched._time import Timestamp
    from spacetime_sched.scheduler._stores import SQLiteStore

    async def main():
        async with SQLiteStore(sys.argv[2], owner=sys.argv[3]) as store:
            for i in range(300):
                if await store.claim_fire("job", Timestamp(i), sys.argv[3]):
                    print(i)

    anyio.run(main)
    """
)


def test_claims_are_atomic_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(REPO), path, name],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    won: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        won.extend(int(line) for line in out.split())
    assert sorted(won) == list(range(300))  # every fire once, none twice


async def test_old_claims_are_pruned_after_the_retention(tmp_path: Path) -> None:
    day = TimeDuration.from_days(1)
    old, new = T("2025-01-01T00:00:00Z"), T("2025-01-10T00:00:00Z")
    async with SQLiteStore(tmp_path / "s.db", fire_retention=day * 7) as store:
        assert await store.claim_fire("a", old, "x")
        assert await store.claim_fire("a", new - day, "x")
        assert await store.claim_fire("a", new, "x")
        assert await store.prune_fires() == 1  # older than the newest claim minus 7 days
        assert await store.claimed_by("a", old) is None
        assert await store.claimed_by("a", new - day) == "x"
        assert await store.prune_fires(before=new) == 1
    memory = MemoryStore(fire_retention=day * 7)
    assert await memory.claim_fire("a", old, "x")
    assert await memory.claim_fire("a", new, "x")
    assert await memory.prune_fires() == 1
    assert await memory.claimed_by("a", old) is None
    assert await memory.claimed_by("a", new) == "x"


def test_stores_are_async_context_managers_and_reprs_are_short(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", owner="me")
    assert repr(store) == f"<SQLiteStore {str(tmp_path / 's.db')!r} owner='me' open>"
    assert repr(MemoryStore()) == "<MemoryStore schedules=0 claims=0>"
    with pytest.raises(InvalidScheduleError, match="fire_retention must be positive"):
        SQLiteStore(tmp_path / "s.db", fire_retention=TimeDuration(0))


# --- tagged JSON values -------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down (1 != 1.0 != True, -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)  # bit-exact: -0.0 and NaN payloads
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (Some, SumValue)):
        return same(attrs_tuple(a), attrs_tuple(b))
    return bool(a == b)


def attrs_tuple(value: Some | SumValue) -> tuple[Any, ...]:
    if isinstance(value, Some):
        return (value.value,)
    return (value.tag, value.name, value.value)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**255), max_value=2**256 - 1),
    st.floats(),
    st.text(),
    st.binary(),
    st.integers(-(2**63), 2**63 - 1).map(Timestamp),
    st.integers(-(2**63), 2**63 - 1).map(TimeDuration),
    st.integers(-(2**63), 2**63 - 1).map(lambda m: ScheduleAt.Interval(TimeDuration(m))),
    st.integers(-(2**63), 2**63 - 1).map(lambda m: ScheduleAt.Time(Timestamp(m))),
    st.integers(0, 2**256 - 1).map(Identity),
    st.integers(0, 2**128 - 1).map(ConnectionId),
    st.uuids(),
)
keys = st.one_of(st.text(), st.text().map(lambda s: "$" + s), st.integers(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        inner.map(Some),
        st.builds(SumValue, st.integers(0, 255), st.none() | st.text(max_size=5), inner),
    ),
    max_leaves=12,
)


@settings(max_examples=150)
@given(values)
def test_tagged_json_round_trips_every_reducer_value(value: Any) -> None:
    text = dumps_value(value)
    assert text.isascii()
    json.loads(text)  # standard JSON: no NaN or Infinity literals
    assert same(loads_value(text), value)


def test_tagged_json_reads_like_json() -> None:
    assert dumps_value((1, "x", [True, None], {"a": 1.5})) == (
        '{"$tuple":[1,"x",[true,null],{"a":1.5}]}'
    )
    assert encode_value(2**64) == {"$int": "18446744073709551616"}
    assert encode_value(2**53) == 2**53  # safe integers stay numbers
    assert encode_value({"$ref": 1}) == {"$map": [["$ref", 1]]}  # no confusion with tags
    assert encode_value(T("2025-01-01T00:00:00Z")) == {"$timestamp": 1735689600000000}
    assert encode_value(bytearray(b"\x00\xff")) == {"$bytes": "AP8="}
    assert encode_value(float("-inf")) == {"$float": "-inf"}
    assert encode_value(float("nan")) == {"$float": "nan:7ff8000000000000"}
    assert encode_value(uuid.UUID(int=1)) == {"$uuid": "00000000-0000-0000-0000-000000000001"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"$pickle": "cos\nsystem\n"}, r"value: unknown tag '\$pickle'"),
        ({"$int": "12x"}, r"value: \$int: '12x' is not a decimal integer"),
        ({"$float": "nan:3ff0000000000000"}, r"value: \$float: .* is not a NaN"),
        ({"$timestamp": 2**70}, r"value: \$timestamp: .*64-bit"),
        ({"$tuple": [1, {"$bytes": "!!"}]}, r"value\[1\]: \$bytes: .*invalid base64"),
        ({"$a": 1, "b": 2}, "exactly one key"),
        ({"$map": [[[1], 2]]}, "cannot be a dict key"),
    ],
)
def test_malformed_tagged_json_names_the_place(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_value(data)
