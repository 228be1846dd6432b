"""BSATN codec throughput: encodes and decodes per second of typical SpacetimeDB values.

Run: ``python benchmarks/bench_codec.py`` (about 20 s). Prints a markdown table. Each figure is
the best of several rounds on one core, so background load lowers it less than an average would.

Cases:

* ``Timestamp`` and ``ScheduleAt`` (what a scheduler encodes for every schedule row);
* a ``CallReducer``-sized product ``(request_id: u32, flags: u8, reducer: String, args: bytes)``
  with 40 bytes of args;
* a 1,000-row table of ``(id: u64, name: String, at: Timestamp)`` encoded and decoded as one
  array (also reported as rows per second).
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats

ROUND_SECONDS = 0.4
ROUNDS = 5


def rate(fn: Callable[[], Any], batch: int) -> float:
    """Best calls per second of ``fn`` over ``ROUNDS`` rounds of about ``ROUND_SECONDS``."""
    best = 0.0
    for _ in range(ROUNDS):
        calls = 0
        start = time.perf_counter()
        deadline = start + ROUND_SECONDS
        while True:
            for _ in range(batch):
                fn()
            calls += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - start))
    return best


def cases() -> list[tuple[str, sats.Codec, Any, int, int]]:
    """(name, codec, value, batch size, rows per value)."""
    call_reducer = sats.product(
        ("request_id", sats.U32),
        ("flags", sats.U8),
        ("reducer", sats.STRING),
        ("args", sats.BYTES),
    )
    row = sats.product(("id", sats.U64), ("name", sats.STRING), ("at", sats.TIMESTAMP))
    table = sats.array(row)
    now = Timestamp(1_764_300_000_000_000)
    rows = [{"id": i, "name": f"player-{i}", "at": now + TimeDuration(i)} for i in range(1000)]
    return [
        ("Timestamp", sats.compile(sats.TIMESTAMP), now, 1000, 1),
        (
            "ScheduleAt (Interval)",
            sats.compile(sats.SCHEDULE_AT),
            ScheduleAt.Interval(TimeDuration(5_000_000)),
            1000,
            1,
        ),
        ("ScheduleAt (Time)", sats.compile(sats.SCHEDULE_AT), ScheduleAt.Time(now), 1000, 1),
        (
            "CallReducer-sized product (40-byte args)",
            sats.compile(call_reducer),
            {"request_id": 7, "flags": 0, "reducer": "send_message", "args": bytes(range(40))},
            1000,
            1,
        ),
        ("1,000-row table (u64, String, Timestamp)", sats.compile(table), rows, 2, 1000),
    ]


def main() -> None:
    print(f"Python {platform.python_version()} ({sys.implementation.name}), {platform.machine()}")
    print()
    print("| value | encodes/s | ns/encode | decodes/s | ns/decode | rows/s enc | rows/s dec |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, codec, value, batch, rows in cases():
        data = codec.encode(value)
        assert codec.decode(data) == value, name
        encode, decode = codec.encode, codec.decode
        enc = rate(lambda: encode(value), batch)  # noqa: B023 - called before the loop moves on
        dec = rate(lambda: decode(data), batch)  # noqa: B023
        row_cells = f"{enc * rows:,.0f} | {dec * rows:,.0f}" if rows > 1 else "- | -"
        print(
            f"| {name} ({len(data)} B) | {enc:,.0f} | {1e9 / enc:,.0f} | "
            f"{dec:,.0f} | {1e9 / dec:,.0f} | {row_cells} |"
        )


if __name__ == "__main__":
    main()
