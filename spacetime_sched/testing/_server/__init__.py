"""A local SpacetimeDB-compatible server for tests: a Python module DSL, an in-memory host with
transactions, schedule tables and subscriptions, and an HTTP + WebSocket app on hypercorn."""

from __future__ import annotations

from ..._errors import (
    BadArgumentsError,
    ConnectRefusedError,
    LocalServerError,
    NoSuchFunctionError,
    SenderError,
    SqlError,
    TokenError,
)
from ._database import Db, TableHandle
from ._host import Host, ServerClock
from ._limits import ServerLimits
from ._module import Module, Procedure, ProcedureContext, Reducer, ReducerContext, Table
from ._serve import LocalServer

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
    "ReducerContext",
    "SenderError",
    "ServerClock",
    "ServerLimits",
    "SqlError",
    "Table",
    "TableHandle",
    "TokenError",
]
