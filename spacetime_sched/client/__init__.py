"""The SpacetimeDB client: protocols ``v3.bsatn.spacetimedb`` and ``v2.bsatn.spacetimedb`` over
httpx + httpx-ws.

* :class:`DbConnection` (alias :class:`ModernSpacetimeDBClient`) and its
  :class:`DbConnectionBuilder`: connect, call reducers and procedures, query, subscribe.
* :class:`SpacetimeHttpClient` and :func:`create_identity`: the plain-HTTP API (mint an
  identity, read the server clock, fetch the module schema).
* :class:`SubscriptionHandle`, :class:`ClientCache` / :class:`TableCache`: subscriptions and the
  rows they keep in the client.

Works the same on asyncio and trio. See ``docs/client.md``.
"""

from __future__ import annotations

from ._builder import DEFAULT_CONNECT_TIMEOUT, DbConnectionBuilder
from ._connection import ConnectOptions, DbConnection
from ._credentials import CredentialsFile
from ._http import IdentityToken, SpacetimeHttpClient, create_identity, http_base_url
from ._results import ProcedureCallResult, ReducerCallResult, RowChanges
from ._subscription import ClientCache, SubscriptionHandle, SubscriptionUpdate, TableCache
from ._transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_BATCH_BYTES,
    SUBPROTOCOL_V2,
    SUBPROTOCOL_V3,
    Compression,
    Protocol,
)

#: The name the community SDK used for the connection class; the same class.
ModernSpacetimeDBClient = DbConnection

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_BATCH_BYTES",
    "SUBPROTOCOL_V2",
    "SUBPROTOCOL_V3",
    "ClientCache",
    "Compression",
    "ConnectOptions",
    "CredentialsFile",
    "DbConnection",
    "DbConnectionBuilder",
    "IdentityToken",
    "ModernSpacetimeDBClient",
    "ProcedureCallResult",
    "Protocol",
    "ReducerCallResult",
    "RowChanges",
    "SpacetimeHttpClient",
    "SubscriptionHandle",
    "SubscriptionUpdate",
    "TableCache",
    "create_identity",
    "http_base_url",
]
