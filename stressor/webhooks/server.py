"""Serving a ``WebhookReceiver`` for real, with uvicorn inside the caller's event loop.

``async with serve_receiver(receiver) as running:`` binds a socket itself (port 0: a free one, learnt before
uvicorn starts), runs uvicorn as a task with access log, lifespan and signal capture off (embedding never
takes over Ctrl-C), and gives ``running.url`` to register with the API. The socket plumbing is the
simulator's (``stressor.sim.server``), so both servers behave alike (TCP_NODELAY, port reuse).

Loopback only unless ``allow_remote=True``: the real API must reach the receiver from outside, but opening a
port to the network should be a decision, never a default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import uvicorn

from stressor.sim.server import _bind, _EmbeddedServer, base_url_of
from stressor.webhooks.receiver import WebhookReceiver

_STARTUP_TIMEOUT_S = 10.0
_POLL_S = 0.001  # sleeping less than 1 ms busy-loops on some event loops
_GRACEFUL_SHUTDOWN_S = 2


@dataclass(frozen=True, slots=True)
class RunningReceiver:
    """A receiver serving at ``url`` (``http://host:port/webhooks``); ``receiver`` is live (same loop)."""

    url: str
    host: str
    port: int
    receiver: WebhookReceiver


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface (``localhost`` or a loopback IP literal)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@asynccontextmanager
async def serve_receiver(
    receiver: WebhookReceiver,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_remote: bool = False,
) -> AsyncIterator[RunningReceiver]:
    """Serve ``receiver`` on host:port in the current event loop until the block exits.

    Raises ValueError for a non-loopback host without ``allow_remote``, OSError (before anything runs) when
    the address cannot be bound, RuntimeError when uvicorn does not start.
    """
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"refusing to receive webhooks on {host!r}, which is not loopback: pass allow_remote=True "
            "to open a port to the network"
        )
    sock = _bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = base_url_of(bound_host, bound_port) + receiver.path
    server = _EmbeddedServer(
        uvicorn.Config(
            receiver,
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            http="h11",
            ws="none",
            proxy_headers=False,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        )
    )
    server_done = anyio.Event()

    async def run_server() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            server_done.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_server)
            try:
                with anyio.fail_after(_STARTUP_TIMEOUT_S):
                    while not server.started and not server_done.is_set():
                        await anyio.sleep(_POLL_S)
                if not server.started:
                    raise RuntimeError(f"the webhook receiver could not start on {url}")
                yield RunningReceiver(url, bound_host, bound_port, receiver)
            finally:
                server.should_exit = True
    finally:
        # after a cancellation uvicorn may not have reached its own shutdown: never leave the port open
        for listener in getattr(server, "servers", ()):
            listener.close()
        sock.close()
