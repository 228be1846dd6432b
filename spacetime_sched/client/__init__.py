"""The SpacetimeDB client: protocols ``v3.bsatn.spacetimedb`` and ``v2.bsatn.spacetimedb`` over
httpx + httpx-ws.

* :class:`DbConnection` (alias :class:`ModernSpacetimeDBClient`) and its
  :class:`DbConnectionBuilder`: configure, connect (``async with``), call reducers and
  procedures, query, subscribe; ``conn.scheduler`` schedules reducer calls.
* :class:`ReconnectPolicy` (``builder.with_reconnect(...)``): come back after a drop.
* :class:`SpacetimeHttpClient` and :func:`create_identity`: the plain-HTTP API (mint an
  identity, read the server clock, fetch the module schema).
* :class:`SubscriptionHandle`, :class:`ClientCache` / :class:`TableCache`: subscriptions and the
  typed rows they keep in the client (``conn.db.person``; :func:`row_dict` gives a row's dict);
  :class:`Reducers` (``conn.reducers.add(1, 2)``).
* :class:`ServerSchedules`: the module's own schedule tables, watched with their next fire
  times on the server's clock.

Works the same on asyncio and trio. See ``docs/client.md``.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._builder import DbConnectionBuilder
from ._cache import ClientCache, TableCache
from ._connection import DbConnection
from ._credentials import CredentialsFile
from ._http import IdentityToken, SpacetimeHttpClient, create_identity, http_base_url
from ._options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_URI,
    SUBPROTOCOL_V2,
    SUBPROTOCOL_V3,
    Compression,
    ConnectOptions,
    WireProtocol,
)
from ._reconnect import ReconnectPolicy
from ._reducers import ReducerCaller, Reducers
from ._results import ProcedureCallResult, ReducerCallResult, RowChanges
from ._rows import Row, register_row_classes, row_dict, schema_digest
from ._scheduling import ConnectionScheduler, register_scheduler_factory
from ._server_schedules import ScheduleChange, ScheduleTable, ServerSchedule, ServerSchedules
from ._subscription import SubscriptionHandle, SubscriptionUpdate
from ._tables import CallbackHandle, UniqueIndex
from ._websocket import MAX_BATCH_BYTES

#: The name the community SDK used for the connection class; the same class.
ModernSpacetimeDBClient = DbConnection

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_URI",
    "MAX_BATCH_BYTES",
    "SUBPROTOCOL_V2",
    "SUBPROTOCOL_V3",
    "CallbackHandle",
    "ClientCache",
    "Compression",
    "ConnectOptions",
    "ConnectionScheduler",
    "CredentialsFile",
    "DbConnection",
    "DbConnectionBuilder",
    "IdentityToken",
    "ModernSpacetimeDBClient",
    "ProcedureCallResult",
    "ReconnectPolicy",
    "ReducerCallResult",
    "ReducerCaller",
    "Reducers",
    "Row",
    "RowChanges",
    "ScheduleChange",
    "ScheduleTable",
    "ServerSchedule",
    "ServerSchedules",
    "SpacetimeHttpClient",
    "SubscriptionHandle",
    "SubscriptionUpdate",
    "TableCache",
    "UniqueIndex",
    "WireProtocol",
    "create_identity",
    "http_base_url",
    "register_row_classes",
    "register_scheduler_factory",
    "row_dict",
    "schema_digest",
]


def __getattr__(name: str) -> Any:
    # ``Protocol`` was the old name of WireProtocol; it shadowed typing.Protocol.
    if name == "Protocol":
        warnings.warn(
            "spacetime_sched.client.Protocol is deprecated; use WireProtocol",
            DeprecationWarning,
            stacklevel=2,
        )
        return WireProtocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
