"""``AiohttpTransport``: httpx's API over aiohttp's connection pool, the ``backend="aiohttp"`` of
``stressor.http.client.HttpClient``.

A module of its own so that aiohttp (slow to import) is loaded only by what uses it: the default transport
is ``stressor.http.wire.WireTransport``.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import aiohttp
import httpx
from yarl import URL


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
      (``stressor.targets.testcalls.failures.transport_failure`` relies on it): refused / unreachable / TLS failure ->
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
    - cookies, redirects, auth and decompression stay with httpx (aiohttp's are switched off); no HTTP/2;
    - with a ``proxy`` (``http://`` or ``https://``; its URL's ``user:password`` becomes
      ``Proxy-Authorization: Basic``), every request goes through it, as aiohttp sends them: plain http as an
      absolute-form request, https through a ``CONNECT`` tunnel. What keeps the proxy from carrying a request
      (no connection to it, a refused ``CONNECT``, a ``407``) is ``ProxyError`` naming the proxy, unchained (a
      chain to the socket error would name the origin's port): nothing reached the origin.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._proxy: dict[str, Any] = {}  # aiohttp's per-request proxy options
        # sent to the proxy with each plain http request (aiohttp gives ``proxy_headers`` to CONNECT only); never
        # inside a tunnel, where the origin would read them
        self._proxy_headers: list[tuple[str, str]] = []
        self._proxy_name = ""
        if proxy is not None:
            url = proxy.url  # httpx.Proxy has already moved any user:password out of it, into ``auth``
            self._proxy_name = f"{url.scheme}://{url.netloc.decode('ascii')}"
            if url.scheme not in ("http", "https"):
                raise ValueError(f"the proxy {self._proxy_name} cannot be used: aiohttp speaks to http(s):// ones only")
            self._proxy["proxy"] = URL(str(url))
            headers = proxy.headers.multi_items()
            if proxy.raw_auth is not None:  # (aiohttp's own proxy_auth is deprecated for this)
                user, password = proxy.raw_auth
                headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(user + b":" + password).decode()))
            if headers:
                self._proxy["proxy_headers"] = self._proxy_headers = headers
        self._limits = limits or httpx.Limits(max_connections=100)
        self._verify = verify
        self._ssl: ssl.SSLContext | bool | None = None  # built at the first https request (slow to build)
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
        refusal: str | None = None
        try:
            async with session.request(
                request.method,
                URL(str(url), encoded=True),
                headers=request.headers.multi_items() + self._proxy_headers
                if url.scheme == "http"
                else request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                ssl=self._ssl_for(url.scheme),
                **self._proxy,
            ) as answer:
                limit = request.extensions.get("max_body_bytes")
                content = await (answer.read() if limit is None else _read_at_most(answer, int(limit) + 1))
        except aiohttp.ClientProxyConnectionError as exc:
            refusal = f"cannot connect to the proxy {self._proxy_name}: {exc.os_error.strerror or exc.os_error}"
        except aiohttp.ClientHttpProxyError as exc:
            refusal = _refused(self._proxy_name, f"the tunnel to {url.host}:{url.port or 443}", exc.status, exc.message)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise as_httpx_error(exc, request) from underlying(exc)
        if refusal is None and answer.status == 407 and self._proxy and url.scheme == "http":
            refusal = _refused(self._proxy_name, "the request", 407, answer.reason or "")  # only a proxy answers 407
        if refusal is not None:
            raise httpx.ProxyError(refusal, request=request)  # outside the except: see the class docstring
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


def _refused(proxy: str, what: str, status: int, reason: str) -> str:
    """The sentence for a proxy's refusal (no trailing period), naming it without its credentials."""
    hint = " (are the user and password in the proxy's URL right?)" if status == 407 else ""
    return f"the proxy {proxy} refused {what}: it answered {f'{status} {reason}'.strip()}{hint}"


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
