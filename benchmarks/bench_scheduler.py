"""Scheduler benchmark: spacetime_sched's ReducerScheduler against APScheduler 4.0.0a6 and 3.11.

A script, not a test. Run from the repository root::

    .venv/bin/python benchmarks/bench_scheduler.py            # full run (several minutes)
    .venv/bin/python benchmarks/bench_scheduler.py --quick    # shorter lateness run (10 s)
    .venv/bin/python benchmarks/bench_scheduler.py --no-peers # ours only

Workloads, the same for every scheduler (no-op async target, in-memory store, 100 concurrent
executions/jobs):

1. ``add``: add 100,000 one-shot schedules an hour ahead: schedules/s.
2. ``fire``: 100,000 one-shot schedules all due at once, added before the scheduler starts:
   fires/s until all have run. Peers whose cost grows with the backlog are capped (reported).
3. ``lateness``: 10,000 interval schedules of 1 s (first fires spread over one second) for 30 s
   (``--quick``: 10 s) on the real clock: start time minus intended fire time of every fire.
4. ``memory``: tracemalloc bytes per pending schedule at 1,000,000 schedules (peers: 20,000).
5. ``add_loaded`` (ours only): add 10,000 one-shot schedules while 1,000,000 are already pending,
   with the garbage collector on, as in a long-running process: schedules/s. A full collection
   landing in the measured adds is what this figure shows.

The peers run in throwaway virtual environments under ``.bench-venvs/`` (created on first use
with ``apscheduler==4.0.0a6`` + trio and ``apscheduler==3.11.*``), each workload in its own
subprocess, which prints JSON. The results are printed as a markdown table and written into
``docs/scheduler.md`` between the ``bench:start``/``bench:end`` markers with the command and
machine information, and as JSON to ``--json PATH`` (default ``benchmarks/results/scheduler.json``;
each lateness run keeps its percentiles, ``quantiles_ms``), which ``benchmarks/plot_results.py``
draws for ``docs/benchmarks.md``. ``BENCH_QUICK=1`` in the environment means ``--quick``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _latency import summarize  # benchmarks/_latency.py, beside this script
from _peers import machine, run_json, venv_python  # benchmarks/_peers.py

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scheduler.md"
RESULTS = ROOT / "benchmarks" / "results" / "scheduler.json"
PEERS = {
    "apscheduler4": ("apscheduler==4.0.0a6", "trio"),
    "apscheduler3": ("apscheduler==3.11.*",),
}
#: Per-subprocess time limit (s); a peer that exceeds it is retried at its capped size.
TIMEOUT = 600

# --- our side (runs in a subprocess: `bench_scheduler.py --worker WORKLOAD N BACKEND DUR`) ----


def _ours(workload: str, n: int, backend: str, duration: float) -> dict[str, Any]:
    import anyio

    from spacetime_sched import ScheduleAt, TimeDuration, Timestamp
    from spacetime_sched.scheduler import IntervalTrigger, ReducerScheduler, ScheduleResult

    done = 0
    all_done: Any = None

    async def noop(name: str, *args: Any) -> None:
        nonlocal done
        done += 1
        if done == n and all_done is not None:
            all_done.set()

    def scheduler() -> ReducerScheduler:
        return ReducerScheduler(noop, max_concurrent_executions=100)

    async def add() -> dict[str, Any]:
        far = Timestamp.now().micros_since_epoch + 3_600_000_000
        s = scheduler()
        async with s:
            start = time.perf_counter()
            for i in range(n):
                s.schedule_reducer("noop", (), ScheduleAt.Time(Timestamp(far + i)))
            elapsed = time.perf_counter() - start
        return {"n": n, "seconds": elapsed, "per_second": n / elapsed}

    async def fire() -> dict[str, Any]:
        nonlocal all_done
        all_done = anyio.Event()
        s = scheduler()
        when = ScheduleAt.Time(Timestamp.now())
        for _ in range(n):
            s.schedule_reducer("noop", (), when)
        start = time.perf_counter()
        async with s:
            await all_done.wait()
            elapsed = time.perf_counter() - start
        return {"n": n, "seconds": elapsed, "per_second": n / elapsed}

    async def lateness() -> dict[str, Any]:
        samples: list[float] = []

        def on_result(result: ScheduleResult) -> None:
            samples.append(result.lateness.micros / 1000)

        s = scheduler()
        s.add_execution_callback(on_result)
        t0 = Timestamp.now().micros_since_epoch + 2_000_000
        second = TimeDuration.from_seconds(1)
        for i in range(n):
            anchor = Timestamp(t0 + (i % 1000) * 1000 - 1_000_000)  # first fire: anchor + 1 s
            s.schedule_reducer("noop", (), IntervalTrigger(second, anchor))
        async with s:
            await anyio.sleep((t0 - Timestamp.now().micros_since_epoch) / 1e6 + duration)
        return summarize(samples, n, duration)

    async def add_loaded() -> dict[str, Any]:
        far = Timestamp.now().micros_since_epoch + 3_600_000_000
        s = scheduler()
        async with s:
            for i in range(1_000_000):
                s.schedule_reducer("noop", (), ScheduleAt.Time(Timestamp(far + i)))
            start = time.perf_counter()
            for i in range(n):
                s.schedule_reducer("noop", (), ScheduleAt.Time(Timestamp(far - i - 1)))
            elapsed = time.perf_counter() - start
        return {"n": n, "seconds": elapsed, "per_second": n / elapsed}

    def memory(with_callers_objects: bool) -> dict[str, Any]:
        far = Timestamp.now().micros_since_epoch + 3_600_000_000
        s = scheduler()
        prebuilt = (
            None
            if with_callers_objects
            else [ScheduleAt.Time(Timestamp(far + i)) for i in range(n)]
        )
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        if prebuilt is None:
            for i in range(n):
                s.schedule_reducer("noop", (), ScheduleAt.Time(Timestamp(far + i)))
        else:
            for when in prebuilt:
                s.schedule_reducer("noop", (), when)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return {"n": n, "bytes_per_schedule": (after - before) / n}

    if workload == "memory":
        return memory(with_callers_objects=False)
    if workload == "memory_total":
        return memory(with_callers_objects=True)
    runs = {"add": add, "add_loaded": add_loaded, "fire": fire, "lateness": lateness}
    result: dict[str, Any] = anyio.run(runs[workload], backend=backend)
    return result


# --- driver -----------------------------------------------------------------------------------


def _venv_python(name: str) -> Path:
    return venv_python(name, PEERS[name])


def _run(cmd: list[str], label: str) -> dict[str, Any] | None:
    return run_json(cmd, label, TIMEOUT)


def _ours_cmd(workload: str, n: int, backend: str, duration: float) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        workload,
        str(n),
        backend,
        str(duration),
    ]


def _machine() -> str:
    return machine()


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.2f}{unit}" if value < 100 else f"{value:.0f}{unit}"


def _write_json(
    path: Path,
    command: str,
    machine: str,
    duration: float,
    results: dict[tuple[str, str, str], dict[str, Any] | None],
    notes: list[str],
) -> None:
    """Write every measurement, one record per (scheduler, workload, backend), for the plots."""
    names = {"ours": "spacetime_sched", "aps4": "APScheduler 4.0.0a6", "aps3": "APScheduler 3.11"}
    records = [
        {
            "scheduler": names[who],
            "workload": workload.split(":")[0],
            "backend": backend,
            "result": result,  # None: the run failed or timed out (printed above)
        }
        for (who, workload, backend), result in results.items()
    ]
    document = {
        "benchmark": "bench_scheduler",
        "command": command,
        "machine": machine,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lateness_duration_s": duration,
        "results": records,
        "notes": notes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=bool(os.environ.get("BENCH_QUICK")),
        help="lateness run of 10 s, not 30 s (also BENCH_QUICK=1)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS,
        metavar="PATH",
        help=f"write the results as JSON there (default {RESULTS.relative_to(ROOT)})",
    )
    parser.add_argument("--no-peers", action="store_true", help="measure spacetime_sched only")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/scheduler.md")
    parser.add_argument("--n-add", type=int, default=100_000)
    parser.add_argument("--n-add-loaded", type=int, default=10_000)
    parser.add_argument("--n-fire", type=int, default=100_000)
    parser.add_argument("--n-lateness", type=int, default=10_000)
    parser.add_argument("--n-memory", type=int, default=1_000_000)
    parser.add_argument("--peer-fire-cap-aps4", type=int, default=5_000)
    parser.add_argument("--peer-fire-cap-aps3", type=int, default=20_000)
    parser.add_argument("--peer-memory", type=int, default=20_000)
    parser.add_argument("--worker", nargs=4, metavar=("WORKLOAD", "N", "BACKEND", "DURATION"))
    args = parser.parse_args()

    if args.worker:
        workload, n, backend, duration = args.worker
        sys.path.insert(0, str(ROOT))
        print(json.dumps(_ours(workload, int(n), backend, float(duration))))
        return

    duration = 10.0 if args.quick else 30.0
    command = " ".join(
        ["BENCH_QUICK=1"] * bool(os.environ.get("BENCH_QUICK"))
        + ["python benchmarks/bench_scheduler.py", *sys.argv[1:]]
    )
    machine = _machine()
    print(f"machine: {machine}")
    rows: list[tuple[str, str, str, str]] = []  # workload, scheduler, backend, figure
    notes: list[str] = []

    # spacetime_sched
    print("spacetime_sched:")
    results: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    for backend in ("asyncio", "trio"):
        for workload, n in (
            ("add", args.n_add),
            ("add_loaded", args.n_add_loaded),
            ("fire", args.n_fire),
            ("fire", args.peer_fire_cap_aps4),
            ("lateness", args.n_lateness),
        ):
            key = ("ours", f"{workload}:{n}", backend)
            results[key] = _run(
                _ours_cmd(workload, n, backend, duration), f"{workload} n={n} {backend}"
            )
    results[("ours", "memory", "-")] = _run(
        _ours_cmd("memory", args.n_memory, "asyncio", 0), f"memory n={args.n_memory}"
    )
    results[("ours", "memory_total", "-")] = _run(
        _ours_cmd("memory_total", args.n_memory, "asyncio", 0),
        f"memory incl. caller's ScheduleAt n={args.n_memory}",
    )

    if not args.no_peers:
        aps4 = str(_venv_python("apscheduler4"))
        aps3 = str(_venv_python("apscheduler3"))
        print("APScheduler 4.0.0a6:")
        for backend in ("asyncio", "trio"):
            for workload, n in (
                ("add", args.n_add),
                ("fire", args.peer_fire_cap_aps4),
                ("lateness", args.n_lateness),
            ):
                cmd = [aps4, "_peer_apscheduler4.py", workload, str(n), backend, str(duration)]
                results[("aps4", f"{workload}:{n}", backend)] = _run(
                    cmd, f"{workload} n={n} {backend}"
                )
        results[("aps4", "memory", "-")] = _run(
            [aps4, "_peer_apscheduler4.py", "memory", str(args.peer_memory), "asyncio"],
            f"memory n={args.peer_memory}",
        )
        print("APScheduler 3.11 (asyncio only):")
        for workload, n in (
            ("add", args.n_add),
            ("fire", args.n_fire),
            ("lateness", args.n_lateness),
        ):
            result = _run(
                [aps3, "_peer_apscheduler3.py", workload, str(n), str(duration)],
                f"{workload} n={n}",
            )
            if result is None and workload == "fire":
                n = args.peer_fire_cap_aps3
                notes.append(
                    f"APScheduler 3 fire: {args.n_fire:,} did not finish within {TIMEOUT} s; "
                    f"measured at {n:,}."
                )
                result = _run(
                    [aps3, "_peer_apscheduler3.py", workload, str(n), str(duration)],
                    f"{workload} n={n}",
                )
            results[("aps3", f"{workload}:{n}" if workload != "fire" else "fire", "asyncio")] = (
                result
            )
        results[("aps3", "memory", "-")] = _run(
            [aps3, "_peer_apscheduler3.py", "memory", str(args.peer_memory)],
            f"memory n={args.peer_memory}",
        )
        notes.append(
            "Lateness is measured where each scheduler exposes it: spacetime_sched from the "
            "intended fire time to the call of the target (execution callback); APScheduler 4 "
            "from `scheduled_start` to `started_at` of `JobReleased`; APScheduler 3 from the "
            "scheduled run time to its `EVENT_JOB_SUBMITTED` (just before the job task starts). "
            "APScheduler 3 runs with `misfire_grace_time=None` (its 1 s default drops fires)."
        )
        notes.append(
            f"APScheduler 4.0.0a6 fire is capped at {args.peer_fire_cap_aps4:,} schedules: its "
            "memory store scans every queued job on each acquire (one job per acquire, with a "
            "debug log call per job skipped), so its cost grows with the square of the backlog; "
            f"spacetime_sched is shown at both {args.n_fire:,} and {args.peer_fire_cap_aps4:,}."
        )

    def per_second(r: dict[str, Any] | None) -> str:
        return "n/a" if r is None else f"{_fmt(r['per_second'])}/s (n={r['n']:,})"

    def late(r: dict[str, Any] | None) -> str:
        if r is None or "p50_ms" not in r:
            return "n/a"
        return (
            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms "
            f"({r['fires']:,} fires)"
        )

    def mem(r: dict[str, Any] | None) -> str:
        return "n/a" if r is None else f"{r['bytes_per_schedule']:.0f} B (n={r['n']:,})"

    names = {"ours": "spacetime_sched", "aps4": "APScheduler 4.0.0a6", "aps3": "APScheduler 3.11"}
    for (who, workload, backend), result in results.items():
        kind = workload.split(":")[0]
        if kind == "add":
            figure, label = per_second(result), "1. add schedules"
        elif kind == "add_loaded":
            figure, label = per_second(result), "1b. add schedules, 1,000,000 already pending"
        elif kind == "fire":
            figure, label = per_second(result), "2. fire one-shots due at once"
        elif kind == "lateness":
            figure, label = (
                late(result),
                f"3. lateness, {args.n_lateness:,} x 1 s for {duration:.0f} s",
            )
        elif kind == "memory":
            figure, label = mem(result), "4. memory per pending schedule"
        else:
            figure, label = mem(result), "4. memory incl. caller's ScheduleAt objects"
        rows.append((label, names[who], backend, figure))
    rows.sort(key=lambda row: (row[0], list(names.values()).index(row[1]), row[2]))

    ratio_lines = []

    def rate(who: str, workload: str, backend: str) -> float | None:
        r = results.get((who, workload, backend))
        return None if r is None else float(r["per_second"])

    for backend in ("asyncio", "trio"):
        ours_add, peer_add = (
            rate("ours", f"add:{args.n_add}", backend),
            rate("aps4", f"add:{args.n_add}", backend),
        )
        if ours_add and peer_add:
            ratio_lines.append(f"add vs APScheduler 4 ({backend}): {ours_add / peer_add:.1f}x")
        cap = args.peer_fire_cap_aps4
        ours_fire, peer_fire = (
            rate("ours", f"fire:{cap}", backend),
            rate("aps4", f"fire:{cap}", backend),
        )
        if ours_fire and peer_fire:
            ratio_lines.append(
                f"fire vs APScheduler 4 ({backend}, n={cap:,}): {ours_fire / peer_fire:.0f}x"
            )

    table = ["| workload | scheduler | backend | result |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    report = "\n".join(
        [
            f"Command: `{command}`  ",
            f"Machine: {machine}.  ",
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Measured while other "
            "jobs were running on the same shared 2-core machine: treat the figures as noisy.",
            "",
            *table,
            "",
            *[f"* {line}" for line in ratio_lines + notes],
        ]
    )
    print()
    print(report)
    _write_json(args.json, command, machine, duration, results, ratio_lines + notes)
    if not args.no_write and DOC.exists():
        text = DOC.read_text()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            DOC.write_text(f"{head}{start}\n{report}\n{end}{tail}")
            print(f"\nwritten to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
