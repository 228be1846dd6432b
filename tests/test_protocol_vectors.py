"""Every ``v2.*`` golden vector decodes into our message classes and encodes back byte for byte.

The vectors were produced by the official TypeScript SDK; each holds one whole ClientMessage or
ServerMessage. Decoding is checked field by field against the vector's SATS-JSON, not only by
re-encoding, so a symmetric mistake in encoder and decoder would still be caught.
"""

from __future__ import annotations

from typing import Any

import pytest
from _protocol_support import message_json, vectors_named

from spacetime_sched import ProtocolError
from spacetime_sched.protocol import (
    CallReducer,
    InitialConnection,
    OneOffQueryResult,
    ReducerErr,
    ReducerOutcome,
    ReducerResult,
    decode_client_frame,
    decode_client_message,
    decode_client_message_from,
    decode_server_frame,
    decode_server_message,
    decode_server_message_from,
    encode_client_frame,
    encode_client_message,
    encode_server_frame,
    encode_server_message,
)

V2 = vectors_named("v2.")
CLIENT = [v for v in V2 if v["name"].startswith("v2.ClientMessage.")]
SERVER = [v for v in V2 if v["name"].startswith("v2.ServerMessage.")]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def test_the_vectors_cover_every_message_variant() -> None:
    client_variants = {v["name"].split(".")[2] for v in CLIENT}
    server_variants = {v["name"].split(".")[2] for v in SERVER}
    assert client_variants == {
        "Subscribe",
        "Unsubscribe",
        "OneOffQuery",
        "CallReducer",
        "CallProcedure",
    }
    assert server_variants == {
        "InitialConnection",
        "SubscribeApplied",
        "UnsubscribeApplied",
        "SubscriptionError",
        "TransactionUpdate",
        "OneOffQueryResult",
        "ReducerResult",
        "ProcedureResult",
    }


@pytest.mark.parametrize("vector", CLIENT, ids=_ids(CLIENT))
def test_client_vector_decodes_to_its_json_and_reencodes(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["bsatn"])
    message = decode_client_message(data)
    assert type(message).__name__ == vector["name"].split(".")[2]
    assert message_json(message) == vector["json"]
    assert encode_client_message(message) == data
    # A v2 client frame is the bare message; the frame API agrees.
    assert decode_client_frame(data) == [message]
    assert encode_client_frame(message) == data


@pytest.mark.parametrize("vector", SERVER, ids=_ids(SERVER))
def test_server_vector_decodes_to_its_json_and_reencodes(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["bsatn"])
    message = decode_server_message(data)
    assert type(message).__name__ == vector["name"].split(".")[2]
    assert message_json(message) == vector["json"]
    assert encode_server_message(message) == data
    # Over the wire a server frame adds the compression tag; small frames stay uncompressed.
    frame = encode_server_frame(message, "gzip", threshold=len(data))
    assert frame == b"\x00" + data
    assert decode_server_frame(frame) == [message]


def test_all_client_vectors_in_one_v3_frame() -> None:
    data = b"".join(bytes.fromhex(v["bsatn"]) for v in CLIENT)
    messages = decode_client_frame(data, batched=True)
    assert [message_json(m) for m in messages] == [v["json"] for v in CLIENT]
    assert encode_client_frame(messages, batched=True) == data


def test_all_server_vectors_in_one_v3_frame() -> None:
    data = b"".join(bytes.fromhex(v["bsatn"]) for v in SERVER)
    messages = decode_server_frame(b"\x00" + data, batched=True)
    assert [message_json(m) for m in messages] == [v["json"] for v in SERVER]
    assert encode_server_frame(messages, batched=True, threshold=len(data)) == b"\x00" + data


def test_the_from_functions_walk_a_buffer_message_by_message() -> None:
    data = b"".join(bytes.fromhex(v["bsatn"]) for v in SERVER[:3])
    offset = 0
    for vector in SERVER[:3]:
        message, offset = decode_server_message_from(data, offset)
        assert message_json(message) == vector["json"]
    assert offset == len(data)
    first = bytes.fromhex(CLIENT[0]["bsatn"])
    _message, end = decode_client_message_from(first + b"\xff", 0)
    assert end == len(first)


@pytest.mark.parametrize("vector", V2, ids=_ids(V2))
def test_every_truncation_of_a_vector_is_a_protocol_error(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["bsatn"])
    decode = decode_client_message if "ClientMessage" in vector["name"] else decode_server_message
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            decode(data[:cut])


@pytest.mark.parametrize("vector", V2, ids=_ids(V2))
def test_trailing_bytes_after_a_v2_message_are_a_protocol_error(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["bsatn"]) + b"\x00"
    decode = decode_client_message if "ClientMessage" in vector["name"] else decode_server_message
    with pytest.raises(ProtocolError, match="unexpected bytes after the message"):
        decode(data)


def test_reducer_err_payload_is_a_bsatn_string() -> None:
    [vector] = [v for v in SERVER if v["name"] == "v2.ServerMessage.ReducerResult.Err"]
    message = decode_server_message(bytes.fromhex(vector["bsatn"]))
    match message:
        case ReducerResult(request_id, _timestamp, ReducerOutcome.Err(error)):
            assert request_id == 54
            assert ReducerErr(error).message == "Ungültiger Name"
        case _:
            pytest.fail(f"unexpected message {message!r}")


def test_one_off_query_result_exposes_ok_rows_and_error() -> None:
    by_name = {v["name"]: v for v in SERVER}
    ok = decode_server_message(
        bytes.fromhex(by_name["v2.ServerMessage.OneOffQueryResult.ok"]["bsatn"])
    )
    err = decode_server_message(
        bytes.fromhex(by_name["v2.ServerMessage.OneOffQueryResult.err"]["bsatn"])
    )
    assert isinstance(ok, OneOffQueryResult)
    assert isinstance(err, OneOffQueryResult)
    assert ok.ok
    assert ok.rows is not None
    assert ok.error is None
    assert ok.rows.tables[0].table == "player"
    assert not err.ok
    assert err.rows is None
    assert err.error == "SQL error: unknown column `scroe`"


def test_initial_connection_repr_hides_the_token() -> None:
    [vector] = [v for v in SERVER if v["name"] == "v2.ServerMessage.InitialConnection"]
    message = decode_server_message(bytes.fromhex(vector["bsatn"]))
    assert isinstance(message, InitialConnection)
    assert message.token.startswith("eyJ")
    assert "eyJ" not in repr(message)
    assert "<redacted>" in repr(message)


def test_call_reducer_bytes_match_the_reference_layout() -> None:
    # 03 | request_id u32 | flags 00 | u32 len + name | u32 len + args
    message = CallReducer(request_id=7, flags=0, reducer="add", args=b"\x01\x02")
    assert encode_client_message(message) == (
        b"\x03\x07\x00\x00\x00\x00\x03\x00\x00\x00add\x02\x00\x00\x00\x01\x02"
    )
