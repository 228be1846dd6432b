"""Bounded work for every input: SATS codecs are linear in their input, whatever it holds.

Regression tests for issue 8, defects 1 and 2. Before the fix a product nested 16 levels deep
took 28 s to reject 16 bytes (each level re-ran its children on a careful path, so the work
doubled per level), a recursive type 15 levels deep took 6.7 s, a valid array nested 360 deep
never finished, and 804 bytes of ``Array<Array<()>>`` built 209,715,200 elements. The time
bounds below are generous ceilings (a hundred times what the fixed code needs), not speed
tests: they only catch the exponential and unbounded cases coming back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from spacetime_sched import sats

#: Generous: the fixed codecs need about a millisecond for each case below.
CEILING_S = 10.0


@contextmanager
def quickly(ceiling: float = CEILING_S) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < ceiling, f"took {elapsed:.2f} s (the ceiling is {ceiling} s)"


def error_of(fn: Callable[[], Any], kind: type[Exception] = sats.DecodeError) -> str:
    with pytest.raises(kind) as info:
        fn()
    return str(info.value)


def nested_products(depth: int, leaf: sats.AlgebraicType = sats.STRING) -> sats.AlgebraicType:
    ty = leaf
    for _ in range(depth):
        ty = sats.product(("a", ty), ("b", sats.U8))
    return ty


LINKED_LIST = sats.Typespace(
    [sats.product(("v", sats.STRING), ("next", sats.option(sats.RefType(0))))]
)
#: ``Tree = Array<Tree>``: one level of nesting per array plus one per ref.
TREE = sats.Typespace([sats.array(sats.RefType(0))])


def tree_bytes(depth: int) -> bytes:
    """A chain of one-element arrays ``depth`` deep, ending in an empty array."""
    return b"\x01\x00\x00\x00" * depth + b"\x00\x00\x00\x00"


# --- defect 1: a failure is reported once, from where it happened -------------------------------


@pytest.mark.parametrize("depth", [16, 24, 64])
def test_a_deeply_nested_product_rejects_bad_bytes_in_linear_time(depth: int) -> None:
    ty = nested_products(depth)
    with quickly():
        text = error_of(lambda: sats.decode(ty, b"\x07" * 16))
    assert text.startswith("a." * (depth - 1) + "a: unexpected end of input: String")


@pytest.mark.parametrize("depth", [24, 40])
def test_a_recursive_type_rejects_bad_bytes_in_linear_time(depth: int) -> None:
    data = b"\x00\x00\x00\x00\x00" * depth  # v = "", next = some(...), ..., then nothing
    with quickly():
        text = error_of(lambda: sats.decode(sats.RefType(0), data, LINKED_LIST))
    end = len(data)
    assert (
        text
        == "next.some." * depth
        + f"v: unexpected end of input at byte {end} (the input has {end} bytes)"
    )


def test_the_error_names_the_path_through_arrays_options_and_sums() -> None:
    inner = sats.sum(("A", sats.U8), ("B", sats.product(("x", sats.BOOL))))
    ty = sats.product(("a", sats.array(sats.option(inner))))
    data = b"\x01\x00\x00\x00" + b"\x00" + b"\x01" + b"\x07"  # [some(B{x: 0x07})]
    text = error_of(lambda: sats.decode(ty, data, path="args"))
    assert (
        text == "args.a[0].some.B.x: invalid Bool byte 0x07 at byte 6 (only 00 and 01 are allowed)"
    )


@pytest.mark.parametrize("depth", [16, 24, 64])
def test_encoding_a_deeply_nested_bad_value_takes_linear_time(depth: int) -> None:
    ty, value = nested_products(depth), 5
    for _ in range(depth):
        value = {"a": value, "b": 1}
    with quickly():
        text = error_of(lambda: sats.encode(ty, value), sats.EncodeError)
    assert text == "a." * (depth - 1) + "a: expected String (a str), got int 5"


def test_sats_json_of_a_deeply_nested_product_is_rejected_in_linear_time() -> None:
    ty, obj = nested_products(64), 5
    for _ in range(64):
        obj = {"a": obj, "b": 1}
    with quickly():
        text = error_of(lambda: sats.from_json(ty, obj))
    assert text == "a." * 63 + "a: expected String (a str), got int 5"


def test_a_failing_field_deep_inside_a_product_is_found_by_its_own_path() -> None:
    # A bad Bool in a run of packed fields is located exactly, after a good nested field.
    ty = sats.product(("first", nested_products(3, sats.U32)), ("n", sats.U32), ("ok", sats.BOOL))
    good = sats.encode(
        ty, {"first": {"a": {"a": {"a": 1, "b": 2}, "b": 3}, "b": 4}, "n": 5, "ok": True}
    )
    bad = good[:-1] + b"\x02"
    assert error_of(lambda: sats.decode(ty, bad)).startswith("ok: invalid Bool byte 0x02")


# --- defect 1: nesting deeper than MAX_DEPTH is a DecodeError, never a RecursionError ------------


def test_the_depth_limit_is_public_and_documented() -> None:
    assert sats.MAX_DEPTH == 128


def test_a_type_nested_deeper_than_the_limit_is_refused_quickly() -> None:
    ty: sats.AlgebraicType = sats.U32
    for _ in range(360):
        ty = sats.array(ty)
    data = b"\x01\x00\x00\x00" * 359 + b"\x00\x00\x00\x00"
    with quickly():
        text = error_of(lambda: sats.decode(ty, data), sats.SatsError)
    assert "deeper than 128 levels (sats.MAX_DEPTH)" in text


def test_a_type_nested_to_the_limit_works() -> None:
    ty: sats.AlgebraicType = sats.U32
    for _ in range(sats.MAX_DEPTH - 1):  # the u32 leaf is a level too
        ty = sats.array(ty)
    data = b"\x01\x00\x00\x00" * (sats.MAX_DEPTH - 2) + b"\x00\x00\x00\x00"
    assert sats.encode(ty, sats.decode(ty, data)) == data


def test_a_type_nested_thousands_of_levels_is_a_sats_error_not_a_recursion_error() -> None:
    ty: sats.AlgebraicType = sats.U32
    for _ in range(5000):
        ty = sats.array(ty)
    assert "MAX_DEPTH" in error_of(lambda: sats.decode(ty, b""), sats.SatsError)
    assert "MAX_DEPTH" in error_of(lambda: sats.from_json(ty, []), sats.SatsError)


def test_a_type_read_from_json_nested_too_deep_is_a_decode_error() -> None:
    obj: Any = {"U32": []}
    for _ in range(5000):
        obj = {"Array": obj}
    text = error_of(lambda: sats.AlgebraicType.from_json(obj))
    assert text.startswith("type.Array.Array.")
    assert "deeper than 128 levels" in text


def test_a_recursive_value_may_nest_up_to_the_limit() -> None:
    # Each pass through Tree's ref adds two levels (the ref and the array).
    value = sats.decode(sats.RefType(0), tree_bytes(64), TREE)
    assert sats.encode(sats.RefType(0), value, TREE) == tree_bytes(64)
    assert (
        sats.from_json(sats.RefType(0), sats.to_json(sats.RefType(0), value, TREE), TREE) == value
    )


@pytest.mark.parametrize("depth", [65, 360, 100_000])
def test_a_recursive_value_nested_past_the_limit_is_a_decode_error(depth: int) -> None:
    with quickly():
        text = error_of(lambda: sats.decode(sats.RefType(0), tree_bytes(depth), TREE))
    assert text.startswith("[0]" * 65 + ": the value nests deeper than 128 levels")


def test_a_recursive_json_value_nested_past_the_limit_is_a_decode_error() -> None:
    value: Any = []
    for _ in range(5000):
        value = [value]
    text = error_of(lambda: sats.from_json(sats.RefType(0), value, TREE))
    assert "nests deeper than 128 levels" in text


def test_encoding_a_recursive_value_nested_past_the_limit_is_an_encode_error() -> None:
    value: Any = None
    for _ in range(1000):
        value = {"v": "x", "next": value}
    text = error_of(lambda: sats.encode(sats.RefType(0), value, LINKED_LIST), sats.EncodeError)
    assert text.startswith("next.some.")
    assert "nests deeper than 128 levels" in text


def test_the_depth_count_is_restored_after_a_failure() -> None:
    for _ in range(3):
        error_of(lambda: sats.decode(sats.RefType(0), tree_bytes(1000), TREE))
    assert sats.decode(sats.RefType(0), tree_bytes(64), TREE) is not None


# --- defect 2: zero-size elements are capped per decode, not per array ---------------------------


def test_zero_size_elements_are_capped_across_the_whole_value() -> None:
    ty = sats.array(sats.array(sats.UNIT))
    inner = (1 << 20).to_bytes(4, "little")  # each inner array alone is within the cap
    data = (200).to_bytes(4, "little") + inner * 200  # 804 bytes asking for 209,715,200 units
    with quickly():
        text = error_of(lambda: sats.decode(ty, data))
    assert text.startswith("[1]: the array of 1048576 zero-size elements at byte 8 takes the value")
    assert "sats.MAX_ZERO_SIZE_ELEMENTS" in text


def test_the_zero_size_budget_is_per_decode() -> None:
    ty = sats.array(sats.array(sats.UNIT))
    half = sats.MAX_ZERO_SIZE_ELEMENTS // 2
    data = (2).to_bytes(4, "little") + half.to_bytes(4, "little") * 2  # exactly the cap
    for _ in range(3):  # each decode starts afresh
        assert [len(x) for x in sats.decode(ty, data)] == [half, half]
    over = (3).to_bytes(4, "little") + half.to_bytes(4, "little") * 3
    assert "MAX_ZERO_SIZE_ELEMENTS" in error_of(lambda: sats.decode(ty, over))


def test_a_million_units_decode_and_convert_to_json_quickly_and_still_check_each_one() -> None:
    codec = sats.compile(sats.array(sats.UNIT))
    data = sats.MAX_ZERO_SIZE_ELEMENTS.to_bytes(4, "little")
    with quickly(ceiling=30.0):  # a million items twice through JSON: ~0.3 s when idle
        value = codec.decode(data)
        assert codec.from_json(codec.to_json(value)) == value
    assert value == [()] * sats.MAX_ZERO_SIZE_ELEMENTS
    assert error_of(lambda: codec.to_json([(), 5]), sats.EncodeError).startswith("[1]: ")
    assert error_of(lambda: codec.from_json([[], 5])).startswith("[1]: ")
    assert codec.from_json([[], {}, None]) == [(), (), ()]
