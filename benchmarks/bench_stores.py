"""Store benchmark: claims/s and fires/s with MemoryStore, SQLiteStore and PostgresStore (1, 2 and
4 instances), beside APScheduler 4.0.0a6's SQLAlchemy data store on the same PostgreSQL.

A script, not a test. Run from the repository root::

    .venv/bin/python benchmarks/bench_stores.py              # about 3 minutes
    .venv/bin/python benchmarks/bench_stores.py --no-peers   # ours only

PostgreSQL: the server of ``SPACETIME_SCHED_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); the run creates its own database and drops it.

Workloads (every instance is its own process, as in production; they start together):

1. ``claims``: 20,000 fires, claimed with ``claim_fires`` in batches of 100 by every instance
   (every instance tries every fire, as scheduler instances sharing a store do): distinct fires
   claimed per second, all instances together. Each fire must be won exactly once.
2. ``fires``: 2,000 one-shot schedules, all due at the same moment T0, written to the store
   beforehand; each instance runs a ``ReducerScheduler`` (no-op target) on the store: fires
   executed per second from T0 until the last one ran, and p99 lateness (start - intended time).
   Every fire must run exactly once over all instances. APScheduler 4 does the same with its
   ``SQLAlchemyDataStore`` (asyncpg; with 2 and 4 instances also its asyncpg event broker).

Results are printed as a markdown table and written into ``docs/benchmarks.md`` between the
``bench-stores:start``/``bench-stores:end`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _latency import summarize  # benchmarks/_latency.py, beside this script
from _peers import ROOT, machine, venv_python  # benchmarks/_peers.py

DOC = ROOT / "docs" / "benchmarks.md"
PEER = ("apscheduler==4.0.0a6", "sqlalchemy[asyncio]>=2", "asyncpg", "sniffio")
N_CLAIMS = 20_000
N_FIRES = 2_000
#: Seconds from the start of writing the schedules to T0: room to write them, then for every
#: instance to start and load them (APScheduler writes one schedule per transaction: more).
LEAD = 10.0
TIMEOUT = 600
#: An instance stops after this many seconds past T0 without a fire (it has nothing left).
IDLE = 5.0

# --- one instance (a subprocess: `bench_stores.py --worker MODE KIND TARGET N T0`) -----------


def _open(kind: str, target: str, owner: str) -> Any:
    from spacetime_sched.scheduler import MemoryStore, PostgresStore, SQLiteStore

    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(target, owner=owner)
    dsn, schema = target.rsplit("#", 1)
    return PostgresStore(dsn, schema=schema, owner=owner)


def _worker(mode: str, kind: str, target: str, n: int, t0: float) -> dict[str, Any]:
    import anyio

    from spacetime_sched import ScheduleAt, Timestamp
    from spacetime_sched.scheduler import ReducerScheduler, ScheduleResult

    owner = f"bench-{os.getpid()}"

    async def claims() -> dict[str, Any]:
        fires = [("job", Timestamp(1_700_000_000_000_000 + i)) for i in range(n)]
        async with _open(kind, target, owner) as store:
            await store.load_all()  # connected and migrated before the start line
            await anyio.sleep(max(0.0, t0 - time.time()))
            won = 0
            for start in range(0, n, 100):
                won += sum(await store.claim_fires(fires[start : start + 100], owner))
            return {"won": won, "end": time.time()}

    async def noop(name: str, *args: Any) -> None:
        pass

    def schedule_all(s: ReducerScheduler) -> None:
        when = ScheduleAt.Time(Timestamp(int(t0 * 1_000_000)))
        for i in range(n):
            s.schedule_reducer("noop", (), when, schedule_id=f"s{i}", misfire_grace_time=None)

    async def load() -> dict[str, Any]:
        async with _open(kind, target, owner) as store:
            s = ReducerScheduler(noop, store=store)
            schedule_all(s)
            async with s:
                pass  # written to the store when the scheduler stops
        return {"loaded": n}

    async def fires() -> dict[str, Any]:
        samples: list[float] = []
        last = [0.0]

        def on_result(result: ScheduleResult) -> None:
            if result.ok and not result.missed:
                samples.append(result.lateness.micros / 1000)
                last[0] = time.time()

        async with _open(kind, target, owner) as store:
            s = ReducerScheduler(
                noop, store=store, instance_id=owner, max_concurrent_executions=100
            )
            if kind == "memory":
                schedule_all(s)
            s.add_execution_callback(on_result)
            async with s:
                ready = time.time()
                # Done when nothing ran for IDLE s after T0 (a deadline that moves: polled).
                while time.time() - max(last[0], t0, ready) < IDLE:  # noqa: ASYNC110
                    await anyio.sleep(0.1)
        return {"executed": len(samples), "last": last[0], "ready": ready, "samples": samples}

    runs = {"claims": claims, "load": load, "fires": fires}
    result: dict[str, Any] = anyio.run(runs[mode])
    return result


# --- driver -----------------------------------------------------------------------------------


def _spawn(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, cwd=ROOT / "benchmarks", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _collect(procs: list[subprocess.Popen[str]], label: str) -> list[dict[str, Any]] | None:
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            print(f"{label}: timed out")
            return None
        if proc.returncode != 0:
            print(f"{label}: failed:\n{err[-2000:]}")
            return None
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _ours(mode: str, kind: str, target: str, n: int, t0: float) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, "--worker", mode, kind, target, str(n), repr(t0)]


def _claims(kind: str, target: str, instances: int) -> dict[str, Any] | None:
    t0 = time.time() + 3 + instances
    procs = [_spawn(_ours("claims", kind, target, N_CLAIMS, t0)) for _ in range(instances)]
    results = _collect(procs, f"claims {kind} x{instances}")
    if results is None:
        return None
    won = sum(r["won"] for r in results)
    assert won == N_CLAIMS, f"{kind} x{instances}: {won} fires won, expected {N_CLAIMS}"
    elapsed = max(r["end"] for r in results) - t0
    return {"per_second": N_CLAIMS / elapsed, "seconds": elapsed}


def _fires(
    cmd: list[str] | None, run_cmd: list[str], instances: int, label: str
) -> dict[str, Any] | None:
    """``cmd`` writes the schedules (or None: each instance adds them itself); ``run_cmd`` is
    one instance, started ``instances`` times."""
    if cmd is not None and _collect([_spawn(cmd)], f"{label} (load)") is None:
        return None
    results = _collect([_spawn(run_cmd) for _ in range(instances)], label)
    if results is None:
        return None
    return {"results": results}


def _summarise_fires(results: list[dict[str, Any]] | None, t0: float) -> dict[str, Any] | None:
    """Fires/s from T0 (or from when the last instance was ready, if later) to the last fire;
    p99 lateness only if every instance was ready by T0 (else start-up would be counted)."""
    if results is None:
        return None
    late_start = max(r["ready"] for r in results) - t0
    if late_start > 0:
        print(f"  !! an instance was ready {late_start:.1f} s after T0: rate counted from then")
    executed = sum(r["executed"] for r in results)
    samples = [x for r in results for x in r["samples"]]
    elapsed = max(r["last"] for r in results) - max(t0, t0 + late_start)
    summary = summarize(samples, N_FIRES, 1)
    return {
        "executed": executed,
        "per_second": executed / elapsed if elapsed > 0 else None,
        "p99_ms": summary.get("p99_ms") if late_start <= 0 else None,
    }


def _ran(fires: dict[str, Any] | None) -> str:
    return "n/a" if fires is None else f"{fires['executed']:,} / {N_FIRES:,}"


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}"


def main() -> None:
    global N_CLAIMS, N_FIRES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peers", action="store_true", help="measure spacetime_sched only")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--claims", type=int, default=20_000, help="fires to claim")
    parser.add_argument("--fires", type=int, default=2_000, help="one-shot schedules to run")
    args = parser.parse_args()
    N_CLAIMS, N_FIRES = args.claims, args.fires
    if args.worker:
        mode, kind, target, n, t0 = args.worker
        print(json.dumps(_worker(mode, kind, target, int(n), float(t0))))
        return

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    server = os.environ.get(
        "SPACETIME_SCHED_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    database = f"spacetime_sched_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    params = {**conninfo_to_dict(server), "dbname": database}
    dsn = make_conninfo("", **params)
    host = params.get("host", "localhost")
    aps_url = (
        f"postgresql+asyncpg://{params.get('user', 'postgres')}"
        f"{':' + str(params['password']) if params.get('password') else ''}"
        f"@{host}:{params.get('port', 5432)}/{database}"
    )
    who = machine()
    print(f"{who}\nPostgreSQL database {database}")
    rows: list[tuple[str, ...]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            shapes = [("memory", 1), ("sqlite", 1), ("sqlite", 2), ("sqlite", 4)]
            shapes += [("postgres", k) for k in (1, 2, 4)]
            for kind, k in shapes:
                run_id = secrets.token_hex(3)
                target = {
                    "memory": "-",
                    "sqlite": str(Path(tmp) / f"claims-{run_id}.db"),
                    "postgres": f"{dsn}#claims_{run_id}",
                }[kind]
                claims = _claims(kind, target, k)
                print(f"  claims {kind} x{k}: {claims}", flush=True)
                target = target.replace("claims", "fires")
                t0 = time.time() + LEAD
                load = None if kind == "memory" else _ours("load", kind, target, N_FIRES, t0)
                run = _ours("fires", kind, target, N_FIRES, t0)
                raw = _fires(load, run, k, f"fires {kind} x{k}")
                fires = _summarise_fires(None if raw is None else raw["results"], t0)
                print(f"  fires {kind} x{k}: {fires}", flush=True)
                if fires is not None and fires["executed"] != N_FIRES:
                    print(f"  !! {fires['executed']} executions for {N_FIRES} fires")
                rows.append(
                    (
                        f"spacetime_sched {kind}",
                        str(k),
                        _fmt(None if claims is None else claims["per_second"]),
                        _fmt(None if fires is None else fires["per_second"]),
                        _fmt(None if fires is None else fires["p99_ms"], " ms"),
                        _ran(fires),
                    )
                )
        if not args.no_peers:
            python = str(venv_python("apscheduler4-sqlalchemy", PEER))
            peer = "_peer_apscheduler4.py"
            for k in (1, 2, 4):
                t0 = time.time() + LEAD + N_FIRES / 40
                load = [python, peer, "sqla_load", str(N_FIRES), "asyncio", aps_url, repr(t0)]
                run = [
                    python,
                    peer,
                    "sqla_fire",
                    str(N_FIRES),
                    "asyncio",
                    aps_url,
                    repr(t0),
                    str(k),
                ]
                raw = _fires(load, run, k, f"APScheduler 4 SQLAlchemy x{k}")
                fires = _summarise_fires(None if raw is None else raw["results"], t0)
                print(f"  APScheduler 4 fires x{k}: {fires}", flush=True)
                rows.append(
                    (
                        "APScheduler 4.0.0a6 SQLAlchemyDataStore",
                        str(k),
                        "n/a",
                        _fmt(None if fires is None else fires["per_second"]),
                        _fmt(None if fires is None else fires["p99_ms"], " ms"),
                        _ran(fires),
                    )
                )
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
    table = [
        "| store | instances | claims/s | fires/s | p99 lateness | fires run |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    report = "\n".join(
        [
            "Command: `python benchmarks/bench_stores.py`  ",
            f"Machine: {who}.  ",
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            *table,
        ]
    )
    print("\n" + report)
    if not args.no_doc:
        text = DOC.read_text()
        start, end = "<!-- bench-stores:start -->", "<!-- bench-stores:end -->"
        if start in text and end in text:
            before, rest = text.split(start, 1)
            DOC.write_text(before + start + "\n" + report + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
