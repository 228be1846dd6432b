"""``LocalServer``: the test server on a loopback port, served by hypercorn on asyncio or trio.

::

    async with LocalServer(example_module.module, database="quickstart") as server:
        server.uri       # "http://127.0.0.1:PORT"
        server.ws_uri    # "ws://127.0.0.1:PORT"
        server.host.table("person").rows()

The listening socket is bound before hypercorn starts (port 0 picks a free port), so the URI is
known and connectable as soon as the ``async with`` body runs. Everything the server runs
lives in one task group owned by the block; leaving it closes the WebSockets (code 1001),
stops hypercorn and the schedule timer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio

from ..._backend import current_backend
from ._auth import TokenIssuer
from ._host import Host, ServerClock, close_stack
from ._limits import ServerLimits
from ._module import Module

__all__ = ["LocalServer"]

logger = logging.getLogger("spacetime_sched.testing.server")


async def _serve(app: Any, config: Any, shutdown_trigger: Any) -> None:
    """hypercorn's ``serve`` for the running event loop."""
    if current_backend() == "trio":
        from hypercorn.trio import serve as trio_serve

        await trio_serve(app, config, shutdown_trigger=shutdown_trigger)
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        await asyncio_serve(app, config, shutdown_trigger=shutdown_trigger, mode="asgi")


def _listen(bind: tuple[str, int]) -> socket.socket:
    """A listening, non-blocking TCP socket on ``bind`` (port 0: a free port)."""
    family = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(bind)
        listener.listen(128)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


class LocalServer:
    """A SpacetimeDB-compatible server for ``module`` on ``host:port`` (default: a free
    loopback port), to be used as ``async with LocalServer(module) as server:``.

    ``database`` is the name clients connect to (default: the module's name). ``clock`` drives
    reducer timestamps and schedule tables (a ``VirtualClock`` makes schedule tests instant).
    ``secret`` signs the tokens; pass the same bytes to keep tokens valid across servers.
    ``limits`` bounds request bodies, JSON nesting and each client's outbox
    (:class:`ServerLimits`; the defaults are a real server's).
    """

    def __init__(
        self,
        module: Module,
        *,
        database: str | None = None,
        bind_host: str = "127.0.0.1",
        port: int = 0,
        clock: ServerClock | None = None,
        secret: bytes | None = None,
        graceful_timeout: float = 2.0,
        limits: ServerLimits | None = None,
    ) -> None:
        self.module = module
        self.database = database or module.name
        self._bind = (bind_host, port)
        self._clock = clock
        self._tokens = TokenIssuer(secret)
        self._graceful_timeout = graceful_timeout
        self.limits = limits if limits is not None else ServerLimits()
        self._stack: AsyncExitStack | None = None
        self._host: Host | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        where = self.uri if self._port is not None else "not running"
        return f"<LocalServer {self.database!r} at {where}>"

    @property
    def host(self) -> Host:
        """The module host: inspect tables with ``server.host.table("person").rows()``."""
        if self._host is None:
            raise RuntimeError("the server is not running: use `async with LocalServer(...)`")
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not running: use `async with LocalServer(...)`")
        return self._port

    @property
    def uri(self) -> str:
        """``http://HOST:PORT``, what clients take as the server URI."""
        return f"http://{self._url_host()}:{self.port}"

    @property
    def ws_uri(self) -> str:
        """``ws://HOST:PORT``."""
        return f"ws://{self._url_host()}:{self.port}"

    def _url_host(self) -> str:
        host = self._bind[0]
        return f"[{host}]" if ":" in host else host

    def mint_token(self) -> tuple[Any, str]:
        """A new ``(identity, token)`` pair, as ``POST /v1/identity`` would give."""
        return self._tokens.mint()

    async def __aenter__(self) -> LocalServer:
        try:  # the optional "server" extra, imported only when a server starts
            from hypercorn.config import Config

            from ._app import ServerApp
        except ImportError as exc:
            raise ImportError(
                f"LocalServer needs hypercorn and starlette ({exc}): "
                "pip install 'spacetime-sched[server]'"
            ) from exc

        listener = _listen(self._bind)  # first: a port in use fails before anything starts
        port = listener.getsockname()[1]
        fd = listener.detach()  # hypercorn takes the socket over and closes it when it stops
        serving = False
        stack = AsyncExitStack()
        try:
            host = await stack.enter_async_context(
                Host(self.module, database=self.database, clock=self._clock)
            )
            app = ServerApp(host, self._tokens, self.limits)
            config = Config()
            config.bind = [f"fd://{fd}"]
            config.accesslog = None
            config.errorlog = logger
            config.graceful_timeout = self._graceful_timeout
            # No server pings: hypercorn's ping task is cancelled noisily on asyncio when a
            # socket closes. Clients' pings are still answered (wsproto does it).
            config.websocket_ping_interval = None
            config.websocket_max_message_size = 32 * 1024 * 1024

            task_group = await stack.enter_async_context(anyio.create_task_group())
            shutdown = anyio.Event()
            task_group.start_soon(
                _serve, app.asgi, config, shutdown.wait, name=f"hypercorn for {self.database!r}"
            )
            serving = True
            stack.callback(shutdown.set)
            stack.callback(app.close_all)
            stack.callback(self._forget)
        except BaseException as exc:
            if not serving:
                with contextlib.suppress(OSError):
                    os.close(fd)
            await close_stack(stack, exc)
            raise
        self._host, self._port = host, port
        self._stack = stack
        logger.info("serving database %r at %s", self.database, self.uri)
        return self

    def _forget(self) -> None:
        self._host = None
        self._port = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            raise RuntimeError("the server is not running")
        await close_stack(stack, exc)
