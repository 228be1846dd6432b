"""The hand-written codec agrees with the generic SATS codec of the message types.

``CLIENT_MESSAGE_TYPE`` / ``SERVER_MESSAGE_TYPE`` are the vectors' ``type``; any message, encoded
by ``encode_*_message``, must equal its SATS-JSON encoded by ``sats`` with that type, and decode
back to itself. Hypothesis generates the messages.
"""

from __future__ import annotations

from typing import Any

from _protocol_support import message_json, vectors_named
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetime_sched import sats
from spacetime_sched._identity import ConnectionId, Identity
from spacetime_sched._time import TimeDuration, Timestamp
from spacetime_sched.protocol import (
    CLIENT_MESSAGE_TYPE,
    SERVER_MESSAGE_TYPE,
    BsatnRowList,
    CallProcedure,
    CallReducer,
    EventTable,
    FixedSize,
    InitialConnection,
    OneOffQuery,
    OneOffQueryResult,
    PersistentTable,
    ProcedureInternalError,
    ProcedureResult,
    ProcedureReturned,
    QueryRows,
    QuerySetUpdate,
    ReducerErr,
    ReducerInternalError,
    ReducerOk,
    ReducerOkEmpty,
    ReducerResult,
    RowOffsets,
    SingleTableRows,
    Subscribe,
    SubscribeApplied,
    SubscriptionError,
    TableUpdate,
    TransactionUpdate,
    Unsubscribe,
    UnsubscribeApplied,
    UnsubscribeFlags,
    decode_client_message,
    decode_server_message,
    encode_client_message,
    encode_server_message,
)


def test_message_types_equal_the_vector_types() -> None:
    for vector in vectors_named("v2.ClientMessage."):
        assert CLIENT_MESSAGE_TYPE.to_json() == vector["type"]
    for vector in vectors_named("v2.ServerMessage."):
        assert SERVER_MESSAGE_TYPE.to_json() == vector["type"]


# --- strategies ---------------------------------------------------------------------------------

u8 = st.integers(0, 2**8 - 1)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=12)
blob = st.binary(max_size=24)

size_hints = st.one_of(
    st.builds(FixedSize, u16), st.builds(RowOffsets, st.lists(u64, max_size=4).map(tuple))
)
row_lists = st.builds(BsatnRowList, size_hints, blob)
query_rows = st.builds(QueryRows, st.lists(st.builds(SingleTableRows, text, row_lists), max_size=3))
table_update_rows = st.one_of(
    st.builds(PersistentTable, row_lists, row_lists), st.builds(EventTable, row_lists)
)
transaction_updates = st.builds(
    TransactionUpdate,
    st.lists(
        st.builds(
            QuerySetUpdate,
            u32,
            st.lists(
                st.builds(TableUpdate, text, st.lists(table_update_rows, max_size=3)), max_size=3
            ),
        ),
        max_size=3,
    ),
)
timestamps = i64.map(Timestamp)

client_messages = st.one_of(
    st.builds(Subscribe, u32, u32, st.lists(text, max_size=4)),
    st.builds(Unsubscribe, u32, u32, st.sampled_from(UnsubscribeFlags)),
    st.builds(OneOffQuery, u32, text),
    st.builds(CallReducer, u32, u8, text, blob),
    st.builds(CallProcedure, u32, u8, text, blob),
)
server_messages = st.one_of(
    st.builds(
        InitialConnection,
        st.integers(0, 2**256 - 1).map(Identity),
        st.integers(0, 2**128 - 1).map(ConnectionId),
        text,
    ),
    st.builds(SubscribeApplied, u32, u32, query_rows),
    st.builds(UnsubscribeApplied, u32, u32, st.none() | query_rows),
    st.builds(SubscriptionError, st.none() | u32, u32, text),
    transaction_updates,
    st.builds(OneOffQueryResult, u32, query_rows | text),
    st.builds(
        ReducerResult,
        u32,
        timestamps,
        st.one_of(
            st.builds(ReducerOk, blob, transaction_updates),
            st.just(ReducerOkEmpty()),
            st.builds(ReducerErr, blob),
            st.builds(ReducerInternalError, text),
        ),
    ),
    st.builds(
        ProcedureResult,
        st.builds(ProcedureReturned, blob) | st.builds(ProcedureInternalError, text),
        timestamps,
        i64.map(TimeDuration),
        u32,
    ),
)


# --- properties ---------------------------------------------------------------------------------


def _generic_bytes(ty: sats.AlgebraicType, message: Any) -> bytes:
    return sats.encode(ty, sats.from_json(ty, message_json(message)))


@settings(max_examples=150)
@given(client_messages)
def test_client_messages_match_the_generic_codec_and_round_trip(message: Any) -> None:
    data = encode_client_message(message)
    assert data == _generic_bytes(CLIENT_MESSAGE_TYPE, message)
    assert decode_client_message(data) == message


@settings(max_examples=150)
@given(server_messages)
def test_server_messages_match_the_generic_codec_and_round_trip(message: Any) -> None:
    data = encode_server_message(message)
    assert data == _generic_bytes(SERVER_MESSAGE_TYPE, message)
    assert decode_server_message(data) == message


# --- rows in the vectors ------------------------------------------------------------------------


def _row_lists(value: Any) -> list[tuple[str, BsatnRowList]]:
    """Every (table name, row list) inside a decoded message."""
    found: list[tuple[str, BsatnRowList]] = []
    if isinstance(value, SingleTableRows):
        found.append((value.table, value.rows))
    elif isinstance(value, TableUpdate):
        for rows in value.rows:
            lists = (
                [rows.inserts, rows.deletes] if isinstance(rows, PersistentTable) else [rows.events]
            )
            found.extend((value.table_name, row_list) for row_list in lists)
    elif isinstance(value, tuple):
        for item in value:
            found.extend(_row_lists(item))
    elif hasattr(value, "__attrs_attrs__") and not isinstance(value, BsatnRowList):
        for field in value.__attrs_attrs__:
            found.extend(_row_lists(getattr(value, field.name)))
    return found


def test_row_lists_in_the_vectors_decode_with_the_table_row_types() -> None:
    row_types = {
        v["name"].split(".")[1]: sats.AlgebraicType.from_json(v["type"])
        for v in vectors_named("row.")
    }
    checked = 0
    for vector in vectors_named("v2.ServerMessage."):
        message = decode_server_message(bytes.fromhex(vector["bsatn"]))
        for table, row_list in _row_lists(message):
            codec = sats.compile(row_types[table])
            rows = row_list.decode_rows(codec)
            # Re-packing chooses the same size hint the TypeScript SDK chose.
            assert BsatnRowList.from_rows(codec, rows) == row_list
            assert BsatnRowList.from_rows(row_types[table], rows) == row_list
            checked += len(rows)
    assert checked > 20
