"""The SQLite crash loop's launcher (run by tests/test_scheduler_crash_loop.py).

``python tests/_sqlite_crash.py DIR KILLS BACKENDS SEED`` forks one scheduler process after
another on the same ``SQLiteStore`` (DIR/store.db) and SIGKILLs each at a random moment:

1. *create*: a process adds the schedules (ONE_SHOTS one-shots spread over WINDOW seconds,
   INTERVALS interval schedules) and stops cleanly, so they are all in the store;
2. KILLS times: a process starts the scheduler on the store, and is SIGKILLed at a random
   moment, mostly while fires run (0-200 ms after the scheduler started), sometimes while it
   is still starting up;
3. *drain*: a last process runs until every one-shot is due and nothing runs, and stops.

The target logs every fire durably: an INSERT in its own SQLite file (DIR/fires.db, WAL,
committed before the target returns: a SIGKILL cannot undo it). The launcher prints a JSON
summary; the test reads both files and checks that no one-shot was lost or run twice and no
schedule was lost.

Processes are forked from this launcher, which has imported everything but never started an
event loop, thread or database: a scheduler is up in about 100 ms instead of a fresh
interpreter's 500, which is what makes 50 kills fit in a CI test.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from spacetime_sched import TimeDuration, Timestamp
from spacetime_sched.scheduler import ReducerScheduler, SQLiteStore

ONE_SHOTS = 2000
INTERVALS = 500
#: One-shots are due from 0.5 s to WINDOW s after the start; intervals fire every INTERVAL s.
WINDOW = 10.0
INTERVAL = 2.0


def one_shot_time(start_micros: int, index: int) -> Timestamp:
    """When one-shot ``index`` is due (the test recomputes it to look up its claim)."""
    return Timestamp(start_micros + 500_000 + index * int((WINDOW - 0.5) * 1e6) // ONE_SHOTS)


class FireLog:
    """The target's durable log: one committed row per fire, in its own SQLite file."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL is enough: a committed transaction survives the death of the process (not
        # of the machine), and process death is what this test inflicts.
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS fires (schedule TEXT NOT NULL, pid INTEGER NOT NULL)"
        )
        self.pid = os.getpid()

    def record(self, schedule: str) -> None:
        self.connection.execute("INSERT INTO fires VALUES (?, ?)", (schedule, self.pid))


async def run_scheduler(directory: Path, phase: str, start_micros: int, ready: int) -> None:
    log = FireLog(directory / "fires.db")
    one_thread = anyio.CapacityLimiter(1)

    async def target(reducer_name: str, schedule: str) -> None:
        await anyio.to_thread.run_sync(log.record, schedule, limiter=one_thread)

    store = SQLiteStore(directory / "store.db")
    async with store, ReducerScheduler(target, store=store) as scheduler:
        if phase == "create":
            for i in range(ONE_SHOTS):
                when = one_shot_time(start_micros, i)
                scheduler.schedule_at_time(
                    "once", (f"once-{i}",), when, schedule_id=f"once-{i}",
                    misfire_grace_time=None,
                )  # fmt: skip
            for j in range(INTERVALS):
                scheduler.schedule_at_interval(
                    "every", (f"every-{j}",), TimeDuration.from_seconds(INTERVAL),
                    schedule_id=f"every-{j}", misfire_grace_time=None,
                )  # fmt: skip
            return  # leaving the block stops the scheduler, which flushes the store
        os.write(ready, b"r")
        if phase == "drain":
            # Until every one-shot is due (wall time: the kills took real time too).
            await anyio.sleep(max(0.0, (start_micros / 1e6 + WINDOW + 0.5) - time.time()))
            await scheduler.wait_idle()
            return
        await anyio.sleep_forever()


def fork_scheduler(directory: Path, phase: str, start_micros: int, backend: str) -> tuple[int, int]:
    """Fork a scheduler process; returns its pid and the read end of its ready pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the launcher's code
        code = 0
        try:
            os.close(read)
            anyio.run(run_scheduler, directory, phase, start_micros, write, backend=backend)
        except BaseException as exc:  # report, then leave without the launcher's atexit hooks
            print(f"{phase} process failed: {exc!r}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    os.close(write)
    return pid, read


def wait_ready(read: int, timeout: float) -> bool:
    readable, _, _ = select.select([read], [], [], timeout)
    return bool(readable) and os.read(read, 1) == b"r"


def main() -> None:
    directory, kills, backends, seed = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    names = backends.split(",")
    for name in names:  # import each backend once, here, rather than in every forked process
        anyio.run(anyio.sleep, 0, backend=name)
    rng = random.Random(seed)
    start_micros = int(time.time() * 1e6) + 1_000_000
    summary: dict[str, Any] = {"start_micros": start_micros, "kills": 0, "killed_before_ready": 0}
    began = time.perf_counter()

    pid, read = fork_scheduler(directory, "create", start_micros, names[0])
    _, status = os.waitpid(pid, 0)
    os.close(read)
    if status != 0:
        raise SystemExit(f"the create process failed (status {status})")
    summary["create_s"] = round(time.perf_counter() - began, 2)

    starts: list[float] = []  # fork to scheduler running, in seconds
    for k in range(kills):
        pid, read = fork_scheduler(directory, "run", start_micros, names[k % len(names)])
        if rng.random() < 0.2:  # while it loads the store and starts
            time.sleep(rng.uniform(0, 0.05))
            summary["killed_before_ready"] += 1
        else:
            forked = time.perf_counter()
            if not wait_ready(read, 30):
                raise SystemExit(f"run process {k} did not start within 30 s")
            starts.append(time.perf_counter() - forked)
            time.sleep(rng.uniform(0, 0.2))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(read)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            raise SystemExit(f"run process {k} ended by itself (status {status}) before the kill")
        summary["kills"] += 1
    summary["kill_loop_s"] = round(time.perf_counter() - began - summary["create_s"], 2)
    summary["start_s_median"] = round(sorted(starts)[len(starts) // 2], 3) if starts else None

    pid, read = fork_scheduler(directory, "drain", start_micros, names[0])
    _, status = os.waitpid(pid, 0)
    os.close(read)
    if status != 0:
        raise SystemExit(f"the drain process failed (status {status})")
    summary["total_s"] = round(time.perf_counter() - began, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
