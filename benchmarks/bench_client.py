"""Reducer calls per second through spacetime_sched's client, over loopback.

Calls ``add(1, 2)`` (quickstart module) one at a time (await each: latency-bound), then
pipelined (1,000 calls in flight: throughput-bound), on asyncio and on trio. Without ``--uri``
a LocalServer runs in a child process, so the client and the server do not share an event
loop. Bounded: a few seconds per backend with the defaults. Not a test: numbers on a shared
machine are noisy.

    .venv/bin/python benchmarks/bench_client.py [--sequential 1000] [--pipelined 5000]
        [--protocol auto|v3|v2]
    .venv/bin/python benchmarks/bench_client.py --uri http://127.0.0.1:3000 --database quickstart

``run_python_bench`` is also imported by ``bench_client_side_by_side.py`` (TypeScript SDK
beside this client).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from spacetime_sched.client import DbConnection  # noqa: E402

IN_FLIGHT = 1000


async def run_python_bench(
    uri: str, database: str, n_sequential: int, n_pipelined: int, protocol: str = "auto"
) -> dict[str, Any]:
    """Benchmark one connection; returns calls/s and latency percentiles per mode, and the
    negotiated subprotocol (``protocol``: ``auto``, ``v3`` or ``v2``)."""
    builder = DbConnection.builder().with_uri(uri).with_database_name(database)
    builder = builder.with_compression("none").with_protocol(protocol)
    async with builder.build() as conn:
        subprotocol = conn.protocol
        await conn.call_reducer_async("add", 1, 2)  # warm up: schema fetch, codecs

        latencies: list[float] = []
        started = time.perf_counter()
        for _ in range(n_sequential):
            t0 = time.perf_counter()
            await conn.call_reducer_async("add", 1, 2)
            latencies.append(time.perf_counter() - t0)
        sequential_s = time.perf_counter() - started

        remaining = n_pipelined

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await conn.call_reducer_async("add", 1, 2)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(min(IN_FLIGHT, n_pipelined)):
                tg.start_soon(worker)
        pipelined_s = time.perf_counter() - started

    latencies.sort()
    return {
        "protocol": subprotocol,
        "sequential": {
            "calls": n_sequential,
            "seconds": round(sequential_s, 4),
            "calls_per_s": n_sequential / sequential_s if sequential_s else None,
            "p50_ms": _percentile(latencies, 0.50) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000 if latencies else None,
        },
        "pipelined": {
            "calls": n_pipelined,
            "in_flight": min(IN_FLIGHT, n_pipelined),
            "seconds": round(pipelined_s, 4),
            "calls_per_s": n_pipelined / pipelined_s if pipelined_s else None,
        },
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _serve_until_stdin_closes(database: str) -> None:
    from spacetime_sched.testing import LocalServer, example_module

    async with LocalServer(example_module.make_module(), database=database) as server:
        print(server.uri, flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", help="a running server (default: a LocalServer child)")
    parser.add_argument("--database", default="quickstart")
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument("--pipelined", type=int, default=5000)
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--protocol", choices=["auto", "v3", "v2"], default="auto")
    parser.add_argument("--json", action="store_true", help="print raw JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        anyio.run(_serve_until_stdin_closes, args.database)
        return

    child = None
    uri = args.uri
    if uri is None:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--database", args.database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        uri = child.stdout.readline().strip()
        if not uri:
            raise SystemExit("the LocalServer child exited before printing its URI")
    try:
        backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
        results = {
            backend: anyio.run(
                run_python_bench,
                uri,
                args.database,
                args.sequential,
                args.pipelined,
                args.protocol,
                backend=backend,
            )
            for backend in backends
        }
    finally:
        if child is not None:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=10)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"add(1, 2) on {uri}: {args.sequential} sequential, {args.pipelined} pipelined")
    for backend, result in results.items():
        seq, pipe = result["sequential"], result["pipelined"]
        print(
            f"{backend:8} {result['protocol'][:2]} sequential {seq['calls_per_s']:9,.0f} calls/s "
            f"(p50 {seq['p50_ms']:.3f} ms, p99 {seq['p99_ms']:.3f} ms)   "
            f"pipelined {pipe['calls_per_s']:9,.0f} calls/s ({pipe['in_flight']} in flight)"
        )


if __name__ == "__main__":
    main()
