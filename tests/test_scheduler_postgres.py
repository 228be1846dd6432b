"""PostgresStore, as a specification: several instances on one PostgreSQL.

Runs against a real server (see tests/_postgres_support.py; never a mock). The shared store
behaviour is in tests/test_scheduler_stores.py, which runs on PostgresStore too; this file covers
what only a shared database has: migrations under concurrency, racing instances, leases and their
take-over, release on shutdown, LISTEN/NOTIFY, and keeping the password out of messages.
Every ``async def`` test runs on asyncio and on trio.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from _postgres_support import database_dsn, fresh_schema
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from spacetime_sched._errors import InvalidScheduleError, ScheduleStoreError
from spacetime_sched._time import TimeDuration, Timestamp
from spacetime_sched.scheduler._stores import StoredSchedule
from spacetime_sched.scheduler._stores._postgres import SCHEMA_VERSION, ExpiredFire, PostgresStore

REPO = Path(__file__).resolve().parents[1]
FAR_FUTURE = Timestamp(2**62)  # "now", for a lease check that must see every lease expired


def record(schedule_id: str, delivery: str | None = None, **changes: Any) -> StoredSchedule:
    policy: dict[str, Any] = {"misfire_grace": 1_000_000}
    if delivery is not None:
        policy["delivery"] = delivery
    fields: dict[str, Any] = {
        "id": schedule_id,
        "reducer_name": "tick",
        "args": (1, "x"),
        "trigger": {"type": "once", "at": 1_700_000_000_000_000},
        "policy": policy,
        "metadata": {},
        "status": "pending",
        "run_count": 0,
        "next_run_micros": 1_700_000_000_000_000,
        "created_at_micros": 1_600_000_000_000_000,
    }
    fields.update(changes)
    return StoredSchedule(**fields)


def fire(i: int) -> Timestamp:
    return Timestamp(1_700_000_000_000_000 + i * 1_000_000)


@pytest.fixture
def schema() -> str:
    """A schema of its own for each test, inside the run's database."""
    return fresh_schema()


@asynccontextmanager
async def stores(schema: str, *owners: str, **options: Any) -> AsyncIterator[list[PostgresStore]]:
    """One open PostgresStore per owner, all on the same schema (instances of one deployment)."""
    async with _stores(schema, list(owners), options) as opened:
        yield opened


@asynccontextmanager
async def _stores(
    schema: str, owners: list[str], options: dict[str, Any]
) -> AsyncIterator[list[PostgresStore]]:
    if not owners:
        yield []
        return
    async with (
        PostgresStore(database_dsn(), schema=schema, owner=owners[0], **options) as first,
        _stores(schema, owners[1:], options) as rest,
    ):
        yield [first, *rest]


def dsn_with(**changes: str) -> str:
    params = conninfo_to_dict(database_dsn())
    params.update(changes)
    return make_conninfo("", **params)


# --- schema and migrations ------------------------------------------------------------------------


async def test_instances_starting_together_create_the_schema_once(schema: str) -> None:
    async def open_and_close() -> None:
        async with PostgresStore(database_dsn(), schema=schema) as store:
            assert await store.load_all() == []

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(open_and_close)
    async with PostgresStore(
        database_dsn(), schema=schema
    ) as again:  # and reopening migrates nothing
        await again.save(record("a"))
    with psycopg.connect(database_dsn()) as raw:
        versions = raw.execute(
            sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
        ).fetchall()
    assert versions == [(SCHEMA_VERSION,)]


async def test_records_and_claims_survive_a_restart(schema: str) -> None:
    async with stores(schema, "first") as (first,):
        await first.save_many([record("a"), record("b", args=(2**256 - 1, b"\x00\xff"))])
        assert await first.claim_fire("a", fire(1), "first")
    async with stores(schema, "second") as (second,):
        assert await second.load_all() == [record("a"), record("b", args=(2**256 - 1, b"\x00\xff"))]
        assert not await second.claim_fire("a", fire(1), "second")
        assert await second.claimed_by("a", fire(1)) == "first"


async def test_a_schema_from_a_newer_version_is_refused(schema: str) -> None:
    async with stores(schema, "x"):
        pass
    with psycopg.connect(database_dsn()) as raw:
        raw.execute(
            sql.SQL("INSERT INTO {}.schema_version (version) VALUES (99)").format(
                sql.Identifier(schema)
            )
        )
    with pytest.raises(ScheduleStoreError, match="has version 99, newer"):
        async with stores(schema, "x"):
            pass


