"""HTTP for targets: httpx's API over a connection pool that holds up under load.

``HttpClient`` sends httpx requests through ``WireTransport`` (the default), ``AiohttpTransport`` or httpx's own
pool, with the environment's proxies mounted as httpx mounts them. Why, and how it picks:
docs/internals.md#http-client.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
from httpx._utils import get_environment_proxies  # httpx's reading of the proxy variables, kept to the letter

from stressor.http.wire import WireTransport

Backend = Literal["wire", "aiohttp", "httpx"]
URL_CACHE_SIZE = 256  # parsed URLs kept by a client (then all are dropped: memory stays flat)


class UnusableProxy(httpx.AsyncBaseTransport):
    """Mounted for a proxy the environment names but the transport cannot use (a ``socks5://`` one, a URL
    that does not parse): every request it would carry fails with ``ProxyError`` saying why, in one sentence,
    rather than the client failing to start or the proxy being skipped silently."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ProxyError(self.reason, request=request)


def _shown(url: str) -> str:
    """A proxy URL for a message: any ``user:password@`` left out."""
    scheme, found, rest = url.rpartition("://")
    return (scheme + found if found else "") + rest.rpartition("@")[2]


Mounts = dict[str, httpx.AsyncBaseTransport | None]


def environment_proxies(pool: Callable[[httpx.Proxy], httpx.AsyncBaseTransport]) -> Mounts:
    """The client mounts httpx would make from the environment's proxy variables, each proxy served by a pool
    of ``pool(proxy)`` (None for a pattern NO_PROXY sends direct)."""
    mounts: Mounts = {}
    for pattern, url in get_environment_proxies().items():
        if url is None:
            mounts[pattern] = None
            continue
        try:
            mounts[pattern] = pool(httpx.Proxy(url))
        except (ValueError, httpx.InvalidURL) as exc:  # ValueError: a scheme httpx or the transport refuses
            reason = str(exc) if str(exc).startswith("the proxy ") else f"the proxy {_shown(url)} cannot be used"
            mounts[pattern] = UnusableProxy(f"{reason} (set in the environment; NO_PROXY lists hosts reached directly)")
    return mounts


class HttpClient:
    """One ``request`` for a target, over the transport ``backend`` names (docs/internals.md#http-client).

    ``shards x connections_per_shard`` is the pool: one pool of that size, or that many small httpx
    clients when httpx's own transport is used. ``trust_env``: proxies (and the rest httpx reads) from the
    environment, as httpx; an injected transport is used for every URL, as httpx does. ``client_options`` go to
    every ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        *,
        shards: int = 1,
        connections_per_shard: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        backend: Backend = "wire",
        trust_env: bool = True,
        **client_options: Any,
    ) -> None:
        shards = max(1, shards)
        per_shard = max(1, connections_per_shard)
        client_options["trust_env"] = trust_env
        if transport is not None:
            self.backend = "injected"
            clients = [httpx.AsyncClient(transport=transport, **client_options)]
        elif backend in ("wire", "aiohttp"):
            self.backend = backend
            limits = httpx.Limits(max_connections=shards * per_shard, max_keepalive_connections=shards * per_shard)
            make: Callable[..., httpx.AsyncBaseTransport]
            if backend == "wire":
                make = WireTransport
            else:
                from stressor.http.aiohttp_transport import AiohttpTransport  # noqa: PLC0415 (see there)

                make = AiohttpTransport
            # httpx reads the environment's proxies only for its own transport: for ours, the same mounts
            mounts = environment_proxies(lambda proxy: make(limits=limits, proxy=proxy)) if trust_env else {}
            clients = [httpx.AsyncClient(transport=make(limits=limits), mounts=mounts, **client_options)]
        else:
            self.backend = "httpx"
            # keep-alive as large as each pool: with httpx's default of 20, connections churn above 20 in flight
            limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
            clients = [httpx.AsyncClient(limits=limits, **client_options) for _ in range(shards)]
        self._clients = clients
        self._next = itertools.cycle(clients).__next__
        self._headers = httpx.Headers(clients[0].headers)  # httpx's defaults (Accept-Encoding...), the caller's
        self._urls: dict[str, httpx.URL] = {}  # see _parsed
        self._merged: dict[tuple[tuple[str, str], ...], httpx.Headers] = {}  # see _with
        self._timeout = clients[0].timeout.as_dict()
        self._base_url = str(clients[0].base_url).rstrip("/") + "/"

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        timeout: float | httpx.Timeout | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one request and return its answer, read whole.

        The request goes straight to the client's transport: ``AsyncClient.send`` would add only what a
        target does not use (cookies, auth flows, redirects, event hooks) and most of the CPU of a request on
        loopback (benchmarks/README.md, ``transport.py``: URL merging and cookie extraction). The client still
        says which transport serves a URL (its mounts: proxies from the environment, and respx's mocks), and
        gives the headers and timeouts every request carries (``timeout``: this request's own)."""
        client = self._next()
        if isinstance(url, str):
            url = self._parsed(url)
        request = httpx.Request(
            method,
            url,
            params=params,
            headers=self._headers if headers is None else self._with(headers),
            json=json,
            content=content,
            extensions={
                "timeout": self._timeout if timeout is None else httpx.Timeout(timeout).as_dict(),
                **(extensions or {}),
            },
        )
        # The one private name used: the client's choice of transport for a URL (respx patches it to mock).
        transport = client._transport_for_url(request.url)
        response = await transport.handle_async_request(request)
        try:
            if isinstance(response.stream, httpx.SyncByteStream):
                response.read()  # a body already in memory (WireTransport's): cheaper than async generators
            else:
                await response.aread()
        finally:
            await response.aclose()
        return response

    def _with(self, headers: Mapping[str, str]) -> httpx.Headers:
        """The client's headers with these (a target's few constant sets), merged once: a merge of plain
        dicts made httpx normalise every header again, on every create request."""
        key = tuple(headers.items())
        merged = self._merged.get(key)
        if merged is None:
            if len(self._merged) >= URL_CACHE_SIZE:
                self._merged.clear()
            merged = self._merged[key] = httpx.Headers({**self._headers, **headers})
        return merged

    def _parsed(self, url: str) -> httpx.URL:
        """The absolute URL of a URL or a path (merged with the base URL as httpx does), parsed once: parsing
        was a large part of the CPU of a request."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url if "://" in url else self._base_url + url.lstrip("/"))
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()  # paths that differ per batch or run: forget them all now and then
            self._urls[url] = parsed
        return parsed

    async def get(self, url: str | httpx.URL, **options: Any) -> httpx.Response:
        return await self.request("GET", url, **options)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


# the name ``TestCallsTarget`` imports (its pool was once several httpx clients only)
ShardedClient = HttpClient
