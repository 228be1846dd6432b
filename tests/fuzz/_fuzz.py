"""The fuzz targets, shared by the bounded run in the test suite and the long run (run_fuzz.py).

A *target* makes inputs from a seeded :class:`random.Random` (valid values, mutated valid
values, random bytes, hostile constructions) and checks one input at a time. Every check
asserts the same contract:

* the operation succeeds, or raises one of the project's own errors
  (:class:`~spacetime_sched.SpacetimeSchedError`); anything else is a failure;
* what decodes round-trips exactly (re-encoding gives the same bytes, or the same value where
  the input form is not canonical);
* one input takes bounded time and bounded memory (:func:`run_one` measures both, with
  generous ceilings: they catch unbounded work, not slow code).

Generating inputs with our own mutators instead of Hypothesis's engine is what lets the long
run try about a million inputs per target in minutes; the bounded run in ``nox -s tests`` draws
the seeds from Hypothesis, so its failures shrink to a seed and replay exactly.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import random
import struct
import time
import tracemalloc
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import brotli

from spacetime_sched import SpacetimeSchedError, sats
from spacetime_sched._identity import ConnectionId, Identity
from spacetime_sched._time import TimeDuration, Timestamp
from spacetime_sched.protocol import (
    ModuleSchema,
    ReducerOkEmpty,
    ReducerResult,
    decode_server_frame,
    decode_server_message,
    encode_server_frame,
    encode_server_message,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "bsatn_vectors.jsonl"

#: Frames are fuzzed with a 1 MiB ``max_size`` so that a decompression bomb costs milliseconds.
FRAME_MAX_SIZE = 1 << 20


@cache
def vectors() -> tuple[dict[str, Any], ...]:
    with open(VECTORS, encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


# --- running one input ---------------------------------------------------------------------------


class Stats:
    """What a run of one target found: the figures ``docs/reliability.md`` reports."""

    def __init__(self, name: str, time_limit: float, memory_limit: int) -> None:
        self.name = name
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.tried = 0
        self.accepted = 0  # inputs that decoded (the rest raised a project error)
        self.failures: list[str] = []
        self.slowest = 0.0
        self.slowest_input = ""
        self.peak_memory = 0

    def summary(self) -> str:
        return (
            f"{self.name}: {self.tried:,} inputs, {self.accepted:,} accepted, "
            f"{len(self.failures)} failures, slowest {self.slowest * 1000:.1f} ms "
            f"({self.slowest_input}), peak memory {self.peak_memory / 2**20:.2f} MiB"
        )


def describe_input(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 160 else f"{text[:150]}... ({len(text)} chars)"


def run_one(stats: Stats, check: Callable[[Any], bool], item: Any, *, memory: bool) -> None:
    """Check ``item``; record a failure for a foreign exception, a broken round trip, or an
    input over the time or (when ``memory``, with tracemalloc running) memory ceiling."""
    if memory:
        tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        if check(item):
            stats.accepted += 1
    except AssertionError as exc:
        stats.failures.append(f"round trip: {exc} for {describe_input(item)}")
    except Exception as exc:  # the point: anything that is not our own error is a failure
        stats.failures.append(f"{type(exc).__name__}: {exc} for {describe_input(item)}")
    elapsed = time.perf_counter() - start
    stats.tried += 1
    if elapsed > stats.slowest:
        stats.slowest, stats.slowest_input = elapsed, describe_input(item)
    if elapsed > stats.time_limit:
        stats.failures.append(f"took {elapsed:.2f} s for {describe_input(item)}")
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        stats.peak_memory = max(stats.peak_memory, peak)
        if peak > stats.memory_limit:
            stats.failures.append(f"used {peak / 2**20:.1f} MiB for {describe_input(item)}")


# --- byte mutations ------------------------------------------------------------------------------

_INTERESTING = (0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF)
#: Lengths past any input, and 65,536: a count that zero-size elements may really have (the cap
#: of 2**20 itself is tested in test_sats_limits.py, not a million times here).
_HUGE = (0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0x0100_0000, 0x0001_0000)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three of: bit flips, truncation, extension, insertion, deletion, a huge u32
    length prefix written anywhere, an interesting byte, a duplicated slice."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0 and buf:
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif op == 2:
            buf += rng.randbytes(rng.randint(1, 16))
        elif op == 3:
            at = rng.randint(0, len(buf))
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and buf:
            at = rng.randrange(len(buf))
            del buf[at : at + rng.randint(1, 8)]
        elif op == 5:
            at = rng.randint(0, max(0, len(buf) - 4))
            buf[at : at + 4] = struct.pack("<I", rng.choice(_HUGE))
        elif op == 6 and buf:
            buf[rng.randrange(len(buf))] = rng.choice(_INTERESTING)
        elif buf:
            at = rng.randrange(len(buf))
            piece = buf[at : at + rng.randint(1, 32)]
            to = rng.randint(0, len(buf))
            buf[to:to] = piece
    return bytes(buf)


# --- server frames -------------------------------------------------------------------------------


@cache
def server_messages() -> tuple[Any, ...]:
    """One message of every kind in the golden vectors, plus a tiny ReducerResult."""
    found = [
        decode_server_message(bytes.fromhex(v["bsatn"]))
        for v in vectors()
        if v["name"].startswith("v2.ServerMessage.")
    ]
    return (*found, ReducerResult(7, Timestamp(1), ReducerOkEmpty()))


def _compress(tag: int, body: bytes) -> bytes:
    if tag == 2:
        return b"\x02" + gzip.compress(body, compresslevel=1, mtime=0)
    if tag == 1:
        return b"\x01" + brotli.compress(body, quality=1)
    return b"\x00" + body


@cache
def bombs() -> tuple[bytes, ...]:
    """Frames that inflate past ``FRAME_MAX_SIZE``: zeros, and valid messages over and over."""
    zeros = bytes(4 * FRAME_MAX_SIZE)
    many = encode_server_message(server_messages()[-1]) * (2 * FRAME_MAX_SIZE // 14)
    return tuple(_compress(tag, body) for tag in (1, 2) for body in (zeros, many))


def random_frame(rng: random.Random) -> tuple[bytes, bool]:
    """A server frame (v2 or v3, any compression): valid, mutated before or after compression,
    random, or a bomb. Returns ``(frame, batched)``."""
    batched = rng.random() < 0.5
    messages = server_messages()
    picked = [rng.choice(messages) for _ in range(rng.randint(1, 6) if batched else 1)]
    body = b"".join(encode_server_message(m) for m in picked)
    tag = rng.choice((0, 0, 1, 2))
    kind = rng.random()
    if kind < 0.15:
        frame = _compress(tag, body)
    elif kind < 0.55:
        frame = b"\x00" + mutate(rng, body)
    elif kind < 0.75:
        frame = _compress(rng.choice((1, 2)), mutate(rng, body))
    elif kind < 0.9:
        frame = mutate(rng, _compress(tag, body))
    elif kind < 0.999:
        frame = bytes([rng.choice((0, 1, 2, 3, 255))]) + rng.randbytes(rng.randint(0, 64))
    else:
        frame = rng.choice(bombs())
    return frame, batched


def check_server_frame(item: tuple[bytes, bool]) -> bool:
    frame, batched = item
    try:
        messages = decode_server_frame(frame, batched=batched, max_size=FRAME_MAX_SIZE)
    except SpacetimeSchedError:
        return False
    again = encode_server_frame(messages, batched=batched, threshold=1 << 62)
    assert decode_server_frame(again, batched=batched) == messages, "messages differ"
    if frame[:1] == b"\x00":
        assert again == frame, f"re-encoded as {again.hex()}"
    return True


# --- SATS types and values -----------------------------------------------------------------------

_PRIMITIVES = (
    sats.BOOL, sats.I8, sats.U8, sats.I16, sats.U16, sats.I32, sats.U32, sats.I64, sats.U64,
    sats.I128, sats.U128, sats.I256, sats.U256, sats.F32, sats.F64, sats.STRING,
)  # fmt: skip
_SPECIALS = (
    sats.IDENTITY, sats.CONNECTION_ID, sats.TIMESTAMP, sats.TIME_DURATION, sats.UUID,
    sats.SCHEDULE_AT, sats.BYTES, sats.UNIT,
)  # fmt: skip
_NAMES = ("a", "b", "id", "name", "x", "next", "Leaf", "Node", "some", "value")


def random_type(rng: random.Random, depth: int, refs: int = 0) -> sats.AlgebraicType:
    """A random type ``depth`` levels deep at most; with ``refs``, may contain ``Ref(0..refs-1)``
    under an option, array or sum (so finite values exist)."""
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(_PRIMITIVES if rng.random() < 0.7 else _SPECIALS)

    def child() -> sats.AlgebraicType:
        return random_type(rng, depth - 1, refs)

    def guarded() -> sats.AlgebraicType:  # may recurse through a ref
        if refs and rng.random() < 0.4:
            return sats.RefType(rng.randrange(refs))
        return child()

    kind = rng.randrange(5)
    if kind == 0:
        return sats.array(guarded())
    if kind == 1:
        return sats.option(guarded())
    names = rng.sample(_NAMES, rng.randint(1, 4))
    if kind == 2:
        return sats.product(*[(n, child()) for n in names])
    if kind == 3:
        return sats.product(*[(None, child()) for _ in names])
    return sats.sum(*[(n, guarded() if i else child()) for i, n in enumerate(names)])


def random_deep_type(rng: random.Random) -> sats.AlgebraicType:
    """A chain nested near or past ``MAX_DEPTH`` (products, arrays, options, sums)."""
    ty: sats.AlgebraicType = rng.choice(_PRIMITIVES)
    for _ in range(rng.randint(sats.MAX_DEPTH - 8, sats.MAX_DEPTH + 40)):
        ty = rng.choice(
            (
                sats.array,
                sats.option,
                lambda t: sats.product(("a", t)),
                lambda t: sats.sum(("A", t)),
            )
        )(ty)
    return ty


def random_typed(rng: random.Random) -> tuple[sats.AlgebraicType, sats.Typespace | None]:
    """A type and its typespace: from the golden vectors, random, recursive, or deep."""
    kind = rng.random()
    if kind < 0.3:
        vector = rng.choice(vectors())
        return sats.AlgebraicType.from_json(vector["type"]), None
    if kind < 0.7:
        return random_type(rng, rng.randint(1, 5)), None
    if kind < 0.97:
        count = rng.randint(1, 2)
        typespace = sats.Typespace(
            [random_type(rng, rng.randint(1, 4), count) for _ in range(count)]
        )
        return sats.RefType(0), typespace
    return random_deep_type(rng), None


_FLOATS = (0.0, -0.0, 1.5, -2.25, math.inf, -math.inf, math.nan, 1e300, 5e-324)


def random_value(
    rng: random.Random,
    ty: sats.AlgebraicType,
    typespace: sats.Typespace | None,
    budget: int = 40,
    parts: list[int] | None = None,
) -> Any:
    """A valid value of ``ty``; ``budget`` bounds its nesting, and ``parts`` (a one-item list
    counting down from 300) its size: past either, arrays are empty, options none and sums
    take their first variant (never a recursive ref, see :func:`random_type`)."""
    if parts is None:
        parts = [300]
    parts[0] -= 1
    if parts[0] <= 0:
        budget = 0
    if isinstance(ty, sats.RefType):
        assert typespace is not None
        return random_value(rng, typespace[ty.index], typespace, budget - 1, parts)
    kind = sats.special_kind(ty, typespace)
    if kind == "identity":
        return Identity(rng.getrandbits(256))
    if kind == "connection_id":
        return ConnectionId(rng.getrandbits(128))
    if kind == "uuid":
        import uuid

        return uuid.UUID(int=rng.getrandbits(128))
    if kind == "timestamp":
        return Timestamp(rng.randint(-(2**63), 2**63 - 1))
    if kind == "time_duration":
        return TimeDuration(rng.randint(-(2**63), 2**63 - 1))
    if kind == "schedule_at":
        from spacetime_sched import ScheduleAt

        micros = rng.randint(-(2**63), 2**63 - 1)
        return rng.choice(
            (ScheduleAt.Interval(TimeDuration(micros)), ScheduleAt.Time(Timestamp(micros)))
        )
    if kind == "option":
        assert isinstance(ty, sats.SumType)
        if budget <= 0 or rng.random() < 0.4:
            return None
        inner_type = ty.variants[0].algebraic_type
        inner = random_value(rng, inner_type, typespace, budget - 1, parts)
        return sats.Some(inner) if sats.special_kind(inner_type, typespace) == "option" else inner
    if isinstance(ty, sats.PrimitiveType):
        name = ty.name
        if name == "Bool":
            return rng.random() < 0.5
        if name == "String":
            return rng.choice(("", "ada", "héllo", "\u2603" * 3, "x" * rng.randint(0, 40)))
        if name in ("F32", "F64"):
            value = rng.choice(_FLOATS) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6)
            if name == "F32" and math.isfinite(value):
                return sats.f32_shortest(value) if abs(value) < 3e38 else math.inf
            return value
        bits = int(name[1:])
        if name[0] == "U":
            return rng.getrandbits(bits)
        return rng.getrandbits(bits) - (1 << (bits - 1))
    if isinstance(ty, sats.ArrayType):
        elem = ty.elem
        if elem == sats.U8:
            return rng.randbytes(rng.randint(0, 12))
        count = 0 if budget <= 0 else rng.randint(0, 3)
        return [random_value(rng, elem, typespace, budget - 1, parts) for _ in range(count)]
    if isinstance(ty, sats.ProductType):
        fields = [
            random_value(rng, e.algebraic_type, typespace, budget - 1, parts) for e in ty.elements
        ]
        if not fields:
            return ()
        if None in ty.names:
            return tuple(fields)
        return dict(zip(ty.names, fields, strict=True))
    assert isinstance(ty, sats.SumType)
    tag = 0 if budget <= 0 else rng.randrange(len(ty.variants))
    variant = ty.variants[tag]
    return sats.SumValue(
        tag, variant.name, random_value(rng, variant.algebraic_type, typespace, budget - 1, parts)
    )


class TypePool:
    """Compiled types to draw from: compiling costs far more than decoding, so the long run
    keeps a pool (each type with some valid encodings) and refreshes a slot now and then."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.slots: list[tuple[sats.AlgebraicType, sats.Typespace | None, list[bytes]]] = []
        for _ in range(size):
            self.slots.append(self._fresh())

    def _fresh(self) -> tuple[sats.AlgebraicType, sats.Typespace | None, list[bytes]]:
        rng = self.rng
        ty, typespace = random_typed(rng)
        samples: list[bytes] = []
        try:
            codec = sats.compile(ty, typespace)
            for _ in range(4):
                value = random_value(rng, ty, typespace, rng.randint(0, 40))
                with contextlib.suppress(sats.EncodeError):  # nested past MAX_DEPTH via a ref
                    samples.append(codec.encode(value))
        except sats.SatsError:  # a type nested past MAX_DEPTH: decoding it must say so too
            pass
        return ty, typespace, samples

    def draw(self) -> tuple[sats.AlgebraicType, sats.Typespace | None, bytes]:
        rng = self.rng
        if rng.random() < 0.002:
            self.slots[rng.randrange(len(self.slots))] = self._fresh()
        ty, typespace, samples = rng.choice(self.slots)
        if not samples or rng.random() < 0.1:
            return ty, typespace, rng.randbytes(rng.randint(0, 48))
        data = rng.choice(samples)
        return ty, typespace, data if rng.random() < 0.1 else mutate(rng, data)


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (sats.SumValue, sats.Some)):
        value = [value.value]
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in _floats(v)]
    return []


