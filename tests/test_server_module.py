"""The module DSL: declarations are checked early, and the schema is SpacetimeDB's V9 JSON."""

from __future__ import annotations

from typing import Any

import pytest

from spacetime_sched import sats
from spacetime_sched.protocol import ModuleSchema
from spacetime_sched.testing import example_module
from spacetime_sched.testing._server import Module, ReducerContext


def test_the_quickstart_schema_round_trips_through_the_v9_json() -> None:
    raw = example_module.make_module().schema.to_json()
    schema = ModuleSchema.from_json(raw)
    # Sorted by name, as a 2.x server writes them (crates/schema/src/def.rs, ``to_raw``).
    assert [t.name for t in schema.tables] == [
        "connection_log",
        "event",
        "person",
        "tick_log",
        "tick_schedule",
    ]
    assert schema.table("person").primary_key_column == "id"
    assert schema.table("person").is_public
    assert not schema.table("connection_log").is_public
    assert schema.table("event").column_names == ("id", "name", "at", "schedule", "sender")


def test_schedule_tables_and_lifecycle_reducers_appear_as_the_real_server_writes_them() -> None:
    raw = example_module.make_module().schema.to_json()
    tick_schedule = next(t for t in raw["tables"] if t["name"] == "tick_schedule")
    assert tick_schedule["schedule"] == {
        "some": {
            "name": {"some": "tick_schedule_sched"},
            "reducer_name": "tick",
            "scheduled_at_column": 1,
        }
    }
    assert tick_schedule["sequences"][0]["column"] == 0
    lifecycles = {r["name"]: r["lifecycle"] for r in raw["reducers"]}
    assert lifecycles["init"] == {"some": {"Init": []}}
    assert lifecycles["client_connected"] == {"some": {"OnConnect": []}}
    assert lifecycles["client_disconnected"] == {"some": {"OnDisconnect": []}}
    assert lifecycles["add_person"] == {"none": []}
    # The scheduled reducer takes the row: a Ref to the table's row type.
    tick = next(r for r in raw["reducers"] if r["name"] == "tick")
    (param,) = tick["params"]["elements"]
    assert param["algebraic_type"] == {"Ref": tick_schedule["product_type_ref"]}


def test_procedures_are_misc_exports() -> None:
    schema = example_module.make_module().schema
    (procedure,) = schema.procedures
    assert procedure.name == "server_time"
    assert procedure.return_type == sats.TIMESTAMP


def test_a_reducer_takes_its_function_name_or_an_explicit_one() -> None:
    module = Module("m")

    @module.reducer
    def plain(ctx: ReducerContext) -> None: ...

    @module.reducer(name="renamed", params=[("x", sats.U8)])
    def original(ctx: ReducerContext, x: int) -> None: ...

    assert sorted(module.reducers) == ["plain", "renamed"]
    assert module.reducers["renamed"].function is original


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"primary_key": "nope"}, "primary_key names column 'nope'"),
        ({"auto_inc": "nope"}, "auto_inc names column 'nope'"),
        ({"scheduled": "tick"}, "exactly one ScheduleAt column"),
        ({"scheduled_at": "id"}, "scheduled_at needs scheduled="),
    ],
)
def test_bad_table_declarations_fail_at_once(options: dict[str, Any], message: str) -> None:
    module = Module("m")
    with pytest.raises(ValueError, match=message):
        module.table("t", [("id", sats.U64)], **options)


def test_duplicate_names_are_refused() -> None:
    module = Module("m")
    module.table("t", [("id", sats.U64)])
    with pytest.raises(ValueError, match="already declared"):
        module.table("t", [("id", sats.U64)])

    @module.reducer
    def r(ctx: ReducerContext) -> None: ...

    with pytest.raises(ValueError, match="already has a reducer or procedure 'r'"):
        module.procedure(r)

    @module.init
    def first(ctx: ReducerContext) -> None: ...

    def second(ctx: ReducerContext) -> None: ...

    with pytest.raises(ValueError, match="already has a Init reducer \\('first'\\)"):
        module.init(second)


def test_a_schedule_table_needs_a_reducer_taking_its_row() -> None:
    module = Module("m")
    jobs = module.table(
        "jobs", [("id", sats.U64), ("at", sats.SCHEDULE_AT)], primary_key="id", scheduled="run"
    )

    @module.reducer(params=[("n", sats.U64)])
    def run(ctx: ReducerContext, n: int) -> None: ...

    with pytest.raises(ValueError, match="must take exactly one parameter, the row of 'jobs'"):
        _ = module.schema
    assert jobs.scheduled_at == "at"


def test_a_schedule_table_without_its_reducer_is_refused() -> None:
    module = Module("m")
    module.table("jobs", [("id", sats.U64), ("at", sats.SCHEDULE_AT)], scheduled="missing")
    with pytest.raises(ValueError, match="names reducer 'missing', which is not declared"):
        _ = module.schema


def test_the_module_is_frozen_once_its_schema_is_built() -> None:
    module = Module("m")
    _ = module.schema
    with pytest.raises(RuntimeError, match="already being served"):
        module.table("late", [("id", sats.U64)])
