"""``spacetime-sched generate``: typed Python bindings for a module (see :mod:`.._codegen`).

The schema comes from a database (``--uri`` and ``--database``: connect like any client and
read ``GET /v1/database/<db>/schema?version=9``) or from a saved copy of that JSON
(``--schema FILE``). The output is a package directory ``DIR`` (its name is the package's, so
it must be an identifier) with ``__init__.py`` and ``py.typed``; files of the same names are
replaced, nothing else in ``DIR`` is touched.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from .._codegen import generate_bindings
from .._errors import SpacetimeSchedError
from ..protocol import ModuleSchema
from ._connect import build_connection
from ._signals import StopRequest, run_command

__all__ = ["add_generate", "write_bindings"]

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
#: A schema file larger than this is refused (real schemas are kilobytes to a few megabytes).
MAX_SCHEMA_BYTES: Final = 64 * 1024 * 1024


def add_generate(commands: Any, add_backend: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        "generate",
        help="write typed Python bindings (rows, enums, reducers, tables) for a module",
        description=(
            "Write a Python package of typed bindings for a module: frozen attrs classes for "
            "its tables and types, enums as one class per variant, a typed reducers facade "
            "and typed table handles. The schema is read from a database (--uri, --database) "
            "or a saved schema JSON (--schema)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--uri", help="the server, e.g. http://localhost:3000 (with --database)")
    source.add_argument(
        "--schema", metavar="FILE", help="a saved GET .../schema?version=9 JSON document"
    )
    parser.add_argument("--database", metavar="NAME", help="the database (with --uri)")
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the package directory to write"
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", metavar="T", help="connect with this token")
    auth.add_argument("--credentials-file", metavar="F", help="read the token from this file")
    add_backend(parser)
    parser.set_defaults(run=_run)


def _fail(message: str, status: int) -> int:
    print(f"spacetime-sched generate: {message}", file=sys.stderr)
    return status


def write_bindings(schema: ModuleSchema, output: Path, *, source: str) -> Path:
    """Write the bindings package for ``schema`` to ``output``; return its ``__init__.py``."""
    output.mkdir(parents=True, exist_ok=True)
    init = output / "__init__.py"
    init.write_text(generate_bindings(schema, source=source), encoding="utf-8")
    (output / "py.typed").write_text("", encoding="utf-8")
    return init


def _read_schema(path: Path) -> ModuleSchema:
    size = path.stat().st_size
    if size > MAX_SCHEMA_BYTES:
        raise OSError(f"{path}: {size} bytes, more than a schema has ({MAX_SCHEMA_BYTES} max)")
    return ModuleSchema.from_json(path.read_bytes())


def _run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    output = Path(args.output)
    if not output.name.isidentifier():
        return _fail(
            f"{args.output}: the directory's name is the package's name, so it must "
            "be a Python identifier",
            EXIT_USAGE,
        )
    if args.schema is not None:
        if args.database is not None:
            return _fail("--database goes with --uri, not with --schema", EXIT_USAGE)
        try:
            schema = _read_schema(Path(args.schema))
        except (SpacetimeSchedError, OSError) as exc:
            return _fail(f"{args.schema}: {exc}", EXIT_USAGE)
        source = f"schema file {args.schema}"
    else:
        if args.database is None:
            return _fail("--uri needs --database NAME", EXIT_USAGE)
        fetched: list[ModuleSchema] = []
        status = run_command(
            functools.partial(_fetch, args, fetched), backend=args.backend, graceful=False
        )
        if status or not fetched:
            return status or EXIT_FAILURE
        schema = fetched[0]
        source = f"database {args.database} at {args.uri}"
    try:
        init = write_bindings(schema, output, source=source)
    except OSError as exc:
        return _fail(f"{args.output}: {exc}", EXIT_FAILURE)
    out(f"wrote {init} ({len(schema.tables)} tables, {len(schema.reducers)} reducers)")
    return 0


async def _fetch(args: argparse.Namespace, fetched: list[ModuleSchema], stop: StopRequest) -> int:
    try:
        async with build_connection(args, args.uri, args.database) as conn:
            fetched.append(await conn.module_schema())
    except (SpacetimeSchedError, OSError) as exc:
        return _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE)
    return 0