def _has_nan(value: Any) -> bool:
    return any(math.isnan(f) for f in _floats(value))


def check_sats(item: tuple[sats.AlgebraicType, sats.Typespace | None, bytes]) -> bool:
    ty, typespace, data = item
    try:
        codec = sats.compile(ty, typespace)
        value = codec.decode(data)
    except SpacetimeSchedError:
        return False
    again = codec.encode(value)
    if again != data:
        # Only an F32 NaN may come back different (the payload of a signalling NaN is not
        # kept by every float conversion); the value must then be stable.
        assert _has_nan(value), f"re-encoded as {again.hex()}"
        assert codec.encode(codec.decode(again)) == again, "a NaN does not settle"
        return True
    try:
        obj = codec.to_json(value)
    except sats.EncodeError:
        assert not all(map(math.isfinite, _floats(value))), "to_json refused a finite value"
        return True  # NaN and infinities have no JSON form
    assert codec.from_json(json.loads(json.dumps(obj))) == value, "JSON round trip differs"
    return True


# --- the module schema ---------------------------------------------------------------------------


@cache
def base_schema() -> dict[str, Any]:
    """A realistic schema: the example module the LocalServer serves."""
    from spacetime_sched.testing import example_module

    schema: dict[str, Any] = example_module.make_module().schema.to_json()
    return schema


