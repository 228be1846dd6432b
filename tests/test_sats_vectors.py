"""Every golden vector made by the official TypeScript SDK passes both ways.

For each line of ``bsatn_vectors.jsonl``: reading the JSON value and encoding it gives exactly
the BSATN bytes; decoding the bytes consumes all of them and writes back exactly the JSON
(compared as parsed structures; floats by value and by the sign of zero). The type itself
round-trips through ``AlgebraicType.from_json`` / ``to_json``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from conftest import VECTORS_DIR

from spacetime_sched import sats

VECTORS_FILE = VECTORS_DIR / "bsatn_vectors.jsonl"
VECTORS = [json.loads(line) for line in VECTORS_FILE.read_text("utf-8").splitlines() if line]


def same_json(actual: Any, expected: Any) -> bool:
    """Structural equality where floats compare by value and sign, and bool is not an int."""
    if isinstance(expected, float) or isinstance(actual, float):
        return (
            type(actual) in (int, float)
            and type(expected) in (int, float)
            and actual == expected
            and math.copysign(1.0, actual) == math.copysign(1.0, expected)
        )
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, dict):
        return list(actual) == list(expected) and all(
            same_json(actual[k], expected[k]) for k in expected
        )
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(
            same_json(a, e) for a, e in zip(actual, expected, strict=False)
        )
    return bool(actual == expected)


def test_the_vector_file_covers_every_category() -> None:
    categories = {v["name"].split(".")[0] for v in VECTORS}
    assert categories == {
        "prim", "array", "option", "product", "sum", "result", "special", "rand", "row",
        "args", "v2",
    }  # fmt: skip
    assert len(VECTORS) == len({v["name"] for v in VECTORS}) > 700


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_encodes_and_decodes_exactly(vector: dict[str, Any]) -> None:
    ty = sats.AlgebraicType.from_json(vector["type"])
    assert ty.to_json() == vector["type"]
    expected_bytes = bytes.fromhex(vector["bsatn"])

    value = sats.from_json(ty, vector["json"])
    assert sats.encode(ty, value) == expected_bytes

    decoded = sats.decode(ty, expected_bytes)
    assert same_json(sats.to_json(ty, decoded), vector["json"])
    # Decoding and reading the JSON agree on the Python value, and it re-encodes identically.
    assert decoded == value
    assert sats.encode(ty, decoded) == expected_bytes


@pytest.mark.parametrize("vector", VECTORS[::25], ids=[v["name"] for v in VECTORS[::25]])
def test_vector_decodes_from_any_buffer_type_and_offset(vector: dict[str, Any]) -> None:
    ty = sats.AlgebraicType.from_json(vector["type"])
    data = bytes.fromhex(vector["bsatn"])
    codec = sats.compile(ty)
    expected = codec.decode(data)
    assert codec.decode(bytearray(data)) == expected
    assert codec.decode(memoryview(data)) == expected
    framed = b"\xaa\xbb" + data + b"\xcc"
    assert codec.decode_from(framed, 2) == (expected, 2 + len(data))
    buf = bytearray(b"\xaa")
    codec.encode_into(buf, expected)
    assert bytes(buf) == b"\xaa" + data
