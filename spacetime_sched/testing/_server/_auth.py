"""Identities and tokens for the local server: HS256 JWTs signed with a per-server secret.

A real SpacetimeDB signs ES256 JWTs and derives the identity from the ``iss`` and ``sub``
claims (``crates/lib/src/identity.rs``, ``Identity::from_claims``): big-endian, ``c2 00``, a
4-byte checksum (the first 4 bytes of ``blake3(c2 00 + hash)``), then ``hash``, the first 26
bytes of ``blake3(iss + "|" + sub)``. The test server does exactly that, so an (issuer,
subject) pair has the same identity here as on a real server; the identity travels in the
``hex_identity`` claim as in SpacetimeDB's tokens. A token that is malformed, signed with
another secret or whose identity does not match its claims is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any, Final

import blake3

from ..._errors import TokenError
from ..._identity import Identity

__all__ = ["TokenError", "TokenIssuer", "identity_from_claims"]

ISSUER: Final = "localhost"
AUDIENCE: Final = "spacetimedb"
#: How long a ``/v1/identity/websocket-token`` token stays valid.
WEBSOCKET_TOKEN_SECONDS: Final = 60


def identity_from_claims(issuer: str, subject: str) -> Identity:
    """The identity of a (issuer, subject) pair, as ``Identity::from_claims`` computes it."""
    id_hash = blake3.blake3(f"{issuer}|{subject}".encode()).digest()[:26]
    checksum = blake3.blake3(b"\xc2\x00" + id_hash).digest()[:4]
    return Identity.from_be_bytes(b"\xc2\x00" + checksum + id_hash)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Mints and verifies tokens. Give the same ``secret`` to keep tokens valid across runs."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def __repr__(self) -> str:
        return "<TokenIssuer>"

    def mint(
        self, subject: str | None = None, *, issuer: str = ISSUER, lifetime: int | None = None
    ) -> tuple[Identity, str]:
        """A new identity (for a fresh subject unless given) and its signed token."""
        subject = subject if subject is not None else str(uuid.uuid4())
        identity = identity_from_claims(issuer, subject)
        now = int(time.time())
        claims: dict[str, Any] = {
            "hex_identity": identity.to_hex(),
            "sub": subject,
            "iss": issuer,
            "aud": [AUDIENCE],
            "iat": now,
            "exp": None if lifetime is None else now + lifetime,
        }
        return identity, self._sign(claims)

    def websocket_token(self, token: str) -> str:
        """A short-lived token for the same identity as ``token`` (already verified)."""
        claims = self.verify(token)
        _, short = self.mint(claims["sub"], issuer=claims["iss"], lifetime=WEBSOCKET_TOKEN_SECONDS)
        return short

    def identity(self, token: str) -> Identity:
        """The identity a valid ``token`` stands for; :class:`TokenError` otherwise."""
        claims = self.verify(token)
        return Identity.from_hex(claims["hex_identity"])

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid ``token``; :class:`TokenError` otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed token: expected a JWT (header.claims.signature)")
        header_b64, claims_b64, signature_b64 = parts
        try:
            header = json.loads(_unb64(header_b64))
            claims = json.loads(_unb64(claims_b64))
            signature = _unb64(signature_b64)
        except (ValueError, binascii.Error):
            raise TokenError("malformed token: its parts are not base64url JSON") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenError("token is not signed with HS256 by this server")
        expected = self._signature(f"{header_b64}.{claims_b64}")
        if not hmac.compare_digest(signature, expected):
            raise TokenError("token signature is invalid (it was not issued by this server)")
        if not isinstance(claims, dict) or not all(
            isinstance(claims.get(key), str) for key in ("sub", "iss", "hex_identity")
        ):
            raise TokenError("token claims lack sub, iss or hex_identity")
        if identity_from_claims(claims["iss"], claims["sub"]).to_hex() != claims["hex_identity"]:
            raise TokenError("token hex_identity does not match its iss and sub claims")
        expires = claims.get("exp")
        if isinstance(expires, (int, float)) and expires < time.time():
            raise TokenError("token has expired")
        return claims

    def _sign(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{body}.{_b64(self._signature(f'{header}.{body}'))}"

    def _signature(self, signing_input: str) -> bytes:
        return hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
