"""Rows per second applied to the client cache from one 10,000-row TransactionUpdate.

Run: ``python benchmarks/bench_cache.py`` (about 20 s; ``--rows``, ``--rounds``, ``--backend``,
``--json``). Prints a markdown table.

What is timed is the client's own work for one server message, in process (no socket, so the
figure is the client's cost, not the network's): decoding the frame (``from frame``) or starting
from the decoded message (``from message``), decoding each row into its typed class, and
applying the whole transaction to ``conn.db`` through the connection's real receive path
(:class:`~spacetime_sched.client._dispatch.Dispatcher`), then running the callbacks. The rows are
the quickstart module's ``person(id: u64 pk, name: String, created_at: Timestamp)``.

Cases: inserts with no callback; inserts with one ``on_insert`` callback (a plain function that
counts); the same with an ``async`` callback; and 10,000 updates of rows already cached (a
delete and an insert with the same primary key, reported to one ``on_update(old, new)``).
Each figure is the best of ``--rounds`` rounds, each on a fresh cache.

``--ts`` (the default when ``node`` and the SDK's packages are installed; ``--no-ts`` skips
it) also runs the official TypeScript SDK on the same frames (``bench_cache_ts.mjs``: a
real ``DbConnection`` of the quickstart bindings, fed by a stand-in WebSocket, so also no
network); it needs Node 20 and ``npm ci --prefix tests/conformance``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from spacetime_sched import ConnectionId, Identity, Timestamp
from spacetime_sched.client._cache import ClientCache
from spacetime_sched.client._calls import PendingRequests
from spacetime_sched.client._dispatch import Dispatcher
from spacetime_sched.client._rows import row_model
from spacetime_sched.client._subscription import SubscriptionHandle
from spacetime_sched.protocol import (
    BsatnRowList,
    InitialConnection,
    ModuleSchema,
    PersistentTable,
    QuerySetUpdate,
    TableUpdate,
    TransactionUpdate,
    decode_server_frame,
    encode_server_frame,
)
from spacetime_sched.testing import example_module

CREATED = Timestamp(1_764_300_000_000_000)


def person_rows(schema: ModuleSchema, count: int, name: str = "player") -> BsatnRowList:
    codec = schema.table("person").row_codec
    return BsatnRowList.from_row_bytes(
        codec.encode({"id": i, "name": f"{name}-{i}", "created_at": CREATED}) for i in range(count)
    )


def transaction(inserts: BsatnRowList, deletes: BsatnRowList) -> TransactionUpdate:
    table = TableUpdate("person", [PersistentTable(inserts, deletes)])
    return TransactionUpdate([QuerySetUpdate(1, [table])])


async def _unsubscribe(handle: SubscriptionHandle, timeout: float | None) -> None:  # noqa: ASYNC109
    raise NotImplementedError  # never called: the benchmark does not unsubscribe


def fresh(schema: ModuleSchema) -> tuple[Dispatcher, ClientCache]:
    cache = ClientCache(lambda: row_model(schema))
    dispatcher = Dispatcher(PendingRequests(), cache, lambda: schema, max_message_size=1 << 30)
    handle = SubscriptionHandle(
        1, ["SELECT * FROM person"], unsubscribe=_unsubscribe, buffer_updates=False
    )
    dispatcher.add_subscription(handle)
    handle.applied({})
    return dispatcher, cache


async def run_case(
    schema: ModuleSchema,
    rows: int,
    rounds: int,
    *,
    callback: str | None,
    from_frame: bool,
    updates: bool,
) -> float:
    """Best rows per second over ``rounds`` fresh caches."""
    first = transaction(person_rows(schema, rows), BsatnRowList.EMPTY)
    message = first
    if updates:
        message = transaction(person_rows(schema, rows, "renamed"), person_rows(schema, rows))
    frame = encode_server_frame([message], batched=True)
    best = 0.0
    for _ in range(rounds):
        dispatcher, cache = fresh(schema)
        table = cache.person
        if updates:
            await dispatcher.handle([first])
        seen = [0]
        if callback is not None:
            function = _counter(seen, callback == "async")
            (table.on_update if updates else table.on_insert)(function)
        start = time.perf_counter()
        if from_frame:
            await dispatcher.handle(decode_server_frame(frame, batched=True, max_size=1 << 30))
        else:
            await dispatcher.handle([message])
        elapsed = time.perf_counter() - start
        assert table.count() == rows, (table.count(), rows)
        assert seen[0] == (rows if callback else 0), seen[0]
        best = max(best, rows / elapsed)
    return best


def _counter(seen: list[int], is_async: bool) -> Callable[..., Any]:
    def count(*_: Any) -> None:
        seen[0] += 1

    async def count_async(*_: Any) -> None:
        seen[0] += 1

    return count_async if is_async else count


CASES = [
    # (label, callback, from_frame, updates, the TypeScript case measuring the same)
    ("inserts, no callback", None, True, False, "insert"),
    ("inserts, no callback, from the decoded message", None, False, False, None),
    ("inserts, one on_insert callback", "sync", True, False, "insert-callback"),
    ("inserts, one async on_insert callback", "async", True, False, None),
    ("updates (same primary key), one on_update callback", "sync", True, True, "update-callback"),
]


async def run_all(rows: int, rounds: int) -> dict[str, float]:
    schema = example_module.make_module().schema
    results: dict[str, float] = {}
    for label, callback, from_frame, updates, _ts in CASES:
        results[label] = await run_case(
            schema, rows, rounds, callback=callback, from_frame=from_frame, updates=updates
        )
    return results


def run_typescript(rows: int, rounds: int) -> dict[str, Any]:
    """The same cases with the official TypeScript SDK (``bench_cache_ts.mjs``): this writes
    the frames it replays. Needs Node 20 and ``npm ci --prefix tests/conformance``."""
    schema = example_module.make_module().schema
    frames = {
        "initial.bin": encode_server_frame(
            InitialConnection(Identity(1), ConnectionId(2), "bench-token")
        ),
        "inserts.bin": encode_server_frame(
            transaction(person_rows(schema, rows), BsatnRowList.EMPTY)
        ),
        "updates.bin": encode_server_frame(
            transaction(person_rows(schema, rows, "renamed"), person_rows(schema, rows))
        ),
    }
    with tempfile.TemporaryDirectory() as directory:
        for name, data in frames.items():
            (Path(directory) / name).write_bytes(data)
        script = Path(__file__).with_name("bench_cache_ts.mjs")
        done = subprocess.run(
            ["node", str(script), directory, str(rows), str(rounds)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _typescript_available() -> bool:
    sdk = Path(__file__).resolve().parents[1] / "tests/conformance/node_modules/spacetimedb"
    return shutil.which("node") is not None and sdk.is_dir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument(
        "--ts",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the TypeScript SDK (default: when node and its packages are there)",
    )
    parser.add_argument("--json", action="store_true", help="print raw JSON")
    args = parser.parse_args()
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    table = {b: anyio.run(run_all, args.rows, args.rounds, backend=b) for b in backends}
    with_ts = args.ts if args.ts is not None else _typescript_available()
    ts = run_typescript(args.rows, args.rounds) if with_ts else None
    if args.json:
        print(json.dumps({"rows": args.rows, "rows_per_s": table, "typescript": ts}))
        return
    print(
        f"{args.rows:,}-row TransactionUpdate applied to the client cache "
        f"(CPython {platform.python_version()}, {sys.platform}; best of {args.rounds})\n"
    )
    columns = [f"{b} rows/s" for b in backends] + ([f"TS SDK (Node {ts['node']})"] if ts else [])
    print("| case | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for label, *_, ts_case in CASES:
        cells = [f"{table[b][label]:,.0f}" for b in backends]
        if ts is not None:
            cells.append(f"{ts['rows_per_s'][ts_case]:,.0f}" if ts_case else "")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
