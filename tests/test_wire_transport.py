"""``stressor.http.wire.WireTransport`` on real loopback sockets, on asyncio and on uvloop: keep-alive and the
pool, how bodies end, the body limit, which httpx exception each failure becomes (the target decides from it
whether a run-creating request may have reached the server), cancellation, and requests made through
``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import orjson
import pytest

from stressor.http.wire import WireTransport
from stressor.targets.testcalls.failures import body_cut_off, transport_failure

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]

LOOPS = [pytest.param(("asyncio", {}), id="asyncio")]
if importlib.util.find_spec("uvloop") is not None:
    LOOPS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))


@pytest.fixture(params=LOOPS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Every test here runs on asyncio's own loop and on uvloop (when installed): the transport uses only
    ``Protocol`` callbacks, which both loops drive."""
    return request.param


class Server:
    """A tiny HTTP/1.1 server on 127.0.0.1 whose behaviour per request is ``handler(reader, writer, request)``;
    it counts connections, keeps each request (head and body) and notes connections the client closed."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_by_client = 0
        self.requests: list[bytes] = []
        self.base_url = ""

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_client += 1
                    return
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                request = head
                if length and not head.startswith(b"PUT /no-read"):
                    request += await reader.readexactly(length)
                self.requests.append(request)
                await self.handler(reader, writer, request)
                if writer.is_closing():
                    return
        finally:
            writer.close()

    @property
    def paths(self) -> list[bytes]:
        return [request.split(b" ", 2)[1] for request in self.requests]


@asynccontextmanager
async def running(handler: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._connection, "127.0.0.1", 0, ssl=context)
    scheme = "https" if context else "http"
    server.base_url = f"{scheme}://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()


def transport(connections: int = 8, keepalive_expiry: float | None = 5.0, **options: object) -> WireTransport:
    limits = httpx.Limits(max_connections=connections, keepalive_expiry=keepalive_expiry)
    return WireTransport(limits=limits, **options)  # type: ignore[arg-type]


def client(base_url: str, timeout: float = 5.0, connections: int = 8, **options: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, timeout=httpx.Timeout(timeout), transport=transport(connections, **options)
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def set_linger_zero(writer: asyncio.StreamWriter) -> None:
    """Make the next close a reset (RST), as the simulator's ``reset_rate`` does."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(OK)
    await writer.drain()


async def close_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    set_linger_zero(writer)
    writer.transport.abort()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    await asyncio.sleep(30)


async def failure_of(http: httpx.AsyncClient, method: str = "POST", path: str = "/v1/test-call-batches") -> Exception:
    with pytest.raises(httpx.TransportError) as raised:
        await http.request(method, path, content=b"{}" if method == "POST" else None)
    await http.aclose()
    return raised.value


# ------------------------------------------------------------------------------------ keep-alive and the pool


async def test_keep_alive_connections_are_reused_and_the_pool_caps_them() -> None:
    async with running(answer_ok) as server:
        http = client(server.base_url, connections=4)
        for _ in range(20):
            assert (await http.get("/")).json() == {"ok": True}
        assert server.connections == 1
        answers = await asyncio.gather(*(http.get("/") for _ in range(40)))
        await http.aclose()
    assert [answer.status_code for answer in answers] == [200] * 40
    assert len(server.requests) == 60
    assert server.connections <= 4


