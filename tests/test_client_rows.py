"""Typed rows, without a server: one frozen attrs class per table and struct type, compiled once
per schema; every column type the codec supports decodes to a hashable, comparable value, and
``row_dict`` gives back exactly what the codec decodes.
"""

from __future__ import annotations

import timeit
from typing import Any

import attrs
import pytest
from _typed_support import COLUMNS, make_typed_module

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats
from spacetime_sched.client import ClientCache, Row, RowChanges, row_dict
from spacetime_sched.client._cache import DecodedChanges
from spacetime_sched.client._rows import row_model
from spacetime_sched.protocol import ModuleSchema
from spacetime_sched.testing import Module, example_module


def schema() -> ModuleSchema:
    return make_typed_module().schema


def encoded_row(row_id: int = 1, **changes: Any) -> bytes:
    values = {"id": row_id, **{name: value for name, _, value in COLUMNS}, **changes}
    return schema().table("everything").row_codec.encode(values)


def test_a_row_is_a_frozen_attrs_instance_with_a_field_per_column() -> None:
    table = row_model(schema()).table("everything")
    row = table.decode(encoded_row())
    assert isinstance(row, Row)
    assert attrs.has(type(row))
    assert type(row).__name__ == "Everything"
    assert [field.name for field in attrs.fields(type(row))] == ["id", *[c[0] for c in COLUMNS]]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        row.email = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("column", "ty", "value"), COLUMNS, ids=[c[0] for c in COLUMNS])
def test_every_column_type_decodes_to_its_typed_value(
    column: str, ty: sats.AlgebraicType, value: Any
) -> None:
    row = row_model(schema()).table("everything").decode(encoded_row())
    typed = getattr(row, column)
    hash(typed)  # every column value is hashable
    assert row[column] == typed  # dict-style reading still works
    assert row_dict(row)[column] == sats.decode(ty, sats.encode(ty, value))


def test_typed_values_are_the_projects_own_classes() -> None:
    row = row_model(schema()).table("everything").decode(encoded_row())
    assert row.at == Timestamp(1_700_000_000_000_000)
    assert row.took == TimeDuration(1_500)
    assert row.when == ScheduleAt.Interval(TimeDuration(60_000_000))
    assert row.numbers == (1, 2, 3)  # arrays are tuples (hashable)
    assert row.blob == b"\x00\xff"
    assert row.maybe_maybe == sats.Some(None)
    assert (row.origin.x, row.origin.y) == (1, -1)  # a nested struct is its own class
    assert type(row.path[0]) is type(row.origin)  # one class per struct type
    assert row.color == sats.SumValue(1, "rgb", row.color.value)  # enums are SumValues ...
    assert (row.color.value.r, row.color.value.g, row.color.value.b) == (1, 2, 3)  # ... typed
    assert row.pair == (7, "seven")
    assert row.nothing == ()


def test_rows_compare_hash_and_order_by_value() -> None:
    table = row_model(schema()).table("everything")
    one, same, two = (
        table.decode(encoded_row(1)),
        table.decode(encoded_row(1)),
        table.decode(encoded_row(2)),
    )
    assert one == same
    assert hash(one) == hash(same)
    assert one != two
    assert len({one, same, two}) == 2
    assert sorted([two, one]) == [one, two]


def test_row_dict_is_exactly_the_codec_dict() -> None:
    data = encoded_row()
    row = row_model(schema()).table("everything").decode(data)
    assert row_dict(row) == schema().table("everything").row_codec.decode(data)
    assert row_dict("not a row") == "not a row"


def test_a_typed_row_encodes_back_through_its_dict_form() -> None:
    data = encoded_row()
    codec = schema().table("everything").row_codec
    row = row_model(schema()).table("everything").decode(data)
    assert codec.encode(row_dict(row)) == data


def test_the_model_is_compiled_once_per_schema_content() -> None:
    first, second = make_typed_module().schema, make_typed_module().schema
    assert first is not second
    assert row_model(first) is row_model(second)
    assert row_model(first).table("everything") is row_model(first).table("everything")
    assert row_model(first) is not row_model(example_module.make_module().schema)


def test_column_names_python_cannot_use_as_attributes_get_a_trailing_underscore() -> None:
    module = Module("words")
    # (A name starting with "_" cannot be declared: a 2.x server would serve it snake_cased.)
    columns = [("from", sats.STRING), ("class", sats.U8), ("self", sats.U8)]
    module.table("t", [*columns, ("ok", sats.BOOL)])
    words = module.schema
    table = row_model(words).table("t")
    assert table.attributes == ("from_", "class_", "self_", "ok")
    values = {"from": "x", "class": 1, "self": 2, "ok": True}
    row = table.decode(words.table("t").row_codec.encode(values))
    assert (row.from_, row["from"], row.class_, row.self_) == ("x", "x", 1, 2)
    assert row_dict(row) == values
    with pytest.raises(KeyError):
        row["nope"]


def test_the_table_knows_its_keys_and_unknown_tables_are_lookup_errors() -> None:
    table = row_model(schema()).table("everything")
    with pytest.raises(LookupError):
        row_model(schema()).table("nope")
    assert table.primary_key == 0
    assert table.columns[16] == "email"
    assert 16 in table.unique_columns
    row = table.decode(encoded_row())
    assert repr(row).startswith("Everything(id=1, flag=True")


def test_decoding_a_typed_row_costs_about_as_much_as_a_dict() -> None:
    """Allocation-light: the instance is built from the codec's tuple, no dict in between.
    (A loose bound: the machine is shared; docs/benchmarks.md has the measured figures.)"""
    quickstart = example_module.make_module().schema
    codec = quickstart.table("person").row_codec
    data = codec.encode({"id": 7, "name": "Alice", "created_at": Timestamp(1)})
    typed = row_model(quickstart).table("person").decode
    as_dict = min(timeit.repeat(lambda: codec.decode(data), number=2000, repeat=5))
    as_row = min(timeit.repeat(lambda: typed(data), number=2000, repeat=5))
    assert as_row < 4 * as_dict, (as_row, as_dict)


async def test_a_reconciled_cache_keeps_its_unique_lookups_right() -> None:
    typed = schema()
    model = row_model(typed)
    table_rows = model.table("everything")
    cache = ClientCache(lambda: model)

    def rows(*emails: str) -> list[DecodedChanges]:
        keys = [encoded_row(i + 1, email=email) for i, email in enumerate(emails)]
        decoded = [table_rows.decode(key) for key in keys]
        return [DecodedChanges(RowChanges("everything", decoded, []), keys)]

    updates: list[tuple[str, str]] = []
    cache.everything.on_update(lambda old, new: updates.append((old.email, new.email)))
    await cache.apply(1, rows("a@x", "b@x"))
    assert cache.everything.email.find("b@x").id == 2
    await cache.reconcile({1: rows("a@x", "c@x")}, lambda table: lambda row: row["id"])
    assert updates == [("b@x", "c@x")]
    assert cache.everything.email.find("b@x") is None
    assert cache.everything.email.find("c@x").id == 2
    assert cache.everything.find(1).email == "a@x"
