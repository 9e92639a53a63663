"""Serving an ASGI app with uvicorn on loopback, inside the caller's event loop: the simulator and the
webhook receiver both do it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn

STARTUP_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 2
_MIN_SLEEP_S = 0.001  # sleeping less than 1 ms busy-loops on some event loops


def base_url_of(host: str, port: int) -> str:
    """``http://host:port``, with brackets around an IPv6 address."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); raises OSError when that is impossible."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP, and
    # without it every answer waits for the client's delayed ACK
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            # what asyncio's create_server does: a restarted server can reuse its port at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: ``Server.serve`` swaps SIGINT/SIGTERM through
    ``capture_signals``, which would take Ctrl-C from whoever embeds it. ``should_exit`` stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    *,
    what: str,
    background: Sequence[Callable[[], Awaitable[None]]] = (),
    date_header: bool = True,
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on host:port until the block exits, with ``background`` jobs running beside it (cancelled
    at the exit); yields the bound (host, port). ``date_header=False`` stops uvicorn adding ``Date`` to every
    answer, for an app that writes its own. Raises OSError (before anything runs) when the address cannot
    be bound, RuntimeError when uvicorn does not start. An exception of the block comes out as itself."""
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    server = EmbeddedServer(
        uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            http="h11",
            ws="none",
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            date_header=date_header,
        )
    )
    server_done = anyio.Event()
    scopes = [anyio.CancelScope() for _ in background]

    async def run_server() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            server_done.set()

    async def run_job(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        with scope:
            await job()

    body_error: BaseException | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_server)
            for job, scope in zip(background, scopes, strict=True):
                tasks.start_soon(run_job, job, scope)
            try:
                with anyio.fail_after(STARTUP_TIMEOUT_S):
                    while not server.started and not server_done.is_set():
                        await anyio.sleep(_MIN_SLEEP_S)
                if not server.started:
                    raise RuntimeError(f"{what} could not start on {base_url_of(bound_host, bound_port)}")
                try:
                    yield bound_host, bound_port
                except BaseException as raised:
                    body_error = raised
                    raise
            finally:
                server.should_exit = True
                for scope in scopes:
                    scope.cancel()
    except BaseExceptionGroup as group:
        # the caller's own exception comes back as itself, not wrapped in the task group's group
        if body_error is not None and len(group.exceptions) == 1 and group.exceptions[0] is body_error:
            raise body_error from None
        raise
    finally:
        # after a cancellation uvicorn may not have reached its own shutdown: never leave the port open
        for listener in getattr(server, "servers", ()):
            listener.close()
        sock.close()
