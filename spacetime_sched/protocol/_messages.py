"""The v2 WebSocket messages (also the message set batched inside v3 frames).

Every message is a small frozen value class. Field names are the server's snake_case names and
fields are declared in BSATN order, so ``attrs.astuple(msg)`` lists them as they go on the wire.
Sequences are tuples (the messages are immutable and hashable); constructors accept any iterable.

Sum types are a base class with one subclass per variant, reachable as attributes of the base
so that ``match`` reads like the protocol::

    match message:
        case ReducerResult(request_id, timestamp, ReducerOutcome.Err(error)): ...
        case ReducerResult(result=ReducerOutcome.Ok(ret_value, transaction_update)): ...

Result-typed fields use the payload directly: ``OneOffQueryResult.result`` is a
:class:`QueryRows` on success and the error ``str`` otherwise (see its ``ok`` property).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, TypeAlias

import attrs

from ._rows import BsatnRowList

if TYPE_CHECKING:
    from .._identity import ConnectionId, Identity
    from .._time import TimeDuration, Timestamp

__all__ = [
    "CallProcedure",
    "CallReducer",
    "ClientMessage",
    "EventTable",
    "InitialConnection",
    "OneOffQuery",
    "OneOffQueryResult",
    "PersistentTable",
    "ProcedureInternalError",
    "ProcedureResult",
    "ProcedureReturned",
    "ProcedureStatus",
    "QueryRows",
    "QuerySetId",
    "QuerySetUpdate",
    "ReducerErr",
    "ReducerInternalError",
    "ReducerOk",
    "ReducerOkEmpty",
    "ReducerOutcome",
    "ReducerResult",
    "ServerMessage",
    "SingleTableRows",
    "Subscribe",
    "SubscribeApplied",
    "SubscriptionError",
    "TableUpdate",
    "TableUpdateRows",
    "TransactionUpdate",
    "Unsubscribe",
    "UnsubscribeApplied",
    "UnsubscribeFlags",
]


def _tuple(values: Iterable[object]) -> tuple[object, ...]:
    return values if type(values) is tuple else tuple(values)


def _redacted(_token: object) -> str:
    return "'<redacted>'"


# --- shared structures --------------------------------------------------------------------------


@attrs.frozen
class QuerySetId:
    """The client-chosen id of a set of subscription queries (``{id: u32}`` on the wire)."""

    id: int


def _query_set_id(value: QuerySetId | int) -> QuerySetId:
    return value if type(value) is QuerySetId else QuerySetId(value)  # type: ignore[arg-type]


class UnsubscribeFlags(enum.IntEnum):
    """How to unsubscribe (a unit-only SATS sum: the value is the tag)."""

    #: Just drop the query set.
    Default = 0
    #: Also send the rows that leave the client's view, in ``UnsubscribeApplied.rows``.
    SendDroppedRows = 1


@attrs.frozen
class SingleTableRows:
    """The rows of one table matched by a query set."""

    table: str
    rows: BsatnRowList


@attrs.frozen
class QueryRows:
    """Rows of several tables: the result of a subscription or a one-off query."""

    tables: tuple[SingleTableRows, ...] = attrs.field(converter=_tuple)


class TableUpdateRows:
    """A change to one table: ``PersistentTable(inserts, deletes)`` or ``EventTable(events)``."""

    __slots__ = ()

    PersistentTable: ClassVar[type[PersistentTable]]
    EventTable: ClassVar[type[EventTable]]


@attrs.frozen
class PersistentTable(TableUpdateRows):
    """Rows inserted into and deleted from an ordinary table (tag 0; inserts come first)."""

    inserts: BsatnRowList
    deletes: BsatnRowList

    TAG: ClassVar[int] = 0


@attrs.frozen
class EventTable(TableUpdateRows):
    """Rows of an event table: transient, never stored by the client (tag 1)."""

    events: BsatnRowList

    TAG: ClassVar[int] = 1


TableUpdateRows.PersistentTable = PersistentTable
TableUpdateRows.EventTable = EventTable


@attrs.frozen
class TableUpdate:
    """The changes to one table in one query set (the same table may repeat)."""

    table_name: str
    rows: tuple[TableUpdateRows, ...] = attrs.field(converter=_tuple)


@attrs.frozen
class QuerySetUpdate:
    """The changes one transaction made to the rows matched by one query set."""

    query_set_id: QuerySetId = attrs.field(converter=_query_set_id)
    tables: tuple[TableUpdate, ...] = attrs.field(converter=_tuple)


# --- client messages ----------------------------------------------------------------------------


@attrs.frozen
class Subscribe:
    """Subscribe to the rows matched by SQL ``SELECT`` queries, as one query set (tag 0)."""

    request_id: int
    query_set_id: QuerySetId = attrs.field(converter=_query_set_id)
    query_strings: tuple[str, ...] = attrs.field(converter=_tuple)

    TAG: ClassVar[int] = 0


@attrs.frozen
class Unsubscribe:
    """Drop a query set (tag 1)."""

    request_id: int
    query_set_id: QuerySetId = attrs.field(converter=_query_set_id)
    flags: UnsubscribeFlags = attrs.field(converter=UnsubscribeFlags)

    TAG: ClassVar[int] = 1


@attrs.frozen
class OneOffQuery:
    """Run one SQL query without subscribing (tag 2)."""

    request_id: int
    query_string: str

    TAG: ClassVar[int] = 2


@attrs.frozen
class CallReducer:
    """Call a reducer; ``args`` is the BSATN of the reducer's parameter product (tag 3).

    ``flags`` must be 0 in protocol v2.
    """

    request_id: int
    flags: int
    reducer: str
    args: bytes

    TAG: ClassVar[int] = 3


@attrs.frozen
class CallProcedure:
    """Call a procedure; ``args`` is the BSATN of its parameter product (tag 4)."""

    request_id: int
    flags: int
    procedure: str
    args: bytes

    TAG: ClassVar[int] = 4


#: Any message a client sends.
ClientMessage: TypeAlias = Subscribe | Unsubscribe | OneOffQuery | CallReducer | CallProcedure
CLIENT_MESSAGE_CLASSES: tuple[type[ClientMessage], ...] = (
    Subscribe,
    Unsubscribe,
    OneOffQuery,
    CallReducer,
    CallProcedure,
)


# --- reducer and procedure outcomes ---------------------------------------------------------------


class ReducerOutcome:
    """How a reducer call ended, as a SATS sum with four variants.

    * ``ReducerOutcome.Ok(ret_value, transaction_update)`` (tag 0): committed;
    * ``ReducerOutcome.OkEmpty()`` (tag 1): committed, no return value and no row changes;
    * ``ReducerOutcome.Err(error)`` (tag 2): the reducer returned an error; ``error`` is the
      BSATN of the error value, a String for ordinary reducers (see :meth:`ReducerErr.message`);
    * ``ReducerOutcome.InternalError(message)`` (tag 3): the host could not run it (panic, bad
      arguments, unknown or private reducer, out of energy).
    """

    __slots__ = ()

    Ok: ClassVar[type[ReducerOk]]
    OkEmpty: ClassVar[type[ReducerOkEmpty]]
    Err: ClassVar[type[ReducerErr]]
    InternalError: ClassVar[type[ReducerInternalError]]


@attrs.frozen
class TransactionUpdate:
    """Row changes of one transaction, per affected query set (ServerMessage tag 4).

    Also the ``transaction_update`` of a successful :class:`ReducerOk`.
    """

    query_sets: tuple[QuerySetUpdate, ...] = attrs.field(converter=_tuple)

    TAG: ClassVar[int] = 4


@attrs.frozen
class ReducerOk(ReducerOutcome):
    """The reducer committed: its BSATN return value and the caller's row changes (tag 0)."""

    ret_value: bytes
    transaction_update: TransactionUpdate

    TAG: ClassVar[int] = 0


