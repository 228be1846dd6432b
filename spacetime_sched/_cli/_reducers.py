"""``spacetime-sched reducers``: the reducers a database offers, with their parameter types.

It connects like any client and reads the module's schema through
:meth:`DbConnection.module_schema <spacetime_sched.client.DbConnection.module_schema>`.
Lifecycle reducers (init, connect, disconnect) are left out: nobody calls them. A reducer that
a schedule table calls is listed and marked with its table: on a 2.x server only the database
owner may call it; other clients schedule it by inserting a row into that table.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any, Final

from .._errors import SpacetimeSchedError
from ..protocol import ModuleSchema
from ._connect import build_connection
from ._signals import StopRequest, run_command

__all__ = ["add_reducers", "describe_reducers"]

EXIT_FAILURE: Final = 1


def add_reducers(commands: Any, add_backend: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        "reducers",
        help="list the reducers of a database with their parameter types",
        description=(
            "Connect to a database and list the reducers clients can call, with their "
            "parameter types; reducers called by a schedule table are marked."
        ),
    )
    parser.add_argument("--uri", required=True, help="the server, e.g. http://localhost:3000")
    parser.add_argument("--database", required=True, metavar="NAME", help="the database")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", metavar="T", help="connect with this token")
    auth.add_argument("--credentials-file", metavar="F", help="read the token from this file")
    add_backend(parser)
    parser.set_defaults(run=_run)


def describe_reducers(schema: ModuleSchema) -> list[str]:
    """One line per reducer (lifecycle reducers left out), sorted by name:
    ``name(param: Type, ...)``, plus ``[scheduled by table T]`` for a schedule table's."""
    by_table = {t.schedule.reducer_name: t.name for t in schema.schedule_tables() if t.schedule}
    lines = []
    for reducer in sorted(schema.reducers, key=lambda r: r.name):
        if reducer.lifecycle is not None:
            continue
        # ``scheduled_by`` when the schema model marks it; else the schedule definitions say.
        table = getattr(reducer, "scheduled_by", None) or by_table.get(reducer.name)
        mark = f"  [scheduled by table {table}]" if table else ""
        lines.append(f"{reducer.name}({reducer.signature()}){mark}")
    return lines


def _run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    return run_command(functools.partial(_list, args, out), backend=args.backend, graceful=False)


async def _list(args: argparse.Namespace, out: Callable[[str], None], stop: StopRequest) -> int:
    try:
        async with build_connection(args, args.uri, args.database) as conn:
            schema = await conn.module_schema()
    except (SpacetimeSchedError, OSError) as exc:
        print(f"spacetime-sched reducers: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    lines = describe_reducers(schema)
    out(f"{len(lines)} reducers of {args.database!r} at {args.uri}:")
    for line in lines:
        out(f"  {line}")
    return 0