async def test_many_concurrent_requests_all_complete_within_the_pool() -> None:
    async def echo_path(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        path = request.split(b" ", 2)[1]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(path), path))
        await writer.drain()

    async with running(echo_path) as server:
        http = client(server.base_url, connections=32)
        answers = await asyncio.gather(*(http.get(f"/r/{i}") for i in range(500)))
        await http.aclose()
    assert [answer.text for answer in answers] == [f"/r/{i}" for i in range(500)]  # each its own answer
    assert len(server.requests) == 500
    assert server.connections <= 32


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def answer_then_close_soon(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(OK)  # keep-alive as far as the head says; the server closes the idle connection later
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async with running(answer_then_close_soon) as server:
        http = client(server.base_url, connections=1)
        assert (await http.get("/1")).status_code == 200
        await asyncio.sleep(0.3)  # the server's close has arrived
        assert (await http.get("/2")).status_code == 200  # on a new connection, not an error
        await http.aclose()
    assert server.connections == 2
    assert server.paths == [b"/1", b"/2"]


async def test_an_idle_connection_past_keepalive_expiry_is_not_reused() -> None:
    async with running(answer_ok) as server:
        http = client(server.base_url, connections=2, keepalive_expiry=0.1)
        await http.get("/1")
        await asyncio.sleep(0.3)
        await http.get("/2")
        await http.aclose()
    assert server.connections == 2
    assert server.closed_by_client >= 1  # the expired connection was closed, not left open


async def test_a_connection_close_answer_is_honoured() -> None:
    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()  # the server does not close: the client must not send on this connection again

    async with running(answer_and_close) as server:
        http = client(server.base_url)
        assert [(await http.get("/")).text for _ in range(3)] == ["ok"] * 3
        await http.aclose()
    assert server.connections == 3


async def test_a_different_origin_gets_room_by_closing_an_idle_connection() -> None:
    async with running(answer_ok) as first, running(answer_ok) as second:
        wire = transport(connections=1)
        async with httpx.AsyncClient(transport=wire, timeout=2.0) as http:
            assert (await http.get(first.base_url)).status_code == 200
            assert (await http.get(second.base_url)).status_code == 200  # the pool is full of an idle connection
            assert (await http.get(first.base_url)).status_code == 200
    assert (first.connections, second.connections) == (2, 1)


# ------------------------------------------------------------------------------------ how an answer's body ends


async def test_a_chunked_body_arrives_whole() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b'{"runs":', b"[1,2", b",3]}"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)  # separate segments: the parser sees the chunks one by one
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with running(chunked) as server:
        http = client(server.base_url)
        first = await http.get("/")
        second = await http.get("/")
        await http.aclose()
    assert first.json() == second.json() == {"runs": [1, 2, 3]}
    assert server.connections == 1  # a chunked answer ends cleanly: the connection is reused


async def test_a_large_content_length_body_in_many_segments() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 100_000):
            writer.write(body[start : start + 100_000])
            await writer.drain()

    async with running(large) as server:
        http = client(server.base_url)
        answers = [await http.get("/") for _ in range(2)]
        await http.aclose()
    assert [answer.content == body for answer in answers] == [True, True]
    assert server.connections == 1


async def test_a_body_that_runs_until_the_connection_closes() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"part two")
        await writer.drain()
        writer.close()

    async with running(until_close) as server:
        http = client(server.base_url)
        assert (await http.get("/")).text == "part one, part two"
        assert (await http.get("/")).text == "part one, part two"
        await http.aclose()
    assert server.connections == 2


async def test_a_body_over_the_limit_is_cut_at_limit_plus_one_and_its_connection_dropped() -> None:
    body = b"x" * 1_000_000

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with running(large) as server:
        wire = transport()
        request = httpx.Request("GET", f"{server.base_url}/", extensions={"max_body_bytes": 100})
        answer = await wire.handle_async_request(request)
        small = httpx.Request("GET", f"{server.base_url}/", extensions={"max_body_bytes": 2_000_000})
        whole = await wire.handle_async_request(small)
        await wire.aclose()
    assert await answer.aread() == b"x" * 101
    assert len(await whole.aread()) == len(body)
    assert server.connections == 2  # the cut answer's connection was not reused


async def test_an_interim_answer_is_skipped_and_head_answers_have_no_body() -> None:
    async def interim_then_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
        await writer.drain()

    async with running(interim_then_ok) as server:
        http = client(server.base_url)
        answer = await http.get("/")
        head = await http.head("/")
        await http.aclose()
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "11")


# ------------------------------------------------------------------------------------ failures, classified


async def test_a_refused_connection_is_a_connect_error_so_nothing_was_sent() -> None:
    error = await failure_of(client(f"http://127.0.0.1:{free_port()}"))
    assert type(error) is httpx.ConnectError
    assert transport_failure(error) == "connect_error"
    assert isinstance(error.__cause__, ConnectionRefusedError)


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    error = await failure_of(client("http://no-such-host.invalid"))
    assert type(error) is httpx.ConnectError
    assert isinstance(error.__cause__, OSError)


