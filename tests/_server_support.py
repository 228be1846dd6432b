"""Helpers for the local server's tests: WebSocket sessions that speak protocol v2/v3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from httpx_ws import AsyncWebSocketSession, aconnect_ws

from spacetime_sched import protocol, sats
from spacetime_sched.protocol import (
    ClientMessage,
    InitialConnection,
    ServerMessage,
    Subscribe,
    SubscribeApplied,
)
from spacetime_sched.testing._server import LocalServer

V2 = "v2.bsatn.spacetimedb"
V3 = "v3.bsatn.spacetimedb"


class Session:
    """One WebSocket client: send client messages, receive decoded server messages."""

    def __init__(self, ws: AsyncWebSocketSession, batched: bool) -> None:
        self.ws = ws
        self.batched = batched
        self._pending: list[ServerMessage] = []
        self.frames: list[bytes] = []
        self.hello: InitialConnection

    async def send(self, message: ClientMessage) -> None:
        await self.ws.send_bytes(protocol.encode_client_frame(message))

    async def receive(self) -> ServerMessage:
        """The next message (failing after 5 s)."""
        if not self._pending:
            with anyio.fail_after(5):
                frame = await self.ws.receive_bytes()
            self.frames.append(frame)
            self._pending = protocol.decode_server_frame(frame, batched=self.batched)
        return self._pending.pop(0)

    async def expect_silence(self, seconds: float = 0.1) -> None:
        """Nothing arrives for ``seconds``."""
        assert not self._pending, f"unexpected messages: {self._pending}"
        with anyio.move_on_after(seconds):
            frame = await self.ws.receive_bytes()
            raise AssertionError(f"unexpected frame: {protocol.decode_server_frame(frame)}")


@asynccontextmanager
async def session(
    server: LocalServer,
    *,
    token: str | None = None,
    protocols: tuple[str, ...] = (V2,),
    compression: str = "None",
    query_token: str | None = None,
) -> AsyncIterator[Session]:
    """Connect to the server's quickstart database; the InitialConnection is in ``.hello``."""
    params = {"compression": compression}
    if query_token is not None:
        params["token"] = query_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{server.uri}/v1/database/{server.database}/subscribe"
    async with (
        httpx.AsyncClient(verify=False) as http,  # loopback http: no TLS set-up
        aconnect_ws(url, http, subprotocols=list(protocols), headers=headers, params=params) as ws,
    ):
        client = Session(ws, batched=ws.subprotocol == V3)
        hello = await client.receive()
        assert isinstance(hello, InitialConnection)
        client.hello = hello
        yield client


def args(server: LocalServer, reducer: str, *values: Any) -> bytes:
    """BSATN arguments of a reducer, encoded by the schema the server publishes."""
    return server.host.schema.reducer(reducer).encode_args(list(values))


def rows(row_list: protocol.BsatnRowList, server: LocalServer, table: str) -> list[Any]:
    """Decode a row list of ``table``."""
    row_type = server.host.module.tables[table].row_type
    return row_list.decode_rows(sats.compile(row_type))


async def subscribe_all(client: Session, *queries: str, query_set: int = 1) -> None:
    """Subscribe and wait for SubscribeApplied."""
    await client.send(Subscribe(query_set, query_set, queries))
    applied = await client.receive()
    assert isinstance(applied, SubscribeApplied), applied
