"""The client reads a schema exactly as a real SpacetimeDB 2.x server writes it.

The document (``tests/_schema_fixtures.py``) is written by hand from SpacetimeDB's Rust types;
its docstring names the Rust file and line of every shape, and
``tests/test_conformance_schema.py`` has the official TypeScript SDK confirm it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _schema_fixtures import PLAYER, POSITION, REAL_2X_SCHEMA, STATUS, TICK_SCHEDULE

from spacetime_sched import ArgumentError, Identity, ProtocolError, TimeDuration, Timestamp, sats
from spacetime_sched.protocol import IndexDef, ModuleSchema, ModuleSchemaBuilder
from spacetime_sched.protocol._case import camel_case, pascal_case, snake_case


@pytest.fixture(scope="module")
def schema() -> ModuleSchema:
    return ModuleSchema.from_json(REAL_2X_SCHEMA)


def test_the_document_round_trips_exactly(schema: ModuleSchema) -> None:
    assert schema.to_json() == REAL_2X_SCHEMA


def test_index_algorithms_are_newtype_variants(schema: ModuleSchema) -> None:
    # RawIndexAlgorithm (crates/lib/src/db/raw_def/v9.rs:309): {"BTree": [cols]},
    # {"Hash": [cols]}, {"Direct": col}, per variant_data in crates/bindings-macro/src/sats.rs:728.
    assert schema.table("score").indexes == (
        IndexDef("score_player_id_day_idx_btree", "by_player_and_day", "BTree", (0, 1)),
        IndexDef("score_points_idx_hash", "by_points", "Hash", (2,)),
    )
    assert schema.table("slot").indexes == (
        IndexDef("slot_slot_id_idx_direct", "slot_id", "Direct", (0,)),
    )


def test_the_old_object_payload_is_refused_with_its_path() -> None:
    doc = copy.deepcopy(REAL_2X_SCHEMA)
    doc["tables"][2]["indexes"][0]["algorithm"] = {"BTree": {"columns": [0, 1]}}
    with pytest.raises(ProtocolError, match=r"schema\.tables\[2\]\.indexes\[0\]\.algorithm\.BTree"):
        ModuleSchema.from_json(doc)
    doc["tables"][2]["indexes"][0]["algorithm"] = {"Direct": {"column": 0}}
    with pytest.raises(ProtocolError, match=r"algorithm\.Direct: expected an integer"):
        ModuleSchema.from_json(doc)


def test_primary_key_unique_and_auto_increment(schema: ModuleSchema) -> None:
    player = schema.table("player")
    assert player.primary_key_column == "id"
    assert [c.columns for c in player.constraints] == [(0,), (2,)]  # id, name
    (sequence,) = player.sequences
    assert (sequence.name, sequence.column, sequence.increment) == ("player_id_seq", 0, 1)
    assert (sequence.start, sequence.min_value, sequence.max_value) == (None, None, None)


def test_a_private_table_and_a_schedule_table(schema: ModuleSchema) -> None:
    assert not schema.table("audit_log").is_public
    tick_schedule = schema.table("tick_schedule")
    assert tick_schedule.scheduled_reducer == "tick"
    assert tick_schedule.scheduled_at_column_name == "scheduled_at"
    assert [t.name for t in schema.schedule_tables()] == ["tick_schedule"]


def test_scheduled_and_lifecycle_reducers_are_not_advertised_as_callable(
    schema: ModuleSchema,
) -> None:
    # A 2.x server makes both private (crates/schema/src/def/validate/v10.rs:386).
    callable_names = [r.name for r in schema.reducers if r.client_callable]
    assert callable_names == ["join", "record_score"]
    assert schema.reducer("tick").scheduled_by == "tick_schedule"
    with pytest.raises(ArgumentError, match=r"'tick' is scheduled by table 'tick_schedule'"):
        schema.callable_reducer("tick")
    with pytest.raises(ArgumentError, match=r"'init' is the Init lifecycle reducer"):
        schema.callable_reducer("init")
    assert schema.callable_reducer("join").name == "join"


def test_a_procedure_from_misc_exports(schema: ModuleSchema) -> None:
    procedure = schema.callable_procedure("top_score")
    assert procedure.return_codec.decode(sats.encode(procedure.return_type, 7)) == 7
    assert procedure.encode_args([3]) == (3).to_bytes(4, "little")


def test_rows_with_special_types_an_enum_and_a_nested_struct(schema: ModuleSchema) -> None:
    status = schema.typespace.types[STATUS]
    assert isinstance(status, sats.SumType)
    assert [v.name for v in status.variants] == ["active", "banned", "away"]  # camelCase
    row = {
        "id": 1,
        "owner": Identity(0xC200 << 240),
        "name": "Ada",
        "nickname": None,
        "status": sats.SumValue(2, "away", TimeDuration(5_000_000)),
        "position": {"x": 1.5, "y": -2.0},
        "joined_at": Timestamp(1_700_000_000_000_000),
    }
    codec = schema.table("player").row_codec
    assert codec.decode(codec.encode(row)) == row
    assert schema.reducer("join").signature() == "name: String, status: Status"
    assert schema.types[[t.ty for t in schema.types].index(POSITION)].name == "Position"


def test_case_conversion_follows_convert_case() -> None:
    # convert_case 0.6 (validate/v9.rs:1500, ``convert``): words split at _, -, spaces,
    # aA, letter/digit changes and acronyms.
    assert snake_case("FruitBasket") == "fruit_basket"
    assert snake_case("HTTPServer") == "http_server"
    assert snake_case("item2") == "item_2"
    assert camel_case("InProgress") == "inProgress"
    assert camel_case("Active") == "active"
    assert pascal_case("tick_schedule") == "TickSchedule"
    assert pascal_case("metaInfo") == "MetaInfo"


def _builder_schema() -> ModuleSchema:
    """The same module declared with the builder, names as a module author writes them."""
    builder = ModuleSchemaBuilder()
    status = builder.add_type(
        "status",
        sats.SumType(
            (
                sats.SumVariant("Active", sats.UNIT),
                sats.SumVariant("Banned", sats.STRING),
                sats.SumVariant("Away", sats.TIME_DURATION),
            )
        ),
    )
    position = builder.add_type("position", sats.product(("X", sats.F32), ("Y", sats.F32)))
    builder.add_table(
        "Player",
        sats.product(
            ("id", sats.U64),
            ("owner", sats.IDENTITY),
            ("name", sats.STRING),
            ("nickName", sats.option(sats.STRING)),
            ("status", status),
            ("position", position),
            ("joinedAt", sats.TIMESTAMP),
        ),
        primary_key="id",
        unique=["name"],
        auto_inc=["id"],
    )
    builder.add_table(
        "score",
        sats.product(("playerId", sats.U64), ("day", sats.U32), ("points", sats.U32)),
        indexes={"by_player_and_day": ["playerId", "day"]},
    )
    tick = builder.add_table(
        "tick_schedule",
        sats.product(
            ("scheduled_id", sats.U64), ("scheduled_at", sats.SCHEDULE_AT), ("label", sats.STRING)
        ),
        primary_key="scheduled_id",
        auto_inc=["scheduled_id"],
        scheduled=("Tick", "scheduled_at"),
    )
    builder.add_reducer("Tick", [("row", tick)])
    builder.add_reducer("recordScore", [("player_id", sats.U64)])
    return builder.build()


def test_the_builder_serves_what_a_2x_server_serves() -> None:
    served = _builder_schema()
    doc = served.to_json()
    assert [t["name"] for t in doc["tables"]] == ["player", "score", "tick_schedule"]
    assert [t["name"]["name"] for t in doc["types"]] == [
        "Player",
        "Position",
        "Score",
        "Status",
        "TickSchedule",
    ]
    player = served.table("player")
    assert player.column_names == (
        "id",
        "owner",
        "name",
        "nick_name",
        "status",
        "position",
        "joined_at",
    )
    assert [i.name for i in player.indexes] == ["player_id_idx_btree", "player_name_idx_btree"]
    assert [c.name for c in player.constraints] == ["player_id_key", "player_name_key"]
    assert [s.name for s in player.sequences] == ["player_id_seq"]
    assert served.table("score").indexes == (
        IndexDef("score_player_id_day_idx_btree", "by_player_and_day", "BTree", (0, 1)),
    )
    status, position = served.typespace.types[0], served.typespace.types[1]
    assert isinstance(status, sats.SumType)
    assert isinstance(position, sats.ProductType)
    assert [v.name for v in status.variants] == ["active", "banned", "away"]
    assert [e.name for e in position.elements] == ["x", "y"]
    # Special types keep their names: Option's some/none, ScheduleAt's Interval/Time.
    row = served.table("tick_schedule").row_type
    assert row.elements[1].algebraic_type == sats.SCHEDULE_AT
    assert player.row_type.elements[3].algebraic_type == sats.option(sats.STRING)
    assert [r.name for r in served.reducers] == ["tick", "record_score"]
    assert served.table("tick_schedule").scheduled_reducer == "tick"
    assert served.reducer("tick").scheduled_by == "tick_schedule"


def test_the_builder_keeps_declared_names_when_asked() -> None:
    builder = ModuleSchemaBuilder()
    builder.add_type("Status", sats.SumType((sats.SumVariant("Active", sats.UNIT),)))
    declared = builder.build(served=False)
    status = declared.typespace.types[0]
    assert isinstance(status, sats.SumType)
    assert status.variants[0].name == "Active"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("tables", 3, "indexes", 0, "algorithm"), {"Direct": [0]}, "expected an integer"),
        (("tables", 1, "indexes", 0, "algorithm"), {"BTree": 0}, "expected a JSON array"),
        (("tables", 1, "indexes", 0, "algorithm"), {"Bitmap": [0]}, "unknown variant"),
        (("tables", 1, "indexes", 0, "algorithm"), {"BTree": [9]}, "column 9 does not exist"),
    ],
)
def test_malformed_index_algorithms_are_protocol_errors(
    path: tuple[Any, ...], value: Any, message: str
) -> None:
    doc: Any = copy.deepcopy(REAL_2X_SCHEMA)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ProtocolError, match=message):
        ModuleSchema.from_json(doc)


def test_the_fixture_uses_every_type_it_names() -> None:
    used = {t["ty"] for t in REAL_2X_SCHEMA["types"]}
    assert used == set(range(len(REAL_2X_SCHEMA["typespace"]["types"])))
    assert PLAYER in used
    assert TICK_SCHEDULE in used
