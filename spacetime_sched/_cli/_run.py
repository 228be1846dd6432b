"""``spacetime-sched run schedules.toml``: run the schedules of a file until Ctrl-C or SIGTERM.

1. The file is read and checked whole (:mod:`._schedfile`); any problem: exit status 2, every
   problem listed as ``FILE:LINE: KEY: ...``.
2. The command connects (``--uri``/``--database``, or an embedded
   :class:`~spacetime_sched.testing.LocalServer` running the quickstart module), and checks each
   schedule's reducer and arguments against the module's schema, still before anything runs.
3. A :class:`~spacetime_sched.scheduler.ReducerScheduler` runs the schedules, with ``--store``
   if given. With a persistent store, a stored schedule that the file still describes the same
   way is kept as it is (so fires missed while nothing ran are caught up under its misfire and
   coalesce policies); one whose settings changed is replaced, and stored schedules that the
   file no longer names are cancelled: the file is the truth.
4. SIGINT or SIGTERM: no new fires start, running calls drain (up to 10 s), the store is
   flushed, the connection closes. Exit status 130 after Ctrl-C, 0 after SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from .._errors import ScheduleFileError, ScheduleNotFoundError, SpacetimeSchedError
from ..client import DbConnection
from ..scheduler import (
    ReducerScheduler,
    SchedulePolicy,
    ScheduleResult,
    ScheduleStatus,
    ScheduleStore,
    SQLiteStore,
)
from . import _output
from ._connect import build_connection
from ._schedfile import ScheduleEntry, load_schedules
from ._signals import StopRequest, run_command

__all__ = ["add_run", "open_store", "run_scheduler"]

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_DATABASE: Final = "quickstart"
_LIVE_STATES: Final = (ScheduleStatus.PENDING, ScheduleStatus.RUNNING, ScheduleStatus.PAUSED)


class UsageError(Exception):
    """A problem with the command line or its files: exit status 2 (internal to the CLI)."""


def add_run(commands: Any, add_backend: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        "run",
        help="run the schedules of a TOML file until Ctrl-C or SIGTERM",
        description=(
            "Load schedules from a TOML file (see docs/cli.md), check the whole file, then call "
            "their reducers on time until Ctrl-C or SIGTERM, draining running calls. Without "
            "--uri the schedules run against an embedded local server with the quickstart "
            "module."
        ),
    )
    parser.add_argument("file", metavar="SCHEDULES.toml", help="the schedules file")
    parser.add_argument("--uri", help="the SpacetimeDB server, e.g. http://localhost:3000")
    parser.add_argument(
        "--database",
        metavar="NAME",
        help=f"the database (name or identity); default {DEFAULT_DATABASE!r} without --uri",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", metavar="T", help="connect with this token")
    auth.add_argument(
        "--credentials-file",
        metavar="F",
        help="read the token from this file (and save the one the server issues there)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="keep schedules in a persistent store: sqlite:PATH or postgresql://...",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json"),
        default="auto",
        help="auto: a live table on a terminal, JSON lines otherwise; json: always JSON lines",
    )
    add_backend(parser)
    parser.set_defaults(run=_run)


def open_store(spec: str) -> ScheduleStore:
    """The store named by ``--store``: ``sqlite:PATH`` or ``postgresql://...``."""
    if spec.startswith("sqlite:"):
        path = spec.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise UsageError("--store: sqlite: needs a file path, e.g. sqlite:schedules.db")
        return SQLiteStore(path)
    if spec.startswith(("postgresql://", "postgres://")):
        store_class = getattr(
            importlib.import_module("spacetime_sched.scheduler"), "PostgresStore", None
        )
        if store_class is None:
            raise UsageError(
                "--store: PostgreSQL store not available in this version of spacetime_sched "
                "(spacetime_sched.scheduler.PostgresStore cannot be imported); use sqlite:PATH"
            )
        store: ScheduleStore = store_class(spec)
        return store
    raise UsageError(f"--store: expected sqlite:PATH or postgresql://..., got {spec!r}")


