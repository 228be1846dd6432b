"""Identity and ConnectionId: big-endian hex for people, little-endian bytes on the wire."""

from __future__ import annotations

import pytest

from spacetime_sched._identity import ConnectionId, Identity

SERVER_HEX = "c200" + "0123456789abcdef" * 3 + "0011223344556677"[:12]


def test_identity_hex_is_big_endian_and_bytes_are_little_endian() -> None:
    ident = Identity.from_hex(SERVER_HEX)
    assert ident.to_hex() == SERVER_HEX
    assert str(ident) == SERVER_HEX
    assert ident.to_be_bytes() == bytes.fromhex(SERVER_HEX)
    assert ident.to_bytes() == bytes.fromhex(SERVER_HEX)[::-1]
    assert ident.to_bytes()[-2:] == b"\x00\xc2"
    assert Identity.from_bytes(ident.to_bytes()) == ident
    assert Identity.from_be_bytes(ident.to_be_bytes()) == ident
    assert int(ident) == ident.value == int(SERVER_HEX, 16)


@pytest.mark.parametrize("text", [SERVER_HEX, "0x" + SERVER_HEX, SERVER_HEX.upper()])
def test_identity_from_hex_accepts_an_optional_prefix_and_either_case(text: str) -> None:
    assert Identity.from_hex(text).to_hex() == SERVER_HEX


@pytest.mark.parametrize("text", ["", "c200", SERVER_HEX + "0", SERVER_HEX[:-1] + "g", "0x"])
def test_identity_from_hex_rejects_anything_but_64_hex_digits(text: str) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        Identity.from_hex(text)


def test_identity_values_are_validated() -> None:
    assert Identity(0) == Identity.zero()
    assert Identity.zero().is_zero()
    assert Identity(2**256 - 1).to_hex() == "f" * 64
    with pytest.raises(ValueError, match="outside the u256 range"):
        Identity(2**256)
    with pytest.raises(ValueError, match="outside the u256 range"):
        Identity(-1)
    with pytest.raises(TypeError, match="expected int"):
        Identity(True)
    with pytest.raises(TypeError, match="expected int"):
        Identity("c200")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 32 bytes"):
        Identity.from_bytes(b"\x00" * 31)


def test_identity_is_a_small_hashable_ordered_value() -> None:
    a, b = Identity(1), Identity(2)
    assert a < b
    assert {a, Identity(1)} == {a}
    assert repr(Identity.from_hex(SERVER_HEX)) == f"Identity({SERVER_HEX[:8]}…{SERVER_HEX[-8:]})"
    with pytest.raises(AttributeError):
        a.value = 3  # type: ignore[misc]


def test_connection_id_round_trips_hex_and_bytes() -> None:
    text = "00112233445566778899aabbccddeeff"
    cid = ConnectionId.from_hex("0x" + text)
    assert cid.to_hex() == str(cid) == text
    assert cid.to_bytes() == bytes.fromhex(text)[::-1]
    assert ConnectionId.from_bytes(cid.to_bytes()) == cid
    assert ConnectionId.from_be_bytes(bytes.fromhex(text)) == cid
    assert repr(cid) == f"ConnectionId({text})"
    with pytest.raises(ValueError, match="32 hex digits"):
        ConnectionId.from_hex(text + "00")
    with pytest.raises(ValueError, match="outside the u128 range"):
        ConnectionId(2**128)


def test_connection_id_zero_is_reserved_and_random_never_returns_it() -> None:
    assert ConnectionId.zero().is_zero()
    assert ConnectionId(0) == ConnectionId.zero()
    ids = {ConnectionId.random() for _ in range(200)}
    assert len(ids) == 200
    assert not any(cid.is_zero() for cid in ids)
    assert all(0 < cid.value < 2**128 for cid in ids)
