"""The one exception hierarchy of spacetime_sched.

Every error this library raises on purpose derives from :class:`SpacetimeSchedError`, and also
from the built-in exception a Python programmer would expect (``ValueError`` for bad input,
``LookupError`` for a missing schedule, ``TimeoutError`` for a call that took too long), so
``except ValueError`` keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "SpacetimeSchedError",
    "TimeRangeError",
    "NaiveDatetimeError",
    "SatsError",
    "EncodeError",
    "DecodeError",
    "SchedulerError",
    "ScheduleNotFoundError",
    "InvalidScheduleError",
    "SchedulerClosedError",
    "ScheduleStoreError",
    "ScheduleFileError",
    "ClientError",
    "ConnectError",
    "ConnectionClosedError",
    "ConnectionLostError",
    "ProtocolError",
    "ArgumentError",
    "ReducerError",
    "InternalError",
    "CallTimeoutError",
    "QueryError",
    "ConfigurationError",
    "UnknownNameError",
    "LocalServerError",
    "SenderError",
    "NoSuchFunctionError",
    "BadArgumentsError",
    "ConnectRefusedError",
    "SqlError",
    "TokenError",
    "HttpStatusError",
]


class SpacetimeSchedError(Exception):
    """Base class of every error raised by spacetime_sched."""


# --- time types -------------------------------------------------------------------------------


class TimeRangeError(SpacetimeSchedError, OverflowError):
    """A Timestamp or TimeDuration left the signed 64-bit microsecond range of SpacetimeDB."""


class NaiveDatetimeError(SpacetimeSchedError, ValueError):
    """A ``datetime`` names no instant: a naive one (local time) that ``timestamp()`` cannot
    place, or one whose ``tzinfo`` gives no UTC offset (see docs/time.md)."""


# --- SATS codec (re-exported as spacetime_sched.sats.SatsError, ...) ---------------------------


class SatsError(SpacetimeSchedError, ValueError):
    """A value does not fit its SATS type, or bytes/JSON do not decode as that type.

    The message names the path to the offending part, e.g.
    ``elements[2].score: expected u32 in 0..4294967295, got -1``.
    """


class EncodeError(SatsError):
    """A Python value could not be encoded as the given SATS type."""


class DecodeError(SatsError):
    """BSATN bytes or SATS-JSON could not be decoded as the given SATS type."""


# --- scheduler --------------------------------------------------------------------------------


class SchedulerError(SpacetimeSchedError):
    """Base class of scheduler errors."""


class ScheduleNotFoundError(SchedulerError, LookupError):
    """No schedule has the given id (it never existed, or it was removed)."""


class InvalidScheduleError(SchedulerError, ValueError):
    """A schedule, trigger or policy argument is invalid."""


class SchedulerClosedError(SchedulerError, RuntimeError):
    """The scheduler has been shut down and accepts no more work."""


class ScheduleStoreError(SchedulerError):
    """A schedule store cannot be used, or one of its records cannot be read (the message
    names the schedule id and the column)."""


class ScheduleFileError(SchedulerError, ValueError):
    """A schedules file (``spacetime-sched run FILE``) is invalid.

    The whole file is checked before anything runs, so ``problems`` lists every problem found,
    each as ``FILE:LINE: KEY: what is wrong`` (the message shows them all).
    """

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{path}: {count}:\n" + "\n".join(problems))
        self.path = path
        self.problems = tuple(problems)


# --- client -----------------------------------------------------------------------------------


class ClientError(SpacetimeSchedError):
    """Base class of errors talking to a SpacetimeDB server."""


class ConnectError(ClientError, ConnectionError):
    """Could not connect (unreachable host, HTTP error on upgrade, bad token, ...), or gave up
    reconnecting. ``status`` is the HTTP status of a refused WebSocket upgrade (401 or 403: the
    token was rejected), else ``None``."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosedError(ClientError, ConnectionError):
    """The connection closed while a request was outstanding, or before it was made."""


class ConnectionLostError(ConnectionClosedError):
    """The connection dropped after the request was sent and before its answer came: the
    server may or may not have run it. Never retried by the client (a reducer is not
    idempotent); a scheduler's retry policy decides, and counts it as a failed execution."""


class ProtocolError(ClientError):
    """The peer sent a frame that does not follow the SpacetimeDB protocol."""


class ArgumentError(ClientError, ValueError):
    """A client call was given an argument it cannot use, found before anything was sent: reducer
    or procedure arguments that do not match the module schema, a timeout that is not a
    non-negative number, raw arguments that are not bytes, a query that is not a string. The
    message names the argument. The connection is unaffected."""


class ReducerError(ClientError):
    """The reducer ran and returned an error (``Err``); ``message`` is its decoded text."""

    def __init__(self, reducer: str, message: str) -> None:
        super().__init__(f"reducer {reducer!r} failed: {message}")
        self.reducer = reducer
        self.message = message


class InternalError(ClientError):
    """The host could not run the call (panic, bad arguments, unknown or private reducer)."""


class CallTimeoutError(ClientError, TimeoutError):
    """No result arrived for a call within its timeout."""


class QueryError(ClientError):
    """A one-off query or subscription query was rejected by the server."""


class ConfigurationError(ArgumentError):
    """A connection option is invalid (bad URI scheme, no database name, missing extra, ...),
    raised by the builder method or constructor that was given it. An :class:`ArgumentError`
    (a bad argument to the client's API) and so also a ``ValueError``."""


class UnknownNameError(ArgumentError, AttributeError, KeyError):
    """A reducer, table or column name the module schema does not have (``conn.reducers.nope``,
    ``conn.db.nope``, ``conn.db.user.nope``). The message lists close matches. Also an
    ``AttributeError`` (so ``getattr(conn.reducers, name, None)`` and ``hasattr`` work) and a
    ``KeyError`` (for ``conn.db["nope"]``); ``name`` is the name that was asked for."""

    def __init__(self, message: str, *, name: str | None = None, obj: object = None) -> None:
        super().__init__(message)
        self.name = name
        self.obj = obj

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# --- the local test server (spacetime_sched.testing) ------------------------------------------


class LocalServerError(SpacetimeSchedError):
    """Base class of the errors of the local test server and of the modules it runs."""


class SenderError(LocalServerError):
    """Raise it in a module's reducer to return an error to the caller, like a Rust reducer
    returning ``Err(message)``: the call ends with ``Err`` (the message as a BSATN String;
    HTTP 530 with the message) and its changes are rolled back. Any *other* exception is a
    crash: the caller gets ``InternalError`` over WebSocket (HTTP 530 with the text)."""


class NoSuchFunctionError(LocalServerError, LookupError):
    """No reducer or procedure by that name, or a private one (HTTP 404, WebSocket
    InternalError)."""


class BadArgumentsError(LocalServerError, ValueError):
    """Arguments that do not decode as the parameters, or a lifecycle reducer (HTTP 400)."""


class ConnectRefusedError(LocalServerError, RuntimeError):
    """The ``client_connected`` reducer failed, so the connection is refused."""


class SqlError(LocalServerError, ValueError):
    """A query the local server cannot run (bad syntax, unknown table or column, bad literal)."""


class TokenError(LocalServerError, ValueError):
    """A token the server does not accept (the message never contains the token)."""


class HttpStatusError(LocalServerError):
    """An HTTP request the local server answers with an error ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