async def test_a_corrupted_row_is_reported_by_id_and_the_others_still_load(schema: str) -> None:
    async with stores(schema, "x") as (store,):
        await store.save_many([record("good"), record("bad")])
        with psycopg.connect(database_dsn()) as raw:
            raw.execute(
                sql.SQL(
                    "UPDATE {}.schedules SET args = '{{\"$pickle\": 1}}' WHERE id = 'bad'"
                ).format(sql.Identifier(schema))
            )
        assert [r.id for r in await store.load_all()] == ["good"]
        (error,) = store.load_errors
        assert "schedule 'bad'" in str(error)
        assert "unknown tag '$pickle'" in str(error)


# --- claims -------------------------------------------------------------------------------------


async def test_two_instances_racing_claims_get_one_winner_each(schema: str) -> None:
    fires = [("job", fire(i)) for i in range(200)]
    winners: dict[int, list[str]] = {}

    async def claim_in_batches(store: PostgresStore, step: int) -> None:
        for start in range(0, len(fires), step):
            batch = fires[start : start + step]
            for (_, at), won in zip(
                batch, await store.claim_fires(batch, store.owner), strict=True
            ):
                if won:
                    winners.setdefault(at.micros_since_epoch, []).append(store.owner)

    async def claim_singly(store: PostgresStore) -> None:
        for schedule_id, at in reversed(fires):  # the other way round: no deadlock either
            if await store.claim_fire(schedule_id, at, store.owner):
                winners.setdefault(at.micros_since_epoch, []).append(store.owner)

    async with stores(schema, "one", "two") as (one, two):
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(claim_in_batches, one, 7)
                tg.start_soon(claim_in_batches, two, 13)
                tg.start_soon(claim_singly, two)
        assert sorted(winners) == [at.micros_since_epoch for _, at in fires]
        assert all(len(names) == 1 for names in winners.values())
        for micros, names in list(winners.items())[:5]:
            assert await one.claimed_by("job", Timestamp(micros)) == names[0]


async def test_a_claim_can_advance_its_schedule_in_the_same_transaction(schema: str) -> None:
    async with stores(schema, "one", "two") as (one, two):
        await one.save(record("a"))
        advanced = record("a", run_count=1, next_run_micros=None, status="completed")
        assert await one.claim_fires([("a", fire(0))], "one", advanced=[advanced]) == [True]
        # The loser's advance is not written: only the winner's transaction saves.
        stale = record("a", run_count=99)
        assert await two.claim_fires([("a", fire(0))], "two", advanced=[stale]) == [False]
        assert await two.load_all() == [advanced]
        with pytest.raises(ValueError, match="1 advanced records for 2 fires"):
            await one.claim_fires([("a", fire(1)), ("a", fire(2))], "one", advanced=[advanced])


# --- leases, take-over and delivery ----------------------------------------------------------


async def test_fires_of_a_dead_instance_are_taken_over_by_delivery(schema: str) -> None:
    async with stores(schema, "dead", "alive") as (dead, alive):
        await dead.save_many([record("once"), record("again", delivery="at_least_once")])
        keys = [("once", fire(0)), ("once", fire(1)), ("again", fire(0)), ("again", fire(1))]
        assert await dead.claim_fires(keys, "dead") == [True] * 4
        # Fire 0 of each schedule had started when "dead" died; fire 1 had not.
        assert await dead.start_fires([("once", fire(0)), ("again", fire(0))], "dead") == [
            True,
            True,
        ]
        assert await alive.take_over_expired("alive") == []  # leases still valid
        taken = await alive.take_over_expired("alive", FAR_FUTURE)
        assert taken == [
            ExpiredFire("again", fire(0), "dead", "running", rerun=True),  # at_least_once
            ExpiredFire("once", fire(0), "dead", "running", rerun=False),  # at_most_once
            ExpiredFire("again", fire(1), "dead", "claimed", rerun=True),  # never started
            ExpiredFire("once", fire(1), "dead", "claimed", rerun=True),
        ]
        assert await alive.fire_state("once", fire(0)) == "interrupted"
        assert await alive.fire_state("again", fire(0)) == "claimed"
        assert await alive.claimed_by("again", fire(0)) == "alive"
        # The late owner cannot finish what was taken from it; the taker runs and finishes it.
        assert not await dead.finish_fire("again", fire(0), "dead")
        assert await alive.start_fire("again", fire(0), "alive")
        assert await alive.finish_fire("again", fire(0), "alive")
        assert await alive.fire_state("again", fire(0)) == "done"
        # Interrupted and done fires are never taken over again; the taker's own claims
        # only when it asks (see the test of include_own below).
        assert await alive.take_over_expired("alive", FAR_FUTURE) == []
        assert await alive.take_over_expired("alive", FAR_FUTURE, include_own=True) == [
            ExpiredFire("again", fire(1), "alive", "claimed", rerun=True),
            ExpiredFire("once", fire(1), "alive", "claimed", rerun=True),
        ]


