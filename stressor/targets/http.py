"""HTTP for targets: httpx's API over a connection pool that holds up under load.

Targets speak httpx (``httpx.Request``, ``httpx.Response``, httpx's exceptions), but httpx's own pool
(httpcore) costs ~2 ms of CPU per request once tens of requests are in flight and, after a server stall,
stays CPU-bound for seconds (``benchmarks/transport.py``; engineering notes). Two transports keep the httpx
API and replace the pool: ``WireTransport`` (``stressor.targets.wire``: asyncio protocols and httptools'
C parser, the fastest) and ``AiohttpTransport`` (aiohttp's pool: ~0.35 ms per request at any concurrency).

``HttpClient`` picks the transport:

- an injected ``transport`` (tests, instrumentation) is used as given, by one client;
- ``backend="wire"`` (the default) or ``backend="aiohttp"``: one client over that transport, the whole pool;
- ``backend="httpx"``: httpx's own transport, as several small clients used round robin (one large httpcore
  pool scans every connection on each event).

``HttpClient.request`` hands each request to the client's transport itself (see there). Tests that mock HTTP
with respx use its client-level mocker, ``pytest.mark.respx(using="httpx")``, which sees requests whatever
the transport.

What differs from httpx's own transport: see ``AiohttpTransport`` and ``WireTransport``.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
import httpx
from yarl import URL

from stressor.targets.wire import WireTransport

Backend = Literal["wire", "aiohttp", "httpx"]
URL_CACHE_SIZE = 4096  # parsed URLs kept by a client


async def _read_at_most(answer: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, but no more than ``limit`` bytes of it (a caller with a ``max_body_bytes`` extension asks one
    more than its limit to tell "too large"); the rest is never read, and the connection is dropped."""
    chunks, size = [], 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            answer.close()
            break
    return b"".join(chunks)[:limit]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends each request over one ``aiohttp.ClientSession`` (HTTP/1.1).

    Behaviour a caller may notice, beside httpx's own transport:

    - errors are httpx's classes, chosen by what they say about the request having left
      (``stressor.targets.testcalls.transport_failure`` relies on it): refused / unreachable / TLS failure ->
      ``ConnectError``; no connection within the pool + connect timeouts -> ``ConnectTimeout``; no answer within
      the read timeout -> ``ReadTimeout``; the server closed the connection without (a complete) answer ->
      ``RemoteProtocolError``; a reset while reading -> ``ReadError``; the connection closed under a write ->
      ``WriteError``; a malformed answer -> ``RemoteProtocolError``;
    - aiohttp's silent second try of an idempotent request after a reset or disconnect is switched off: one
      httpx request is one request on the wire, as with httpx, so the caller sees and counts every failure;
    - the answer's body is read whole before the response is returned (the APIs stressor drives answer
      small JSON bodies); a streamed response (``client.stream``) works but is no longer streamed;
    - ``Limits.max_keepalive_connections`` has no equivalent: aiohttp keeps up to ``max_connections`` idle
      connections, each for ``keepalive_expiry``; the write timeout is not applied (aiohttp has none);
      the pool timeout and the connect timeout add up into aiohttp's one ``connect`` timeout;
    - cookies, redirects, auth and decompression stay with httpx (aiohttp's are switched off); HTTP/2 and
      proxies are not offered (httpx still mounts its own transport for proxies taken from the environment).
    """

    def __init__(self, *, limits: httpx.Limits | None = None, verify: ssl.SSLContext | bool = True) -> None:
        self._limits = limits or httpx.Limits(max_connections=100)
        self._verify = verify
        self._ssl: ssl.SSLContext | bool | None = None  # built at the first https request (~60 ms)
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        """The session, made at the first request (aiohttp binds it to the running event loop)."""
        options: dict[str, Any] = {}
        if self._limits.keepalive_expiry is not None:
            options["keepalive_timeout"] = self._limits.keepalive_expiry
        connector = aiohttp.TCPConnector(limit=self._limits.max_connections or 0, limit_per_host=0, **options)
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp resends an idempotent request once after a reset or a disconnect, unseen by the caller; a load
        # tester must see every failure and send what it counts (there is no public switch in aiohttp 3.14)
        session._retry_connection = False
        self._session = session
        return session

    def _ssl_for(self, scheme: str) -> ssl.SSLContext | bool:
        if scheme != "https":
            return True  # aiohttp's default; unused for plain HTTP
        if self._ssl is None:
            # the same trust store and settings as httpx's own transport
            self._ssl = (
                self._verify if isinstance(self._verify, ssl.SSLContext) else httpx.create_ssl_context(self._verify)
            )
        return self._ssl

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        connect, read, pool = timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool")
        key = (connect, read, pool)
        found = self._timeouts.get(key)
        if found is None:
            waiting = None if connect is None or pool is None else connect + pool
            found = aiohttp.ClientTimeout(total=None, connect=waiting, sock_connect=connect, sock_read=read)
            self._timeouts[key] = found
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.")
        session = self._session or self._open()
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                URL(str(url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                ssl=self._ssl_for(url.scheme),
            ) as answer:
                limit = request.extensions.get("max_body_bytes")
                content = await (answer.read() if limit is None else _read_at_most(answer, int(limit) + 1))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise as_httpx_error(exc, request) from underlying(exc)
        extensions = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode("ascii", "replace")
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def as_httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that says the same as an aiohttp one about whether the request left."""
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout  # no connection was given to the request in time: nothing was sent
    elif isinstance(exc, TimeoutError):
        kind = httpx.ReadTimeout  # aiohttp.SocketTimeoutError and any other timeout after the send began
    elif isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        kind = httpx.ProxyError
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError  # refused, unreachable, name not found, TLS handshake: nothing was sent
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        kind = httpx.RemoteProtocolError  # closed without an answer, or an answer that is not HTTP
    elif isinstance(exc, aiohttp.ClientConnectionResetError):
        kind = httpx.WriteError  # the connection was closed while the request was being written
    elif isinstance(exc, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    else:
        kind = httpx.ReadError  # a reset while reading (ClientOSError), a cut body (ClientPayloadError), the rest
    return kind(str(exc) or type(exc).__name__, request=request)


def underlying(exc: BaseException) -> BaseException:
    """What to chain the httpx exception to: for a failed connection the OS or TLS error itself (refused, name
    not found, certificate), as httpx's own transport does, so that a reader of ``__cause__`` finds the same
    exceptions either way; otherwise aiohttp's exception (its message says what was cut short)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error
    return exc


class HttpClient:
    """One ``request`` for a target, over a transport the module's docstring describes.

    ``shards x connections_per_shard`` is the pool: one pool of that size, or that many small httpx
    clients when httpx's own transport is used. ``client_options`` go to every ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        *,
        shards: int = 1,
        connections_per_shard: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        backend: Backend = "wire",
        **client_options: Any,
    ) -> None:
        shards = max(1, shards)
        per_shard = max(1, connections_per_shard)
        if transport is not None:
            self.backend = "injected"
            clients = [httpx.AsyncClient(transport=transport, **client_options)]
        elif backend in ("wire", "aiohttp"):
            self.backend = backend
            limits = httpx.Limits(max_connections=shards * per_shard, max_keepalive_connections=shards * per_shard)
            pool = WireTransport(limits=limits) if backend == "wire" else AiohttpTransport(limits=limits)
            clients = [httpx.AsyncClient(transport=pool, **client_options)]
        else:
            self.backend = "httpx"
            # keep-alive as large as each pool: with httpx's default of 20, connections churn above 20 in flight
            limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
            clients = [httpx.AsyncClient(limits=limits, **client_options) for _ in range(shards)]
        self._clients = clients
        self._next = itertools.cycle(clients).__next__
        self._headers = httpx.Headers(clients[0].headers)  # httpx's defaults (Accept-Encoding...), the caller's
        self._urls: dict[str, httpx.URL] = {}  # see _parsed
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
        target does not use (cookies, auth flows, redirects, event hooks) and cost half of the CPU of a
        request on loopback (``benchmarks/transport.py``: URL merging and cookie extraction). The client still
        says which transport serves a URL (its mounts: proxies from the environment, and respx's mocks), and
        gives the headers and timeouts every request carries (``timeout``: this request's own)."""
        client = self._next()
        if isinstance(url, str):
            url = self._parsed(url)
        request = httpx.Request(
            method,
            url,
            params=params,
            headers=self._headers if headers is None else {**self._headers, **headers},
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
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _parsed(self, url: str) -> httpx.URL:
        """The absolute URL of a URL or a path (merged with the base URL as httpx does), parsed once: parsing
        was a fifth of the CPU of a request."""
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
