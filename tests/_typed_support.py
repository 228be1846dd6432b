"""A LocalServer module with a column of every type the codec supports, for the typed-row tests.

``everything`` has one column per SATS type (scalars, strings, bytes, arrays, options, a nested
struct, an array of structs, an enum with unit and payload variants, a tuple, unit, and the
special types) plus ``id`` (primary key, auto-increment) and ``email`` (unique). ``put`` takes
the same columns as arguments and inserts a row; ``put_row`` takes a whole row; ``rename``
updates a row in place (same primary key); ``pair`` inserts into ``everything`` and ``log`` in
one transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from spacetime_sched import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched.testing import Module, ReducerContext

POINT = sats.product(("x", sats.I32), ("y", sats.I32))
# Names a 2.x server keeps as they are (it serves columns snake_case, with "_" between letters
# and digits, and enum variants camelCase: crates/schema/src/def/validate/v9.rs).
COLOR = sats.sum(
    ("red", sats.UNIT),
    ("rgb", sats.product(("r", sats.U8), ("g", sats.U8), ("b", sats.U8))),
    ("named", sats.STRING),
)

#: (column, type, a sample value as the codec takes it)
COLUMNS: list[tuple[str, sats.AlgebraicType, Any]] = [
    ("flag", sats.BOOL, True),
    ("signed_tiny", sats.I8, -8),
    ("signed_small", sats.I16, -16),
    ("signed_int", sats.I32, -32),
    ("signed_long", sats.I64, -(2**40)),
    ("signed_huge", sats.I128, -(2**100)),
    ("signed_giant", sats.I256, -(2**200)),
    ("unsigned_tiny", sats.U8, 8),
    ("unsigned_small", sats.U16, 16),
    ("unsigned_int", sats.U32, 32),
    ("unsigned_long", sats.U64, 2**63),
    ("unsigned_huge", sats.U128, 2**127),
    ("unsigned_giant", sats.U256, 2**255),
    ("float_single", sats.F32, 1.5),
    ("float_double", sats.F64, -2.25),
    ("email", sats.STRING, "a@b"),
    ("blob", sats.BYTES, b"\x00\xff"),
    ("numbers", sats.array(sats.U16), [1, 2, 3]),
    ("words", sats.array(sats.STRING), ["a", "b"]),
    ("nickname", sats.option(sats.STRING), "Al"),
    ("missing", sats.option(sats.U8), None),
    ("maybe_maybe", sats.option(sats.option(sats.U8)), sats.Some(None)),
    ("origin", POINT, {"x": 1, "y": -1}),
    ("path", sats.array(POINT), [{"x": 0, "y": 0}, {"x": 2, "y": 3}]),
    ("color", COLOR, sats.SumValue(1, "rgb", {"r": 1, "g": 2, "b": 3})),
    ("plain_color", COLOR, sats.SumValue(0, "red", ())),
    ("pair", sats.product((None, sats.U8), (None, sats.STRING)), (7, "seven")),
    ("nothing", sats.UNIT, ()),
    ("who", sats.IDENTITY, Identity(0x1234)),
    ("conn_id", sats.CONNECTION_ID, ConnectionId(0x42)),
    ("at", sats.TIMESTAMP, Timestamp(1_700_000_000_000_000)),
    ("took", sats.TIME_DURATION, TimeDuration(1_500)),
    ("when", sats.SCHEDULE_AT, ScheduleAt.Interval(TimeDuration(60_000_000))),
    ("uid", sats.UUID, uuid.UUID(int=0xABCDEF)),
]


def make_typed_module() -> Module:
    module = Module("typed")
    everything = module.table(
        "everything",
        [("id", sats.U64), *[(name, ty) for name, ty, _ in COLUMNS]],
        primary_key="id",
        auto_inc="id",
        unique="email",
        public=True,
    )
    module.table(
        "log",
        [("id", sats.U64), ("note", sats.STRING)],
        primary_key="id",
        auto_inc="id",
        public=True,
    )
    module.table("tags", [("tag", sats.STRING), ("keyword", sats.STRING)], public=True)

    @module.reducer(params=[(name, ty) for name, ty, _ in COLUMNS])
    def put(ctx: ReducerContext, *values: Any) -> None:
        ctx.db.everything.insert(
            {"id": 0, **{name: value for (name, _, _), value in zip(COLUMNS, values, strict=True)}}
        )

    @module.reducer(params=[("row", everything)])
    def put_row(ctx: ReducerContext, row: dict[str, Any]) -> None:
        ctx.db.everything.insert(row)

    @module.reducer(params=[("id", sats.U64), ("email", sats.STRING)])
    def rename(ctx: ReducerContext, id: int, email: str) -> None:
        row = ctx.db.everything.find(id)
        assert row is not None
        ctx.db.everything.update({**row, "email": email})

    @module.reducer(params=[("email", sats.STRING), ("note", sats.STRING)])
    def pair(ctx: ReducerContext, email: str, note: str) -> None:
        ctx.db.log.insert({"id": 0, "note": note})
        values = {name: value for name, _, value in COLUMNS}
        ctx.db.everything.insert({"id": 0, **values, "email": email})

    @module.reducer(params=[("tag", sats.STRING)])
    def tag(ctx: ReducerContext, tag: str) -> None:
        ctx.db.tags.insert({"tag": tag, "keyword": "from"})

    return module


def sample_values() -> list[Any]:
    return [value for _, _, value in COLUMNS]
