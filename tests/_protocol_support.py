"""Helpers shared by the protocol tests: the golden vectors and a message -> SATS-JSON view.

``message_json`` writes a decoded message the way the vectors spell it (typed SATS-JSON), so a
test can check every decoded field against the vector, not just that the bytes round-trip.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import attrs
from conftest import VECTORS_DIR

from spacetime_sched._identity import ConnectionId, Identity
from spacetime_sched._time import TimeDuration, Timestamp
from spacetime_sched.protocol import (
    BsatnRowList,
    EventTable,
    FixedSize,
    OneOffQueryResult,
    PersistentTable,
    ProcedureInternalError,
    ProcedureReturned,
    QuerySetId,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    RowOffsets,
    SubscriptionError,
    UnsubscribeApplied,
    UnsubscribeFlags,
)


@cache
def vectors() -> tuple[dict[str, Any], ...]:
    with open(VECTORS_DIR / "bsatn_vectors.jsonl", encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


def vectors_named(prefix: str) -> list[dict[str, Any]]:
    return [vector for vector in vectors() if vector["name"].startswith(prefix)]


def _row_list(rows: BsatnRowList) -> dict[str, Any]:
    hint = rows.size_hint
    if isinstance(hint, FixedSize):
        size_hint: dict[str, Any] = {"FixedSize": hint.size}
    else:
        assert isinstance(hint, RowOffsets)
        size_hint = {"RowOffsets": list(hint.offsets)}
    return {"size_hint": size_hint, "rows_data": rows.rows_data.hex()}


def _option(value: Any) -> dict[str, Any]:
    return {"none": []} if value is None else {"some": to_json(value)}


def to_json(value: Any) -> Any:
    """Typed SATS-JSON of a protocol value (nested structures, not a whole message)."""
    if isinstance(value, BsatnRowList):
        return _row_list(value)
    if isinstance(value, QuerySetId):
        return {"id": value.id}
    if isinstance(value, UnsubscribeFlags):
        return {value.name: []}
    if isinstance(value, Identity):
        return {"__identity__": hex(int(value))}
    if isinstance(value, ConnectionId):
        return {"__connection_id__": int(value)}
    if isinstance(value, Timestamp):
        return {"__timestamp_micros_since_unix_epoch__": value.micros_since_epoch}
    if isinstance(value, TimeDuration):
        return {"__time_duration_micros__": value.micros}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [to_json(item) for item in value]
    if isinstance(value, PersistentTable | EventTable):
        return {type(value).__name__: _fields(value)}
    if isinstance(value, ReducerOk):
        return {"Ok": _fields(value)}
    if isinstance(value, ReducerOkEmpty):
        return {"OkEmpty": []}
    if isinstance(value, ReducerErr):
        return {"Err": value.error.hex()}
    if isinstance(value, ReducerInternalError | ProcedureInternalError):
        return {"InternalError": value.message}
    if isinstance(value, ProcedureReturned):
        return {"Returned": value.value.hex()}
    if attrs.has(type(value)):
        return _fields(value)
    return value


def _fields(value: Any) -> dict[str, Any]:
    out = {}
    for field in attrs.fields(type(value)):
        item = getattr(value, field.name)
        if (isinstance(value, UnsubscribeApplied) and field.name == "rows") or (
            isinstance(value, SubscriptionError) and field.name == "request_id"
        ):
            out[field.name] = _option(item)
        elif isinstance(value, OneOffQueryResult) and field.name == "result":
            out[field.name] = {"ok": to_json(item)} if value.ok else {"err": item}
        else:
            out[field.name] = to_json(item)
    return out


def message_json(message: Any) -> dict[str, Any]:
    """A whole message as the one-key ``{"Variant": {fields}}`` object of the vectors."""
    return {type(message).__name__: _fields(message)}


# --- a realistic ``/schema?version=9`` document ------------------------------------------------


def _el(name: str, ty: Any) -> dict[str, Any]:
    return {"name": {"some": name}, "algebraic_type": ty}


def _special(tag: str, prim: str) -> dict[str, Any]:
    return {"Product": {"elements": [_el(tag, {prim: []})]}}


IDENTITY_JSON = _special("__identity__", "U256")
TIMESTAMP_JSON = _special("__timestamp_micros_since_unix_epoch__", "I64")
TIME_DURATION_JSON = _special("__time_duration_micros__", "I64")
SCHEDULE_AT_JSON = {
    "Sum": {"variants": [_el("Interval", TIME_DURATION_JSON), _el("Time", TIMESTAMP_JSON)]}
}
UNIT_JSON: dict[str, Any] = {"Product": {"elements": []}}


def _none() -> dict[str, Any]:
    return {"none": []}


#: Written by hand after the shape the server produces from ``RawModuleDefV9`` (field order
#: included): a player table with a Ref'd column type and special types, a schedule table, a
#: private table, lifecycle reducers, a procedure, a view and a column default.
SCHEMA_V9: dict[str, Any] = {
    "typespace": {
        "types": [
            {
                "Product": {
                    "elements": [
                        _el("id", {"U64": []}),
                        _el("owner", IDENTITY_JSON),
                        _el("name", {"String": []}),
                        _el("level", {"U32": []}),
                        _el("joined", TIMESTAMP_JSON),
                        _el("position", {"Ref": 1}),
                        _el(
                            "nickname",
                            {
                                "Sum": {
                                    "variants": [
                                        _el("some", {"String": []}),
                                        _el("none", UNIT_JSON),
                                    ]
                                }
                            },
                        ),
                    ]
                }
            },
            {"Product": {"elements": [_el("x", {"F32": []}), _el("y", {"F32": []})]}},
            {
                "Product": {
                    "elements": [
                        _el("scheduled_id", {"U64": []}),
                        _el("scheduled_at", SCHEDULE_AT_JSON),
                        _el("label", {"String": []}),
                    ]
                }
            },
            {
                "Sum": {
                    "variants": [
                        _el("Red", UNIT_JSON),
                        _el("Green", UNIT_JSON),
                        _el("Custom", {"U32": []}),
                    ]
                }
            },
            {"Product": {"elements": [_el("owner", IDENTITY_JSON), _el("note", {"String": []})]}},
        ]
    },
    "tables": [
        {
            "name": "player",
            "product_type_ref": 0,
            "primary_key": [0],
            "indexes": [
                {
                    "name": {"some": "player_id_idx_btree"},
                    "accessor_name": {"some": "id"},
                    "algorithm": {"BTree": [0]},
                },
                {
                    "name": {"some": "player_owner_idx_hash"},
                    "accessor_name": {"none": []},
                    "algorithm": {"Hash": [1]},
                },
            ],
            "constraints": [
                {"name": {"some": "player_id_key"}, "data": {"Unique": {"columns": [0]}}}
            ],
            "sequences": [
                {
                    "name": {"some": "player_id_seq"},
                    "column": 0,
                    "start": _none(),
                    "min_value": _none(),
                    "max_value": _none(),
                    "increment": 1,
                }
            ],
            "schedule": _none(),
            "table_type": {"User": []},
            "table_access": {"Public": []},
        },
        {
            "name": "tick_schedule",
            "product_type_ref": 2,
            "primary_key": [0],
            "indexes": [
                {
                    "name": {"some": "tick_schedule_scheduled_id_idx_btree"},
                    "accessor_name": {"some": "scheduled_id"},
                    "algorithm": {"BTree": [0]},
                }
            ],
            "constraints": [
                {
                    "name": {"some": "tick_schedule_scheduled_id_key"},
                    "data": {"Unique": {"columns": [0]}},
                }
            ],
            "sequences": [
                {
                    "name": {"some": "tick_schedule_scheduled_id_seq"},
                    "column": 0,
                    "start": {"some": 1},
                    "min_value": {"some": 1},
                    "max_value": {"some": 170141183460469231731687303715884105727},
                    "increment": 1,
                }
            ],
            "schedule": {
                "some": {
                    "name": {"some": "tick_schedule_sched"},
                    "reducer_name": "tick",
                    "scheduled_at_column": 1,
                }
            },
            "table_type": {"User": []},
            "table_access": {"Private": []},
        },
        {
            "name": "audit",
            "product_type_ref": 4,
            "primary_key": [],
            "indexes": [
                {
                    "name": {"some": "audit_owner_idx_direct"},
                    "accessor_name": _none(),
                    "algorithm": {"Direct": 0},
                }
            ],
            "constraints": [],
            "sequences": [],
            "schedule": _none(),
            "table_type": {"User": []},
            "table_access": {"Private": []},
        },
    ],
    "reducers": [
        {
            "name": "add_player",
            "params": {"elements": [_el("name", {"String": []}), _el("level", {"U32": []})]},
            "lifecycle": _none(),
        },
        {
            "name": "move_player",
            "params": {"elements": [_el("id", {"U64": []}), _el("position", {"Ref": 1})]},
            "lifecycle": _none(),
        },
        {
            "name": "schedule_tick",
            "params": {"elements": [_el("at", SCHEDULE_AT_JSON), _el("label", {"String": []})]},
            "lifecycle": _none(),
        },
        {
            "name": "paint",
            "params": {"elements": [_el("color", {"Ref": 3})]},
            "lifecycle": _none(),
        },
        {"name": "tick", "params": {"elements": [_el("row", {"Ref": 2})]}, "lifecycle": _none()},
        {"name": "reset_world", "params": {"elements": []}, "lifecycle": _none()},
        {"name": "init", "params": {"elements": []}, "lifecycle": {"some": {"Init": []}}},
        {
            "name": "client_connected",
            "params": {"elements": []},
            "lifecycle": {"some": {"OnConnect": []}},
        },
        {
            "name": "client_disconnected",
            "params": {"elements": []},
            "lifecycle": {"some": {"OnDisconnect": []}},
        },
    ],
    "types": [
        {"name": {"scope": [], "name": "Player"}, "ty": 0, "custom_ordering": True},
        {"name": {"scope": [], "name": "Position"}, "ty": 1, "custom_ordering": True},
        {"name": {"scope": [], "name": "TickSchedule"}, "ty": 2, "custom_ordering": True},
        {"name": {"scope": ["game"], "name": "Color"}, "ty": 3, "custom_ordering": True},
        {"name": {"scope": [], "name": "Audit"}, "ty": 4, "custom_ordering": True},
    ],
    "misc_exports": [
        {"ColumnDefaultValue": {"table": "player", "col_id": 3, "value": "01000000"}},
        {
            "Procedure": {
                "name": "get_score",
                "params": {"elements": [_el("player_id", {"U64": []})]},
                "return_type": {"U32": []},
            }
        },
        {
            "View": {
                "name": "my_player",
                "index": 0,
                "is_public": True,
                "is_anonymous": False,
                "params": {"elements": []},
                "return_type": {
                    "Sum": {"variants": [_el("some", {"Ref": 0}), _el("none", UNIT_JSON)]}
                },
            }
        },
    ],
    "row_level_security": [{"sql": "SELECT * FROM audit WHERE owner = :sender"}],
}
