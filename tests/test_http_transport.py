"""The targets' HTTP client on real loopback sockets: which httpx exception each failure becomes (the target
decides from it whether a run-creating request may have reached the server), keep-alive, and what reaches
the wire and comes back, through each of the fast transports (wire and aiohttp)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import socket
import ssl
import struct
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest
import respx

from stressor.http.aiohttp_transport import AiohttpTransport
from stressor.http.client import HttpClient
from stressor.sim.config import SimConfig
from stressor.sim.server import serve
from stressor.targets.testcalls.failures import transport_failure

pytestmark = pytest.mark.anyio

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A tiny HTTP server on 127.0.0.1 whose behaviour per request is ``handler``; counts connections and
    request heads."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.base_url = ""

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                await self.handler(reader, writer)
                if writer.is_closing():
                    return
        finally:
            writer.close()


@asynccontextmanager
async def running(handler: Handler) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._connection, "127.0.0.1", 0)
    server.base_url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(OK)
    await writer.drain()


async def close_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RST instead of an answer (SO_LINGER 0), as the simulator's ``reset_rate`` does."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


ClientFactory = Callable[..., HttpClient]


@pytest.fixture(params=["wire", "aiohttp"])
def fast_client(request: pytest.FixtureRequest) -> ClientFactory:
    """Clients over each of the fast transports: every test below holds for both."""

    def make(base_url: str, timeout: float = 5.0, connections: int = 8) -> HttpClient:
        return HttpClient(
            connections_per_shard=connections,
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            backend=request.param,
        )

    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def failure_of(client: HttpClient, method: str = "POST") -> httpx.TransportError:
    with pytest.raises(httpx.TransportError) as raised:
        await client.request(method, "/v1/test-call-batches", content=b"{}")
    await client.aclose()
    return raised.value


# ------------------------------------------------------------------------------------ failures, classified


async def test_a_refused_connection_is_a_connect_error_so_nothing_was_sent(fast_client: ClientFactory) -> None:
    error = await failure_of(fast_client(f"http://127.0.0.1:{free_port()}"))
    assert type(error) is httpx.ConnectError
    assert transport_failure(error) == "connect_error"
    assert isinstance(error.__cause__, ConnectionRefusedError)  # chained as httpx's own transport chains it


async def test_a_tls_handshake_with_a_plain_http_port_is_a_connect_error_from_the_ssl_error(
    fast_client: ClientFactory,
) -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the ClientHello: a plain HTTP server answers it with an HTTP error
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        error = await failure_of(fast_client(f"https://127.0.0.1:{port}"))
    finally:
        listener.close()
    assert type(error) is httpx.ConnectError
    assert isinstance(error.__cause__, ssl.SSLError) and error.__cause__.reason == "WRONG_VERSION_NUMBER"


async def test_a_server_that_closes_without_answering_may_have_received_the_request(fast_client: ClientFactory) -> None:
    async with running(close_without_answer) as server:
        error = await failure_of(fast_client(server.base_url))
    assert type(error) is httpx.RemoteProtocolError
    assert transport_failure(error) == "remote_protocol"  # reconcile before any resend, never a blind retry
    assert len(server.requests) == 1


async def test_a_reset_instead_of_an_answer_is_a_read_error(fast_client: ClientFactory) -> None:
    async with running(reset) as server:
        error = await failure_of(fast_client(server.base_url))
    assert type(error) is httpx.ReadError
    assert transport_failure(error) == "reset"
    assert len(server.requests) == 1


async def test_a_failed_get_is_not_resent_behind_the_callers_back(fast_client: ClientFactory) -> None:
    # aiohttp resends an idempotent request once after a reset; a load tester must see and count each one
    async with running(reset) as server:
        error = await failure_of(fast_client(server.base_url), "GET")
    assert type(error) is httpx.ReadError
    assert len(server.requests) == 1
    assert server.connections == 1


async def test_no_answer_within_the_read_timeout_is_a_read_timeout(fast_client: ClientFactory) -> None:
    async with running(never_answer) as server:
        started = time.perf_counter()
        error = await failure_of(fast_client(server.base_url, timeout=0.2))
        elapsed = time.perf_counter() - started
    assert type(error) is httpx.ReadTimeout
    assert transport_failure(error) == "read_timeout"
    assert 0.15 < elapsed < 2.0


async def test_waiting_too_long_for_a_pooled_connection_is_a_connect_timeout_so_nothing_was_sent(
    fast_client: ClientFactory,
) -> None:
    async with running(never_answer) as server:
        client = fast_client(server.base_url, connections=1)
        hold = asyncio.ensure_future(client.get("/busy", timeout=httpx.Timeout(5.0)))
        await asyncio.sleep(0.05)  # the only connection is now taken by a request the server never answers
        started = time.perf_counter()
        with pytest.raises(httpx.TransportError) as raised:
            await client.get("/waiting", timeout=httpx.Timeout(5.0, pool=0.1, connect=0.1))
        elapsed = time.perf_counter() - started
        hold.cancel()
        await client.aclose()
    assert type(raised.value) is httpx.ConnectTimeout
    assert transport_failure(raised.value) == "connect_timeout"
    assert elapsed < 2.0
    assert [request.split(b" ")[1] for request in server.requests] == [b"/busy"]


async def test_the_simulators_connection_reset_is_a_reset_and_each_request_is_sent_once() -> None:
    async with serve(SimConfig(reset_rate=1.0, api_key="sk_test_x")) as sim:
        client = HttpClient(base_url=sim.base_url, headers={"Authorization": "Bearer sk_test_x"})
        assert (await client.get("/v1/healthz")).status_code == 200  # never faulted
        errors = []
        for method, path in (("GET", "/v1/test-calls"), ("POST", "/v1/test-call-batches")):
            with pytest.raises(httpx.TransportError) as raised:
                await client.request(method, path, json={} if method == "POST" else None)
            errors.append(raised.value)
        await client.aclose()
        assert sim.faults is not None and sim.faults.snapshot()["reset"] == 2
    assert [type(error) for error in errors] == [httpx.ReadError, httpx.ReadError]
    assert [transport_failure(error) for error in errors] == ["reset", "reset"]


# ------------------------------------------------------------------------------------ keep-alive, wire format


async def test_keep_alive_connections_are_reused(fast_client: ClientFactory) -> None:
    async with running(answer_ok) as server:
        client = fast_client(server.base_url, connections=4)
        for _ in range(20):
            assert (await client.get("/")).json() == {"ok": True}
        assert server.connections == 1
        await asyncio.gather(*(client.get("/") for _ in range(40)))
        await client.aclose()
    assert len(server.requests) == 60
    assert server.connections <= 4  # the pool's size, however many requests


async def test_what_is_sent_and_what_comes_back_go_through_unchanged() -> None:
    body = gzip.compress(orjson.dumps({"runs": ["tc_1"]}))

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
            b"x-ratelimit-remaining: 9\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async with running(gzipped) as server:
        client = HttpClient(base_url=server.base_url, headers={"Authorization": "Bearer sk_test_1"})
        response = await client.request("POST", "/v1/test-calls", params={"limit": 2}, json={"target_id": 7})
        await client.aclose()
    head, _, sent_body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    assert lines[0] == "POST /v1/test-calls?limit=2 HTTP/1.1"
    assert headers["authorization"] == "Bearer sk_test_1"
    assert headers["content-type"] == "application/json"
    assert orjson.loads(sent_body) == {"target_id": 7}
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.json() == {"runs": ["tc_1"]}  # httpx decoded the gzip body, once
    assert response.headers["x-ratelimit-remaining"] == "9"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_an_unsupported_scheme_is_refused_before_any_connection() -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/")


# ------------------------------------------------------------------------------------ choice of transport


@pytest.mark.respx(using="httpx")
@pytest.mark.parametrize("backend", ["wire", "aiohttp"])
async def test_respx_at_the_client_level_mocks_the_fast_backends_too(
    respx_mock: respx.MockRouter, backend: str
) -> None:
    respx_mock.get("http://api.test/v1/healthz").respond(200, json={"status": "ok"})
    client = HttpClient(shards=2, connections_per_shard=4, base_url="http://api.test", backend=backend)  # type: ignore[arg-type]
    assert client.backend == backend
    assert (await client.get("/v1/healthz")).json() == {"status": "ok"}
    await client.aclose()


async def test_an_injected_transport_is_used_as_given() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(204)

    client = HttpClient(shards=8, transport=httpx.MockTransport(handler), base_url="http://api.test")
    assert client.backend == "injected"
    assert (await client.get("/x")).status_code == 204
    await client.aclose()
    assert seen == ["http://api.test/x"]


async def test_a_requests_own_headers_join_the_clients_and_stay_its_own() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(204)

    client = HttpClient(transport=httpx.MockTransport(handler), headers={"Authorization": "Bearer sk_test_1"})
    json_body = {"Content-Type": "application/json"}
    for headers in (json_body, {"X-Trace": "1"}, json_body, None):
        await client.request("POST", "http://api.test/x", headers=headers, content=b"{}")
    await client.aclose()
    assert [h["authorization"] for h in seen] == ["Bearer sk_test_1"] * 4
    assert [h.get("content-type") for h in seen] == ["application/json", None, "application/json", None]
    assert [h.get("x-trace") for h in seen] == [None, "1", None, None]
    assert seen[0] is not seen[2]  # each request has its own copy: a transport may change it


async def test_httpxs_own_transport_can_be_asked_for() -> None:
    async with running(answer_ok) as server:
        client = HttpClient(shards=2, connections_per_shard=2, base_url=server.base_url, backend="httpx")
        assert client.backend == "httpx"
        assert [(await client.get("/")).status_code for _ in range(4)] == [200] * 4
        await client.aclose()
    assert server.connections == 2  # one per shard, used in turn


async def test_a_response_is_freed_as_soon_as_it_is_dropped_not_by_the_cycle_collector() -> None:
    # httpx ties a response to its stream in a cycle; left in place, every response waits for a collection
    client = HttpClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True})))
    gc.disable()
    try:
        response = await client.request("GET", "http://127.0.0.1:9/v1/healthz")
        assert response.json() == {"ok": True} and response.content == b'{"ok":true}'
        gone = weakref.ref(response)
        del response
        assert gone() is None
    finally:
        gc.enable()
        await client.aclose()
