"""The console-script entry point ``spacetime-sched`` (``spacetime_sched.cli:main``).

The commands live in the private package :mod:`spacetime_sched._cli` (one module per command's
body: ``serve`` in its ``__init__``, ``demo`` in ``_demo``); this module keeps the published
entry point and the names scripts already import.
"""

from __future__ import annotations

from ._cli import build_parser, load_module, main

__all__ = ["build_parser", "load_module", "main"]
