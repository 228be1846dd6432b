"""BSATN encoding and decoding of the v2 messages, written out by hand with :mod:`struct`.

The message set is small and fixed, so instead of walking the generic SATS type at run time
each message has a straight-line encoder and decoder. This is the client's hot path (every
``CallReducer`` out, every ``ReducerResult`` in), and it is several times faster than the
generic codec. The golden vectors and a cross-check against the generic codec of
``CLIENT_MESSAGE_TYPE`` / ``SERVER_MESSAGE_TYPE`` (see the tests) keep the two in agreement.

Errors: malformed bytes raise :class:`~spacetime_sched.ProtocolError` naming the message and
what was wrong (never ``IndexError`` or ``struct.error``); a message that cannot be encoded
(a field out of range, a wrong type) raises :class:`~spacetime_sched.EncodeError` naming the
field, e.g. ``CallReducer.request_id: expected u32 in 0..4294967295, got -1``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NoReturn

from .._errors import EncodeError, ProtocolError
from .._identity import ConnectionId, Identity
from .._time import TimeDuration, Timestamp
from ._messages import (
    CallProcedure,
    CallReducer,
    ClientMessage,
    EventTable,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTable,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    ProcedureStatus,
    QueryRows,
    QuerySetId,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerOutcome,
    ReducerResult,
    ServerMessage,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TableUpdateRows,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
)
from ._rows import BsatnRowList, FixedSize, RowOffsets, RowSizeHint

__all__ = [
    "decode_client_message",
    "decode_client_message_from",
    "decode_server_message",
    "PlainReducerResult",
    "decode_server_message_from",
    "encode_call_reducer",
    "read_plain_reducer_result",
    "encode_client_message",
    "encode_server_message",
]

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
# ReducerResult header after the tag: request_id u32, timestamp i64, outcome tag u8.
_REDUCER_RESULT_HEAD = struct.Struct("<IqB")
# CallReducer / CallProcedure header: tag u8, request_id u32, flags u8, name length u32.
_CALL_HEAD = struct.Struct("<BIBI")

_U_RANGES = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFF_FFFF, "u64": 0xFFFF_FFFF_FFFF_FFFF}

_CLIENT_NAMES = ("Subscribe", "Unsubscribe", "OneOffQuery", "CallReducer", "CallProcedure")
_SERVER_NAMES = (
    "InitialConnection",
    "SubscribeApplied",
    "UnsubscribeApplied",
    "SubscriptionError",
    "TransactionUpdate",
    "OneOffQueryResult",
    "ReducerResult",
    "ProcedureResult",
)


class _Malformed(Exception):
    """Internal: raised deep in a decoder, turned into a ProtocolError with context on top."""


# --- decoding -----------------------------------------------------------------------------------
#
# Every reader takes the buffer and a position and returns ``(value, new_position)``. Fixed-size
# reads rely on ``struct.unpack_from`` / indexing raising on truncation; the top-level functions
# turn those into ProtocolError. Lengths read from the data are checked before use, so a bogus
# length can never make us allocate or loop more than the buffer allows.


def _read_bytes(buf: bytes, pos: int, what: str, suffix: str = "") -> tuple[bytes, int]:
    # ``what + suffix`` names the field; it is only joined when reporting an error.
    (length,) = _U32.unpack_from(buf, pos)
    start = pos + 4
    end = start + length
    if end > len(buf):
        raise _Malformed(
            f"{what}{suffix}: length {length} at offset {pos} runs past the end of the data "
            f"({len(buf) - start} bytes left)"
        )
    return buf[start:end], end


def _read_str(buf: bytes, pos: int, what: str, suffix: str = "") -> tuple[str, int]:
    raw, end = _read_bytes(buf, pos, what, suffix)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise _Malformed(f"{what}{suffix}: invalid UTF-8 at offset {pos + 4 + exc.start}") from None


def _read_count(
    buf: bytes, pos: int, min_item_size: int, what: str, suffix: str = ""
) -> tuple[int, int]:
    """Read an array length and check that many items can fit in the rest of the buffer."""
    (count,) = _U32.unpack_from(buf, pos)
    pos += 4
    if count * min_item_size > len(buf) - pos:
        raise _Malformed(
            f"{what}{suffix}: {count} elements at offset {pos - 4} cannot fit in the "
            f"{len(buf) - pos} bytes left"
        )
    return count, pos


def _read_query_set_id(buf: bytes, pos: int) -> tuple[QuerySetId, int]:
    (value,) = _U32.unpack_from(buf, pos)
    return QuerySetId(value), pos + 4


def _read_row_list(buf: bytes, pos: int, what: str, suffix: str) -> tuple[BsatnRowList, int]:
    tag = buf[pos]
    pos += 1
    hint: RowSizeHint
    if tag == 0:
        (size,) = _U16.unpack_from(buf, pos)
        hint = FixedSize(size)
        pos += 2
    elif tag == 1:
        count, pos = _read_count(buf, pos, 8, what, f"{suffix}.size_hint.RowOffsets")
        offsets = struct.unpack_from(f"<{count}Q", buf, pos)
        hint = RowOffsets(offsets)
        pos += 8 * count
    else:
        raise _Malformed(
            f"{what}{suffix}.size_hint: unknown RowSizeHint tag {tag} at offset {pos - 1}"
        )
    (length,) = _U32.unpack_from(buf, pos)
    end = pos + 4 + length
    if end > len(buf):
        _read_bytes(buf, pos, what, f"{suffix}.rows_data")  # raises, naming the field
    return BsatnRowList(hint, buf[pos + 4 : end]), end


def _read_query_rows(buf: bytes, pos: int, what: str) -> tuple[QueryRows, int]:
    count, pos = _read_count(buf, pos, 9, what, ".tables")
    tables = []
    for _ in range(count):
        name, pos = _read_str(buf, pos, what, ".tables[].table")
        rows, pos = _read_row_list(buf, pos, what, ".tables[].rows")
        tables.append(SingleTableRows(name, rows))
    return QueryRows(tuple(tables)), pos


def _read_table_update_rows(buf: bytes, pos: int, what: str) -> tuple[TableUpdateRows, int]:
    tag = buf[pos]
    pos += 1
    if tag == 0:
        inserts, pos = _read_row_list(buf, pos, what, ".PersistentTable.inserts")
        deletes, pos = _read_row_list(buf, pos, what, ".PersistentTable.deletes")
        return PersistentTable(inserts, deletes), pos
    if tag == 1:
        events, pos = _read_row_list(buf, pos, what, ".EventTable.events")
        return EventTable(events), pos
    raise _Malformed(
        f"{what}.query_sets[].tables[].rows[]: unknown TableUpdateRows tag {tag} "
        f"at offset {pos - 1}"
    )


def _read_transaction_update(buf: bytes, pos: int, what: str) -> tuple[TransactionUpdate, int]:
    set_count, pos = _read_count(buf, pos, 8, what, ".query_sets")
    query_sets = []
    for _ in range(set_count):
        query_set_id, pos = _read_query_set_id(buf, pos)
        table_count, pos = _read_count(buf, pos, 8, what, ".query_sets[].tables")
        tables = []
        for _ in range(table_count):
            name, pos = _read_str(buf, pos, what, ".query_sets[].tables[].table_name")
            rows_count, pos = _read_count(buf, pos, 1, what, ".query_sets[].tables[].rows")
            rows = []
            for _ in range(rows_count):
                update, pos = _read_table_update_rows(buf, pos, what)
                rows.append(update)
            tables.append(TableUpdate(name, tuple(rows)))
        query_sets.append(QuerySetUpdate(query_set_id, tuple(tables)))
    return TransactionUpdate(tuple(query_sets)), pos


def _read_initial_connection(buf: bytes, pos: int) -> tuple[InitialConnection, int]:
    identity = Identity.from_bytes(buf[pos : pos + 32])
    connection_id = ConnectionId.from_bytes(buf[pos + 32 : pos + 48])
    token, pos = _read_str(buf, pos + 48, "token")
    return InitialConnection(identity, connection_id, token), pos


def _read_subscribe_applied(buf: bytes, pos: int) -> tuple[SubscribeApplied, int]:
    (request_id,) = _U32.unpack_from(buf, pos)
    query_set_id, pos = _read_query_set_id(buf, pos + 4)
    rows, pos = _read_query_rows(buf, pos, "rows")
    return SubscribeApplied(request_id, query_set_id, rows), pos


def _read_unsubscribe_applied(buf: bytes, pos: int) -> tuple[UnsubscribeApplied, int]:
    (request_id,) = _U32.unpack_from(buf, pos)
    query_set_id, pos = _read_query_set_id(buf, pos + 4)
    tag = buf[pos]
    rows: QueryRows | None
    if tag == 0:
        rows, pos = _read_query_rows(buf, pos + 1, "rows.some")
    elif tag == 1:
        rows, pos = None, pos + 1
    else:
        raise _Malformed(f"rows: unknown Option tag {tag} at offset {pos}")
    return UnsubscribeApplied(request_id, query_set_id, rows), pos


def _read_subscription_error(buf: bytes, pos: int) -> tuple[SubscriptionError, int]:
    tag = buf[pos]
    request_id: int | None
    if tag == 0:
        (request_id,) = _U32.unpack_from(buf, pos + 1)
        pos += 5
    elif tag == 1:
        request_id, pos = None, pos + 1
    else:
        raise _Malformed(f"request_id: unknown Option tag {tag} at offset {pos}")
    query_set_id, pos = _read_query_set_id(buf, pos)
    error, pos = _read_str(buf, pos, "error")
    return SubscriptionError(request_id, query_set_id, error), pos


def _read_transaction_update_message(buf: bytes, pos: int) -> tuple[TransactionUpdate, int]:
    return _read_transaction_update(buf, pos, "")


def _read_one_off_query_result(buf: bytes, pos: int) -> tuple[OneOffQueryResult, int]:
    (request_id,) = _U32.unpack_from(buf, pos)
    tag = buf[pos + 4]
    pos += 5
    result: QueryRows | str
    if tag == 0:
        result, pos = _read_query_rows(buf, pos, "result.ok")
    elif tag == 1:
        result, pos = _read_str(buf, pos, "result.err")
    else:
        raise _Malformed(f"result: unknown Result tag {tag} at offset {pos - 1}")
    return OneOffQueryResult(request_id, result), pos


_OK_EMPTY = ReducerOkEmpty()


def _read_reducer_result(buf: bytes, pos: int) -> tuple[ReducerResult, int]:
    request_id, micros, tag = _REDUCER_RESULT_HEAD.unpack_from(buf, pos)
    pos += 13
    outcome: ReducerOutcome
    if tag == 1:
        outcome = _OK_EMPTY
    elif tag == 0:
        ret_value, pos = _read_bytes(buf, pos, "result.Ok.ret_value")
        update, pos = _read_transaction_update(buf, pos, "result.Ok.transaction_update")
        outcome = ReducerOk(ret_value, update)
    elif tag == 2:
        error, pos = _read_bytes(buf, pos, "result.Err")
        outcome = ReducerErr(error)
    elif tag == 3:
        message, pos = _read_str(buf, pos, "result.InternalError")
        outcome = ReducerInternalError(message)
    else:
        raise _Malformed(f"result: unknown ReducerOutcome tag {tag} at offset {pos - 1}")
    return ReducerResult(request_id, Timestamp._unchecked(micros), outcome), pos


class PlainReducerResult:
    """A ``ReducerResult`` that changed none of the caller's rows (outcome ``OkEmpty``, or
    ``Ok`` with no query sets), left as its three numbers.

    Every reducer call's answer is one of these unless the call changed subscribed rows. A
    client with a thousand calls in flight gets a thousand in one v3 frame: decoding each into
    four frozen objects that then wait for their callers was a large part of its garbage
    collector's work. This is one small object; the caller makes its own result from it.
    ``ReducerResult(request_id, Timestamp(micros), ReducerOk(ret_value, TransactionUpdate(())))``
    (or ``ReducerOkEmpty()`` when ``ret_value`` is empty) is what it stands for.
    """

    __slots__ = ("micros", "request_id", "ret_value")

    def __init__(self, request_id: int, micros: int, ret_value: bytes) -> None:
        self.request_id = request_id
        self.micros = micros
        self.ret_value = ret_value

    def __repr__(self) -> str:
        return (
            f"PlainReducerResult(request_id={self.request_id}, micros={self.micros}, "
            f"ret_value={self.ret_value!r})"
        )


_PLAIN_HEAD = struct.Struct("<BIqB")  # message tag 6, request id, timestamp, outcome tag
_EMPTY_OK_TAIL = struct.Struct("<II")  # ret_value length, query set count


def read_plain_reducer_result(buf: bytes, offset: int) -> tuple[PlainReducerResult, int] | None:
    """The :class:`PlainReducerResult` at ``offset`` of ``buf`` and the offset after it;
    ``None`` if what is there is anything else (decode it in full then, errors included)."""
    if buf[offset] != 6 or len(buf) - offset < 14:
        return None
    _, request_id, micros, outcome = _PLAIN_HEAD.unpack_from(buf, offset)
    if outcome == 1:  # OkEmpty
        return PlainReducerResult(request_id, micros, b""), offset + 14
    if outcome != 0 or len(buf) - offset < 22:
        return None
    (length,) = _U32.unpack_from(buf, offset + 14)
    end = offset + 18 + length
    if end + 4 > len(buf) or _U32.unpack_from(buf, end)[0] != 0:
        return None  # truncated, or Ok with row changes
    return PlainReducerResult(request_id, micros, buf[offset + 18 : end]), end + 4


def _read_procedure_result(buf: bytes, pos: int) -> tuple[ProcedureResult, int]:
    tag = buf[pos]
    status: ProcedureStatus
    if tag == 0:
        value, pos = _read_bytes(buf, pos + 1, "status.Returned")
        status = ProcedureReturned(value)
    elif tag == 1:
        message, pos = _read_str(buf, pos + 1, "status.InternalError")
        status = ProcedureInternalError(message)
    else:
        raise _Malformed(f"status: unknown ProcedureStatus tag {tag} at offset {pos}")
    timestamp, duration = struct.unpack_from("<qq", buf, pos)
    (request_id,) = _U32.unpack_from(buf, pos + 16)
    return (
        ProcedureResult(
            status,
            Timestamp._unchecked(timestamp),
            TimeDuration._unchecked(duration),
            request_id,
        ),
        pos + 20,
    )


_SERVER_READERS: tuple[Callable[[bytes, int], tuple[Any, int]], ...] = (
    _read_initial_connection,
    _read_subscribe_applied,
    _read_unsubscribe_applied,
    _read_subscription_error,
    _read_transaction_update_message,
    _read_one_off_query_result,
    _read_reducer_result,
    _read_procedure_result,
)


def _read_subscribe(buf: bytes, pos: int) -> tuple[Subscribe, int]:
    (request_id,) = _U32.unpack_from(buf, pos)
    query_set_id, pos = _read_query_set_id(buf, pos + 4)
    count, pos = _read_count(buf, pos, 4, "query_strings")
    queries = []
    for index in range(count):
        query, pos = _read_str(buf, pos, f"query_strings[{index}]")
        queries.append(query)
    return Subscribe(request_id, query_set_id, tuple(queries)), pos


def _read_unsubscribe(buf: bytes, pos: int) -> tuple[Unsubscribe, int]:
    (request_id,) = _U32.unpack_from(buf, pos)
    query_set_id, pos = _read_query_set_id(buf, pos + 4)
    tag = buf[pos]
    if tag > 1:
        raise _Malformed(f"flags: unknown UnsubscribeFlags tag {tag} at offset {pos}")
    return Unsubscribe(request_id, query_set_id, UnsubscribeFlags(tag)), pos + 1


def _read_one_off_query(buf: bytes, pos: int) -> tuple[OneOffQuery, int]:
    (request_id,) = _U32.unpack_from(buf, pos)
    query, pos = _read_str(buf, pos + 4, "query_string")
    return OneOffQuery(request_id, query), pos


def _read_call(buf: bytes, pos: int, field: str) -> tuple[int, int, str, bytes, int]:
    _tag, request_id, flags, name_len = _CALL_HEAD.unpack_from(buf, pos - 1)
    start = pos + 9
    end = start + name_len
    if end > len(buf):
        raise _Malformed(f"{field}: length {name_len} at offset {pos + 5} runs past the end")
    try:
        name = buf[start:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed(f"{field}: invalid UTF-8 at offset {start + exc.start}") from None
    args, pos = _read_bytes(buf, end, "args")
    return request_id, flags, name, args, pos


def _read_call_reducer(buf: bytes, pos: int) -> tuple[CallReducer, int]:
    request_id, flags, name, args, pos = _read_call(buf, pos, "reducer")
    return CallReducer(request_id, flags, name, args), pos


def _read_call_procedure(buf: bytes, pos: int) -> tuple[CallProcedure, int]:
    request_id, flags, name, args, pos = _read_call(buf, pos, "procedure")
    return CallProcedure(request_id, flags, name, args), pos


_CLIENT_READERS: tuple[Callable[[bytes, int], tuple[Any, int]], ...] = (
    _read_subscribe,
    _read_unsubscribe,
    _read_one_off_query,
    _read_call_reducer,
    _read_call_procedure,
)


def _decode_from(
    kind: str,
    names: tuple[str, ...],
    readers: tuple[Callable[[bytes, int], tuple[Any, int]], ...],
    data: bytes | bytearray | memoryview,
    offset: int,
) -> tuple[Any, int]:
    buf = data if type(data) is bytes else bytes(data)
    if offset >= len(buf):
        raise ProtocolError(f"{kind}: no data at offset {offset} (the buffer is {len(buf)} bytes)")
    tag = buf[offset]
    if tag >= len(readers):
        raise ProtocolError(
            f"{kind}: unknown message tag {tag} at offset {offset} (expected 0..{len(readers) - 1})"
        )
    try:
        return readers[tag](buf, offset + 1)
    except _Malformed as exc:
        raise ProtocolError(f"malformed {kind}.{names[tag]}: {str(exc).lstrip('.')}") from None
    except (struct.error, IndexError, ValueError) as exc:
        # struct.error / IndexError: a fixed-size read ran off the end of the buffer;
        # ValueError: a wrong-length Identity / ConnectionId slice, ditto.
        raise ProtocolError(
            f"truncated {kind}.{names[tag]}: the {len(buf) - offset} bytes from offset {offset} "
            f"end in the middle of the message ({exc})"
        ) from None


def decode_server_message_from(
    data: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[ServerMessage, int]:
    """Decode one ServerMessage starting at ``offset``; return it and the offset after it."""
    return _decode_from("ServerMessage", _SERVER_NAMES, _SERVER_READERS, data, offset)


def decode_client_message_from(
    data: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[ClientMessage, int]:
    """Decode one ClientMessage starting at ``offset``; return it and the offset after it."""
    return _decode_from("ClientMessage", _CLIENT_NAMES, _CLIENT_READERS, data, offset)


def _reject_trailing(kind: str, message: object, end: int, size: int) -> NoReturn:
    raise ProtocolError(
        f"{kind}.{type(message).__name__}: {size - end} unexpected bytes after the message "
        f"(it ends at offset {end} of {size})"
    )


def decode_server_message(data: bytes | bytearray | memoryview) -> ServerMessage:
    """Decode exactly one BSATN ServerMessage (the whole buffer, no compression tag)."""
    message, end = decode_server_message_from(data)
    if end != len(data):
        _reject_trailing("ServerMessage", message, end, len(data))
    return message


def decode_client_message(data: bytes | bytearray | memoryview) -> ClientMessage:
    """Decode exactly one BSATN ClientMessage (the whole buffer)."""
    message, end = decode_client_message_from(data)
    if end != len(data):
        _reject_trailing("ClientMessage", message, end, len(data))
    return message


# --- encoding -----------------------------------------------------------------------------------


def _bad(what: str, expected: str, value: object) -> NoReturn:
    raise EncodeError(f"{what}: expected {expected}, got {value!r}")


def _put_uint(out: bytearray, packer: struct.Struct, kind: str, value: object, what: str) -> None:
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        _bad(what, kind, value)
    try:
        out += packer.pack(value)
    except struct.error:
        _bad(what, f"{kind} in 0..{_U_RANGES[kind]}", value)


def _put_u32(out: bytearray, value: object, what: str) -> None:
    _put_uint(out, _U32, "u32", value, what)


def _put_u8(out: bytearray, value: object, what: str) -> None:
    _put_uint(out, _U8, "u8", value, what)


def _put_bytes(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        _bad(what, "bytes", value)
    out += _U32.pack(len(value) if not isinstance(value, memoryview) else value.nbytes)
    out += value


def _put_str(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, str):
        _bad(what, "str", value)
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{what}: not encodable as UTF-8 ({exc.reason})") from None
    out += _U32.pack(len(raw))
    out += raw


def _put_query_set_id(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, QuerySetId):
        _bad(what, "QuerySetId", value)
    _put_u32(out, value.id, f"{what}.id")


def _put_row_list(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, BsatnRowList):
        _bad(what, "BsatnRowList", value)
    hint = value.size_hint
    if isinstance(hint, FixedSize):
        out.append(0)
        _put_uint(out, _U16, "u16", hint.size, f"{what}.size_hint.FixedSize")
    elif isinstance(hint, RowOffsets):
        out.append(1)
        offsets = hint.offsets
        out += _U32.pack(len(offsets))
        try:
            out += struct.pack(f"<{len(offsets)}Q", *offsets)
        except struct.error:
            scratch = bytearray()
            for index, offset in enumerate(offsets):
                _put_uint(scratch, _U64, "u64", offset, f"{what}.size_hint.RowOffsets[{index}]")
            raise  # unreachable in practice: _put_uint found the culprit above
    else:
        _bad(f"{what}.size_hint", "FixedSize or RowOffsets", hint)
    _put_bytes(out, value.rows_data, f"{what}.rows_data")


def _put_query_rows(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, QueryRows):
        _bad(what, "QueryRows", value)
    out += _U32.pack(len(value.tables))
    for index, table in enumerate(value.tables):
        where = f"{what}.tables[{index}]"
        if not isinstance(table, SingleTableRows):
            _bad(where, "SingleTableRows", table)
        _put_str(out, table.table, f"{where}.table")
        _put_row_list(out, table.rows, f"{where}.rows")


def _put_transaction_update(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, TransactionUpdate):
        _bad(what, "TransactionUpdate", value)
    out += _U32.pack(len(value.query_sets))
    for set_index, query_set in enumerate(value.query_sets):
        where = f"{what}.query_sets[{set_index}]"
        if not isinstance(query_set, QuerySetUpdate):
            _bad(where, "QuerySetUpdate", query_set)
        _put_query_set_id(out, query_set.query_set_id, f"{where}.query_set_id")
        out += _U32.pack(len(query_set.tables))
        for table_index, table in enumerate(query_set.tables):
            table_where = f"{where}.tables[{table_index}]"
            if not isinstance(table, TableUpdate):
                _bad(table_where, "TableUpdate", table)
            _put_str(out, table.table_name, f"{table_where}.table_name")
            out += _U32.pack(len(table.rows))
            for rows_index, rows in enumerate(table.rows):
                rows_where = f"{table_where}.rows[{rows_index}]"
                if isinstance(rows, PersistentTable):
                    out.append(0)
                    _put_row_list(out, rows.inserts, f"{rows_where}.inserts")
                    _put_row_list(out, rows.deletes, f"{rows_where}.deletes")
                elif isinstance(rows, EventTable):
                    out.append(1)
                    _put_row_list(out, rows.events, f"{rows_where}.events")
                else:
                    _bad(rows_where, "PersistentTable or EventTable", rows)


def _put_timestamp(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, Timestamp):
        _bad(what, "Timestamp", value)
    out += _I64.pack(value.micros_since_epoch)


def _put_duration(out: bytearray, value: object, what: str) -> None:
    if not isinstance(value, TimeDuration):
        _bad(what, "TimeDuration", value)
    out += _I64.pack(value.micros)


def _encode_call(message: CallReducer | CallProcedure, name: object, field: str) -> bytes:
    """The fast path: one struct.pack for the header, one join; validation only on failure."""
    args = message.args
    try:
        raw_name = name.encode("utf-8")  # type: ignore[attr-defined]
        head = _CALL_HEAD.pack(message.TAG, message.request_id, message.flags, len(raw_name))
        if type(args) is bytes and type(message.request_id) is int and type(message.flags) is int:
            return b"".join((head, raw_name, _U32.pack(len(args)), args))
    except (AttributeError, UnicodeEncodeError, struct.error):
        pass
    # Slow path: find the offending field and say which one it is.
    kind = type(message).__name__
    out = bytearray((message.TAG,))
    _put_u32(out, message.request_id, f"{kind}.request_id")
    _put_u8(out, message.flags, f"{kind}.flags")
    _put_str(out, name, f"{kind}.{field}")
    _put_bytes(out, args, f"{kind}.args")
    return bytes(out)


def encode_call_reducer(request_id: int, reducer: str, args: bytes) -> bytes:
    """``encode_client_message(CallReducer(request_id, 0, reducer, args))`` without making the
    message: every reducer call of the client goes through here, so it skips the frozen
    object and the dispatch on its type. Anything unusual takes the checked path (same bytes,
    same errors)."""
    if type(args) is bytes and type(reducer) is str:
        try:
            raw_name = reducer.encode("utf-8")
            head = _CALL_HEAD.pack(3, request_id, 0, len(raw_name))
            return b"".join((head, raw_name, _U32.pack(len(args)), args))
        except (UnicodeEncodeError, struct.error):
            pass
    return encode_client_message(CallReducer(request_id, 0, reducer, args))


def encode_client_message(message: ClientMessage) -> bytes:
    """Encode a ClientMessage as BSATN (what goes in a binary WebSocket frame)."""
    if type(message) is CallReducer:
        return _encode_call(message, message.reducer, "reducer")
    if type(message) is CallProcedure:
        return _encode_call(message, message.procedure, "procedure")
    kind = type(message).__name__
    out = bytearray()
    if isinstance(message, Subscribe):
        out.append(0)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_query_set_id(out, message.query_set_id, f"{kind}.query_set_id")
        out += _U32.pack(len(message.query_strings))
        for index, query in enumerate(message.query_strings):
            _put_str(out, query, f"{kind}.query_strings[{index}]")
    elif isinstance(message, Unsubscribe):
        out.append(1)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_query_set_id(out, message.query_set_id, f"{kind}.query_set_id")
        _put_u8(out, int(message.flags), f"{kind}.flags")
    elif isinstance(message, OneOffQuery):
        out.append(2)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_str(out, message.query_string, f"{kind}.query_string")
    else:
        _bad(
            "ClientMessage",
            "Subscribe, Unsubscribe, OneOffQuery, CallReducer or CallProcedure",
            message,
        )
    return bytes(out)


def encode_server_message(message: ServerMessage) -> bytes:
    """Encode a ServerMessage as BSATN (without the frame's compression tag)."""
    kind = type(message).__name__
    out = bytearray()
    if isinstance(message, ReducerResult):
        out.append(6)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_timestamp(out, message.timestamp, f"{kind}.timestamp")
        outcome = message.result
        if isinstance(outcome, ReducerOkEmpty):
            out.append(1)
        elif isinstance(outcome, ReducerOk):
            out.append(0)
            _put_bytes(out, outcome.ret_value, f"{kind}.result.ret_value")
            _put_transaction_update(
                out, outcome.transaction_update, f"{kind}.result.transaction_update"
            )
        elif isinstance(outcome, ReducerErr):
            out.append(2)
            _put_bytes(out, outcome.error, f"{kind}.result.error")
        elif isinstance(outcome, ReducerInternalError):
            out.append(3)
            _put_str(out, outcome.message, f"{kind}.result.message")
        else:
            _bad(f"{kind}.result", "a ReducerOutcome", outcome)
    elif isinstance(message, InitialConnection):
        out.append(0)
        if not isinstance(message.identity, Identity):
            _bad(f"{kind}.identity", "Identity", message.identity)
        if not isinstance(message.connection_id, ConnectionId):
            _bad(f"{kind}.connection_id", "ConnectionId", message.connection_id)
        out += message.identity.to_bytes()
        out += message.connection_id.to_bytes()
        _put_str(out, message.token, f"{kind}.token")
    elif isinstance(message, SubscribeApplied):
        out.append(1)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_query_set_id(out, message.query_set_id, f"{kind}.query_set_id")
        _put_query_rows(out, message.rows, f"{kind}.rows")
    elif isinstance(message, UnsubscribeApplied):
        out.append(2)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_query_set_id(out, message.query_set_id, f"{kind}.query_set_id")
        if message.rows is None:
            out.append(1)
        else:
            out.append(0)
            _put_query_rows(out, message.rows, f"{kind}.rows")
    elif isinstance(message, SubscriptionError):
        out.append(3)
        if message.request_id is None:
            out.append(1)
        else:
            out.append(0)
            _put_u32(out, message.request_id, f"{kind}.request_id")
        _put_query_set_id(out, message.query_set_id, f"{kind}.query_set_id")
        _put_str(out, message.error, f"{kind}.error")
    elif isinstance(message, TransactionUpdate):
        out.append(4)
        _put_transaction_update(out, message, kind)
    elif isinstance(message, OneOffQueryResult):
        out.append(5)
        _put_u32(out, message.request_id, f"{kind}.request_id")
        if isinstance(message.result, str):
            out.append(1)
            _put_str(out, message.result, f"{kind}.result")
        else:
            out.append(0)
            _put_query_rows(out, message.result, f"{kind}.result")
    elif isinstance(message, ProcedureResult):
        out.append(7)
        status = message.status
        if isinstance(status, ProcedureReturned):
            out.append(0)
            _put_bytes(out, status.value, f"{kind}.status.value")
        elif isinstance(status, ProcedureInternalError):
            out.append(1)
            _put_str(out, status.message, f"{kind}.status.message")
        else:
            _bad(f"{kind}.status", "a ProcedureStatus", status)
        _put_timestamp(out, message.timestamp, f"{kind}.timestamp")
        _put_duration(
            out, message.total_host_execution_duration, f"{kind}.total_host_execution_duration"
        )
        _put_u32(out, message.request_id, f"{kind}.request_id")
    else:
        _bad("ServerMessage", "one of the v2 server message classes", message)
    return bytes(out)
