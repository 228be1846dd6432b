"""The command line: ``python -m spacetime_sched <command>`` (installed as ``spacetime-sched``).

Commands:

* ``demo``: the end-to-end demo (:mod:`._demo`): a local server, a connection with a scheduler,
  reducers called directly, on schedules of every kind and by the server, every result checked.
* ``serve``: run the local SpacetimeDB-compatible test server until Ctrl-C (or SIGTERM)::

      python -m spacetime_sched serve --port 3000 \\
          --module spacetime_sched.testing.example_module:module

Each command is a subparser with a ``run`` function taking the parsed arguments and returning
the exit status, so adding one is adding a ``_add_<command>`` function to :data:`_COMMANDS`.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import anyio

__all__ = ["build_parser", "load_module", "main"]

DEFAULT_MODULE: Final = "spacetime_sched.testing.example_module:module"
DEFAULT_PORT: Final = 3000


def load_module(spec: str) -> Any:
    """The :class:`~spacetime_sched.testing.Module` named by ``package.module:attribute``.

    The attribute may be a ``Module`` or a function that returns one (like ``make_module``).
    """
    from ..testing._server import Module

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
    if callable(value) and not isinstance(value, Module):
        value = value()
    if not isinstance(value, Module):
        raise ValueError(
            f"--module: {spec} is a {type(value).__name__}, not a spacetime_sched.testing.Module"
        )
    return value


# --- serve ----------------------------------------------------------------------------------------


def _add_serve(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the local SpacetimeDB-compatible test server",
        description=(
            "Serve a Python module over SpacetimeDB's HTTP and WebSocket API (protocols v2 and "
            "v3), so the official SDKs and spacetime_sched's client can use it without a "
            "SpacetimeDB install. Stops on Ctrl-C or SIGTERM."
        ),
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
        default=DEFAULT_MODULE,
        metavar="PACKAGE.MODULE:ATTRIBUTE",
        help=f"the module to host: a Module or a function returning one (default {DEFAULT_MODULE})",
    )
    parser.add_argument(
        "--database", metavar="NAME", help="the database name (default: the module's name)"
    )
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop to run on (default asyncio)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="server log level (default info)",
    )
    parser.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        out("error: --backend trio needs trio installed (pip install trio)")
        return 2
    try:
        module = load_module(args.module)
    except ValueError as exc:
        out(f"error: {exc}")
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve = functools.partial(_serve, module, args.database, args.host, args.port, out)
    try:
        anyio.run(serve, backend=args.backend)
    except OSError as exc:
        out(f"error: cannot serve on {args.host}:{args.port}: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(
    module: Any, database: str | None, host: str, port: int, out: Callable[[str], None]
) -> None:
    from ..testing._server import LocalServer

    async with LocalServer(module, database=database, bind_host=host, port=port) as server:
        out(f"Serving database {server.database!r} (module {module.name!r}) at {server.uri}")
        out(f"  WebSocket: {server.ws_uri}/v1/database/{server.database}/subscribe")
        out("  Press Ctrl-C to stop.")
        await _wait_for_stop_signal()
        out("Stopping.")


async def _wait_for_stop_signal() -> None:
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                return
    except NotImplementedError:  # no signal receivers here (Windows): Ctrl-C still interrupts
        await anyio.sleep_forever()


# --- demo -----------------------------------------------------------------------------------------


def _add_demo(commands: Any) -> None:
    from . import _demo  # the demo's body and its own options; this is only the command

    parser = commands.add_parser(
        "demo",
        help="run the end-to-end demo against a local (or given) server",
        description=_demo.DESCRIPTION,
    )
    _demo.add_arguments(parser)
    parser.set_defaults(run=lambda args, out: _demo.run_from_args(args, out))


# --- entry point ----------------------------------------------------------------------------------

_COMMANDS: Final = (_add_demo, _add_serve)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m spacetime_sched",
        description="Call SpacetimeDB reducers on time-based schedules; tools for testing.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(commands)
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args, _print)
    return status


if __name__ == "__main__":
    sys.exit(main())
