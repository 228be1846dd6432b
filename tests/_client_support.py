"""A tiny scripted SpacetimeDB v2/v3 server for client fault tests, as a raw ASGI app.

It runs in-process through ``httpx_ws.transport.ASGIWebSocketTransport`` (no sockets). It
speaks just enough of the protocol: it sends ``InitialConnection`` and hands every decoded
client message to a script, an async function that may answer, stay silent, close the socket
or send garbage.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from httpx_ws.transport import ASGIWebSocketTransport

from spacetime_sched._identity import ConnectionId, Identity
from spacetime_sched._time import Timestamp
from spacetime_sched.protocol import (
    Compression,
    InitialConnection,
    ReducerOkEmpty,
    ReducerResult,
    ServerMessage,
    decode_client_frame,
    encode_server_frame,
)

IDENTITY = Identity(0xC200 << 240 | 0x1234)
CONNECTION_ID = ConnectionId(0x1234_5678)
TOKEN = "fake-token-abc"

Script = Callable[["FakeSocket", Any], Awaitable[None]]

#: A RawModuleDefV9 with one table ``person(name: String)`` and one reducer ``add(a, b: u32)``.
SCHEMA: dict[str, Any] = {
    "typespace": {
        "types": [
            {
                "Product": {
                    "elements": [{"name": {"some": "name"}, "algebraic_type": {"String": []}}]
                }
            }
        ]
    },
    "tables": [
        {
            "name": "person",
            "product_type_ref": 0,
            "primary_key": [],
            "indexes": [],
            "constraints": [],
            "sequences": [],
            "schedule": {"none": []},
            "table_type": {"User": []},
            "table_access": {"Public": []},
        }
    ],
    "reducers": [
        {
            "name": "add",
            "params": {
                "elements": [
                    {"name": {"some": "a"}, "algebraic_type": {"U32": []}},
                    {"name": {"some": "b"}, "algebraic_type": {"U32": []}},
                ]
            },
            "lifecycle": {"none": []},
        }
    ],
    "types": [],
    "misc_exports": [],
    "row_level_security": [],
}


class FakeSocket:
    """What a script can do with the client's socket."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send

    async def reply(self, message: ServerMessage, compression: Compression = "none") -> None:
        await self._send(
            {"type": "websocket.send", "bytes": encode_server_frame(message, compression)}
        )

    async def reply_batch(
        self, messages: Sequence[ServerMessage], compression: Compression = "none"
    ) -> None:
        """Several messages in one v3 frame."""
        await self.send_raw(encode_server_frame(messages, compression, batched=True))

    async def send_raw(self, frame: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": frame})

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


async def answer_ok(ws: FakeSocket, message: Any) -> None:
    """The default script: every reducer call commits with no changes."""
    await ws.reply(ReducerResult(message.request_id, Timestamp(1), ReducerOkEmpty()))


class FakeServer:
    """ASGI app: ``/v1/database/{db}/subscribe`` runs ``script``; other paths 404."""

    def __init__(
        self,
        script: Script = answer_ok,
        *,
        reject_status: int | None = None,
        initial: ServerMessage | None = None,
        subprotocol: str = "v2.bsatn.spacetimedb",
    ) -> None:
        self.script = script
        self.reject_status = reject_status
        self.initial = initial or InitialConnection(IDENTITY, CONNECTION_ID, TOKEN)
        self.subprotocol = subprotocol
        self.offered: list[str] = []
        self.frames = 0
        self.received: list[Any] = []
        self.requests: list[dict[str, Any]] = []

    def transport(self) -> ASGIWebSocketTransport:
        return ASGIWebSocketTransport(self)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.requests.append(scope)
        if scope["type"] == "http":
            await receive()
            status, body = 404, b"not found"
            if scope["path"].endswith("/schema"):
                status, body = 200, json.dumps(SCHEMA).encode()
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        if self.reject_status is not None:
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": self.reject_status,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"Unauthorized"})
            return
        self.offered = [name.strip() for name in scope.get("subprotocols", [])]
        await send({"type": "websocket.accept", "subprotocol": self.subprotocol})
        ws = FakeSocket(send)
        await ws.reply(self.initial)
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                return
            self.frames += 1
            batched = self.subprotocol.startswith("v3")
            for message in decode_client_frame(event["bytes"], batched=batched):
                self.received.append(message)
                await self.script(ws, message)


def headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in scope["headers"]}
