"""The pieces of reconnection that need no server: the backoff rule of ``ReconnectPolicy``, its
checks, ``with_reconnect``, and ``ClientCache.reconcile`` (the cache after a reconnect holds
exactly what the server re-sent, and only the difference reaches the callbacks)."""

from __future__ import annotations

from typing import Any

import pytest

import spacetime_sched
import spacetime_sched.client
from spacetime_sched import ConfigurationError, ReconnectPolicy
from spacetime_sched.client import ClientCache, DbConnection, RowChanges
from spacetime_sched.client._cache import DecodedChanges


def test_the_policy_is_off_by_default_and_true_means_the_defaults() -> None:
    builder = DbConnection.builder().with_uri("http://h").with_database_name("d")
    assert builder.options().reconnect is None
    assert builder.with_reconnect().options().reconnect == ReconnectPolicy()
    assert builder.with_reconnect(False).options().reconnect is None
    custom = ReconnectPolicy(initial_delay=1, max_attempts=3)
    assert builder.with_reconnect(custom).options().reconnect is custom
    assert ReconnectPolicy() == ReconnectPolicy(
        initial_delay=0.5, max_delay=30.0, multiplier=2.0, jitter=0.2, max_attempts=None
    )
    assert spacetime_sched.ReconnectPolicy is spacetime_sched.client.ReconnectPolicy
    with pytest.raises(ConfigurationError, match="reconnect: expected True, False or a Reconn"):
        builder.with_reconnect("yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"initial_delay": 0}, "initial_delay: expected finite seconds > 0, got 0"),
        ({"initial_delay": float("nan")}, "initial_delay: expected finite seconds > 0"),
        ({"initial_delay": "1"}, "initial_delay: expected seconds as a number, got '1'"),
        ({"max_delay": 0.1}, r"max_delay: expected at least initial_delay \(0.5\), got 0.1"),
        ({"max_delay": float("inf")}, "max_delay: expected finite seconds > 0"),
        ({"multiplier": 0.5}, "multiplier: expected a number >= 1, got 0.5"),
        ({"jitter": 1.5}, r"jitter: expected a number in 0..1, got 1.5"),
        ({"jitter": True}, "jitter: expected a number in 0..1, got True"),
        ({"max_attempts": 0}, r"max_attempts: expected an int >= 1 or None \(no limit\), got 0"),
        ({"max_attempts": 2.0}, "max_attempts: expected an int >= 1 or None"),
    ],
)
def test_a_bad_policy_field_is_refused_by_name(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"ReconnectPolicy.{message}"):
        ReconnectPolicy(**fields)


def test_delays_grow_exponentially_up_to_the_cap_and_jitter_only_shortens_them() -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=30, multiplier=2, jitter=0.2)
    assert [policy.delay_micros(n, 0.0) for n in range(1, 9)] == [
        500_000,
        1_000_000,
        2_000_000,
        4_000_000,
        8_000_000,
        16_000_000,
        30_000_000,
        30_000_000,
    ]
    assert policy.delay_micros(1, 0.999999) == 400_000  # at most 20 % shorter, µs rounded
    assert policy.delay_micros(10**9, 0.5) == 27_000_000  # weeks of attempts: no overflow
    full = ReconnectPolicy(initial_delay=1, jitter=1.0)  # AWS "full jitter": 0 .. delay
    assert full.delay_micros(1, 0.0) == 1_000_000
    assert full.delay_micros(1, 0.75) == 250_000
    with pytest.raises(AttributeError):
        policy.jitter = 0.5  # type: ignore[misc]  # frozen


def person(person_id: int, name: str) -> dict[str, Any]:
    return {"id": person_id, "name": name}


def rows(table: str, *decoded: dict[str, Any]) -> DecodedChanges:
    """``decoded`` as a query set's initial rows, keyed as the cache keys them (BSATN bytes:
    any bytes that identify the row exactly will do here)."""
    keys = [repr(sorted(row.items())).encode() for row in decoded]
    return DecodedChanges(RowChanges(table, list(decoded), []), keys)


def by_id(table: str) -> Any:
    return (lambda row: row["id"]) if table == "person" else None


class Seen:
    def __init__(self, cache: ClientCache, *tables: str) -> None:
        self.calls: list[tuple[Any, ...]] = []
        for table in tables:
            cache[table].on_insert(lambda row, t=table: self.calls.append(("insert", t, row)))
            cache[table].on_delete(lambda row, t=table: self.calls.append(("delete", t, row)))
            cache[table].on_update(lambda a, b, t=table: self.calls.append(("update", t, a, b)))


async def test_reconcile_reports_only_the_difference_with_updates_by_primary_key() -> None:
    cache = ClientCache()
    await cache.apply(1, [rows("person", person(1, "Ann"), person(2, "Bob"), person(3, "Cy"))])
    await cache.apply(2, [rows("tag", {"text": "a"}, {"text": "b"})])
    seen = Seen(cache, "person", "tag")

    result = await cache.reconcile(
        {
            1: [rows("person", person(1, "Ann"), person(2, "Bobby"), person(4, "Di"))],
            2: [rows("tag", {"text": "a"}, {"text": "c"})],
        },
        by_id,
    )

    assert sorted(row["name"] for row in cache["person"]) == ["Ann", "Bobby", "Di"]
    assert sorted(row["text"] for row in cache["tag"]) == ["a", "c"]
    assert seen.calls == [
        ("delete", "person", person(3, "Cy")),
        ("insert", "person", person(4, "Di")),
        ("update", "person", person(2, "Bob"), person(2, "Bobby")),
        ("delete", "tag", {"text": "b"}),  # no primary key: a change is a delete and an insert
        ("insert", "tag", {"text": "c"}),
    ]
    [people, tags] = result.tables
    assert people.updated == ((person(2, "Bob"), person(2, "Bobby")),)
    assert tags.deleted == ({"text": "b"},)
    assert tags.inserted == ({"text": "c"},)
    # Per query set, what its subscription publishes: rows it no longer / newly matches.
    [changes] = result.query_sets[1]
    assert sorted(r["name"] for r in changes.deletes) == ["Bob", "Cy"]
    assert sorted(r["name"] for r in changes.inserts) == ["Bobby", "Di"]


async def test_reconcile_keeps_shared_rows_counted_and_drops_query_sets_not_given() -> None:
    cache = ClientCache()
    ann = person(1, "Ann")
    await cache.apply(1, [rows("person", ann)])
    await cache.apply(2, [rows("person", ann, person(2, "Bob"))])
    seen = Seen(cache, "person")

    # Query set 2 was refused after the reconnect: it is not in ``fresh``.
    result = await cache.reconcile({1: [rows("person", ann)]}, by_id)

    assert seen.calls == [("delete", "person", person(2, "Bob"))]  # Ann stays, silently
    assert [t.table for t in result.tables] == ["person"]
    assert result.query_sets == {}
    await cache.release(1)
    assert seen.calls[-1] == ("delete", "person", ann)
    assert len(cache["person"]) == 0
    await cache.release(2)  # already dropped by the reconcile: nothing left to release
    assert len(seen.calls) == 2


async def test_reconcile_with_nothing_changed_calls_nothing() -> None:
    cache = ClientCache()
    await cache.apply(1, [rows("person", person(1, "Ann"))])
    seen = Seen(cache, "person")
    result = await cache.reconcile({1: [rows("person", person(1, "Ann"))]}, by_id)
    assert seen.calls == []
    assert result.tables == ()
    assert result.query_sets == {}
    assert [row["name"] for row in cache["person"]] == ["Ann"]
