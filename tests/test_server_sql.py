"""The SQL subset: what subscriptions and one-off queries may say, and what they are refused."""

from __future__ import annotations

import pytest

from spacetime_sched import Identity, Timestamp
from spacetime_sched.testing import example_module
from spacetime_sched.testing._server._sql import SqlError, parse_query, split_statements

TABLES = example_module.make_module().tables
ALICE = Identity.from_hex("c200" + "ab" * 30)


def test_select_star_from_a_table() -> None:
    query = parse_query("SELECT * FROM person", TABLES)
    assert query.table.name == "person"
    assert query.conditions == ()
    assert query.matches({"id": 1, "name": "x", "created_at": Timestamp(0)})


@pytest.mark.parametrize(
    "sql",
    [
        "select * from person",
        'SELECT * FROM "person";',
        "SELECT person.* FROM person",
        "SELECT p.* FROM person p WHERE p.id = 3",
        "SELECT * FROM person AS p WHERE p.name = 'Ada'",
    ],
)
def test_spellings_the_sdks_use(sql: str) -> None:
    assert parse_query(sql, TABLES).table.name == "person"


def test_where_with_and_compares_typed_literals() -> None:
    query = parse_query(
        "SELECT * FROM event WHERE name = 'it''s' AND id = 7 AND sender = 0x" + ALICE.to_hex(),
        TABLES,
    )
    assert query.conditions == (("name", "it's"), ("id", 7), ("sender", ALICE))
    row = {"id": 7, "name": "it's", "sender": ALICE}
    assert query.matches(row)
    assert not query.matches({**row, "id": 8})


def test_sender_parameter_is_the_caller() -> None:
    query = parse_query("SELECT * FROM event WHERE sender = :sender", TABLES)
    assert query.uses_sender
    assert query.matches({"sender": ALICE}, sender=ALICE)
    assert not query.matches({"sender": ALICE}, sender=Identity(1))


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM nope", "no such table: `nope`"),
        ("SELECT * FROM connection_log", "no such table: `connection_log`"),  # private
        ("SELECT * FROM person WHERE age = 3", "table `person` has no column `age`"),
        ("SELECT * FROM person WHERE id = 'x'", "cannot compare `person.id` (u64) with 'x'"),
        ("SELECT * FROM person WHERE id = -1", "cannot compare `person.id` (u64) with -1"),
        ("SELECT * FROM person WHERE id > 3", "expected '='"),
        ("SELECT name FROM person", "expected '.'"),
        ("DELETE FROM person", "expected SELECT"),
        ("SELECT * FROM person ORDER BY id", "unsupported SQL"),
        ("SELECT * FROM person WHERE name = :who", "unknown parameter :who"),
    ],
)
def test_anything_else_is_refused_with_a_reason(sql: str, message: str) -> None:
    public = {name: table for name, table in TABLES.items() if table.public}
    with pytest.raises(SqlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(sql, public)


def test_split_statements_respects_quotes() -> None:
    assert split_statements("SELECT * FROM a; SELECT * FROM b WHERE x = ';'; ") == [
        "SELECT * FROM a",
        "SELECT * FROM b WHERE x = ';'",
    ]
