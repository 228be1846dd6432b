"""``spacetime-sched serve [module.py]``: the local SpacetimeDB-compatible server.

The module to host is, in order of precedence:

* a Python file given as the argument (``serve my_module.py``), which must define either
  ``module`` (a :class:`~spacetime_sched.testing.Module`) or ``make_module()`` (a function
  returning one; called once). It is run like a script would be imported, under a private
  module name, so it may import anything on ``sys.path``;
* ``--module package.module:attribute`` (a ``Module`` or a function returning one);
* the quickstart module, :mod:`spacetime_sched.testing.example_module`.

It serves until Ctrl-C (exit status 130) or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ._signals import StopRequest, run_command

__all__ = ["DEFAULT_MODULE", "DEFAULT_PORT", "add_serve", "load_module", "load_module_file"]

DEFAULT_MODULE: Final = "spacetime_sched.testing.example_module:module"
DEFAULT_PORT: Final = 3000
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


def _as_module(value: Any, where: str) -> Any:
    from ..testing import Module

    if callable(value) and not isinstance(value, Module):
        value = value()
    if not isinstance(value, Module):
        raise ValueError(
            f"{where} is a {type(value).__name__}, not a spacetime_sched.testing.Module"
        )
    return value


def load_module(spec: str) -> Any:
    """The :class:`~spacetime_sched.testing.Module` named by ``package.module:attribute``.

    The attribute may be a ``Module`` or a function that returns one (like ``make_module``).
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--module: expected 'package.module:attribute', got {spec!r}")
    try:
        python_module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--module: cannot import {module_name!r}: {exc}") from exc
    try:
        value = getattr(python_module, attribute)
    except AttributeError:
        raise ValueError(f"--module: {module_name!r} has no attribute {attribute!r}") from None
    return _as_module(value, f"--module: {spec}")


def load_module_file(path: str | Path) -> Any:
    """The module defined by a Python file: its ``module`` variable, or what its
    ``make_module()`` returns (see the module docstring)."""
    file = Path(path)
    if file.suffix != ".py" or not file.is_file():
        raise ValueError(f"{path}: expected an existing Python file (.py)")
    spec = importlib.util.spec_from_file_location(f"_spacetime_sched_serve_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be loaded as a Python module")
    python_module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(python_module)
    except Exception as exc:  # the user's code: say where it failed, whatever it raised
        raise ValueError(f"{path}: running it raised {type(exc).__name__}: {exc}") from exc
    for name in ("module", "make_module"):
        if hasattr(python_module, name):
            return _as_module(getattr(python_module, name), f"{path}: {name}")
    raise ValueError(f"{path}: defines neither `module` (a Module) nor `make_module()`")


def add_serve(commands: Any, add_backend: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the local SpacetimeDB-compatible test server",
        description=(
            "Serve a Python module over SpacetimeDB's HTTP and WebSocket API (protocols v2 and "
            "v3), so the official SDKs and spacetime_sched's client can use it without a "
            "SpacetimeDB install. MODULE.py must define `module` (a "
            "spacetime_sched.testing.Module) or `make_module()`; without it the quickstart "
            "module is served. Stops on Ctrl-C (exit status 130) or SIGTERM (0)."
        ),
    )
    parser.add_argument(
        "file", nargs="?", metavar="MODULE.py", help="a Python file defining the module"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port (default {DEFAULT_PORT}, like SpacetimeDB; 0 picks a free one)",
    )
    parser.add_argument(
        "--module",
        default=None,
        metavar="PACKAGE.MODULE:ATTRIBUTE",
        help=f"the module to host, by import path (default {DEFAULT_MODULE})",
    )
    parser.add_argument(
        "--database", metavar="NAME", help="the database name (default: the module's name)"
    )
    add_backend(parser)
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="server log level (default info)",
    )
    parser.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    try:
        if args.file is not None and args.module is not None:
            raise ValueError("give MODULE.py or --module, not both")
        if args.file is not None:
            module = load_module_file(args.file)
        else:
            module = load_module(args.module or DEFAULT_MODULE)
    except ValueError as exc:
        print(f"spacetime-sched serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve = functools.partial(_serve, module, args.database, args.host, args.port, out)
    return run_command(serve, backend=args.backend, graceful=True)


async def _serve(
    module: Any,
    database: str | None,
    host: str,
    port: int,
    out: Callable[[str], None],
    stop: StopRequest,
) -> int:
    from ..testing import LocalServer

    try:
        server = LocalServer(module, database=database, bind_host=host, port=port)
        async with server:
            out(f"Serving database {server.database!r} (module {module.name!r}) at {server.uri}")
            out(f"  WebSocket: {server.ws_uri}/v1/database/{server.database}/subscribe")
            out("  Press Ctrl-C to stop.")
            await stop.wait()
            out("Stopping.")
    except OSError as exc:
        print(f"spacetime-sched serve: cannot serve on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0
