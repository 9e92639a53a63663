"""The simulator survives bad clients: raw bytes on real sockets against ``serve()``.

Whatever a client sends (garbage, a head that never ends, a huge header, a wrong or doubled Content-Length,
chunked garbage, a body cut off by a disconnect, an oversized body), the simulator answers it with a 4xx or
not at all, never acts on a fragment, and keeps answering ``GET /v1/healthz`` with 200 afterwards.
"""

from __future__ import annotations

import anyio
import orjson
import pytest
from anyio.abc import SocketStream

from stressor.asgi_server import serve_asgi
from stressor.sim.app import CLIENT_GONE, MAX_BODY_BYTES, create_app
from stressor.sim.config import SimConfig
from stressor.sim.model import SimModel
from stressor.sim.server import RunningSimulator, monotonic_seconds, serve

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = b"Host: 127.0.0.1\r\nAuthorization: Bearer sk_test_robust\r\nContent-Type: application/json\r\n"
CREATE = orjson.dumps({"target_type": "agent", "target_id": 7, "scenario_prompt": "hi", "consent_to_charge": True})


async def exchange(port: int, data: bytes, *, read_for: float = 2.0, close_after_send: bool = False) -> bytes:
    """Send raw bytes, then read what comes back until the server closes, a whole answer has come (a server may
    keep the connection open after it), or ``read_for`` seconds pass."""
    stream: SocketStream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(data)
        if close_after_send:
            return b""
        received = b""
        with anyio.move_on_after(read_for):
            while not whole_answer(received):
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break  # closed (FIN) or reset (RST) by the server: what came before is the answer
        return received


def whole_answer(received: bytes) -> bool:
    """Whether ``received`` holds an HTTP answer's head and the whole body its Content-Length announces."""
    head, found, body = received.partition(b"\r\n\r\n")
    if not found or not head.startswith(b"HTTP/1."):
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return value.strip().isdigit() and len(body) >= int(value.strip())
    return False


def status_of(answer: bytes) -> int | None:
    """The status code of the first HTTP answer in ``answer``, or None when there is none."""
    if not answer.startswith(b"HTTP/1."):
        return None
    return int(answer.split(b" ", 2)[1])


async def assert_healthy(sim: RunningSimulator) -> None:
    answer = await exchange(sim.port, b"GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 200, answer[:200]
    assert answer.endswith(b'{"ok":true}')


def post(path: bytes, headers: bytes, body: bytes) -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\n" + AUTH + headers + b"\r\n" + body


@pytest.mark.parametrize(
    ("name", "request_bytes", "expected"),
    [
        ("garbage bytes", b"\x00\xff\xfe\x16\x03\x01 not http at all\r\n\r\n", 400),
        ("a request line that is not one", b"GET\r\n\r\n", 400),
        ("a huge header", b"GET /v1/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", 400),
        ("a Content-Length that is not a number", post(b"/v1/test-calls", b"Content-Length: ten\r\n", CREATE), 400),
        ("a negative Content-Length", post(b"/v1/test-calls", b"Content-Length: -5\r\n", CREATE), 400),
        (
            "two different Content-Lengths",
            post(b"/v1/test-calls", b"Content-Length: 2\r\nContent-Length: 9\r\n", b"{}"),
            400,
        ),
        (
            "chunked garbage",
            post(b"/v1/test-calls", b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        ("a body that is not JSON", post(b"/v1/test-calls", b"Content-Length: 5\r\n", b"{{{{{"), 400),
        ("JSON nested past any limit", post(b"/v1/test-calls", b"Content-Length: 20000\r\n", b"[" * 20_000), 400),
        (
            "a declared body over the cap",
            post(b"/v1/test-calls", f"Content-Length: {MAX_BODY_BYTES + 1}\r\n".encode(), b""),
            413,
        ),
        (
            "a chunked body over the cap",
            post(
                b"/v1/test-calls",
                b"Transfer-Encoding: chunked\r\n",
                b"".join(b"80000\r\n" + b" " * 0x80000 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n",
            ),
            413,
        ),
    ],
)
async def test_malformed_requests_get_a_4xx_and_the_simulator_stays_up(
    name: str, request_bytes: bytes, expected: int
) -> None:
    async with serve() as sim:
        answer = await exchange(sim.port, request_bytes)
        assert status_of(answer) == expected, f"{name}: {answer[:200]!r}"
        await assert_healthy(sim)
        assert sim.model.truth() == [], f"{name}: a malformed request created a run"


async def test_a_body_longer_than_its_content_length_is_cut_there_and_the_rest_refused() -> None:
    async with serve() as sim:
        # the first request is complete at its Content-Length; the bytes after it are not a request
        length = f"Content-Length: {len(CREATE)}\r\n".encode()
        data = post(b"/v1/test-calls", length, CREATE + b"TRAILING GARBAGE\r\n\r\n")
        answer = await exchange(sim.port, data)
        assert status_of(answer) == 201
        assert b"HTTP/1.1 400" in answer  # the trailing bytes, read as a second request
        assert len(sim.model.truth()) == 1  # only the request that was complete created a run
        await assert_healthy(sim)


async def test_a_head_that_never_ends_gets_no_answer_and_blocks_nobody() -> None:
    async with serve() as sim:
        stream = await anyio.connect_tcp("127.0.0.1", sim.port)
        async with stream:
            await stream.send(b"GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Still-Typing: ")
            with anyio.move_on_after(0.3) as waited:
                await stream.receive()
            assert waited.cancelled_caught  # nothing to answer yet: the head is incomplete
            await assert_healthy(sim)  # while that connection hangs, others are served


async def test_a_client_that_disconnects_mid_body_creates_nothing() -> None:
    async with serve() as sim:
        # a valid create, but the client declared more bytes than it sent and then went away
        data = post(b"/v1/test-calls", f"Content-Length: {len(CREATE) + 50}\r\n".encode(), CREATE)
        await exchange(sim.port, data, close_after_send=True)
        with anyio.fail_after(5):
            while sim.stats.count(status=CLIENT_GONE) == 0:
                await anyio.sleep(0.01)
        assert sim.model.truth() == []
        await assert_healthy(sim)


async def test_a_client_that_sends_less_than_its_content_length_gets_408_and_the_connection_closed() -> None:
    model = SimModel(SimConfig(), wall_at_zero=0.0)
    app = create_app(model, monotonic_seconds, body_timeout_s=0.3)
    async with serve_asgi(app, "127.0.0.1", 0, what="the simulator") as (_, port):
        data = post(b"/v1/test-calls", f"Content-Length: {len(CREATE) + 50}\r\n".encode(), CREATE)
        with anyio.fail_after(5):
            answer = await exchange(port, data, read_for=4.0)
        assert status_of(answer) == 408
        assert b"connection: close" in answer.lower()
        assert model.truth() == []


async def test_a_flood_of_bad_clients_leaves_good_ones_served() -> None:
    bad = [
        b"\x00" * 64,
        b"GET /v1/healthz HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 70_000 + b"\r\n\r\n",
        post(b"/v1/test-calls", b"Transfer-Encoding: chunked\r\n", b"q\r\n"),
        post(b"/v1/test-calls", b"Content-Length: 99\r\n", b"{"),
    ]
    async with serve() as sim:
        async with anyio.create_task_group() as clients:
            for i in range(40):
                clients.start_soon(lambda data: exchange(sim.port, data, read_for=0.5), bad[i % len(bad)])
        await assert_healthy(sim)
        assert sim.model.truth() == []
