"""The simulator (and stressor's webhook receiver) reached in memory, in the test's own event loop.

``AppTransport`` is an httpx transport into an ASGI app that behaves as a socket to a server would where the
tests look: the app handles each request in a task of its own, which goes on when the client gives up (a
stalled create still creates its runs); the client's read timeout is honoured (``httpx.ReadTimeout``); a
request the app drops (``DropConnection``, the fault layer's reset) reaches the client as a reset
(``httpx.ReadError``); each way takes ``LATENCY_S``, as on loopback (a request sent before an answer arrived
was sent before it, not at the same instant). ``in_memory(config)`` runs the seeded simulator that way, on the
running loop's clock: on a virtual-time loop (``tests/support/virtual.py``) a 10 s profile takes milliseconds,
the same way every run.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from stressor.beside import tasks_beside
from stressor.clock import Clock
from stressor.loopback import is_loopback
from stressor.session import Embedded
from stressor.sim.app import DropConnection, Middleware, RequestStats, SimApp
from stressor.sim.config import SimConfig
from stressor.sim.faults import FaultLayer
from stressor.sim.model import SimModel
from stressor.sim.records import TruthRecord
from stressor.sim.server import fetch_truth_async, simulate
from stressor.sim.webhooks import WebhookSender
from stressor.webhooks.receiver import WebhookReceiver
from support.virtual import clock

SIM_URL = "http://simulator.test"  # the in-memory simulator's base URL (never resolved: nothing leaves memory)
LATENCY_S = 0.000_05  # each way: loopback's order of magnitude
SHUTDOWN_S = 0.05  # how long a server being stopped still answers the connections it has
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class _Exchange:
    """One request's way back from the app: the answer's parts as they are sent, and whether it was dropped."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.dropped = False
        self.done = anyio.Event()


class AppTransport(httpx.AsyncBaseTransport):
    """httpx into an ASGI ``app`` in this loop, its handlers run as tasks of ``tasks`` (see the module)."""

    def __init__(
        self,
        app: App,
        tasks: TaskGroup,
        *,
        client: tuple[str, int] = ("127.0.0.1", 50_000),
        latency_s: float = LATENCY_S,
    ) -> None:
        self._app = app
        self._tasks = tasks
        self._client = client
        self._latency_s = latency_s
        self.requests = 0
        self.open = True  # False: the server is gone, connections are refused
        self._serving: dict[_Exchange, anyio.CancelScope] = {}

    def kill(self) -> None:
        """The server dies: what it was answering is reset, new connections are refused."""
        self.open = False
        for exchange, scope in list(self._serving.items()):
            exchange.dropped = True
            scope.cancel()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if not self.open:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        self.requests += 1
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port or 80),
            "client": self._client,
            "root_path": "",
        }
        exchange = _Exchange()
        self._tasks.start_soon(self._serve, scope, body, exchange)
        timeout = request.extensions.get("timeout", {}).get("read")
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            await exchange.done.wait()
            await anyio.sleep(self._latency_s)  # the answer's way back
        if not exchange.done.is_set():
            raise httpx.ReadTimeout("timed out", request=request)
        if exchange.dropped or exchange.status is None:
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        return httpx.Response(
            exchange.status, headers=exchange.headers, stream=httpx.ByteStream(b"".join(exchange.body))
        )

    async def _serve(self, scope: dict[str, Any], body: bytes, exchange: _Exchange) -> None:
        await anyio.sleep(self._latency_s)  # the request's way there
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await exchange.done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                exchange.body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    exchange.done.set()

        with anyio.CancelScope() as serving:
            self._serving[exchange] = serving
            try:
                await self._app(scope, receive, send)
            except DropConnection:
                exchange.dropped = True
            finally:
                del self._serving[exchange]
                exchange.done.set()


@dataclass(frozen=True, slots=True)
class MemorySimulator:
    """A simulator in memory: ``transport`` reaches its app at ``base_url``; ``model``, ``app``, ``faults`` and
    ``webhooks`` are live."""

    base_url: str
    transport: AppTransport
    model: SimModel
    app: SimApp
    faults: FaultLayer | None
    webhooks: WebhookSender | None
    clock: Clock

    @property
    def stats(self) -> RequestStats:
        return self.app.stats

    def client(self, **options: Any) -> httpx.AsyncClient:
        """An httpx client of the simulator's app (close it)."""
        return httpx.AsyncClient(transport=self.transport, base_url=self.base_url, **options)

    async def stats_json(self) -> dict[str, Any]:
        """``GET /_sim/stats``."""
        async with self.client() as client:
            return (await client.get("/_sim/stats")).json()


