"""A small forward proxy on loopback for tests, and a TLS front for a plain-HTTP server.

``ForwardProxy`` does what a corporate proxy does for a client that sets ``HTTP_PROXY`` / ``HTTPS_PROXY``:
absolute-form requests (``GET http://host:port/path HTTP/1.1``) are forwarded to the origin and the answer
relayed; ``CONNECT host:port`` opens a tunnel and relays bytes both ways (TLS stays end to end). It counts
what it relayed, can ask for ``Proxy-Authorization: Basic`` (answering 407 without it) and can refuse every
tunnel. It forwards to loopback addresses only.

``TlsFront`` terminates TLS on loopback and relays the bytes to a plain-HTTP server (the simulator speaks
plain HTTP), as a load balancer would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


Ends = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _relay(left: Ends, right: Ends) -> None:
    await asyncio.gather(_pipe(left[0], right[1]), _pipe(right[0], left[1]))


def _closing(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


@dataclass
class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1; ``url`` once entered (``async with``)."""

    user: str | None = None  # with ``password``: every request must carry Proxy-Authorization: Basic
    password: str | None = None
    refuse_tunnels: int | None = None  # answer every CONNECT with this status instead of opening it
    forwarded: list[tuple[str, str]] = field(default_factory=list)  # (method, absolute URL) relayed
    tunnels: list[str] = field(default_factory=list)  # host:port of every tunnel opened
    refused: list[str] = field(default_factory=list)  # the request line of every request refused
    authorizations: list[str] = field(default_factory=list)  # Proxy-Authorization values received
    url: str = ""
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._client(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.user is None:
            return True
        given = headers.get("proxy-authorization", "")
        if given:
            self.authorizations.append(given)
        wanted = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return given == f"Basic {wanted}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                line, *rest = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {}
                for raw in rest:
                    if raw:
                        name, _, value = raw.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not self._authorized(headers):
                    self.refused.append(line)
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="tests"\r\nContent-Length: 0\r\n\r\n'
                    )
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    await self._tunnel(target, line, reader, writer)
                    return
                if not await self._forward(method, target, head, body, writer):
                    return
        finally:
            _closing(writer)

    async def _tunnel(
        self, authority: str, line: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = authority.rpartition(":")
        host = host.strip("[]")
        if self.refuse_tunnels is not None or host not in LOOPBACK:
            self.refused.append(line)
            status = self.refuse_tunnels or 403
            writer.write(f"HTTP/1.1 {status} Refused By Test Proxy\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        upstream = await asyncio.open_connection(host, int(port))
        self.tunnels.append(authority)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _relay((reader, writer), upstream)

    async def _forward(self, method: str, target: str, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Relay one absolute-form request; whether the client's connection stays open."""
        parts = urlsplit(target)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            raise AssertionError(f"the test proxy forwards absolute-form http:// requests to loopback only: {target}")
        self.forwarded.append((method, target))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = head.decode("latin-1").split("\r\n")[1:]
        hop_by_hop = ("proxy-authorization", "connection", "proxy-connection")
        kept = [h for h in lines if h and h.split(":", 1)[0].strip().lower() not in hop_by_hop]
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode("latin-1")
        try:
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")  # as a real proxy answers
            await writer.drain()
            return True
        try:
            up_writer.write(request + body)
            await up_writer.drain()
            answer = await up_reader.read(-1)  # asked with Connection: close: the answer ends with the connection
        finally:
            _closing(up_writer)
        answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
        answer_lines = answer_head.split(b"\r\n")
        names = {h.split(b":", 1)[0].strip().lower() for h in answer_lines[1:]}
        framed = b"content-length" in names or b"transfer-encoding" in names
        kept_lines = [h for h in answer_lines if h.split(b":", 1)[0].strip().lower() != b"connection"]
        if not framed:
            kept_lines.append(b"Connection: close")
        writer.write(b"\r\n".join(kept_lines) + b"\r\n\r\n" + answer_body)
        await writer.drain()
        return framed


@dataclass
class TlsFront:
    """TLS on 127.0.0.1 (``port`` once entered) in front of a plain-HTTP server at ``upstream_port``."""

    upstream_port: int
    context: ssl.SSLContext
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> TlsFront:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def relay() -> None:
            try:
                upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                await _relay((reader, writer), upstream)
            finally:
                _closing(writer)

        task = asyncio.ensure_future(relay())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
