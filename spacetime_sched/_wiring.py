"""The one module that knows both the client and the scheduler: it plugs the scheduler into
the client's seam, so that ``conn.scheduler`` is a :class:`~spacetime_sched.ReducerScheduler`.

The client never imports the scheduler (see ``client/_scheduling.py`` for why), and the
scheduler only needs something with ``call_reducer_async``. The package root imports this
module, and Python runs the root before any submodule, so the wiring is in place whatever part
of the library a program imports first.
"""

from __future__ import annotations

from .client._scheduling import register_scheduler_factory
from .scheduler import ReducerScheduler

__all__: list[str] = []

register_scheduler_factory(ReducerScheduler)
