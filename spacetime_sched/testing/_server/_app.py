"""The Starlette ASGI app: SpacetimeDB's HTTP API and the ``/subscribe`` WebSocket.

Routes (all under ``/v1``), as the real server answers them:

* ``GET /ping``; ``POST /identity`` (new identity + token); ``POST /identity/websocket-token``
  (Bearer required; a short-lived token for ``?token=``);
* ``GET /database/{name}`` (info), ``GET /database/{name}/identity``,
  ``GET /database/{name}/schema?version=9``, ``POST /database/{name}/call/{reducer}``,
  ``POST /database/{name}/sql``, ``GET /database/{name}/unstable/timestamp``;
* ``GET /database/{name}/subscribe``: the WebSocket, protocols ``v3.bsatn.spacetimedb`` and
  ``v2.bsatn.spacetimedb`` (the server's preference, v3 first, wins).

Every ``/v1/database/*`` response carries ``spacetime-identity`` and
``spacetime-identity-token``. A request without a token gets a fresh anonymous identity; a bad
token gets 401.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import time
from typing import Any, Final, cast

import anyio
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ... import sats
from ..._errors import ProtocolError
from ..._identity import ConnectionId, Identity
from ...protocol import (
    Compression,
    InitialConnection,
    ReducerErr,
    decode_client_frame,
    encode_server_frame,
)
from ._auth import TokenError, TokenIssuer
from ._host import (
    BadArgumentsError,
    Caller,
    ConnectRefusedError,
    Host,
    NoSuchFunctionError,
)
from ._sql import SqlError, split_statements, untyped_json
from ._subscriptions import ClientConnection

__all__ = ["PROTOCOLS", "ServerApp"]

logger = logging.getLogger("spacetime_sched.testing.server")

V2: Final = "v2.bsatn.spacetimedb"
V3: Final = "v3.bsatn.spacetimedb"
#: Subprotocols in the server's order of preference.
PROTOCOLS: Final = (V3, V2)
_COMPRESSIONS: Final = {"None": "none", "Gzip": "gzip", "Brotli": "brotli"}
_HAVE_BROTLI: Final = importlib.util.find_spec("brotli") is not None
#: WebSocket close codes.
_POLICY_VIOLATION: Final = 1008
_INTERNAL_ERROR: Final = 1011
_GOING_AWAY: Final = 1001


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status, headers, media_type="application/json")


class ServerApp:
    """The ASGI app over one :class:`Host` (``app.asgi`` is the Starlette application)."""

    def __init__(self, host: Host, tokens: TokenIssuer) -> None:
        self.host = host
        self.tokens = tokens
        self._closing = False
        self._sockets: set[ClientConnection] = set()
        program = json.dumps(host.schema.to_json(), sort_keys=True).encode()
        self._program_hash = hashlib.sha256(program).hexdigest()
        # (path under /v1/database/{name}, handler(request, identity), method)
        database = [
            ("", self.database_info, "GET"),
            ("/identity", self.database_identity, "GET"),
            ("/schema", self.schema, "GET"),
            ("/call/{function}", self.call, "POST"),
            ("/sql", self.sql, "POST"),
            ("/unstable/timestamp", self.timestamp, "GET"),
        ]
        routes = [
            Route("/v1/ping", self.ping, methods=["GET"]),
            Route("/v1/identity", self.new_identity, methods=["POST"]),
            Route("/v1/identity/websocket-token", self.websocket_token, methods=["POST"]),
            *(
                Route(
                    f"/v1/database/{{name}}{path}", self._database_route(handler), methods=[method]
                )
                for path, handler, method in database
            ),
            WebSocketRoute("/v1/database/{name}/subscribe", self.subscribe),
        ]
        self.asgi = Starlette(routes=routes)

    def close_all(self) -> None:
        """Close every WebSocket (going away), e.g. before shutting the server down."""
        self._closing = True
        for connection in list(self._sockets):
            connection.close()

    # --- authentication -------------------------------------------------------------------------

    def _bearer(self, connection: HTTPConnection) -> str | None:
        header = connection.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _HttpError(401, "Authorization header must be 'Bearer <token>'")
        return token.strip()

    def _authenticate(self, token: str | None) -> tuple[Identity, str]:
        if token is None:
            return self.tokens.mint()
        try:
            return self.tokens.identity(token), token
        except TokenError as exc:
            raise _HttpError(401, f"invalid token: {exc}") from None

    def _check_database(self, name: str) -> None:
        host = self.host
        if name in (host.database_name, host.identity.to_hex()):
            return
        raise _HttpError(404, f"no such database: {name!r}")

    def _database_route(self, endpoint: Any) -> Any:
        async def handler(request: Request) -> Response:
            try:
                identity, token = self._authenticate(self._bearer(request))
            except _HttpError as exc:
                return PlainTextResponse(exc.message, exc.status)
            try:
                self._check_database(request.path_params["name"])
                response: Response = await endpoint(request, identity)
            except _HttpError as exc:
                response = PlainTextResponse(exc.message, exc.status)
            response.headers["spacetime-identity"] = identity.to_hex()
            response.headers["spacetime-identity-token"] = token
            return response

        return handler

    # --- identity -------------------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return Response(status_code=200)

    async def new_identity(self, request: Request) -> Response:
        identity, token = self.tokens.mint()
        return _json({"identity": identity.to_hex(), "token": token})

    async def websocket_token(self, request: Request) -> Response:
        try:
            token = self._bearer(request)
            if token is None:
                raise _HttpError(401, "POST /v1/identity/websocket-token needs a Bearer token")
            self._authenticate(token)
        except _HttpError as exc:
            return PlainTextResponse(exc.message, exc.status)
        return _json({"token": self.tokens.websocket_token(token)})

    # --- database -------------------------------------------------------------------------------

    async def database_info(self, request: Request, identity: Identity) -> Response:
        host = self.host
        return _json(
            {
                "database_identity": {"__identity__": f"0x{host.identity.to_hex()}"},
                "owner_identity": {"__identity__": f"0x{host.owner_identity.to_hex()}"},
                "host_type": {"Wasm": []},
                "initial_program": self._program_hash,
            }
        )

    async def database_identity(self, request: Request, identity: Identity) -> Response:
        return PlainTextResponse(self.host.identity.to_hex())

    async def schema(self, request: Request, identity: Identity) -> Response:
        version = request.query_params.get("version")
        if version != "9":
            raise _HttpError(
                400, f"schema version {version!r} is not served here: ask for ?version=9"
            )
        return _json(self.host.schema.to_json())

    async def timestamp(self, request: Request, identity: Identity) -> Response:
        now = self.host.clock.now()
        return _json({"__timestamp_micros_since_unix_epoch__": now.micros_since_epoch})

    async def call(self, request: Request, identity: Identity) -> Response:
        name = request.path_params["function"]
        if request.headers.get("content-type") != "application/json":
            raise _HttpError(415, "Content-Type must be exactly application/json")
        body = await request.body()
        try:
            args_json = json.loads(body) if body.strip() else []
        except ValueError as exc:
            raise _HttpError(400, f"request body is not JSON: {exc}") from None
        host = self.host
        try:
            if name not in host.module.reducers and name in host.module.procedures:
                return await self._call_procedure(name, args_json, identity)
            host.callable_reducer(name, identity)  # 404 before looking at private arguments
            args = host.json_args(name, args_json)
            outcome = host.http_call(name, args, identity)
        except NoSuchFunctionError as exc:
            raise _HttpError(404, str(exc.args[0])) from None
        except BadArgumentsError as exc:
            raise _HttpError(400, str(exc.args[0])) from None
        except ConnectRefusedError as exc:
            raise _HttpError(403, str(exc)) from None
        if isinstance(outcome, ReducerErr):
            return PlainTextResponse(outcome.message or "the reducer failed", 530)
        return Response(status_code=200)

    async def _call_procedure(self, name: str, args_json: Any, identity: Identity) -> Response:
        host = self.host
        args = host.json_procedure_args(name, args_json)
        try:
            _, _, value = await host.call_procedure(name, args, Caller(identity))
            result = host.return_json(name, value)
        except Exception as exc:
            return PlainTextResponse(str(exc) or type(exc).__name__, 530)
        return _json(result)

    async def sql(self, request: Request, identity: Identity) -> Response:
        text = (await request.body()).decode("utf-8", errors="replace")
        host = self.host
        results = []
        for statement in split_statements(text):
            started = time.perf_counter_ns()
            try:
                (query,) = host.parse_queries([statement])
            except SqlError as exc:
                raise _HttpError(400, str(exc)) from None
            codec = sats.compile(query.table.row_type)
            rows = [
                untyped_json(query.table.row_type, codec.to_json(row.value), None)
                for row in host.query([query], identity)
            ]
            results.append(
                {
                    "schema": query.table.row_type.to_json()["Product"],
                    "rows": rows,
                    "total_duration_micros": (time.perf_counter_ns() - started) // 1000,
                    "stats": {"rows_inserted": 0, "rows_deleted": 0, "rows_updated": 0},
                }
            )
        return _json(results)

    # --- the WebSocket --------------------------------------------------------------------------

    async def subscribe(self, websocket: WebSocket) -> None:
        try:
            protocol, compression, identity, token, connection_id = self._upgrade(websocket)
            connection = self.host.connect(identity, connection_id)
        except _HttpError as exc:
            logger.info("refused a WebSocket: %s %s", exc.status, exc.message)
            await websocket.send_denial_response(PlainTextResponse(exc.message, exc.status))
            return
        except ConnectRefusedError as exc:
            await websocket.send_denial_response(PlainTextResponse(str(exc), 403))
            return
        self._sockets.add(connection)
        try:
            await websocket.accept(
                subprotocol=protocol,
                headers=[
                    (b"spacetime-identity", identity.to_hex().encode()),
                    (b"spacetime-identity-token", token.encode()),
                ],
            )
            connection.send(InitialConnection(identity, connection_id, token))
            if self._closing:
                connection.close()
            await self._session(websocket, connection, protocol == V3, compression)
        finally:
            self._sockets.discard(connection)
            self.host.disconnect(connection)

    def _upgrade(self, websocket: WebSocket) -> tuple[str, str, Identity, str, ConnectionId]:
        self._check_database(websocket.path_params["name"])
        offered = websocket.scope.get("subprotocols") or []
        protocol = next((p for p in PROTOCOLS if p in offered), None)
        if protocol is None:
            raise _HttpError(400, "no valid protocol selected")
        params = websocket.query_params
        requested = params.get("compression", "Brotli")
        if requested not in _COMPRESSIONS:
            raise _HttpError(400, f"compression: expected None, Gzip or Brotli, got {requested!r}")
        compression = _COMPRESSIONS[requested]
        if compression == "brotli" and not _HAVE_BROTLI:
            compression = "none"  # documented: without the brotli module, frames go uncompressed
        token = self._bearer(websocket) or params.get("token")
        identity, token = self._authenticate(token)
        connection_id = ConnectionId.random()
        if "connection_id" in params:
            try:
                connection_id = ConnectionId.from_hex(params["connection_id"])
            except ValueError as exc:
                raise _HttpError(400, f"connection_id: {exc}") from None
            if connection_id.is_zero():
                raise _HttpError(400, "connection_id must not be zero")
        return protocol, compression, identity, token, connection_id

    async def _session(
        self, websocket: WebSocket, connection: ClientConnection, batched: bool, compression: str
    ) -> None:
        close: tuple[int, str] | None = None
        async with anyio.create_task_group() as task_group:

            async def write() -> None:
                nonlocal close
                try:
                    async for message in connection.outbox:
                        batch = [message]
                        while batched:
                            try:
                                batch.append(connection.outbox.receive_nowait())
                            except (anyio.WouldBlock, anyio.EndOfStream):
                                break
                        frame = encode_server_frame(
                            batch, cast(Compression, compression), batched=batched
                        )
                        await websocket.send_bytes(frame)
                except Exception as exc:
                    # Any send failure means the socket is gone (starlette and hypercorn raise
                    # different errors for it); the reader sees the disconnect.
                    logger.debug("stopped writing to %r: %r", connection, exc)
                else:
                    close = (_GOING_AWAY, "server shutting down")
                task_group.cancel_scope.cancel()

            task_group.start_soon(write)
            close = await self._read(websocket, connection, batched)
            task_group.cancel_scope.cancel()
        if close is not None:
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                await websocket.close(*close)

    async def _read(
        self, websocket: WebSocket, connection: ClientConnection, batched: bool
    ) -> tuple[int, str] | None:
        while True:
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                return None
            data = event.get("bytes")
            if data is None:
                logger.warning("closing %r: it sent a text frame", connection)
                return _POLICY_VIOLATION, "text frames are not supported; send binary BSATN"
            try:
                messages = decode_client_frame(data, batched=batched)
            except (ProtocolError, sats.SatsError) as exc:
                logger.warning("closing %r: undecodable client frame: %s", connection, exc)
                return _POLICY_VIOLATION, _close_reason(f"invalid client message: {exc}")
            for message in messages:
                try:
                    await self.host.handle(connection, message)
                except Exception:
                    logger.exception("closing %r: handling %r failed", connection, message)
                    return _INTERNAL_ERROR, "internal error"


def _close_reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    return text.encode()[:123].decode(errors="ignore")