@asynccontextmanager
async def in_memory(
    config: SimConfig | None = None,
    *,
    receiver: App | None = None,
    middleware: tuple[Middleware, ...] = (),
    on: Clock | None = None,
    base_url: str = SIM_URL,
) -> AsyncIterator[MemorySimulator]:
    """The simulator on the running loop's clock (or ``on``), reached in memory until the block exits; its
    webhooks go to ``receiver`` (an ASGI app) in memory, when the config names a ``webhook_url``."""
    the_clock = on if on is not None else clock()
    async with tasks_beside() as tasks:
        hooks = AppTransport(receiver, tasks, client=("127.0.0.1", 50_001)) if receiver is not None else None
        async with simulate(config, the_clock, middleware=middleware, webhook_transport=hooks) as sim:
            transport = AppTransport(sim.app, tasks)
            yield MemorySimulator(base_url, transport, sim.model, sim.app, sim.faults, sim.webhooks, the_clock)


class MemorySurroundings:
    """A session's surroundings (``stressor.session.Surroundings``) in memory, on ``clock``: the receiver is
    served to the simulator's webhook sender alone, and every simulator started is kept in ``simulators``.
    ``process(config)`` stands for ``SimulatorProcess(config)``: a simulator reached at the URL it gives."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.simulators: list[MemorySimulator] = []
        self.receivers: list[WebhookReceiver] = []
        self._receiver: WebhookReceiver | None = None
        self._connections: list[AppTransport] = []
        self._transports: dict[str, AppTransport] = {}

    @asynccontextmanager
    async def receiver(
        self, receiver: WebhookReceiver, host: str, port: int, *, allow_remote: bool
    ) -> AsyncIterator[str]:
        if not allow_remote and not is_loopback(host):  # as serve_receiver refuses it
            raise ValueError(f"refusing to receive webhooks on {host!r}, which is not loopback")
        self._receiver = receiver
        self.receivers.append(receiver)
        try:
            yield f"http://{host}:{port or 8090}{receiver.path}"
        finally:
            receiver.close()
            with anyio.CancelScope(shield=True):
                await anyio.sleep(SHUTDOWN_S)
            self._receiver = None
            for connection in self._connections:
                connection.open = False  # the server is gone

    def connect(self, tasks: TaskGroup) -> AppTransport:
        """A transport to the receiver being served (its handlers run in ``tasks``); refused once it is gone."""
        assert self._receiver is not None, "no receiver is being served"
        connection = AppTransport(self._receiver, tasks, client=("127.0.0.1", 50_002))
        self._connections.append(connection)
        return connection

    async def _to_the_receiver(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Where a simulator's webhooks go: the receiver served at the time (a server that may come later)."""
        if self._receiver is None:
            raise DropConnection  # nothing listens there
        await self._receiver(scope, receive, send)

    @asynccontextmanager
    async def process(self, config: SimConfig) -> AsyncIterator[str]:
        """The simulator for the block, at the base URL this gives."""
        base_url = f"http://simulator-{len(self.simulators) + 1}.test"
        async with in_memory(config, receiver=self._to_the_receiver, on=self.clock, base_url=base_url) as sim:
            self.simulators.append(sim)
            self._transports[base_url] = sim.transport
            try:
                yield base_url
            finally:
                del self._transports[base_url]

    @asynccontextmanager
    async def api(self, app: App, base_url: str) -> AsyncIterator[str]:
        """Any ASGI ``app`` (an API of a test's own) for the block, reached in memory at ``base_url``."""
        async with tasks_beside() as tasks:
            self._transports[base_url] = AppTransport(app, tasks)
            try:
                yield base_url
            finally:
                del self._transports[base_url]

    @asynccontextmanager
    async def simulator(self, config: SimConfig) -> AsyncIterator[Embedded]:
        async with self.process(config) as base_url:
            sim = self.simulators[-1]

            async def truth() -> list[TruthRecord]:
                async with sim.client() as client:
                    return await fetch_truth_async(sim.base_url, client=client)

            yield Embedded(base_url, truth)

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        found = self._transports.get(base_url)
        assert found is not None, f"{base_url} is not a simulator in memory: a test may not reach the network"
        return found
