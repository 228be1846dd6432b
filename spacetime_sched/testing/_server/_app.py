"""The Starlette ASGI app: SpacetimeDB's HTTP API and the ``/subscribe`` WebSocket.

Routes (all under ``/v1``), as the real server answers them:

* ``GET /ping``; ``POST /identity`` (new identity + token); ``POST /identity/websocket-token``
  (Bearer required; a short-lived token for ``?token=``);
* ``GET /database/{name}`` (info), ``GET /database/{name}/identity``,
  ``GET /database/{name}/schema?version=9`` (or ``10``), ``POST /database/{name}/call/{function}``
  (reducers and procedures), ``POST /database/{name}/sql``,
  ``GET /database/{name}/unstable/timestamp``;
* ``GET /database/{name}/subscribe``: the WebSocket, protocols ``v3.bsatn.spacetimedb`` and
  ``v2.bsatn.spacetimedb`` (the server's preference, v3 first, wins).

Every ``/v1/database/*`` response carries ``spacetime-identity`` and
``spacetime-identity-token``. The token comes from ``Authorization: Bearer`` or else
``?token=`` (``crates/client-api/src/auth.rs``, ``SpacetimeCreds::from_request_parts``); a
request without one gets a fresh anonymous identity, a malformed ``Authorization`` header 400,
a token this server did not sign 401. ``docs/conformance.md`` lists every behaviour with the
SpacetimeDB source it follows; ``ServerLimits`` bounds every input.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import time
from collections.abc import Iterator
from typing import Any, Final, cast

import anyio
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ... import sats
from ..._errors import (
    BadArgumentsError,
    ConnectRefusedError,
    HttpStatusError,
    NoSuchFunctionError,
    ProtocolError,
    SqlError,
    TokenError,
)
from ..._identity import ConnectionId, Identity
from ...protocol import (
    Compression,
    InitialConnection,
    ReducerErr,
    ReducerInternalError,
    decode_client_frame,
    encode_server_frame,
)
from ._auth import TokenIssuer
from ._host import Host
from ._limits import ServerLimits, parse_json_body
from ._schema_v10 import module_def_v10
from ._sql import split_statements, untyped_json
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
_INTERNAL_ERROR: Final = 1011
_GOING_AWAY: Final = 1001


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status, headers, media_type="application/json")


def _timing_headers(started_ns: int, *, energy: bool) -> dict[str, str]:
    """``spacetime-energy-used`` (reducers only) and ``spacetime-execution-duration-micros``,
    as ``call`` in ``crates/client-api/src/routes/database.rs`` sets them (names from
    ``crates/client-api/src/auth.rs``). The local server meters no energy: 0."""
    headers = {
        "spacetime-execution-duration-micros": str((time.perf_counter_ns() - started_ns) // 1000)
    }
    if energy:
        headers["spacetime-energy-used"] = "0"
    return headers


@contextlib.contextmanager
def _http_errors() -> Iterator[None]:
    """The host's errors as the HTTP statuses the real server gives them
    (``map_reducer_error``, ``map_procedure_error``, ``client_connected_error_to_response``)."""
    try:
        yield
    except NoSuchFunctionError as exc:
        raise HttpStatusError(404, str(exc.args[0])) from None
    except BadArgumentsError as exc:
        raise HttpStatusError(400, str(exc.args[0])) from None
    except ConnectRefusedError as exc:
        raise HttpStatusError(403, str(exc)) from None


class ServerApp:
    """The ASGI app over one :class:`Host` (``app.asgi`` is the Starlette application)."""

    def __init__(self, host: Host, tokens: TokenIssuer, limits: ServerLimits | None = None) -> None:
        self.host = host
        self.tokens = tokens
        self.limits = limits if limits is not None else ServerLimits()
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
        """The token of ``Authorization: Bearer``, else of ``?token=``, else ``None``; a
        malformed ``Authorization`` header is a 400, as axum's typed header makes it."""
        header = connection.headers.get("authorization")
        if header is None:
            return connection.query_params.get("token") or None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpStatusError(400, "Authorization is invalid: malformed token")
        return token.strip()

    def _authenticate(self, token: str | None) -> tuple[Identity, str]:
        if token is None:
            return self.tokens.mint()
        try:
            return self.tokens.identity(token), token
        except TokenError as exc:
            raise HttpStatusError(401, f"invalid token: {exc}") from None

    def _check_database(self, name: str) -> None:
        host = self.host
        if name in (host.database_name, host.identity.to_hex()):
            return
        raise HttpStatusError(404, f"no such database: {name!r}")

    def _database_route(self, endpoint: Any) -> Any:
        async def handler(request: Request) -> Response:
            try:
                identity, token = self._authenticate(self._bearer(request))
            except HttpStatusError as exc:
                return PlainTextResponse(exc.message, exc.status)
            try:
                self._check_database(request.path_params["name"])
                response: Response = await endpoint(request, identity)
            except HttpStatusError as exc:
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
                raise HttpStatusError(401, "POST /v1/identity/websocket-token needs a Bearer token")
            self._authenticate(token)
        except HttpStatusError as exc:
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
        # SchemaQueryParams in crates/client-api/src/routes/database.rs: "9" or "10", required.
        version = request.query_params.get("version")
        if version == "9":
            return _json(self.host.schema.to_json())
        if version == "10":
            return _json(module_def_v10(self.host.module))
        raise HttpStatusError(
            400, f"Failed to deserialize query string: version: expected 9 or 10, got {version!r}"
        )

    async def timestamp(self, request: Request, identity: Identity) -> Response:
        now = self.host.clock.now()
        return _json({"__timestamp_micros_since_unix_epoch__": now.micros_since_epoch})

    async def _body(self, request: Request) -> bytes:
        """The request body, or 413 once it passes ``limits.max_body_bytes`` (not read
        further: a huge body costs the server no more than the limit)."""
        limit = self.limits.max_body_bytes
        too_large = HttpStatusError(413, f"length limit exceeded: the body is over {limit} bytes")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def call(self, request: Request, identity: Identity) -> Response:
        # ``call`` in crates/client-api/src/routes/database.rs: a typed Content-Type header
        # (missing: 400) that must be application/json (else 415), a JSON body (empty: 400).
        name = request.path_params["function"]
        content_type = request.headers.get("content-type")
        if content_type is None:
            raise HttpStatusError(400, "Header of type `content-type` was missing")
        if content_type != "application/json":
            raise HttpStatusError(415, "Expected request with `Content-Type: application/json`")
        args_json = parse_json_body(await self._body(request), self.limits, f"/call/{name}")
        host = self.host
        started = time.perf_counter_ns()
        with _http_errors():
            if name not in host.module.reducers and name in host.module.procedures:
                return await self._call_procedure(name, args_json, identity)
            host.callable_reducer(name, identity)  # 404 before looking at private arguments
            args = host.json_args(name, args_json)
            outcome = host.http_call(name, args, identity)
        headers = _timing_headers(started, energy=True)
        # reducer_outcome_response: a failed reducer (returned Err, or crashed) is 530.
        if isinstance(outcome, ReducerErr):
            return PlainTextResponse(outcome.message or "the reducer failed", 530, headers)
        if isinstance(outcome, ReducerInternalError):
            return PlainTextResponse(outcome.message, 530, headers)
        return Response(status_code=200, headers=headers)

    async def _call_procedure(self, name: str, args_json: Any, identity: Identity) -> Response:
        host = self.host
        started = time.perf_counter_ns()
        host.callable_procedure(name, identity)
        args = host.json_procedure_args(name, args_json)
        with host.http_connection(identity) as caller:
            try:
                _, _, value = await host.call_procedure(name, args, caller)
                result = host.return_json(name, value)
            except Exception as exc:  # map_procedure_error: InternalError is a 500
                text = str(exc) or type(exc).__name__
                return PlainTextResponse(text, 500, _timing_headers(started, energy=False))
        return _json(result, headers=_timing_headers(started, energy=False))

    async def sql(self, request: Request, identity: Identity) -> Response:
        text = (await self._body(request)).decode("utf-8", errors="replace")
        host = self.host
        results = []
        with _http_errors(), host.http_connection(identity):
            for statement in split_statements(text):
                started = time.perf_counter_ns()
                try:
                    (query,) = host.parse_queries([statement])
                except SqlError as exc:
                    raise HttpStatusError(400, str(exc)) from None
                # Rows as the served schema names things (enum variants camelCase, ...).
                table = host.schema.table(query.table.name)
                codec = table.row_codec
                rows = [
                    untyped_json(
                        table.row_type, codec.to_json(codec.decode(row.data)), host.schema.typespace
                    )
                    for row in host.query([query], identity)
                ]
                results.append(
                    {
                        "schema": table.row_type.to_json()["Product"],
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
        except HttpStatusError as exc:
            logger.info("refused a WebSocket: %s %s", exc.status, exc.message)
            await websocket.send_denial_response(PlainTextResponse(exc.message, exc.status))
            return
        # The real server completes the upgrade first, then runs client_connected; on
        # rejection it drops the socket: no InitialConnection and no close frame
        # (crates/client-api/src/routes/subscribe.rs). An ASGI app cannot drop a connection
        # without a close frame; returning without one makes hypercorn close with 1011 and
        # no reason, the nearest it allows.
        await websocket.accept(
            subprotocol=protocol,
            headers=[
                (b"spacetime-identity", identity.to_hex().encode()),
                (b"spacetime-identity-token", token.encode()),
            ],
        )
        try:
            connection = self.host.connect(
                identity, connection_id, max_outbox=self.limits.max_outbox_messages
            )
        except ConnectRefusedError as exc:
            logger.info("client_connected refused a WebSocket: %s", exc)
            return
        self._sockets.add(connection)
        try:
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
            raise HttpStatusError(400, "no valid protocol selected")
        params = websocket.query_params
        requested = params.get("compression", "Brotli")
        if requested not in _COMPRESSIONS:
            raise HttpStatusError(
                400, f"compression: expected None, Gzip or Brotli, got {requested!r}"
            )
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
                raise HttpStatusError(400, f"connection_id: {exc}") from None
            if connection_id.is_zero():
                raise HttpStatusError(400, "connection_id must not be zero")
        return protocol, compression, identity, token, connection_id

    async def _session(
        self, websocket: WebSocket, connection: ClientConnection, batched: bool, compression: str
    ) -> None:
        close: tuple[int, str] | None = None
        async with anyio.create_task_group() as task_group:
            connection.on_kick = task_group.cancel_scope.cancel

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
        close = connection.close_reason or close
        if close is not None:
            # A client that does not read may never take the close frame: bounded wait.
            with (
                anyio.move_on_after(self.limits.close_timeout),
                contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError),
            ):
                await websocket.close(*close)

    async def _read(
        self, websocket: WebSocket, connection: ClientConnection, batched: bool
    ) -> tuple[int, str] | None:
        while True:
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                return None
            # A frame the server cannot decode ends the session with CloseCode::Error (1011)
            # and the error as the reason (``ws_client_actor`` in subscribe.rs); a text frame
            # is such a frame for the binary protocols.
            data = event.get("bytes")
            if data is None:
                logger.warning("closing %r: it sent a text frame", connection)
                return _INTERNAL_ERROR, "text frames are not supported by the binary protocol"
            try:
                messages = decode_client_frame(data, batched=batched)
            except (ProtocolError, sats.SatsError) as exc:
                logger.warning("closing %r: undecodable client frame: %s", connection, exc)
                return _INTERNAL_ERROR, _close_reason(f"invalid client message: {exc}")
            for message in messages:
                try:
                    await self.host.handle(connection, message)
                except Exception:
                    logger.exception("closing %r: handling %r failed", connection, message)
                    return _INTERNAL_ERROR, "internal error"


def _close_reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    return text.encode()[:123].decode(errors="ignore")
