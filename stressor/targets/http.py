"""HTTP for targets: requests spread over several small httpx pools.

One large httpx pool slows down as it grows: httpcore scans every connection and waiting request on each
event, so one client with hundreds of connections spends its CPU in the pool and, after a stall, collapses
(engineering notes; benchmarks/README.md). Several small pools, used round-robin, keep each scan short.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx


class ShardedClient:
    """A few ``httpx.AsyncClient``s behind one ``request``; each request goes to the next client in turn."""

    def __init__(
        self,
        *,
        shards: int,
        connections_per_shard: int,
        transport: httpx.AsyncBaseTransport | None = None,
        **client_options: Any,
    ) -> None:
        # An injected transport (tests, instrumentation) is one object: it gets one client.
        count = 1 if transport is not None else max(1, shards)
        limits = httpx.Limits(max_connections=connections_per_shard, max_keepalive_connections=connections_per_shard)
        self._clients = [httpx.AsyncClient(limits=limits, transport=transport, **client_options) for _ in range(count)]
        self._next = itertools.cycle(self._clients)

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        return await next(self._next).request(method, url, **options)

    async def get(self, url: str, **options: Any) -> httpx.Response:
        return await self.request("GET", url, **options)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