def _run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    def fail(message: str) -> int:
        print(f"spacetime-sched run: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE

    try:
        entries = load_schedules(args.file)
        if args.uri is not None and not args.database:
            raise UsageError("--uri needs --database NAME")
        store = open_store(args.store) if args.store else None
    except ScheduleFileError as exc:
        return fail(str(exc))
    except (UsageError, SpacetimeSchedError) as exc:
        return fail(str(exc))
    live = _output.wants_live(args.log_format)
    if live:
        try:
            _output.load_rich()
        except ImportError as exc:
            print(f"spacetime-sched run: {exc}; printing JSON lines", file=sys.stderr)
            live = False
    body = functools.partial(_run_schedules, args, entries, store, live)
    return run_command(body, backend=args.backend, graceful=True)


async def _run_schedules(
    args: argparse.Namespace,
    entries: Sequence[ScheduleEntry],
    store: ScheduleStore | None,
    live: bool,
    stop: StopRequest,
) -> int:
    try:
        async with contextlib.AsyncExitStack() as stack:
            uri, database = args.uri, args.database or DEFAULT_DATABASE
            if uri is None:
                from ..testing import LocalServer, example_module

                server = LocalServer(example_module.make_module(), database=database)
                uri = (await stack.enter_async_context(server)).uri
            conn = await stack.enter_async_context(build_connection(args, uri, database))
            problems = await _check_against_schema(conn, args.file, entries)
            if problems:
                raise ScheduleFileError(args.file, problems)
            scheduler = ReducerScheduler(conn, store=store)
            await run_scheduler(scheduler, entries, live, stop, f"{uri} {database!r}")
    except ScheduleFileError as exc:
        print(f"spacetime-sched run: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except (SpacetimeSchedError, OSError) as exc:
        print(f"spacetime-sched run: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    return 0


async def _check_against_schema(
    conn: DbConnection, path: str, entries: Sequence[ScheduleEntry]
) -> list[str]:
    """Every schedule whose reducer is missing, not callable, or whose arguments do not fit."""
    schema = await conn.module_schema()
    problems = []
    for e in entries:
        try:
            reducer = schema.reducer(e.reducer)
            if not getattr(reducer, "client_callable", True):
                raise SpacetimeSchedError(f"reducer {e.reducer!r} cannot be called by a client")
            reducer.encode_args(e.args)
        except SpacetimeSchedError as exc:
            problems.append(f"{path}:{e.line}: schedules.{e.name}: {exc}")
    return problems


def _same(existing: Any, entry: ScheduleEntry) -> bool:
    """Whether a stored schedule is the one the file describes (an interval's anchor aside)."""

    def trigger(t: Any) -> Any:
        data = dict(t.to_dict()) if hasattr(t, "to_dict") else t
        if isinstance(data, dict):
            data.pop("anchor", None)
        return data

    return (
        existing.status in _LIVE_STATES
        and existing.reducer_name == entry.reducer
        and tuple(existing.args) == entry.args
        and trigger(existing.schedule) == trigger(entry.trigger)
        and existing.policy == SchedulePolicy(**entry.policy)
    )


async def run_scheduler(
    scheduler: ReducerScheduler,
    entries: Sequence[ScheduleEntry],
    live: bool,
    stop: StopRequest,
    where: str,
) -> None:
    labels = {e.name: e.name for e in entries}
    board = _output.ScheduleBoard(scheduler, labels, title=f"spacetime-sched run: {where}")
    scheduler.add_execution_callback(board.record)
    if not live:

        def log(result: ScheduleResult) -> None:
            fields = _output.result_fields(result, labels.get(result.schedule_id, ""))
            _output.emit_json(_output.result_event(result), **fields)

        scheduler.add_execution_callback(log)
    async with scheduler:
        for e in entries:
            try:
                existing = scheduler.get_schedule(e.name)
            except ScheduleNotFoundError:
                existing = None
            if existing is None or not _same(existing, e):
                scheduler.schedule_reducer(
                    e.reducer,
                    e.args,
                    e.trigger,
                    schedule_id=e.name,
                    replace_existing=True,
                    **e.policy,
                )
        for s in scheduler.list_schedules():
            if s.id not in labels:
                scheduler.cancel_schedule(s.id)
        if live:
            from rich.console import Console

            console = Console()
            async with _output.live_board(board, console):
                console.print(f"Running {len(entries)} schedules on {where}; Ctrl-C to stop.")
                await stop.wait()
                console.print("Stopping: draining running calls.")
        else:
            _output.emit_json(
                "ready",
                schedules=[
                    {
                        "schedule": e.name,
                        "reducer": e.reducer,
                        "next_fire": _next(scheduler, e.name),
                    }
                    for e in entries
                ],
                target=where,
            )
            await stop.wait()
            _output.emit_json("stopping", signal=stop.signum)
    if not live:
        _output.emit_json(
            "stopped",
            runs=sum(board.runs.values()),
            failures=sum(board.failures.values()),
        )


def _next(scheduler: ReducerScheduler, schedule_id: str) -> str | None:
    nxt = scheduler.get_schedule(schedule_id).next_run
    return None if nxt is None else nxt.to_iso()