async def test_a_deleted_schedules_running_fire_is_reported_interrupted(schema: str) -> None:
    async with stores(schema, "dead", "alive") as (dead, alive):
        assert await dead.claim_fire("gone", fire(0), "dead")
        assert await dead.start_fire("gone", fire(0), "dead")
        assert await alive.take_over_expired("alive", FAR_FUTURE) == [
            ExpiredFire("gone", fire(0), "dead", "running", rerun=False)
        ]


async def test_renewed_leases_are_not_taken_over(schema: str) -> None:
    short = TimeDuration.from_millis(100)
    async with stores(schema, "busy", "other", lease_ttl=short) as (busy, other):
        assert await busy.claim_fires([("a", fire(0)), ("a", fire(1))], "busy") == [True, True]
        assert await busy.start_fire("a", fire(0), "busy")
        assert await busy.finish_fire("a", fire(1), "busy")  # done: no lease left to renew
        assert await busy.renew_leases("busy", TimeDuration.from_hours(1)) == 1
        await anyio.sleep(0.2)  # longer than the lease the claim was made with
        assert await other.take_over_expired("other") == []  # renewed: still busy's
        taken = await other.take_over_expired("other", FAR_FUTURE)  # once the hour is up
        assert [(e.schedule_id, e.fire_time, e.previous_owner) for e in taken] == [
            ("a", fire(0), "busy")
        ]


async def claim_and_die(schema: str, keys: list[tuple[str, Timestamp]]) -> None:
    """An instance named "dead" claims ``keys`` under 0.1 s leases, stops, and they run out."""
    async with stores(schema, "dead", lease_ttl=TimeDuration.from_millis(100)) as (dead,):
        assert all(await dead.claim_fires(keys, "dead"))
    await anyio.sleep(0.2)


async def test_two_takers_never_take_the_same_fire(schema: str) -> None:
    keys = [("job", fire(i)) for i in range(300)]
    await claim_and_die(schema, keys)
    taken: dict[str, list[ExpiredFire]] = {"b": [], "c": []}

    async def take(store: PostgresStore) -> None:
        while batch := await store.take_over_expired(store.owner, limit=20):
            taken[store.owner].extend(batch)

    async with stores(schema, "b", "c") as (b, c):
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(take, b)
                tg.start_soon(take, c)
    everything = [e.fire_time for e in taken["b"] + taken["c"]]
    assert sorted(everything) == [at for _, at in keys]  # each fire taken exactly once


async def test_a_fire_locked_by_another_taker_is_skipped_not_waited_for(schema: str) -> None:
    await claim_and_die(schema, [("job", fire(0)), ("job", fire(1))])
    async with stores(schema, "b") as (b,):
        with psycopg.connect(database_dsn()) as raw:  # another taker, mid-transaction
            raw.execute(
                sql.SQL("SELECT 1 FROM {}.fires WHERE fire_micros = %s FOR UPDATE").format(
                    sql.Identifier(schema)
                ),
                (fire(0).micros_since_epoch,),
            )
            with anyio.fail_after(5):  # FOR UPDATE SKIP LOCKED: no waiting on the locked row
                taken = await b.take_over_expired("b")
            assert [e.fire_time for e in taken] == [fire(1)]
            raw.rollback()
        assert [e.fire_time for e in await b.take_over_expired("b")] == [fire(0)]


async def test_a_graceful_shutdown_releases_claims_not_yet_started(schema: str) -> None:
    async with stores(schema, "leaving", "staying") as (leaving, staying):
        keys = [("a", fire(0)), ("a", fire(1)), ("b", fire(0))]
        assert all(await leaving.claim_fires(keys, "leaving"))
        assert await leaving.start_fire("a", fire(0), "leaving")
        assert await leaving.release_claims("leaving") == [("a", fire(1)), ("b", fire(0))]
        # Another instance may now claim the released fires, but not the running one.
        assert await staying.claim_fires(keys, "staying") == [False, True, True]
        assert not await leaving.start_fire("a", fire(1), "leaving")  # no longer its claim


async def test_old_claims_are_pruned_after_the_retention(schema: str) -> None:
    day = TimeDuration.from_days(1)
    async with stores(schema, "x", fire_retention=day * 7) as (store,):
        old, new = fire(0), fire(0) + day * 9
        assert (
            await store.claim_fires([("a", old), ("a", new - day), ("a", new)], "x") == [True] * 3
        )
        assert await store.prune_fires() == 1
        assert await store.claimed_by("a", old) is None
        assert await store.prune_fires(before=new) == 1
        assert await store.claimed_by("a", new) == "x"


# --- LISTEN/NOTIFY ------------------------------------------------------------------------------