@attrs.frozen
class ReducerOkEmpty(ReducerOutcome):
    """The reducer committed with no return value and no changes to the caller's rows (tag 1)."""

    TAG: ClassVar[int] = 1


_BSATN_STRING_LEN = struct.Struct("<I")


@attrs.frozen
class ReducerErr(ReducerOutcome):
    """The reducer returned an error; ``error`` is the BSATN of the error value (tag 2)."""

    error: bytes

    TAG: ClassVar[int] = 2

    @property
    def message(self) -> str | None:
        """The error decoded as a BSATN String (what ordinary reducers return), else ``None``."""
        data = self.error
        if len(data) < 4:
            return None
        (length,) = _BSATN_STRING_LEN.unpack_from(data)
        if length != len(data) - 4:
            return None
        try:
            return data[4:].decode("utf-8")
        except UnicodeDecodeError:
            return None


@attrs.frozen
class ReducerInternalError(ReducerOutcome):
    """The host could not run the reducer; ``message`` says why (tag 3)."""

    message: str

    TAG: ClassVar[int] = 3


ReducerOutcome.Ok = ReducerOk
ReducerOutcome.OkEmpty = ReducerOkEmpty
ReducerOutcome.Err = ReducerErr
ReducerOutcome.InternalError = ReducerInternalError


