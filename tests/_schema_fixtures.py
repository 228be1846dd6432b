"""A ``?version=9`` schema written by hand from SpacetimeDB's Rust types, for a realistic 2.x
module. Every shape names the Rust it comes from (paths in the SpacetimeDB repository, lines
at the mirrored commit fb72824):

* the document: ``RawModuleDefV9`` (crates/lib/src/db/raw_def/v9.rs:60), as the server writes
  it for a 2.x module (crates/schema/src/def.rs:970, ``From<ModuleDef> for RawModuleDefV9``),
  through SATS' serde mapping: a product is an object keyed by field name, a sum a one-key
  object ``{"Variant": payload}``, the unit payload ``[]``, an Option ``{"some": x}`` or
  ``{"none": []}``;
* sums whose variant has exactly one named field are *newtype* variants: the payload is that
  field's value with no object around it (crates/bindings-macro/src/sats.rs:728,
  ``variant_data``). So ``RawIndexAlgorithm`` (v9.rs:309; ``BTree { columns }`` at 313,
  ``Hash { columns }`` at 318, ``Direct { column }`` at 324) is written ``{"BTree": [0, 1]}``,
  ``{"Hash": [2]}``, ``{"Direct": 0}``. ``RawConstraintDataV9::Unique(RawUniqueConstraintDataV9)``
  (v9.rs:387) is a tuple newtype whose payload is a struct: ``{"Unique": {"columns": [0]}}``;
  ``RawMiscModuleExportV9::Procedure(RawProcedureDefV9)`` (v9.rs:419) likewise;
* tables and each table's indexes, constraints and sequences sorted by name (def.rs:2638,
  ``to_raw`` through a ``BTreeMap``); ``types`` sorted by scoped name; reducers in declaration
  order (an ``IndexMap``);
* generated names (crates/schema/src/def/validate/v9.rs:1453 ``generate_index_name``
  ``{table}_{cols}_idx_{btree|hash|direct}``, :1471 ``{table}_{col}_seq``, :1479
  ``{table}_sched``, :1486 ``{table}_{cols}_key``); a multi-column index keeps the accessor the
  module gave it;
* case conversion (validate/v9.rs:672 ``typespace_case_conversion``): columns snake_case, enum
  variants camelCase (``Banned`` -> ``banned``), type names PascalCase (:661); special types
  (Identity, Timestamp, TimeDuration, Option, ScheduleAt) untouched
  (crates/sats/src/algebraic_type.rs:450 ``is_special``);
* ``RawSequenceDefV9`` (v9.rs:249): i128 bounds as Options, ``increment`` an i128;
  ``RawScheduleDefV9`` (v9.rs:354); ``TableAccess`` (v9.rs:222) and ``Lifecycle`` (v9.rs:563)
  unit variants; ``RawTypeDefV9`` (v9.rs:449) with ``RawScopedTypeNameV9`` (v9.rs:467).

The module: ``player`` (auto-increment u64 primary key, unique ``name``, an Identity, an
``Option<String>``, an enum with payload variants, a nested struct, a Timestamp), ``score``
(a multi-column B-tree index with an accessor and a hash index), ``slot`` (a Direct index on a
unique column), ``tick_schedule`` (a schedule table calling the ``tick`` reducer), a private
``audit_log``; lifecycle reducers; a procedure.
"""

from __future__ import annotations

from typing import Any


def _el(name: str, ty: Any) -> dict[str, Any]:
    return {"name": {"some": name}, "algebraic_type": ty}


def _product(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"Product": {"elements": list(elements)}}


UNIT = _product()
NONE = {"none": []}
U64 = {"U64": []}
U32 = {"U32": []}
STRING = {"String": []}
IDENTITY = _product(_el("__identity__", {"U256": []}))
TIMESTAMP = _product(_el("__timestamp_micros_since_unix_epoch__", {"I64": []}))
TIME_DURATION = _product(_el("__time_duration_micros__", {"I64": []}))
SCHEDULE_AT = {"Sum": {"variants": [_el("Interval", TIME_DURATION), _el("Time", TIMESTAMP)]}}
OPTION_STRING = {"Sum": {"variants": [_el("some", STRING), _el("none", UNIT)]}}
OPTION_U32 = {"Sum": {"variants": [_el("some", U32), _el("none", UNIT)]}}


def _index(name: str, accessor: str | None, algorithm: Any) -> dict[str, Any]:
    return {
        "name": {"some": name},
        "accessor_name": NONE if accessor is None else {"some": accessor},
        "algorithm": algorithm,
    }


def _unique(name: str, *columns: int) -> dict[str, Any]:
    return {"name": {"some": name}, "data": {"Unique": {"columns": list(columns)}}}


def _sequence(name: str, column: int) -> dict[str, Any]:
    return {
        "name": {"some": name},
        "column": column,
        "start": NONE,
        "min_value": NONE,
        "max_value": NONE,
        "increment": 1,
    }


