"""The pytest plugin for projects that use spacetime_sched (loaded automatically once it is
installed, through the ``pytest11`` entry point, like anyio's own plugin).

Fixtures (docs/testing-server.md has the guide):

* ``spacetime_module``: the :class:`~spacetime_sched.testing.Module` that ``local_server``
  hosts. The default is the quickstart module
  (:func:`spacetime_sched.testing.example_module.make_module`); to test your own module,
  override this fixture in your ``conftest.py`` or test module::

      @pytest.fixture
      def spacetime_module():
          return my_module.make_module()

* ``local_server``: a running :class:`~spacetime_sched.testing.LocalServer` for that module,
  new for each test (so each test starts from empty tables). If the test also asks for
  ``virtual_clock``, the server runs on it: reducers see its time and schedule tables fire
  when the test advances it.
* ``db_connection``: a :class:`~spacetime_sched.client.DbConnection` connected to
  ``local_server``, in the same process and event loop, closed after the test.
* ``virtual_clock``: a :class:`~spacetime_sched.testing.VirtualClock` starting at
  2025-01-01T00:00:00Z (override the fixture to start elsewhere).
* ``recording_target``: a :class:`~spacetime_sched.testing.RecordingTarget`, a reducer target
  for a ``ReducerScheduler`` that records the calls instead of making them (stamped with
  ``virtual_clock`` when the test uses it).

Async tests: an ``async def`` test that asks for one of these fixtures by parameter is run by
anyio's plugin (it is marked ``anyio`` for you) on asyncio and trio (if trio is installed);
set ``spacetime_sched_backends = asyncio`` in the pytest ini options to run on fewer. Tests
already marked ``anyio``, ``trio`` or ``asyncio`` (pytest-asyncio) are left as they are, and
so is a project that defines its own ``anyio_backend`` fixture: its backends are used. A test
that reaches the fixtures only through a fixture of yours needs ``@pytest.mark.anyio`` (or
anyio's ``anyio_mode = auto``), as with any anyio test.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import pytest

# Imported when a fixture is used, not when pytest loads the plugin: every pytest run of a
# project that has spacetime_sched installed loads it, and the local server needs the
# ``server`` extra.
if TYPE_CHECKING:
    from .client import DbConnection
    from .testing import LocalServer, Module, RecordingTarget, VirtualClock

__all__ = [
    "db_connection",
    "local_server",
    "recording_target",
    "spacetime_module",
    "virtual_clock",
]

#: The fixtures whose use makes an ``async def`` test an anyio test.
FIXTURES: Final = frozenset(
    {"spacetime_module", "local_server", "db_connection", "virtual_clock", "recording_target"}
)
_ASYNC_MARKERS: Final = frozenset({"anyio", "trio", "asyncio"})
_INI_BACKENDS: Final = "spacetime_sched_backends"


def pytest_addoption(parser: pytest.Parser) -> None:
    default = "asyncio,trio" if importlib.util.find_spec("trio") is not None else "asyncio"
    parser.addini(
        _INI_BACKENDS,
        help="comma-separated event loops for async tests using spacetime_sched's fixtures "
        f"(default: {default})",
        default=default,
    )


def _backends(config: pytest.Config) -> list[str]:
    value = config.getini(_INI_BACKENDS)
    names = value if isinstance(value, list) else str(value).split(",")
    return [name.strip() for name in names if name.strip()]


def _uses_default_backend_fixture(collector: pytest.Collector) -> bool:
    """Whether ``anyio_backend`` would be anyio's own fixture (not one the project defines)."""
    manager: Any = getattr(collector.session, "_fixturemanager", None)
    try:
        defs: Any = manager.getfixturedefs("anyio_backend", collector) if manager else None
    except Exception:  # an older pytest's signature: leave the backends to anyio
        return False
    if not defs:
        return False
    return getattr(defs[-1].func, "__module__", "") == "anyio.pytest_plugin"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark ``async def`` tests that ask for our fixtures as anyio tests on every backend.

    Runs before anyio's own hook sees the function, so its marker is seen; the backends are
    a ``parametrize`` mark (which takes precedence over anyio's default fixture).
    """
    if not (
        isinstance(collector, (pytest.Module, pytest.Class))
        and collector.istestfunction(obj, name)
        and inspect.iscoroutinefunction(obj)
    ):
        return
    own = {mark.name for mark in getattr(obj, "pytestmark", [])}
    if own & _ASYNC_MARKERS or any(collector.get_closest_marker(m) for m in _ASYNC_MARKERS):
        return
    if not FIXTURES & set(inspect.signature(obj).parameters):
        return
    pytest.mark.anyio(obj)
    # What anyio's marker means; said here too, since anyio's own hook may have looked already.
    pytest.mark.usefixtures("anyio_backend")(obj)
    parametrized = any(
        "anyio_backend" in str(mark.args[0] if mark.args else "")
        for mark in getattr(obj, "pytestmark", [])
        if mark.name == "parametrize"
    )
    if not parametrized and _uses_default_backend_fixture(collector):
        pytest.mark.parametrize("anyio_backend", _backends(collector.config))(obj)


@pytest.fixture
def spacetime_module() -> Module:
    """The module ``local_server`` hosts (default: the quickstart module); override it."""
    from .testing import example_module

    return example_module.make_module()


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock at 2025-01-01T00:00:00Z; time moves when the test advances it."""
    from .testing import VirtualClock

    return VirtualClock()


@pytest.fixture
async def local_server(
    spacetime_module: Module, request: pytest.FixtureRequest
) -> AsyncIterator[LocalServer]:
    """A running local server for ``spacetime_module`` (on ``virtual_clock`` if the test
    uses it)."""
    from .testing import LocalServer

    clock = (
        request.getfixturevalue("virtual_clock")
        if "virtual_clock" in request.fixturenames
        else None
    )
    async with LocalServer(spacetime_module, clock=clock) as server:
        yield server


@pytest.fixture
async def db_connection(local_server: LocalServer) -> AsyncIterator[DbConnection]:
    """A client connection to ``local_server``'s database."""
    from .client import DbConnection

    builder = (
        DbConnection.builder().with_uri(local_server.uri).with_database_name(local_server.database)
    )
    async with builder.build() as conn:
        yield conn


@pytest.fixture
def recording_target(request: pytest.FixtureRequest) -> RecordingTarget:
    """A reducer target that records calls (stamped on ``virtual_clock`` if the test uses
    it)."""
    from .testing import RecordingTarget

    clock: Any = (
        request.getfixturevalue("virtual_clock")
        if "virtual_clock" in request.fixturenames
        else None
    )
    return RecordingTarget(clock)
