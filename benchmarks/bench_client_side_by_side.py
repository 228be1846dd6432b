"""Reducer-call throughput: spacetime_sched's Python client beside the official TypeScript SDK.

One LocalServer (quickstart module) runs in a child process; against it, in the same run and
one after the other:

* the Python client (``benchmarks/bench_client.py``: ``run_python_bench``) on asyncio, then trio;
* the TypeScript SDK (``benchmarks/bench_client_ts.mjs``, npm ``spacetimedb``) on Node.

Each calls ``add(1, 2)`` one at a time (await each) and then pipelined (up to 1,000 in flight),
and the script prints a markdown table. Loopback only; bounded to about a minute.

    .venv/bin/python benchmarks/bench_client_side_by_side.py [--sequential N] [--pipelined N]
    BENCH_QUICK=1 .venv/bin/python benchmarks/bench_client_side_by_side.py

Needs ``npm ci --prefix tests/conformance`` for the TypeScript side (skipped with a note if
Node or the SDK is missing). The results are also written as JSON to ``--json PATH`` (default
``benchmarks/results/client.json``), which ``benchmarks/plot_results.py`` draws.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TS_BENCH = HERE / "bench_client_ts.mjs"
SDK_PACKAGE = ROOT / "tests" / "conformance" / "node_modules" / "spacetimedb" / "package.json"
DATABASE = "quickstart"
QUICK = bool(os.environ.get("BENCH_QUICK"))
RESULTS = HERE / "results" / "client.json"


# --- the server, in a child process so no client shares its event loop or its GIL ---------


async def _serve_until_stdin_closes() -> None:
    from spacetime_sched.testing import LocalServer, example_module

    async with LocalServer(example_module.make_module(), database=DATABASE) as server:
        print(server.uri, flush=True)
        # The parent closes our stdin when it is done; reading in a worker thread keeps the
        # server's event loop free.
        await anyio.to_thread.run_sync(sys.stdin.read)


class ServerProcess:
    """``with ServerProcess() as uri:`` runs this script's ``--serve`` mode in a child."""

    def __enter__(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        uri = self._process.stdout.readline().strip()
        if not uri:
            self._process.kill()
            raise SystemExit("the LocalServer child exited before printing its URI")
        return uri

    def __exit__(self, *exc_info: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# --- the clients ------------------------------------------------------------------------


def _load_python_bench() -> Callable[..., Any] | None:
    path = HERE / "bench_client.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("bench_client", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bench: Callable[..., Any] = module.run_python_bench
    return bench


def run_python(uri: str, backend: str, n_sequential: int, n_pipelined: int) -> dict[str, Any]:
    bench = _load_python_bench()
    if bench is None:
        return {"skipped": "benchmarks/bench_client.py is missing"}
    result: dict[str, Any] = anyio.run(
        bench, uri, DATABASE, n_sequential, n_pipelined, backend=backend
    )
    return result


def run_typescript(uri: str, n_sequential: int, n_pipelined: int, *extra: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not SDK_PACKAGE.exists():
        return {"skipped": "needs node and `npm ci --prefix tests/conformance`"}
    # No compression, like the Python client's benchmark: every frame here is tiny anyway.
    command = [node, str(TS_BENCH), uri, DATABASE, str(n_sequential), str(n_pipelined)]
    command += ["--compression=none", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        return {"skipped": f"bench_client_ts.mjs failed: {done.stderr.strip()[-500:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report -----------------------------------------------------------------------------


def _figure(result: dict[str, Any], mode: str, key: str, digits: int) -> str:
    value = result.get(mode, {}).get(key)
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown_table(rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    lines = [
        "| client | runtime | sequential calls/s | p50 ms | p99 ms | pipelined calls/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for client, runtime, result in rows:
        if "skipped" in result:
            lines.append(f"| {client} | {runtime} | skipped: {result['skipped']} | | | |")
            continue
        lines.append(
            f"| {client} | {runtime} "
            f"| {_figure(result, 'sequential', 'calls_per_s', 0)} "
            f"| {_figure(result, 'sequential', 'p50_ms', 3)} "
            f"| {_figure(result, 'sequential', 'p99_ms', 3)} "
            f"| {_figure(result, 'pipelined', 'calls_per_s', 0)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=300 if QUICK else 1000)
    parser.add_argument("--pipelined", type=int, default=2000 if QUICK else 5000)
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS,
        metavar="PATH",
        help=f"write the results as JSON there (default {RESULTS.relative_to(ROOT)})",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        anyio.run(_serve_until_stdin_closes)
        return

    with ServerProcess() as uri:
        rows = [
            ("spacetime_sched", f"CPython {platform.python_version()} asyncio", "asyncio"),
            ("spacetime_sched", f"CPython {platform.python_version()} trio", "trio"),
        ]
        results = [
            (client, runtime, run_python(uri, backend, args.sequential, args.pipelined))
            for client, runtime, backend in rows
        ]
        ts = run_typescript(uri, args.sequential, args.pipelined)
        results.append(("spacetimedb (TS SDK)", f"Node {ts.get('node', '?')}, v3", ts))
        # The SDK batches calls into one v3 frame; offering only v2 isolates that effect.
        ts2 = run_typescript(uri, args.sequential, args.pipelined, "--protocols=v2")
        results.append(("spacetimedb (TS SDK)", f"Node {ts2.get('node', '?')}, v2 only", ts2))

    print(
        f"add(1, 2) against one LocalServer on loopback; {args.sequential} sequential calls, "
        f"{args.pipelined} pipelined (1,000 in flight)\n"
    )
    print(markdown_table(results))
    write_json(args.json, args.sequential, args.pipelined, results)


def write_json(
    path: Path, sequential: int, pipelined: int, rows: list[tuple[str, str, dict[str, Any]]]
) -> None:
    """Write the run (one record per client and runtime) for ``plot_results.py``."""
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    command = " ".join(
        ["BENCH_QUICK=1"] * QUICK
        + ["python benchmarks/bench_client_side_by_side.py", *sys.argv[1:]]
    )
    document = {
        "benchmark": "bench_client_side_by_side",
        "command": command,
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average at the end {load}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sequential_calls": sequential,
        "pipelined_calls": pipelined,
        "results": [
            {"client": client, "runtime": runtime, "result": result}
            for client, runtime, result in rows
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
