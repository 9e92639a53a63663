"""A lean HTTP/1.1 client transport for httpx: asyncio ``Protocol`` connections, answers parsed by httptools (C).

A drop-in for ``AiohttpTransport`` with the same httpx exception for each failure (see ``WireTransport``), on
asyncio's loop and on uvloop, through an ``http://`` proxy too: docs/internals.md#wire-transport.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
from dataclasses import dataclass
from typing import Any

import httptools
import httpx

__all__ = ["WireTransport"]

# a body at most this large goes out in the same write (and usually the same segment) as the request's head
_JOIN_BELOW = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Bytes of an answer's head (status line and headers) read at most: llhttp keeps a header line whole until it
# ends, so a server sending an endless one would grow memory until the request's deadline. Real heads are a
# few hundred bytes; 64 KiB is what common servers accept for a request head.
HEAD_LIMIT = 64 * 1024
HEAD_TOO_LARGE = "answer head too large"  # in the failure's message: how callers tell it apart


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a connection goes; connections are pooled per origin."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class _Proxy:
    """A forward proxy as the pool uses it: where it listens, what every request to it carries, and how a
    message names it (never with its credentials)."""

    host: str
    port: int
    name: str  # http://host:port
    headers: list[tuple[bytes, bytes]]  # Proxy-Authorization (from the URL's user:password) and the Proxy's own


def _proxy_of(proxy: httpx.Proxy) -> _Proxy:
    url = proxy.url  # httpx.Proxy has already moved any user:password out of the URL, into ``auth``
    host = url.host
    name = f"{url.scheme}://{f'[{host}]' if ':' in host else host}:{url.port or _DEFAULT_PORTS.get(url.scheme, 80)}"
    if url.scheme != "http":
        raise ValueError(f"the proxy {name} cannot be used: stressor's transport speaks to proxies over http:// only")
    headers = list(proxy.headers.raw)
    if proxy.raw_auth is not None:
        user, password = proxy.raw_auth
        headers.append((b"Proxy-Authorization", b"Basic " + base64.b64encode(user + b":" + password)))
    return _Proxy(host, url.port or 80, name, headers)


def _authority(url: httpx.URL) -> bytes:
    host = url.raw_host
    host = b"[" + host + b"]" if b":" in host else host
    return host if url.port is None else host + b":" + str(url.port).encode("ascii")


def _refused(proxy: _Proxy, what: str, status: int, reason: bytes) -> str:
    """The sentence for a proxy's refusal (no trailing period), naming it without its credentials."""
    said = f"{status} {reason.decode('latin-1').strip()}".strip()
    hint = " (are the user and password in the proxy's URL right?)" if status == 407 else ""
    return f"the proxy {proxy.name} refused {what}: it answered {said}{hint}"