class ProcedureStatus:
    """How a procedure call ended: ``Returned(value)`` (tag 0) or ``InternalError(message)``."""

    __slots__ = ()

    Returned: ClassVar[type[ProcedureReturned]]
    InternalError: ClassVar[type[ProcedureInternalError]]


@attrs.frozen
class ProcedureReturned(ProcedureStatus):
    """The procedure returned; ``value`` is the BSATN of its return value (tag 0)."""

    value: bytes

    TAG: ClassVar[int] = 0


@attrs.frozen
class ProcedureInternalError(ProcedureStatus):
    """The host could not run the procedure (tag 1)."""

    message: str

    TAG: ClassVar[int] = 1


ProcedureStatus.Returned = ProcedureReturned
ProcedureStatus.InternalError = ProcedureInternalError


# --- server messages ----------------------------------------------------------------------------


@attrs.frozen
class InitialConnection:
    """The first message of every connection: who we are and the token to come back with.

    The token never appears in the ``repr``.
    """

    identity: Identity
    connection_id: ConnectionId
    token: str = attrs.field(repr=_redacted)

    TAG: ClassVar[int] = 0


@attrs.frozen
class SubscribeApplied:
    """A ``Subscribe`` took effect; ``rows`` are the rows its queries match now (tag 1)."""

    request_id: int
    query_set_id: QuerySetId = attrs.field(converter=_query_set_id)
    rows: QueryRows

    TAG: ClassVar[int] = 1


@attrs.frozen
class UnsubscribeApplied:
    """An ``Unsubscribe`` took effect (tag 2).

    ``rows`` holds the dropped rows only when ``SendDroppedRows`` was asked for, else ``None``.
    """

    request_id: int
    query_set_id: QuerySetId = attrs.field(converter=_query_set_id)
    rows: QueryRows | None

    TAG: ClassVar[int] = 2


@attrs.frozen
class SubscriptionError:
    """A query set failed (tag 3); drop its rows.

    ``request_id`` is ``None`` when it failed later, while a transaction was being evaluated.
    """

    request_id: int | None
    query_set_id: QuerySetId = attrs.field(converter=_query_set_id)
    error: str

    TAG: ClassVar[int] = 3


@attrs.frozen
class OneOffQueryResult:
    """The answer to a ``OneOffQuery`` (tag 5).

    ``result`` is the SATS ``Result<QueryRows, String>``: a :class:`QueryRows` when the query ran,
    the server's error text (a ``str``) when it did not.
    """

    request_id: int
    result: QueryRows | str

    TAG: ClassVar[int] = 5

    @property
    def ok(self) -> bool:
        """Whether the query ran (``result`` is a :class:`QueryRows`)."""
        return isinstance(self.result, QueryRows)

    @property
    def rows(self) -> QueryRows | None:
        """The rows on success, else ``None``."""
        return self.result if isinstance(self.result, QueryRows) else None

    @property
    def error(self) -> str | None:
        """The error text on failure, else ``None``."""
        return self.result if isinstance(self.result, str) else None


@attrs.frozen
class ReducerResult:
    """The result of this client's ``CallReducer`` (tag 6).

    ``timestamp`` is when the reducer started, by the server's clock (microseconds).
    """

    request_id: int
    timestamp: Timestamp
    result: ReducerOutcome

    TAG: ClassVar[int] = 6


@attrs.frozen
class ProcedureResult:
    """The result of this client's ``CallProcedure`` (tag 7; note the field order)."""

    status: ProcedureStatus
    timestamp: Timestamp
    total_host_execution_duration: TimeDuration
    request_id: int

    TAG: ClassVar[int] = 7


#: Any message the server sends.
ServerMessage: TypeAlias = (
    InitialConnection
    | SubscribeApplied
    | UnsubscribeApplied
    | SubscriptionError
    | TransactionUpdate
    | OneOffQueryResult
    | ReducerResult
    | ProcedureResult
)
SERVER_MESSAGE_CLASSES: tuple[type[ServerMessage], ...] = (
    InitialConnection,
    SubscribeApplied,
    UnsubscribeApplied,
    SubscriptionError,
    TransactionUpdate,
    OneOffQueryResult,
    ReducerResult,
    ProcedureResult,
)
