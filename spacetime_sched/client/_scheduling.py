"""The seam between a connection and its scheduler (``conn.scheduler``).

The client must not import the scheduler: the scheduler already depends on the client's shape
(it calls ``call_reducer_async``), and an import back would tie the two packages into one.
So the client says here what it needs from a scheduler, :class:`ConnectionScheduler` (four
lifecycle methods), and holds one factory hook, :func:`register_scheduler_factory`, that the
scheduler side fills in. ``spacetime_sched/__init__.py`` registers
:class:`~spacetime_sched.ReducerScheduler`, and since Python runs that file before any
submodule, every program that imports any part of the library gets a working
``conn.scheduler``.

Why a registered factory rather than an import inside a function: a deferred import is still
an arrow from the client to the scheduler (tools and readers see it; a broken scheduler
module breaks the client at a distance), while a registration keeps the arrow pointing one
way: the package root knows both, each half knows only itself. Tests can register a small fake
to test the seam on its own.

``conn.scheduler`` is typed as :class:`~spacetime_sched.ReducerScheduler` for users through a
``TYPE_CHECKING``-only import in the connection module; nothing is imported at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from anyio.abc import TaskGroup

from .._errors import ConfigurationError

__all__ = ["ConnectionScheduler", "SchedulerFactory", "new_scheduler", "register_scheduler_factory"]


class ConnectionScheduler(Protocol):
    """What a connection needs from its scheduler.

    * ``bind(task_group)``: run in this task group from now on (the connection's own, once it
      is connected); ``unbind()`` when the connection's block ends.
    * ``await start()``: start running in the bound task group (a no-op if already running).
    * ``await stop()``: stop, letting running executions finish within the scheduler's
      ``shutdown_timeout``.
    """

    def bind(self, task_group: TaskGroup) -> None: ...

    def unbind(self) -> None: ...

    async def start(self) -> None: ...

    def stop(self) -> Awaitable[None]: ...


#: ``factory(connection, max_concurrent_executions=n)``: a new, unstarted scheduler whose
#: target is ``connection`` (``n`` is None for the scheduler's own default).
SchedulerFactory = Callable[..., ConnectionScheduler]

_factory: SchedulerFactory | None = None


def register_scheduler_factory(factory: SchedulerFactory | None) -> SchedulerFactory | None:
    """Make ``factory`` build every connection's scheduler from now on; return the previous one
    (``None`` unregisters, for tests)."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def new_scheduler(connection: Any, max_concurrent_executions: int | None) -> ConnectionScheduler:
    """A scheduler for ``connection``, from the registered factory."""
    if _factory is None:
        raise ConfigurationError(
            "conn.scheduler: no scheduler is registered (import spacetime_sched, which registers "
            "ReducerScheduler)"
        )
    if max_concurrent_executions is None:
        return _factory(connection)
    return _factory(connection, max_concurrent_executions=max_concurrent_executions)