async def test_a_server_that_closes_without_answering_may_have_received_the_request() -> None:
    async with running(close_without_answer) as server:
        error = await failure_of(client(server.base_url))
    assert type(error) is httpx.RemoteProtocolError
    assert transport_failure(error) == "remote_protocol"
    assert len(server.requests) == 1


async def test_a_reset_instead_of_an_answer_is_a_read_error_and_a_get_is_not_resent() -> None:
    async with running(reset) as server:
        error = await failure_of(client(server.base_url), "GET", "/v1/test-calls")
    assert type(error) is httpx.ReadError
    assert transport_failure(error) == "reset"
    assert isinstance(error.__cause__, ConnectionResetError)
    assert (len(server.requests), server.connections) == (1, 1)


async def test_a_reset_in_the_middle_of_the_body_is_a_read_error() -> None:
    async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 100)
        await writer.drain()
        await asyncio.sleep(0.05)
        set_linger_zero(writer)
        writer.transport.abort()

    async with running(reset_mid_body) as server:
        error = await failure_of(client(server.base_url), "GET")
    assert type(error) is httpx.ReadError
    assert len(server.requests) == 1


async def test_a_body_cut_short_by_a_close_is_a_remote_protocol_error_the_target_recognises() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 100)
        await writer.drain()
        writer.close()

    async with running(cut) as server:
        error = await failure_of(client(server.base_url), "GET")
    assert type(error) is httpx.RemoteProtocolError
    assert body_cut_off(error)


async def test_no_answer_within_the_read_timeout_is_a_read_timeout() -> None:
    async with running(never_answer) as server:
        with anyio.fail_after(3):
            error = await failure_of(client(server.base_url, timeout=0.2))
    assert type(error) is httpx.ReadTimeout
    assert transport_failure(error) == "read_timeout"


async def test_a_slow_answer_that_keeps_sending_is_not_a_read_timeout() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n")
        for byte in b"abcdef":  # 6 x 0.1 s: longer than the read timeout in all, never silent for that long
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()

    async with running(trickle) as server:
        http = client(server.base_url, timeout=0.35)
        assert (await http.get("/")).text == "abcdef"
        await http.aclose()


async def test_waiting_too_long_for_a_pooled_connection_is_a_connect_timeout_so_nothing_was_sent() -> None:
    async with running(never_answer) as server:
        http = client(server.base_url, connections=1)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: http.get("/busy", timeout=httpx.Timeout(5.0)))
            await asyncio.sleep(0.05)  # the only connection is now taken by a request the server never answers
            with pytest.raises(httpx.TransportError) as raised:
                await http.get("/waiting", timeout=httpx.Timeout(5.0, pool=0.1))
            group.cancel_scope.cancel()
        await http.aclose()
    assert type(raised.value) is httpx.ConnectTimeout
    assert transport_failure(raised.value) == "connect_timeout"
    assert server.paths == [b"/busy"]


async def test_a_garbage_answer_is_a_remote_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with running(garbage) as server:
        error = await failure_of(client(server.base_url))
    assert type(error) is httpx.RemoteProtocolError
    assert "malformed" in str(error)


async def test_a_connection_that_fails_under_a_long_write_is_a_write_error() -> None:
    async def reset_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        set_linger_zero(writer)  # the body is not read: the client is still writing it
        writer.transport.abort()

    async with running(reset_after_head) as server:
        http = client(server.base_url)
        with pytest.raises(httpx.TransportError) as raised:
            await http.put("/no-read", content=b"x" * 64_000_000)
        await http.aclose()
    assert type(raised.value) is httpx.WriteError
    assert transport_failure(raised.value) == "write_error"


async def test_an_unsupported_scheme_is_refused_before_any_connection() -> None:
    async with httpx.AsyncClient(transport=WireTransport()) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/")


async def test_a_header_with_a_line_break_is_never_sent() -> None:
    async with running(answer_ok) as server:
        wire = transport()
        request = httpx.Request("GET", f"{server.base_url}/")
        request.headers._list.append((b"X-Evil", b"x-evil", b"a\r\nInjected: 1"))  # past httpx's own checks
        with pytest.raises(httpx.LocalProtocolError):
            await wire.handle_async_request(request)
        await wire.aclose()
    assert server.requests == []


