"""``ModuleSchema``: the ``?version=9`` schema document, and reducer argument encoding."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from _protocol_support import SCHEMA_V9, vectors_named

from spacetime_sched import ArgumentError, ProtocolError, sats
from spacetime_sched._identity import Identity
from spacetime_sched._time import ScheduleAt, TimeDuration, Timestamp
from spacetime_sched.protocol import (
    CallReducer,
    ColumnDefaultValue,
    IndexDef,
    ModuleSchema,
    ModuleSchemaBuilder,
    ProcedureDef,
    ReducerDef,
    ScheduleDef,
    SequenceDef,
    ViewDef,
    decode_client_message,
)


@pytest.fixture(scope="module")
def schema() -> ModuleSchema:
    return ModuleSchema.from_json(SCHEMA_V9)


# --- reading and writing ------------------------------------------------------------------------


def test_to_json_writes_back_exactly_what_the_server_sent(schema: ModuleSchema) -> None:
    assert schema.to_json() == SCHEMA_V9
    # Key order too: the local server serves this document as the real server would.
    assert json.dumps(schema.to_json()) == json.dumps(SCHEMA_V9)


def test_from_json_accepts_json_text(schema: ModuleSchema) -> None:
    text = json.dumps(SCHEMA_V9)
    assert ModuleSchema.from_json(text) == schema
    assert ModuleSchema.from_json(text.encode()) == schema


def test_the_documented_spacetime_init_schema_round_trips() -> None:
    # The example response in SpacetimeDB's HTTP API docs (`spacetime init` module).
    doc = {
        "typespace": {
            "types": [
                {
                    "Product": {
                        "elements": [{"name": {"some": "name"}, "algebraic_type": {"String": []}}]
                    }
                }
            ]
        },
        "tables": [
            {
                "name": "person",
                "product_type_ref": 0,
                "primary_key": [],
                "indexes": [],
                "constraints": [],
                "sequences": [],
                "schedule": {"none": []},
                "table_type": {"User": []},
                "table_access": {"Private": []},
            }
        ],
        "reducers": [
            {
                "name": "add",
                "params": {
                    "elements": [{"name": {"some": "name"}, "algebraic_type": {"String": []}}]
                },
                "lifecycle": {"none": []},
            },
            {
                "name": "identity_connected",
                "params": {"elements": []},
                "lifecycle": {"some": {"OnConnect": []}},
            },
        ],
        "types": [{"name": {"scope": [], "name": "Person"}, "ty": 0, "custom_ordering": True}],
        "misc_exports": [],
        "row_level_security": [],
    }
    schema = ModuleSchema.from_json(doc)
    assert schema.to_json() == doc
    assert schema.reducer("add").encode_args(["Ada"]) == b"\x03\x00\x00\x00Ada"
    assert not schema.table("person").is_public


# --- reducers -----------------------------------------------------------------------------------


def test_reducers_have_wire_names_params_and_lifecycle(schema: ModuleSchema) -> None:
    add = schema.reducer("add_player")
    assert add.name == "add_player"
    assert add.param_names == ("name", "level")
    assert add.params == sats.product(("name", sats.STRING), ("level", sats.U32))
    assert add.lifecycle is None
    assert add.client_callable
    assert add.signature() == "name: String, level: u32"
    assert schema.reducer("init").lifecycle == "Init"
    assert schema.reducer("client_connected").lifecycle == "OnConnect"
    assert not schema.reducer("client_disconnected").client_callable


def test_an_unknown_reducer_is_an_argument_error_listing_the_reducers(
    schema: ModuleSchema,
) -> None:
    with pytest.raises(ArgumentError, match=r"no reducer 'add'.*add_player, client_connected"):
        schema.reducer("add")


def test_encode_args_takes_a_sequence_or_a_mapping(schema: ModuleSchema) -> None:
    add = schema.reducer("add_player")
    expected = b"\x03\x00\x00\x00bob" + (7).to_bytes(4, "little")
    assert add.encode_args(["bob", 7]) == expected
    assert add.encode_args(("bob", 7)) == expected
    assert add.encode_args({"level": 7, "name": "bob"}) == expected  # any key order
    assert schema.reducer("reset_world").encode_args() == b""
    assert schema.reducer("reset_world").encode_args({}) == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bob", 7, 8], "reducer 'add_player' takes 2 arguments (name: String, level: u32), got 3"),
        (["bob"], "reducer 'add_player' takes 2 arguments (name: String, level: u32), got 1"),
        (
            ["bob", -1],
            "reducer 'add_player': args[1] (level): expected u32 in 0..4294967295, got -1",
        ),
        ([5, 1], "reducer 'add_player': args[0] (name): expected"),
        ({"name": "bob"}, "reducer 'add_player': missing argument 'level'"),
        ({"name": "bob", "level": 1, "lvl": 2}, "reducer 'add_player' has no parameter 'lvl'"),
        ("bob", "reducer 'add_player': arguments must be a sequence or a mapping of"),
    ],
)
def test_bad_arguments_are_argument_errors_naming_the_parameter(
    schema: ModuleSchema, args: Any, message: str
) -> None:
    with pytest.raises(ArgumentError) as info:
        schema.reducer("add_player").encode_args(args)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_ref_params_resolve_against_the_typespace(schema: ModuleSchema) -> None:
    move = schema.reducer("move_player")
    # A Ref shows the name the schema gives it; without names, its structure.
    assert move.signature() == "id: u64, position: Position"
    assert ReducerDef(move.name, move.params, None, move.typespace).signature() == (
        "id: u64, position: (x: f32, y: f32)"
    )
    with pytest.raises(ArgumentError, match=r"takes 2 arguments \(id: u64, position: Position\)"):
        move.encode_args([1])
    encoded = move.encode_args([3, {"x": 1.5, "y": -2.0}])
    assert encoded == (3).to_bytes(8, "little") + bytes.fromhex("0000c03f000000c0")
    paint = schema.reducer("paint")
    assert paint.encode_args(["Green"]) == b"\x01"
    assert paint.encode_args([{"Custom": 5}]) == b"\x02\x05\x00\x00\x00"


def test_special_types_in_params(schema: ModuleSchema) -> None:
    schedule = schema.reducer("schedule_tick")
    at = ScheduleAt.Interval(TimeDuration(1_000_000))
    assert schedule.encode_args([at, "tick"]) == bytes.fromhex("0040420f0000000000") + (
        b"\x04\x00\x00\x00tick"
    )
    at_time = ScheduleAt.Time(Timestamp(0))
    assert schedule.encode_args([at_time, ""])[:9] == bytes.fromhex("010000000000000000")


@pytest.mark.parametrize("vector", vectors_named("args."), ids=lambda v: v["name"])
def test_args_vectors_encode_identically(vector: dict[str, Any]) -> None:
    params = sats.AlgebraicType.from_json(vector["type"])
    assert isinstance(params, sats.ProductType)
    reducer = ReducerDef(vector["name"].split(".", 1)[1], params)
    value = sats.from_json(params, vector["json"])
    as_list = list(value.values()) if isinstance(value, dict) else list(value)
    assert reducer.encode_args(as_list) == bytes.fromhex(vector["bsatn"])
    if isinstance(value, dict):
        assert reducer.encode_args(value) == bytes.fromhex(vector["bsatn"])


def test_args_vectors_are_the_args_of_the_call_vectors() -> None:
    args = {v["name"].split(".", 1)[1]: bytes.fromhex(v["bsatn"]) for v in vectors_named("args.")}
    for vector in vectors_named("v2.ClientMessage.CallReducer.create_player"):
        message = decode_client_message(bytes.fromhex(vector["bsatn"]))
        assert isinstance(message, CallReducer)
        assert message.args == args[message.reducer]


# --- tables -------------------------------------------------------------------------------------


def test_tables_expose_row_type_key_and_visibility(schema: ModuleSchema) -> None:
    player = schema.table("player")
    assert player.product_type_ref == 0
    assert player.row_type == schema.typespace[0]
    assert player.column_names == (
        "id",
        "owner",
        "name",
        "level",
        "joined",
        "position",
        "nickname",
    )
    assert player.primary_key == (0,)
    assert player.primary_key_column == "id"
    assert player.is_public
    assert player.schedule is None
    assert player.scheduled_reducer is None
    assert player.indexes == (
        IndexDef("player_id_idx_btree", "id", "BTree", (0,)),
        IndexDef("player_owner_idx_hash", None, "Hash", (1,)),
    )
    assert player.constraints[0].columns == (0,)
    assert player.sequences == (SequenceDef("player_id_seq", 0),)


def test_schedule_tables_name_their_reducer_and_column(schema: ModuleSchema) -> None:
    tick = schema.table("tick_schedule")
    assert tick.schedule == ScheduleDef("tick_schedule_sched", "tick", 1)
    assert tick.scheduled_reducer == "tick"
    assert tick.scheduled_at_column_name == "scheduled_at"
    assert not tick.is_public
    assert tick.sequences[0].max_value == 2**127 - 1
    assert schema.schedule_tables() == (tick,)


def test_a_direct_index_keeps_its_single_column(schema: ModuleSchema) -> None:
    audit = schema.table("audit")
    assert audit.indexes == (IndexDef("audit_owner_idx_direct", None, "Direct", (0,)),)
    assert audit.primary_key_column is None


def test_row_codecs_decode_rows_with_refs_and_special_types(schema: ModuleSchema) -> None:
    player = schema.table("player")
    row = {
        "id": 1,
        "owner": Identity(0xC200 << 240),
        "name": "Zoë",
        "level": 3,
        "joined": Timestamp(1_700_000_000_000_000),
        "position": {"x": 0.5, "y": 2.0},
        "nickname": None,
    }
    data = player.row_codec.encode(row)
    assert player.row_codec.decode(data) == row


def test_an_unknown_table_is_a_lookup_error(schema: ModuleSchema) -> None:
    with pytest.raises(LookupError, match=r"no table 'players' \(tables: audit, player, tick"):
        schema.table("players")


# --- procedures, views and other exports --------------------------------------------------------


def test_procedures_come_from_misc_exports(schema: ModuleSchema) -> None:
    procedure = schema.procedure("get_score")
    assert isinstance(procedure, ProcedureDef)
    assert procedure.return_type == sats.U32
    assert procedure.encode_args([7]) == (7).to_bytes(8, "little")
    assert procedure.return_codec.decode(b"\x2a\x00\x00\x00") == 42
    assert schema.procedures == (procedure,)
    with pytest.raises(ArgumentError, match="procedure 'get_score' takes 1 argument"):
        procedure.encode_args([])
    with pytest.raises(ArgumentError, match="no procedure 'score'"):
        schema.procedure("score")


def test_views_defaults_types_and_rls_are_kept(schema: ModuleSchema) -> None:
    (view,) = schema.views
    assert isinstance(view, ViewDef)
    assert (view.name, view.is_public, view.is_anonymous) == ("my_player", True, False)
    assert schema.misc_exports[0] == ColumnDefaultValue("player", 3, b"\x01\x00\x00\x00")
    assert [(t.scope, t.name, t.ty) for t in schema.types][3] == (("game",), "Color", 3)
    assert schema.row_level_security == ("SELECT * FROM audit WHERE owner = :sender",)


# --- malformed schemas --------------------------------------------------------------------------


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SCHEMA_V9)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (["tables"], KeyError, "schema: missing field 'tables'"),
        (["tables", 1, "schedule"], {"maybe": []}, r"schema\.tables\[1\]\.schedule: unknown"),
        (["tables", 0, "product_type_ref"], 9, r"schema\.tables\[0\]\.product_type_ref: Ref\(9\)"),
        (["tables", 0, "product_type_ref"], 3, "is Red | Green | Custom(u32), not a product"),
        (["tables", 0, "primary_key", 0], "id", r"primary_key\[0\]: expected an integer"),
        (["tables", 0, "indexes", 0, "algorithm"], {"Trie": {}}, "unknown variant 'Trie'"),
        (["reducers", 0, "lifecycle"], {"some": {"OnTick": []}}, r"reducers\[0\]\.lifecycle"),
        (["reducers", 0, "params"], {"elements": 3}, r"schema\.reducers\[0\]\.params"),
        (["typespace"], {"types": [{"Blob": []}]}, r"schema\.typespace"),
        (["misc_exports", 0, "ColumnDefaultValue", "value"], "xyz", "expected hex bytes"),
        (["types", 0, "custom_ordering"], "yes", r"types\[0\]\.custom_ordering"),
        (
            ["tables", 1, "schedule", "some", "scheduled_at_column"],
            3,
            r"tables\[1\]\.schedule\.some\.scheduled_at_column: column 3 does not exist",
        ),
        (["tables", 0, "primary_key"], [7], r"tables\[0\]\.primary_key\[0\]: column 7 does not"),
    ],
)
def test_malformed_schemas_are_protocol_errors_naming_the_path(
    path: list[Any], value: Any, match: str
) -> None:
    with pytest.raises(ProtocolError, match=match):
        ModuleSchema.from_json(_broken(path, value))


def test_invalid_json_text_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="schema: not valid JSON"):
        ModuleSchema.from_json("{nope")


# --- building a schema in Python ----------------------------------------------------------------


def test_the_builder_derives_what_the_server_derives() -> None:
    builder = ModuleSchemaBuilder()
    tick_ref = builder.add_table(
        "tick_schedule",
        sats.product(
            ("scheduled_id", sats.U64), ("scheduled_at", sats.SCHEDULE_AT), ("label", sats.STRING)
        ),
        primary_key="scheduled_id",
        auto_inc=["scheduled_id"],
        scheduled=("tick", "scheduled_at"),
        public=False,
    )
    builder.add_reducer("tick", [("row", tick_ref)])
    builder.add_reducer("init", lifecycle="Init")
    builder.add_procedure("get_score", [("player_id", sats.U64)], sats.U32)
    schema = builder.build()

    assert builder.type_ref("TickSchedule") == tick_ref
    doc = schema.to_json()
    table = doc["tables"][0]
    expected = copy.deepcopy(SCHEMA_V9["tables"][1])
    # The hand-written fixture gives explicit sequence bounds; the builder leaves them unset.
    for key in ("start", "min_value", "max_value"):
        expected["sequences"][0][key] = {"none": []}
    expected["product_type_ref"] = 0
    assert table == expected
    assert doc["types"] == [
        {"name": {"scope": [], "name": "TickSchedule"}, "ty": 0, "custom_ordering": True}
    ]
    # The document reads back into an equal schema, and its parts work.
    assert ModuleSchema.from_json(doc) == schema
    assert schema.reducer("tick").signature() == "row: TickSchedule"
    row = {"scheduled_id": 1, "scheduled_at": ScheduleAt.Time(Timestamp(5)), "label": "x"}
    assert schema.reducer("tick").encode_args([row]) == schema.table(
        "tick_schedule"
    ).row_codec.encode(row)
    assert schema.procedure("get_score").return_type == sats.U32


def test_the_builder_names_unknown_columns() -> None:
    builder = ModuleSchemaBuilder()
    builder.add_table("player", sats.product(("id", sats.U64)), primary_key="player_id")
    with pytest.raises(
        ValueError, match=r"table 'player': a unique column names column 'player_id'"
    ):
        builder.build()