def _table(
    name: str,
    ref: int,
    primary_key: list[int],
    indexes: list[Any],
    constraints: list[Any],
    sequences: list[Any],
    *,
    schedule: Any = None,
    public: bool = True,
) -> dict[str, Any]:
    return {
        "name": name,
        "product_type_ref": ref,
        "primary_key": primary_key,
        "indexes": indexes,
        "constraints": constraints,
        "sequences": sequences,
        "schedule": NONE if schedule is None else {"some": schedule},
        "table_type": {"User": []},
        "table_access": {"Public" if public else "Private": []},
    }


def _type(name: str, ty: int) -> dict[str, Any]:
    return {"name": {"scope": [], "name": name}, "ty": ty, "custom_ordering": True}


def _reducer(name: str, params: list[Any], lifecycle: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "params": {"elements": params},
        "lifecycle": NONE if lifecycle is None else {"some": {lifecycle: []}},
    }


#: The typespace, in the order the module registered its types.
PLAYER, STATUS, POSITION, SCORE, SLOT, TICK_SCHEDULE, AUDIT_LOG = range(7)

REAL_2X_SCHEMA: dict[str, Any] = {
    "typespace": {
        "types": [
            _product(  # 0 Player
                _el("id", U64),
                _el("owner", IDENTITY),
                _el("name", STRING),
                _el("nickname", OPTION_STRING),
                _el("status", {"Ref": STATUS}),
                _el("position", {"Ref": POSITION}),
                _el("joined_at", TIMESTAMP),
            ),
            {  # 1 Status: declared Active, Banned(String), Away(TimeDuration); served camelCase
                "Sum": {
                    "variants": [
                        _el("active", UNIT),
                        _el("banned", STRING),
                        _el("away", TIME_DURATION),
                    ]
                }
            },
            _product(_el("x", {"F32": []}), _el("y", {"F32": []})),  # 2 Position
            _product(_el("player_id", U64), _el("day", U32), _el("points", U32)),  # 3 Score
            _product(_el("slot_id", {"U16": []}), _el("player_id", U64)),  # 4 Slot
            _product(  # 5 TickSchedule
                _el("scheduled_id", U64), _el("scheduled_at", SCHEDULE_AT), _el("label", STRING)
            ),
            _product(_el("id", U64), _el("sender", IDENTITY), _el("at", TIMESTAMP)),  # 6
        ]
    },
    "tables": [
        _table(
            "audit_log",
            AUDIT_LOG,
            [0],
            [_index("audit_log_id_idx_btree", "id", {"BTree": [0]})],
            [_unique("audit_log_id_key", 0)],
            [_sequence("audit_log_id_seq", 0)],
            public=False,
        ),
        _table(
            "player",
            PLAYER,
            [0],
            [
                _index("player_id_idx_btree", "id", {"BTree": [0]}),
                _index("player_name_idx_btree", "name", {"BTree": [2]}),
            ],
            [_unique("player_id_key", 0), _unique("player_name_key", 2)],
            [_sequence("player_id_seq", 0)],
        ),
        _table(
            "score",
            SCORE,
            [],
            [
                _index("score_player_id_day_idx_btree", "by_player_and_day", {"BTree": [0, 1]}),
                _index("score_points_idx_hash", "by_points", {"Hash": [2]}),
            ],
            [],
            [],
        ),
        _table(
            "slot",
            SLOT,
            [0],
            [_index("slot_slot_id_idx_direct", "slot_id", {"Direct": 0})],
            [_unique("slot_slot_id_key", 0)],
            [],
        ),
        _table(
            "tick_schedule",
            TICK_SCHEDULE,
            [0],
            [_index("tick_schedule_scheduled_id_idx_btree", "scheduled_id", {"BTree": [0]})],
            [_unique("tick_schedule_scheduled_id_key", 0)],
            [_sequence("tick_schedule_scheduled_id_seq", 0)],
            schedule={
                "name": {"some": "tick_schedule_sched"},
                "reducer_name": "tick",
                "scheduled_at_column": 1,
            },
        ),
    ],
    "reducers": [
        _reducer("init", [], "Init"),
        _reducer("client_connected", [], "OnConnect"),
        _reducer("client_disconnected", [], "OnDisconnect"),
        _reducer("join", [_el("name", STRING), _el("status", {"Ref": STATUS})]),
        _reducer("record_score", [_el("player_id", U64), _el("day", U32), _el("points", U32)]),
        _reducer("tick", [_el("row", {"Ref": TICK_SCHEDULE})]),
    ],
    "types": [
        _type("AuditLog", AUDIT_LOG),
        _type("Player", PLAYER),
        _type("Position", POSITION),
        _type("Score", SCORE),
        _type("Slot", SLOT),
        _type("Status", STATUS),
        _type("TickSchedule", TICK_SCHEDULE),
    ],
    "misc_exports": [
        {
            "Procedure": {
                "name": "top_score",
                "params": {"elements": [_el("day", U32)]},
                "return_type": OPTION_U32,
            }
        }
    ],
    "row_level_security": [],
}
