"""The bounded fuzz run (seconds): every target's contract over a few hundred inputs.

Each Hypothesis example is a seed; the target's own generator turns it into a batch of inputs
(valid, mutated, random, hostile: see ``_fuzz``), and every input must succeed or raise one of
the project's errors, round-trip exactly, and stay under the target's time and memory ceilings
(memory traced with tracemalloc on every input here). A failing seed replays exactly.
``nox -s fuzz`` runs the same targets over about a million inputs each (``run_fuzz.py``).
"""

from __future__ import annotations

import os
import random
import tracemalloc
from typing import Any

import pytest
from _fuzz import FRAME_MAX_SIZE, TARGETS, bombs, check_sats, check_server_frame, run_one
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetime_sched import SpacetimeSchedError, sats
from spacetime_sched.protocol import ModuleSchema, decode_server_frame

#: Examples per target (each a batch of inputs); FUZZ_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
BATCH = 12

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("key", sorted(TARGETS))
@FUZZ
@given(seed=st.integers(0, 2**64))
def test_every_input_succeeds_or_raises_our_error_in_bounded_time_and_memory(
    key: str, seed: int
) -> None:
    target = TARGETS[key]
    stats = target.stats()
    draw = target.make(random.Random(seed), 4)
    tracemalloc.start()
    try:
        for _ in range(BATCH):
            run_one(stats, target.check, draw(), memory=True)
    finally:
        tracemalloc.stop()
    assert stats.failures == []
    assert stats.tried == BATCH


@FUZZ
@given(
    tag=st.sampled_from([0, 1, 2, 3, 255]), payload=st.binary(max_size=256), batched=st.booleans()
)
def test_arbitrary_frames_decode_or_raise_our_error(
    tag: int, payload: bytes, batched: bool
) -> None:
    check_server_frame((bytes([tag]) + payload, batched))


@pytest.mark.parametrize("batched", [False, True])
def test_compression_bombs_stop_at_max_size(batched: bool) -> None:
    for bomb in bombs():
        with pytest.raises(SpacetimeSchedError, match=f"max_size={FRAME_MAX_SIZE}"):
            decode_server_frame(bomb, batched=batched, max_size=FRAME_MAX_SIZE)


@FUZZ
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_decode_as_a_recursive_type_or_raise_our_error(data: bytes) -> None:
    tree = sats.Typespace(
        [sats.sum(("Leaf", sats.STRING), ("Node", sats.array(sats.option(sats.RefType(0)))))]
    )
    check_sats((sats.RefType(0), tree, data))


# --- found by fuzzing the schema parser: RecursionErrors that escaped ModuleSchema.from_json ----
#
# The random schema target keeps its JSON shallower than ~900 levels; these two hold the
# reproductions (json.loads of text nested ~100,000 deep; an error message that printed a value
# nested ~5,000 deep).


def _deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_schema_text_nested_too_deep_is_a_protocol_error() -> None:
    with pytest.raises(SpacetimeSchedError):
        ModuleSchema.from_json("[" * 100_000)


def test_a_schema_member_nested_too_deep_is_a_protocol_error() -> None:
    with pytest.raises(SpacetimeSchedError):
        ModuleSchema.from_json(
            {"typespace": {"types": []}, "tables": [_deep_list(5000)], "reducers": []}
        )
