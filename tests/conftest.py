"""Shared test set-up.

Every ``async def`` test runs under anyio's pytest plugin on each backend named in
``SPACETIME_SCHED_BACKENDS`` (comma separated; default: both asyncio and trio). The nox matrix
sets one backend per session.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

BACKENDS = [
    b.strip() for b in os.environ.get("SPACETIME_SCHED_BACKENDS", "asyncio,trio").split(",") if b
]

#: The golden vectors made by the official TypeScript SDK (see its README).
VECTORS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Coroutine tests are anyio tests unless they ask for pytest-trio explicitly.
    for item in items:
        func = getattr(item, "function", None)
        if (
            func is not None
            and inspect.iscoroutinefunction(func)
            and item.get_closest_marker("trio") is None
            and item.get_closest_marker("anyio") is None
        ):
            item.add_marker(pytest.mark.anyio)
