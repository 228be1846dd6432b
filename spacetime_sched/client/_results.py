"""What calls on a connection return: small frozen value classes."""

from __future__ import annotations

from typing import Any

import attrs

from .._time import TimeDuration, Timestamp
from ..protocol import TransactionUpdate

__all__ = ["ProcedureCallResult", "ReducerCallResult", "RowChanges"]


@attrs.frozen
class ReducerCallResult:
    """A reducer call that committed.

    ``timestamp`` is when the reducer started, by the server's clock. ``return_value`` is the
    BSATN of the reducer's return value (empty for ordinary reducers, which return nothing).
    ``transaction_update`` holds the changes the call made to rows this connection subscribes
    to (the caller gets them here, not as a separate TransactionUpdate); they have already
    been applied to the subscriptions and the client cache when the call returns.
    """

    reducer: str
    request_id: int
    timestamp: Timestamp
    return_value: bytes
    transaction_update: TransactionUpdate


@attrs.frozen
class ProcedureCallResult:
    """A procedure call that returned: its decoded return value and the server's timings."""

    procedure: str
    request_id: int
    value: Any
    timestamp: Timestamp
    host_execution_duration: TimeDuration


@attrs.frozen
class RowChanges:
    """The decoded changes one transaction made to one table, as seen by one subscription.

    ``events`` holds the rows of an event table (transient rows, never cached).
    """

    table: str
    inserts: list[Any]
    deletes: list[Any]
    events: list[Any] = attrs.field(factory=list)