def _random_json(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(9 if depth > 0 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice((0, 1, -1, 2**31, 2**64, -(2**70), 7))
    if kind == 3:
        return rng.choice((0.5, -1e300, 1e308))
    if kind == 4:
        return rng.choice(("", "x", "U32", "Array", "Ref", "some", "none", "\u0000", "é" * 50))
    if kind == 5:
        return random_type(rng, 3).to_json()
    if kind == 6:
        return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    if kind == 7:
        keys = ("some", "none", "name", "algebraic_type", "Ref", "elements", "Product", "x")
        return {rng.choice(keys): _random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))}
    ty: Any = {"U8": []}
    for _ in range(rng.randint(100, 300)):
        ty = {"Array": ty}
    return ty


def _mutate_json(rng: random.Random, obj: Any) -> Any:
    """A copy of ``obj`` with one subtree replaced, deleted, or duplicated."""
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        key = rng.choice(list(obj))
        out = dict(obj)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.3:
            out[key] = _random_json(rng, 3)
        else:
            out[key] = _mutate_json(rng, obj[key])
        return out
    if isinstance(obj, list) and obj and rng.random() < 0.8:
        at = rng.randrange(len(obj))
        out_list = list(obj)
        roll = rng.random()
        if roll < 0.15:
            del out_list[at]
        elif roll < 0.25:
            out_list.insert(at, obj[rng.randrange(len(obj))])
        elif roll < 0.4:
            out_list[at] = _random_json(rng, 3)
        else:
            out_list[at] = _mutate_json(rng, obj[at])
        return out_list
    return _random_json(rng, 3)


