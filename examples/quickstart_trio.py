"""Quickstart on trio: connect, call a reducer, schedule reducers, read the results.

The same program as ``quickstart_asyncio.py``, run by ``trio.run``: spacetime_sched is written
against anyio, so the client, the scheduler and the local server run unchanged on trio.
Like that example, it uses a local server in this process unless ``SPACETIMEDB_URI`` is set.

Run it: ``python examples/quickstart_trio.py``
"""

from __future__ import annotations

import functools

import trio
from quickstart_asyncio import main  # the examples folder is on sys.path when run as a script

if __name__ == "__main__":
    trio.run(functools.partial(main, backend="trio"))