# ------------------------------------------------------------------------------------ cancellation


async def read_to_the_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    """Never answer; return when the client closes the connection (the server then counts the close)."""
    await reader.read()


async def test_a_cancelled_request_closes_its_connection_and_frees_its_slot() -> None:
    async with running(read_to_the_end) as server:
        http = client(server.base_url, connections=1)
        with anyio.move_on_after(0.1) as scope:
            await http.get("/slow")
        assert scope.cancelled_caught
        await asyncio.sleep(0.05)
        assert server.closed_by_client == 1  # the half-exchanged connection was closed, not pooled
        server.handler = answer_ok
        with anyio.fail_after(2):
            assert (await http.get("/next")).status_code == 200  # the pool's one slot is free again
        await http.aclose()
    assert server.paths == [b"/slow", b"/next"]
    assert server.connections == 2


async def test_a_request_cancelled_while_queued_for_the_pool_leaves_it_consistent() -> None:
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        await release.wait()
        writer.write(OK)
        await writer.drain()

    async with running(hold) as server:
        http = client(server.base_url, connections=1)
        async with anyio.create_task_group() as group:
            group.start_soon(http.get, "/first")
            await asyncio.sleep(0.05)
            with anyio.move_on_after(0.1):
                await http.get("/queued")  # waits for the pool, then gives up
            release.set()
        with anyio.fail_after(2):
            assert (await http.get("/after")).status_code == 200
        await http.aclose()
    assert server.paths == [b"/first", b"/after"]  # the cancelled one never reached the wire
    assert server.connections == 1


# ------------------------------------------------------------------------------------ through httpx.AsyncClient


async def test_json_params_and_headers_reach_the_wire_unchanged_and_the_answer_comes_back() -> None:
    async def created(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> None:
        body = orjson.dumps({"runs": ["tc_1"]})
        writer.write(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nx-ratelimit-remaining: 9\r\n"
            b"set-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()

    async with running(created) as server:
        http = httpx.AsyncClient(
            base_url=server.base_url, transport=WireTransport(), headers={"Authorization": "Bearer sk_test_1"}
        )
        answer = await http.post("/v1/test-calls", params={"limit": 2, "q": "a b"}, json={"target_id": 7})
        await http.aclose()
    head, _, sent_body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    assert lines[0] == "POST /v1/test-calls?limit=2&q=a+b HTTP/1.1"
    assert headers["host"] == server.base_url.removeprefix("http://")
    assert headers["authorization"] == "Bearer sk_test_1"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(sent_body)
    assert orjson.loads(sent_body) == {"target_id": 7}
    assert (answer.status_code, answer.reason_phrase, answer.http_version) == (201, "Created", "HTTP/1.1")
    assert answer.json() == {"runs": ["tc_1"]}
    assert answer.headers["x-ratelimit-remaining"] == "9"
    assert answer.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert answer.request.url.path == "/v1/test-calls"


async def test_a_streamed_request_body_is_sent_whole_with_its_length() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"hello, "
        yield b"world"

    async with running(answer_ok) as server:
        http = client(server.base_url)
        assert (await http.post("/upload", content=parts())).status_code == 200
        await http.aclose()
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert body == b"hello, world"
    assert b"content-length: 12" in head.lower()
    assert b"transfer-encoding" not in head.lower()


# ------------------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command; the test is skipped without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield cert, key


async def test_https_with_a_trusted_certificate_and_keep_alive(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    async with running(answer_ok, server_context) as server:
        trusted = ssl.create_default_context(cafile=str(cert))
        http = client(server.base_url, verify=trusted)
        assert [(await http.get("/")).json() for _ in range(3)] == [{"ok": True}] * 3
        await http.aclose()
        untrusted = client(server.base_url)  # the default trust store does not know this certificate
        error = await failure_of(untrusted, "GET")
    assert server.connections == 1  # kept alive; the refused handshake never became a connection to serve
    assert type(error) is httpx.ConnectError
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
