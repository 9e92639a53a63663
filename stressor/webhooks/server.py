"""Serving a ``WebhookReceiver`` for real, with uvicorn inside the caller's event loop (``stressor.asgi_server``),
on loopback unless ``allow_remote=True``; the receiver is closed first when the block ends, so deliveries still
arriving get a 503 at once. See docs/internals.md#webhook-receiver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from stressor.asgi_server import base_url_of, serve_asgi
from stressor.loopback import is_loopback
from stressor.webhooks.receiver import WebhookReceiver


@dataclass(frozen=True, slots=True)
class RunningReceiver:
    """A receiver serving at ``url`` (``http://host:port/webhooks``); ``receiver`` is live (same loop)."""

    url: str
    host: str
    port: int
    receiver: WebhookReceiver


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
    async with serve_asgi(receiver, host, port, what="the webhook receiver") as (bound_host, bound_port):
        url = base_url_of(bound_host, bound_port) + receiver.path
        try:
            yield RunningReceiver(url, bound_host, bound_port, receiver)
        finally:
            receiver.close()
