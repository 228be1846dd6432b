"""Shared test set-up.

Every ``async def`` test runs under anyio's pytest plugin on each backend named in
``SPACETIME_SCHED_BACKENDS`` (comma separated; default: both asyncio and trio). The nox matrix
sets one backend per session.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

#: ``pytester`` runs pytest on a user's project in a subprocess (tests/test_pytest_plugin.py).
pytest_plugins = ["pytester"]

BACKENDS = [
    b.strip() for b in os.environ.get("SPACETIME_SCHED_BACKENDS", "asyncio,trio").split(",") if b
]

#: The golden vectors made by the official TypeScript SDK 2.10.1 (see tests/vectors/README.md;
#: copied from the project's reference material so that a plain clone carries them).
VECTORS_DIR = Path(__file__).resolve().parent / "vectors"


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def _postgres_run_database() -> Iterator[None]:
    """Drop the run's PostgreSQL database (if a test made one) when the session ends."""
    yield
    from _postgres_support import finish

    finish()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark coroutine tests as anyio tests, unless they ask for pytest-trio explicitly.

    This runs before anyio's own hook sees the function, so the ``anyio_backend``
    parametrisation combines with the test's own parameters and fixtures.
    """
    if not (inspect.iscoroutinefunction(obj) and name.startswith("test")):
        return
    own = {mark.name for mark in getattr(obj, "pytestmark", [])}
    inherited = {"trio", "anyio"} & own or {
        m for m in ("trio", "anyio") if collector.get_closest_marker(m) is not None
    }
    if not inherited:
        pytest.mark.anyio(obj)