async def next_change(store: PostgresStore) -> str | None:
    async for change in store.changes():
        return change
    raise AssertionError("changes() ended")


async def test_a_change_on_one_instance_reaches_another_within_a_second(schema: str) -> None:
    async with stores(schema, "writer", "reader") as (writer, reader):
        with anyio.fail_after(1):
            await writer.save(record("new"))
            assert await next_change(reader) == "new"
        with anyio.fail_after(1):
            await writer.delete("new")
            assert await next_change(reader) == "new"
        with anyio.fail_after(1):  # a big batch: one "reload everything" notification
            await writer.save_many([record(f"s{i}") for i in range(100)])
            assert await next_change(reader) is None


async def test_an_instance_is_not_told_of_its_own_changes(schema: str) -> None:
    async with stores(schema, "a", "b") as (a, b):
        await a.save(record("mine"))
        await b.save(record("theirs"))
        with anyio.fail_after(1):
            assert await next_change(a) == "theirs"
        with anyio.move_on_after(0.3):
            change = await next_change(a)
            pytest.fail(f"unexpected change {change!r}")


async def test_changes_end_when_the_store_closes(schema: str) -> None:
    seen: list[str | None] = []
    async with stores(schema, "a") as (a,):

        async def consume() -> None:
            async for change in a.changes():
                seen.append(change)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await anyio.sleep(0.05)
                await a.aclose()
    assert seen == []


# --- errors and secrets -------------------------------------------------------------------------

PASSWORD = "Pa55-w0rd-never-shown"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"port": "1", "host": "127.0.0.1"}, "connection refused|failed"),  # nothing listens
        ({"dbname": "spacetime_sched_no_such_database"}, "does not exist"),
        ({"user": "spacetime_sched_no_such_role"}, "role .* does not exist"),
    ],
)
async def test_an_unusable_server_gives_a_clear_error_without_the_password(
    changes: dict[str, str], reason: str
) -> None:
    store = PostgresStore(dsn_with(password=PASSWORD, **changes), connect_timeout=5)
    assert PASSWORD not in repr(store)
    with pytest.raises(ScheduleStoreError, match=reason) as caught:
        async with store:
            pass
    message = str(caught.value)
    assert message.startswith("PostgresStore('")
    assert "cannot connect" in message
    assert PASSWORD not in message
    assert PASSWORD not in repr(caught.value)
    assert PASSWORD not in repr(store)


def test_the_password_is_not_shown_in_reprs_or_dsn_errors() -> None:
    url = f"postgresql://alice:{PASSWORD}@db.example:5433/app"
    assert repr(PostgresStore(url, owner="me")) == (
        "<PostgresStore 'user=alice dbname=app host=db.example port=5433' "
        "schema='spacetime_sched' owner='me' new>"
    )
    assert PASSWORD not in repr(PostgresStore(f"host=db password={PASSWORD}"))
    with pytest.raises(InvalidScheduleError, match="not a valid libpq") as caught:
        PostgresStore(f"host=db password={PASSWORD} this is not a conninfo")
    assert PASSWORD not in str(caught.value)


def test_options_are_checked() -> None:
    with pytest.raises(InvalidScheduleError, match="schema: 'Bad-Name' is not"):
        PostgresStore("host=db", schema="Bad-Name")
    with pytest.raises(InvalidScheduleError, match="lease_ttl must be positive"):
        PostgresStore("host=db", lease_ttl=TimeDuration(0))
    with pytest.raises(InvalidScheduleError, match="max_connections"):
        PostgresStore("host=db", max_connections=0)


async def test_a_store_used_without_async_with_says_so() -> None:
    store = PostgresStore("host=db")
    with pytest.raises(ScheduleStoreError, match="not open: use `async with store:`"):
        await store.load_all()


def test_postgres_store_is_exported_lazily_and_names_its_extra_when_psycopg_is_missing() -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import spacetime_sched\n"
        "from spacetime_sched import *\n"
        "try:\n"
        "    spacetime_sched.PostgresStore\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'spacetime-sched[postgres]'" in out
    from spacetime_sched import PostgresStore as exported

    assert exported is PostgresStore


async def test_an_instance_takes_over_its_own_expired_claims_only_when_asked(schema: str) -> None:
    # A live instance starved past its lease must not run its own fire a second time; an
    # instance restarted under a dead one's name takes them back once, at its start.
    async with stores(schema, "me", lease_ttl=TimeDuration.from_millis(1)) as (me,):
        assert await me.claim_fires([("job", fire(0))], "me") == [True]
        assert await me.take_over_expired("me", FAR_FUTURE) == []
        (taken,) = await me.take_over_expired("me", FAR_FUTURE, include_own=True)
        assert (taken.previous_owner, taken.rerun) == ("me", True)
