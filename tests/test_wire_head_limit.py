"""WireTransport caps an answer's head: a server sending an endless header line over a real loopback socket is
cut off after ``HEAD_LIMIT`` bytes and counted ``too_large``, not read until the request's deadline."""

from __future__ import annotations

import logging
from collections import Counter

import anyio
import anyio.abc
import httpx
import pytest
from anyio.abc import SocketStream

from stressor.governor import Governor
from stressor.http.wire import HEAD_LIMIT, HEAD_TOO_LARGE, WireTransport
from stressor.profile import Limits
from stressor.targets.testcalls.target import TestCallsTarget

pytestmark = pytest.mark.anyio

CHUNK = 16 * 1024
GIVE_UP_AFTER = 64 * 1024 * 1024  # the server stops on its own here: a client that never gave up fails the test


class Endless:
    """A loopback server answering every request with a status line and then one header line that never ends;
    it notes how many bytes it managed to send before the client dropped the connection."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    async def serve_one(self, stream: SocketStream) -> None:
        sent = 0
        async with stream:
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Endless: ")
                while sent < GIVE_UP_AFTER:
                    await stream.send(b"a" * CHUNK)
                    sent += CHUNK
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
        self.sent.append(sent)


async def serve(server: Endless, task_status: anyio.abc.TaskStatus[int]) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(server.serve_one)


async def test_an_endless_header_fails_the_request_at_the_head_limit() -> None:
    server = Endless()
    async with anyio.create_task_group() as tasks:
        port = await tasks.start(serve, server)
        async with httpx.AsyncClient(transport=WireTransport(), timeout=30) as client:
            with pytest.raises(httpx.RemoteProtocolError, match=HEAD_TOO_LARGE):
                await client.get(f"http://127.0.0.1:{port}/v1/test-calls")
        with anyio.fail_after(10):
            while not server.sent:
                await anyio.sleep(0.01)
        tasks.cancel_scope.cancel()
    # dropped soon after the limit: what the server got out is bounded by the limit plus socket buffers
    assert HEAD_LIMIT <= server.sent[0] < 16 * 1024 * 1024


async def test_an_endless_header_is_counted_too_large_by_the_target_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="stressor.targets.testcalls.target")
    server = Endless()
    counts: Counter[str] = Counter()

    class Log:
        def record_request(self, kind: str, outcome: str) -> None:
            counts[f"{kind} {outcome}"] += 1

    async with anyio.create_task_group() as tasks:
        port = await tasks.start(serve, server)
        the_target = TestCallsTarget(
            f"http://127.0.0.1:{port}", "sk_test_head", Log(), governor=Governor(Limits()), timeout_s=30
        )
        for _ in range(2):
            assert await the_target._batch_ended_count("tcb_1", ("tc_1",)) is None
        await the_target.aclose()
        tasks.cancel_scope.cancel()
    assert counts == {"poll_batch too_large": 2}  # not "timeout": the head was not read until the deadline
    lines = [r.getMessage() for r in caplog.records if "[too_large]" in r.getMessage()]
    assert len(lines) == 1


async def test_a_head_just_under_the_limit_is_read() -> None:
    async def big_head(stream: SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            filler = b"X-Filler: " + b"b" * (HEAD_LIMIT - 1024) + b"\r\n"
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + filler + b"\r\n[]")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, big_head)
        async with httpx.AsyncClient(transport=WireTransport(), timeout=10) as client:
            answer = await client.get(f"http://127.0.0.1:{port}/")
        tasks.cancel_scope.cancel()
    assert answer.json() == [] and len(answer.headers["x-filler"]) == HEAD_LIMIT - 1024