@dataclass(frozen=True, slots=True)
class _Answer:
    """A complete response as read off the wire: what ``httpx.Response`` is built from."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    content: bytes


class _Failure(Exception):
    """Raised inside the transport only, never out of it: what went wrong while a request was being exchanged,
    as the httpx class to raise, its message and the exception to chain it to."""

    def __init__(self, kind: type[httpx.TransportError], message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.cause = cause


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: at most one request in flight, its answer parsed as the bytes arrive.

    The httptools parser calls the ``on_*`` methods below during ``feed_data``; the answer is handed to the
    waiting request through ``self.waiter`` (a future resolved by the loop's callbacks, never by a task), so
    a request costs one future and, when it has a read timeout, one timer.
    """

    def __init__(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False  # the server closed it, it failed, or we closed it: never used again
        self.reusable = False  # the last answer was complete and the server keeps the connection open
        self.idle_since = 0.0
        self.waiter: asyncio.Future[_Answer] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.paused = False
        # the answer being read
        self.head_only = False
        self.limit: int | None = None
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.received = False  # any byte of this answer arrived
        self.headers_done = False
        self.head_size = 0  # bytes received while the answer's head was not complete
        self.overflow = False
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # ----------------------------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport, so no isinstance check)
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # bytes nobody asked for (while idle, or after a complete answer): the framing of whatever comes
            # next on this connection can no longer be trusted
            self.close()
            return
        self.received = True
        self.last_read = self.loop.time()
        in_head = not self.headers_done
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # a 101 answer: the head was read (on_message_complete resolved the waiter); what follows is not
            # HTTP/1.1, so the connection is not reused
            self.reusable = False
            self.close()
        except httptools.HttpParserError as exc:
            if not waiter.done():
                waiter.set_exception(_Failure(httpx.RemoteProtocolError, f"malformed HTTP answer: {exc}", exc))
            self.close()
            return
        if in_head and not self.headers_done and not waiter.done():
            # still no end of the head: this whole chunk was head (a chunk is one read, so bounded)
            self.head_size += len(data)
            if self.head_size > HEAD_LIMIT:
                message = f"{HEAD_TOO_LARGE}: over {HEAD_LIMIT} bytes without the end of its headers"
                waiter.set_exception(_Failure(httpx.RemoteProtocolError, message))
                self.close()
                return
        if self.overflow and not waiter.done():
            # the caller's body limit was passed: return what was read (limit + 1 bytes) and drop the rest with
            # the connection rather than read a body the caller will refuse
            self._resolve(waiter, b"".join(self.chunks)[: self.limit])
            self.close()
        elif self.head_only and self.headers_done and not waiter.done():
            self._resolve(waiter, b"")

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost says what the end means for the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reusable = False
        if self.drain is not None and not self.drain.done():
            self.drain.set_exception(_Failure(httpx.WriteError, str(exc or "connection closed while writing"), exc))
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if exc is None and self.headers_done and self._ends_at_close():
            self._resolve(waiter, b"".join(self.chunks))  # a body delimited by the end of the connection
        elif exc is not None:
            # a reset (or any socket error) once the request was written: the server may have acted on it
            waiter.set_exception(_Failure(httpx.ReadError, str(exc) or type(exc).__name__, exc))
        elif not self.received:
            waiter.set_exception(_Failure(httpx.RemoteProtocolError, "Server disconnected without sending a response."))
        else:
            waiter.set_exception(
                _Failure(
                    httpx.RemoteProtocolError,
                    f"peer closed connection without sending complete message body: received {self.size} bytes",
                )
            )

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    # ----------------------------------------------------------------------------------- httptools callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status  # llhttp may hand the reason phrase over in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.overflow:
            return
        self.chunks.append(body)
        self.size += len(body)
        if self.limit is not None and self.size >= self.limit:
            self.overflow = True  # data_received ends the answer once the parser returns

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.reusable = False  # a second answer to one request
            return
        if 100 <= self.status < 200 and self.status != 101:
            # an interim answer (100 Continue, 103 Early Hints): the real one follows on the same connection
            self.reason, self.headers, self.headers_done, self.status = b"", [], False, 0
            return
        self.reusable = self.parser.should_keep_alive() and not self.head_only
        self._resolve(waiter, b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0])

    # ----------------------------------------------------------------------------------- the request's side

    def send(self, data: bytes, body: bytes, head_only: bool, limit: int | None) -> asyncio.Future[_Answer]:
        """Write one request and return the future its answer will resolve."""
        self.head_only = head_only
        if head_only:
            # llhttp cannot be told that an answer to HEAD has no body: parse it with a parser of its own and
            # end the answer at its head (the connection is not reused afterwards)
            self.parser = httptools.HttpResponseParser(self)
        self.limit = limit
        self.status, self.reason, self.headers, self.chunks, self.size = 0, b"", [], [], 0
        self.received = self.headers_done = self.overflow = self.reusable = False
        self.head_size = 0
        waiter = self.waiter = self.loop.create_future()
        assert self.transport is not None
        if body and len(body) >= _JOIN_BELOW:
            self.transport.write(data)
            self.transport.write(body)
        else:
            self.transport.write(data + body if body else data)
        return waiter

    def wrote(self) -> bool:
        """Whether the request was handed to the kernel or the transport's buffer (a send that failed at once
        closes the transport)."""
        return self.transport is not None and not self.transport.is_closing()

    def watch_read(self, waiter: asyncio.Future[_Answer], timeout: float | None) -> None:
        """Fail ``waiter`` with ``ReadTimeout`` when no byte arrives for ``timeout`` seconds (as httpx's read
        timeout: per read, not for the whole answer). One timer per request, moved only when it fires."""
        if timeout is None:
            return
        self.last_read = self.loop.time()
        self.timer = self.loop.call_at(self.last_read + timeout, self._read_timer, waiter, timeout)

    def stop_watch(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        self.lost = True
        self.reusable = False
        self.stop_watch()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once, unsent bytes dropped (a request given up: its connection holds a half-read answer)."""
        self.lost = True
        self.reusable = False
        self.stop_watch()
        if self.transport is not None:
            self.transport.abort()

    # ----------------------------------------------------------------------------------- internals

    def _read_timer(self, waiter: asyncio.Future[_Answer], timeout: float) -> None:
        if waiter.done():
            return
        quiet_until = self.last_read + timeout
        if self.loop.time() < quiet_until:
            self.timer = self.loop.call_at(quiet_until, self._read_timer, waiter, timeout)
            return
        self.timer = None
        waiter.set_exception(_Failure(httpx.ReadTimeout, f"no data from the server within {timeout:g} s"))

    def _resolve(self, waiter: asyncio.Future[_Answer], content: bytes) -> None:
        self.stop_watch()
        headers, self.headers, self.chunks = self.headers, [], []  # later stray bytes must not touch this answer
        waiter.set_result(_Answer(self.status, self.reason, headers, content))

    def _ends_at_close(self) -> bool:
        """Whether the answer's body runs to the end of the connection (no Content-Length, not chunked)."""
        for name, _ in self.headers:
            lowered = name.lower()
            if lowered in (b"content-length", b"transfer-encoding"):
                return False
        return True


class WireTransport(httpx.AsyncBaseTransport):
    """An httpx transport over a pool of plain asyncio connections, HTTP/1.1 only; a drop-in for
    ``stressor.http.aiohttp_transport.AiohttpTransport``.

    Behaviour a caller may notice, beside httpx's own transport:

    - errors are httpx's classes, chosen by what they say about the request having left (as
      ``AiohttpTransport``): refused / unreachable / name not found / TLS failure -> ``ConnectError`` (chained
      to the ``OSError`` / ``ssl.SSLError``); no connection within the pool timeout, or none opened within the
      connect timeout -> ``ConnectTimeout`` (nothing was sent); no byte of the answer for the read timeout ->
      ``ReadTimeout``; the server closed the connection without (a complete) answer -> ``RemoteProtocolError``;
      a reset or socket error while reading -> ``ReadError``; the connection failed under the write, or the
      write timeout passed with the request still in the send buffer -> ``WriteError`` / ``WriteTimeout``; a
      malformed answer -> ``RemoteProtocolError``; a scheme other than http / https -> ``UnsupportedProtocol``;
    - one httpx request is one request on the wire: nothing is ever resent, not even a GET on a kept-alive
      connection the server had just closed (the caller sees and counts every failure);
    - a pool per origin, ``Limits.max_connections`` in total (an idle connection of another origin is closed
      to make room); idle connections are kept for ``keepalive_expiry``, at most
      ``max_keepalive_connections`` of them; requests wait for a connection first come, first served;
    - the answer's body is read whole before the response is returned (streaming is not streamed); the
      ``max_body_bytes`` request extension stops the read at that many bytes + 1, and the connection is dropped;
    - cookies, redirects, auth and decompression stay with httpx; no HTTP/2, no trailers; a header with an empty
      value is not returned (httptools does not report it); an answer to HEAD ends at its head and its
      connection is not reused;
    - with a ``proxy`` (``http://`` only; its URL's ``user:password`` becomes ``Proxy-Authorization: Basic``),
      every request goes through it: plain http as an absolute-form request, https through a ``CONNECT``
      tunnel (one per connection) with TLS to the origin inside. Whatever keeps the proxy from carrying a
      request (no connection to it, a refused ``CONNECT``, a ``407``) is ``ProxyError`` naming the proxy, not
      chained to the socket error (that would name the origin's port): nothing reached the origin. Other
      answers of the proxy (a ``502`` to a plain http request) are answers, as with httpx.

    Cancelling a request (an anyio cancel scope, ``Task.cancel``) closes the connection it held: a request
    given up halfway leaves no half-read answer in the pool.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100)
        self._proxy = None if proxy is None else _proxy_of(proxy)
        self._max = limits.max_connections or 1 << 30
        self._max_idle = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else 1 << 30
        self._expiry = limits.keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None  # built at the first https request (slow to build)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origins: dict[tuple[str, bytes, int | None], _Origin] = {}
        self._reset()

    def _reset(self) -> None:
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open: set[_Connection] = set()  # every connection counted in _count that exists
        self._count = 0  # connections open or being opened
        self._waiters: collections.deque[tuple[_Origin, asyncio.Future[_Connection | None]]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None

    # ----------------------------------------------------------------------------------- one request

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme != "http" and scheme != "https":  # noqa: PLR1714 (two compares beat a tuple lookup here)
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = await request.aread()
            request.headers["Content-Length"] = str(len(body))  # sent whole, with its length: no chunked upload
            if "Transfer-Encoding" in request.headers:
                del request.headers["Transfer-Encoding"]
        method = request.method.encode("ascii")
        proxy = self._proxy
        if proxy is not None and scheme == "http":
            # absolute-form, so that the proxy knows where to forward it (RFC 9112, 3.2.2)
            data = _head(method, b"http://" + _authority(url) + url.raw_path, request.headers.raw + proxy.headers)
        else:
            data = _head(method, url.raw_path, request.headers.raw)
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        limit = request.extensions.get("max_body_bytes")
        key = (scheme, url.raw_host, url.port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(
                scheme, url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[scheme]
            )

        connection = self._take(origin)
        if connection is None:
            connection = await self._connect(origin, timeouts, request)
        try:
            waiter = connection.send(data, body, method == b"HEAD", None if limit is None else int(limit) + 1)
            if not connection.wrote():
                raise _Failure(httpx.WriteError, "the connection closed while the request was written")
            if connection.paused:
                await self._drain(connection, timeouts.get("write"))
            connection.watch_read(waiter, timeouts.get("read"))
            answer = await waiter
        except _Failure as failure:
            self._drop(connection)
            raise failure.kind(failure.message, request=request) from failure.cause
        except BaseException:
            self._drop(connection)  # cancelled: the connection holds a half-exchanged request
            raise
        if connection.reusable and not connection.lost:
            self._release(connection)
        else:
            self._drop(connection)
        if answer.status == 407 and proxy is not None and scheme == "http":
            # only a proxy answers 407: it kept the request from the origin
            raise httpx.ProxyError(_refused(proxy, "the request", 407, answer.reason), request=request)
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(answer.content),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close every connection, idle or in use (a request in flight fails as if the server had closed)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self._open):
            connection.close()
        self._reset()

    # ----------------------------------------------------------------------------------- the pool

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use the pool on ``loop``; connections made on another loop cannot be used from this one."""
        if self._loop is not None:
            for connection in list(self._open):
                if not self._loop.is_closed():
                    connection.close()
        self._reset()
        self._loop = loop

    def _take(self, origin: _Origin) -> _Connection | None:
        """An idle connection to ``origin`` the server has not closed, or None. Connections whose close has been
        seen (``connection_lost``) or which sat idle past ``keepalive_expiry`` are closed and skipped."""
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()  # the most recently used: the others may expire
            self._idle_count -= 1
            if connection.lost or self._expired(connection):
                self._drop(connection)
                continue
            return connection
        return None

    def _expired(self, connection: _Connection) -> bool:
        return self._expiry is not None and connection.loop.time() - connection.idle_since >= self._expiry

    async def _connect(self, origin: _Origin, timeouts: dict[str, float | None], request: httpx.Request) -> _Connection:
        """A new connection to ``origin``, once the pool has room (waiting up to the pool timeout)."""
        if self._count < self._max:
            self._count += 1
        elif not self._evict_idle():  # (an evicted connection's slot passes to this request as it is)
            handed = await self._wait(origin, timeouts.get("pool"), request)
            if handed is not None:
                return handed
        # from here, this request holds one slot of the pool: it is given back if no connection comes of it
        if self._proxy is not None:
            return await self._connect_through(self._proxy, origin, timeouts.get("connect"), request)
        loop = asyncio.get_running_loop()
        context = self._ssl_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                sock, connection = await loop.create_connection(
                    lambda: _Connection(origin, loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
        except TimeoutError as exc:  # before OSError: TimeoutError is one (ETIMEDOUT from the kernel too)
            self._free_slot()
            raise httpx.ConnectTimeout(
                f"no connection to {origin.host}:{origin.port} in time", request=request
            ) from exc
        except OSError as exc:  # refused, unreachable, name not found, TLS handshake (ssl.SSLError)
            self._free_slot()
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        except BaseException:
            self._free_slot()  # cancelled while connecting
            raise
        # uvloop may resolve create_connection before it calls connection_made: the transport is known here
        connection.transport = sock  # type: ignore[assignment]
        self._open.add(connection)
        return connection

    async def _connect_through(
        self, proxy: _Proxy, origin: _Origin, timeout: float | None, request: httpx.Request
    ) -> _Connection:
        """A new connection to the proxy for ``origin``: for https, a ``CONNECT`` tunnel with TLS inside it.
        The connect timeout covers all of it. Failures of the proxy's are raised outside the ``except`` blocks:
        chained to the socket error, a reader of the chain would blame the origin's address."""
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        tunnelled = False  # the proxy opened the tunnel: what fails after it is the origin's (its TLS)
        failure: httpx.TransportError | None = None
        try:
            async with asyncio.timeout(timeout):
                sock, connection = await loop.create_connection(
                    lambda: _Connection(origin, loop), proxy.host, proxy.port
                )
                connection.transport = sock  # type: ignore[assignment]
                if origin.scheme == "https":
                    failure = await self._tunnel(proxy, origin, connection, request)
                    if failure is None:
                        tunnelled = True
                        context = self._ssl_context()
                        tls = await loop.start_tls(sock, connection, context, server_hostname=origin.host)
                        if tls is None:
                            raise ConnectionResetError("the tunnel closed during the TLS handshake")
                        connection.transport = tls  # type: ignore[assignment]
        except TimeoutError as exc:
            if tunnelled:
                self._give_up(connection)
                raise httpx.ConnectTimeout(
                    f"no TLS handshake with {origin.host}:{origin.port} through the proxy {proxy.name} in time",
                    request=request,
                ) from exc
            failure = httpx.ProxyError(
                f"no connection through the proxy {proxy.name} to {origin.host}:{origin.port} in time",
                request=request,
            )
        except OSError as exc:  # refused or unreachable proxy, its name not found; the origin's TLS handshake
            if tunnelled:
                self._give_up(connection)
                raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
            failure = httpx.ProxyError(
                f"cannot connect to the proxy {proxy.name}: {exc.strerror or exc or type(exc).__name__}",
                request=request,
            )
        except BaseException:
            self._give_up(connection)  # cancelled while connecting
            raise
        if failure is not None:
            self._give_up(connection)
            raise failure
        assert connection is not None
        connection.waiter = None  # the CONNECT's answer is done with: bytes before the next request are stray
        connection.parser = httptools.HttpResponseParser(connection)
        self._open.add(connection)
        return connection

    def _give_up(self, connection: _Connection | None) -> None:
        """A connection being opened that will not be used: closed, and its slot of the pool freed."""
        if connection is not None:
            connection.abort()
        self._free_slot()

    async def _tunnel(
        self, proxy: _Proxy, origin: _Origin, connection: _Connection, request: httpx.Request
    ) -> httpx.ProxyError | None:
        """Ask the proxy for a tunnel to ``origin``: None when it opened one, else why not (its refusal)."""
        authority = f"{f'[{origin.host}]' if ':' in origin.host else origin.host}:{origin.port}".encode("ascii")
        data = _head(b"CONNECT", authority, [(b"Host", authority), *proxy.headers])
        try:
            # an answer to CONNECT has no body, whatever its headers say: read up to its head (RFC 9110, 9.3.6)
            answer = await connection.send(data, b"", True, None)
        except _Failure as failure:
            return httpx.ProxyError(
                f"the proxy {proxy.name} gave no answer to CONNECT {authority.decode()}: {failure.message}",
                request=request,
            )
        if 200 <= answer.status < 300:
            return None
        what = f"the tunnel to {authority.decode()}"
        return httpx.ProxyError(_refused(proxy, what, answer.status, answer.reason), request=request)

    async def _wait(self, origin: _Origin, timeout: float | None, request: httpx.Request) -> _Connection | None:
        """Queue for the pool: the result is a kept-alive connection to ``origin`` handed over by a finished
        request, or None: a slot freed (already counted for this request) to open a new one."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append((origin, waiter))
        timer = None
        if timeout is not None:
            timer = loop.call_later(timeout, _expire_wait, waiter, request, timeout)
        try:
            return await waiter
        except BaseException:
            # cancelled after a connection or a slot was handed over but before this task ran: give it back
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self._release(handed)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection (of any origin) to make room; False when none is idle."""
        oldest: _Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        self._idle[oldest.origin].remove(oldest)
        self._idle_count -= 1
        self._open.discard(oldest)
        oldest.close()  # its slot goes to the caller, so _count does not change
        return True

    def _release(self, connection: _Connection) -> None:
        """A connection whose exchange ended cleanly: to the first waiter, or to the idle pool."""
        if connection.lost:
            self._drop(connection)
            return
        while self._waiters:
            origin, waiter = self._waiters.popleft()
            if waiter.done():
                continue  # timed out or cancelled
            if origin == connection.origin:
                waiter.set_result(connection)
            else:
                # first come, first served: this waiter needs another origin; close this one to make room
                self._open.discard(connection)
                connection.close()
                waiter.set_result(None)
            return
        if self._idle_count >= self._max_idle:
            self._drop(connection)
            return
        connection.idle_since = connection.loop.time()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1
        if self._sweeper is None and self._expiry is not None:
            self._sweeper = connection.loop.call_later(self._expiry, self._sweep)

    def _drop(self, connection: _Connection) -> None:
        """Close a connection that will not be reused and give its slot to the first waiter."""
        if connection.waiter is not None and not connection.waiter.done():
            connection.abort()  # a half-exchanged request: nothing more of it is wanted
        else:
            connection.close()
        if connection in self._open:
            self._open.discard(connection)
            self._free_slot()

    def _free_slot(self) -> None:
        """One slot less in use: handed on to the first live waiter (who opens a connection), if any."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot stays counted: it is the waiter's now
                return
        self._count -= 1

    def _sweep(self) -> None:
        """Close idle connections past ``keepalive_expiry`` (so that none is held open for ever); runs while
        any connection is idle."""
        self._sweeper = None
        for origin, idle in list(self._idle.items()):
            keep = []
            for connection in idle:
                if connection.lost or self._expired(connection):
                    self._idle_count -= 1
                    self._drop(connection)
                else:
                    keep.append(connection)
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]
        if self._idle_count and self._expiry is not None and self._loop is not None:
            self._sweeper = self._loop.call_later(self._expiry / 2, self._sweep)

    async def _drain(self, connection: _Connection, timeout: float | None) -> None:
        """Wait until the transport's send buffer is below its high-water mark."""
        drain = connection.drain = connection.loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await drain
        except TimeoutError as exc:
            raise _Failure(httpx.WriteTimeout, f"the request was not sent within {timeout:g} s", exc) from exc
        finally:
            connection.drain = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            if isinstance(self._verify, ssl.SSLContext):
                self._ssl = self._verify
            else:
                # the same trust store and settings as httpx's own transport; HTTP/1.1 is all this client speaks
                self._ssl = httpx.create_ssl_context(self._verify)
                self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl


def _expire_wait(waiter: asyncio.Future[_Connection | None], request: httpx.Request, timeout: float) -> None:
    if not waiter.done():
        # nothing was sent: the class ``transport_failure`` reads as "safe to send again"
        waiter.set_exception(httpx.ConnectTimeout(f"no connection free within {timeout:g} s", request=request))


def _head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request line and header block. A CR or LF inside a header would split the block (header injection):
    each line must hold exactly one line break after joining."""
    lines = [method + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in headers]
    data = b"\r\n".join(lines) + b"\r\n\r\n"
    if data.count(b"\n") != len(lines) + 1 or data.count(b"\r") != len(lines) + 1:
        raise httpx.LocalProtocolError("a request header holds a line break")
    return data
