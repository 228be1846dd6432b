"""The command line: ``spacetime-sched <command>`` (or ``python -m spacetime_sched``).

Commands (each in its own module, added to the parser by :data:`_COMMANDS`):

* ``run SCHEDULES.toml``: run the schedules of a file until Ctrl-C or SIGTERM (:mod:`._run`);
* ``next EXPRESSION`` / ``next --daily HH:MM``: the next fire times of a trigger (:mod:`._next`);
* ``reducers --uri URI --database NAME``: a database's reducers and their types
  (:mod:`._reducers`);
* ``generate (--uri URI --database NAME | --schema FILE) -o DIR``: typed Python bindings for a
  module (:mod:`._generate`);
* ``serve [MODULE.py]``: the local SpacetimeDB-compatible server (:mod:`._serve`);
* ``demo``: the end-to-end demo (:mod:`._demo`).

Without a command it prints the help. Exit statuses (docs/cli.md): 0 success; 1 a failure
while running (the server unreachable, a demo check failed); 2 a usage error (bad option, bad
schedules file); 130 stopped by Ctrl-C. Each command's ``run(args, out)`` returns its status.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from .._version import __version__
from ._generate import add_generate
from ._next import add_next
from ._reducers import add_reducers
from ._run import add_run
from ._serve import DEFAULT_MODULE, DEFAULT_PORT, add_serve, load_module, load_module_file
from ._signals import EXIT_INTERRUPTED

__all__ = [
    "DEFAULT_MODULE",
    "DEFAULT_PORT",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "load_module",
    "load_module_file",
    "main",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


def _backend(name: str) -> str:
    if name not in ("asyncio", "trio"):
        raise argparse.ArgumentTypeError(f"expected asyncio or trio, got {name!r}")
    if name == "trio" and importlib.util.find_spec("trio") is None:
        raise argparse.ArgumentTypeError("trio is not installed (pip install trio)")
    return name


def add_backend(parser: argparse.ArgumentParser) -> None:
    """The ``--backend`` option every command that runs an event loop has."""
    parser.add_argument(
        "--backend",
        type=_backend,
        default="asyncio",
        metavar="{asyncio,trio}",
        help="the event loop to run on (default asyncio)",
    )


def _add_demo(commands: Any) -> None:
    from . import _demo  # the demo's body and its own options; this is only the command

    parser = commands.add_parser(
        "demo",
        help="run the end-to-end demo against a local (or given) server",
        description=_demo.DESCRIPTION,
    )
    _demo.add_arguments(parser)
    parser.set_defaults(run=lambda args, out: _demo.run_from_args(args, out))


_COMMANDS: Final[tuple[Callable[[Any], None], ...]] = (
    lambda commands: add_run(commands, add_backend),
    add_next,
    lambda commands: add_reducers(commands, add_backend),
    lambda commands: add_generate(commands, add_backend),
    lambda commands: add_serve(commands, add_backend),
    _add_demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="spacetime-sched",
        description="Call SpacetimeDB reducers on time-based schedules; tools for testing.",
        epilog=(
            "exit status: 0 success, 1 failure while running, 2 usage error, "
            "130 interrupted (Ctrl-C). Run 'spacetime-sched COMMAND --help' for a command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"spacetime-sched {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(commands)
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit status (no command: print the help, status 0)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_OK
        status: int = args.run(args, _print)
    except KeyboardInterrupt:  # before a command's signal handling is in place
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


if __name__ == "__main__":
    sys.exit(main())
