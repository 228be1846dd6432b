"""Test helpers: a virtual clock for the scheduler and a local SpacetimeDB-compatible server.

* :class:`VirtualClock` drives a :class:`~spacetime_sched.scheduler.ReducerScheduler` through
  hours or days of schedules in milliseconds, on asyncio and trio.
* :class:`LocalServer` serves a :class:`Module` written in Python over the real SpacetimeDB HTTP
  and WebSocket protocol, so clients (ours, and the official SDKs) run without a SpacetimeDB
  install. :mod:`spacetime_sched.testing.example_module` is the "quickstart" module the tests,
  examples and demo use.
* :class:`RecordingTarget` stands in for a server as a scheduler's target and records calls.
* The pytest plugin (:mod:`spacetime_sched.pytest_plugin`, loaded automatically) gives tests
  these as fixtures: ``local_server``, ``db_connection``, ``virtual_clock``,
  ``recording_target``.
"""

from __future__ import annotations

from . import example_module
from ._clock import VirtualClock
from ._recording import RecordedCall, RecordingTarget
from ._server import (
    BadArgumentsError,
    ConnectRefusedError,
    Db,
    Host,
    LocalServer,
    LocalServerError,
    Module,
    NoSuchFunctionError,
    Procedure,
    ProcedureContext,
    Reducer,
    ReducerContext,
    SenderError,
    ServerClock,
    ServerLimits,
    SqlError,
    Table,
    TableHandle,
    TokenError,
)

__all__ = [
    "BadArgumentsError",
    "ConnectRefusedError",
    "Db",
    "Host",
    "LocalServer",
    "LocalServerError",
    "Module",
    "NoSuchFunctionError",
    "Procedure",
    "ProcedureContext",
    "Reducer",
    "RecordedCall",
    "RecordingTarget",
    "ReducerContext",
    "SenderError",
    "ServerClock",
    "ServerLimits",
    "SqlError",
    "Table",
    "TableHandle",
    "TokenError",
    "VirtualClock",
    "example_module",
]