def random_schema(rng: random.Random) -> Any:
    """Parsed JSON (mutated one to four times), or its text with mutated bytes."""
    obj: Any = base_schema()
    for _ in range(rng.randint(1, 4)):
        obj = _mutate_json(rng, obj)
    if rng.random() < 0.2:
        text = json.dumps(obj).encode()
        return mutate(rng, text) if rng.random() < 0.8 else text.decode()
    return obj


def check_schema(raw: Any) -> bool:
    # Another change is reshaping the schema classes: only "our error, or success" is checked.
    try:
        ModuleSchema.from_json(raw)
    except SpacetimeSchedError:
        return False
    return True


# --- the targets ---------------------------------------------------------------------------------


class Target:
    """A named input generator and check, with its per-input ceilings.

    ``make(rng, pool)`` returns a function drawing one input per call (``pool`` sizes the
    compiled-type pool of the SATS target: large for the long run, small for the bounded one).
    """

    def __init__(
        self,
        name: str,
        make: Callable[[random.Random, int], Callable[[], Any]],
        check: Callable[[Any], bool],
        time_limit: float,
        memory_limit: int,
    ) -> None:
        self.name = name
        self.make = make
        self.check = check
        self.time_limit = time_limit
        self.memory_limit = memory_limit

    def stats(self) -> Stats:
        return Stats(self.name, self.time_limit, self.memory_limit)


TARGETS: dict[str, Target] = {
    "frames": Target(
        "server frames (v2/v3, none/gzip/brotli)",
        lambda rng, pool: lambda: random_frame(rng),
        check_server_frame,
        time_limit=2.0,
        memory_limit=64 * 2**20,
    ),
    # The worst SATS input is the MAX_ZERO_SIZE_ELEMENTS cap: a million units decode in 3 ms,
    # but the check also re-encodes them and sends them through JSON (a million empty lists:
    # ~60 MiB, ~2.5 s, and 9 s on a machine loaded 2.5 times over).
    "sats": Target(
        "sats.decode of random types",
        lambda rng, pool: TypePool(rng, pool).draw,
        check_sats,
        time_limit=30.0,
        memory_limit=256 * 2**20,
    ),
    "schema": Target(
        "ModuleSchema.from_json",
        lambda rng, pool: lambda: random_schema(rng),
        check_schema,
        time_limit=2.0,
        memory_limit=32 * 2**20,
    ),
}
