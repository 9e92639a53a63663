"""HTTP client transports on loopback: throughput, CPU per request, latency, and recovery after a server stall.

A trivial keep-alive HTTP/1.1 server (raw asyncio, in its own process, pinned to core 1 when there are two
cores; this client process is pinned to core 0) answers every request with a small JSON body at once, so what
is measured is the client. It can be told to stall (``GET /stall?ms=1000``): requests that arrive during the
stall are answered when it ends, the way the simulator's ``stall`` setting holds them.

For each candidate client:

- **closed loop**, at each concurrency (1, 16, 64, 256 by default): that many tasks send ``GET /`` back to back
  for ``--duration`` seconds (after one warm-up request each, which opens the connections). Printed: requests
  per second, the client's CPU seconds per 1,000 requests (``time.process_time``), latency p50/p99.
- **stall**, open loop: requests are due at ``--stall-rate`` per second for ``--stall-run`` seconds (each sent
  at its due time by its own task, however many are still in flight), and the server stalls for
  ``--stall-for`` seconds at ``--stall-at``. Latency is measured from the due time. Printed: p50/p99 of the
  requests due in the second after the stall, errors, and the recovery: how long after the stall ended the
  requests became as fast as before it (every 100 ms bin from then on with p90 below max(2 x the
  pre-stall p90, pre-stall p90 + 2 ms)). The truth after the stall is "as fast as before": the server is idle.

Candidates: httpx's default client (pool of 100, keep-alive 20), httpx with a pool of 256 (keep-alive 256),
8 httpx clients of 32 connections used round robin (the ``ShardedClient`` of commit 722fb0b), httpx over
``httpx_aiohttp.AiohttpTransport`` (pool 256), stressor's own client (``stressor.http.client.HttpClient``
as ``TestCallsTarget`` builds it), aiohttp alone (pool 256) and the ``httpx2`` fork (its defaults), when
installed. Then stressor's two transports, each through one ``httpx.AsyncClient`` and called directly
(``await transport.handle_async_request(httpx.Request("GET", url))`` and ``aread()``, the request carrying the
same timeout extension a client would give it): ``aiohttp-tr`` / ``aiohttp-tr-direct``
(``stressor.http.aiohttp_transport.AiohttpTransport``) and ``wire`` / ``wire-direct``
(``stressor.http.wire.WireTransport``), pool 256. Every client gets a 10 s timeout so that the stall shows
pool behaviour, not timeouts. ``--loop asyncio,uvloop`` measures every candidate on each event loop.

    python benchmarks/transport.py                         # everything, ~3.5 minutes
    python benchmarks/transport.py --only httpx-default,stressor --concurrency 64 --duration 1
    python benchmarks/transport.py --only aiohttp-tr,aiohttp-tr-direct,wire,wire-direct --loop asyncio,uvloop \
        --no-stall

Loopback only; every phase is bounded in time; the server process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import platform
import re
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from statistics import quantiles
from typing import Any, TypeVar

import aiohttp
import httpx
from pinning import ServerChild, pin, usable_cores

PATH = "/"
TIMEOUT_S = 10.0
POOL = 256
CLIENT_CORE = 0
SERVER_CORE = 1
DRAIN_LIMIT_S = 4.0  # after a stall run's schedule ends, in-flight requests get this long, then are cancelled
BIN_S = 0.1
BODY = b'{"status":"ok"}'

T = TypeVar("T")
Get = Callable[[], Awaitable[int]]
Close = Callable[[], Awaitable[None]]


# --------------------------------------------------------------------------------------------- the server


class _ServerState:
    stall_until = 0.0


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (clients here never pipeline)."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(BODY)).encode()
        + b"\r\n\r\n"
        + BODY
    )
    LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = self.LENGTH.search(head)
            size = end + 4 + (int(length.group(1)) if length else 0)
            if len(self.buffer) < size:
                return
            self.buffer = self.buffer[size:]
            self.handle(head.split(b"\r\n", 1)[0])

    def handle(self, line: bytes) -> None:
        loop = asyncio.get_running_loop()
        stall = re.match(rb"GET /stall\?ms=(\d+) ", line)
        if stall:
            _ServerState.stall_until = loop.time() + int(stall.group(1)) / 1000
            self.respond()
        elif loop.time() < _ServerState.stall_until:
            loop.call_at(_ServerState.stall_until, self.respond)
        else:
            self.respond()

    def respond(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.RESPONSE)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", 0, backlog=4096)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


async def stall_server(base_url: str, seconds: float) -> None:
    """Tell the server to stall, over a connection of its own (not through the client under test)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /stall?ms={round(seconds * 1000)} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    await reader.readuntil(BODY)
    writer.close()


# --------------------------------------------------------------------------------------------- candidates


def _httpx_get(client: httpx.AsyncClient) -> Get:
    async def get() -> int:
        return (await client.get(PATH)).status_code

    return get


def httpx_default(base_url: str) -> tuple[Get, Close]:
    client = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S)
    return _httpx_get(client), client.aclose


def httpx_big_pool(base_url: str) -> tuple[Get, Close]:
    limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    client = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S, limits=limits)
    return _httpx_get(client), client.aclose


def httpx_sharded(base_url: str) -> tuple[Get, Close]:
    limits = httpx.Limits(max_connections=POOL // 8, max_keepalive_connections=POOL // 8)
    clients = [httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S, limits=limits) for _ in range(8)]
    turn = itertools.cycle(clients)

    async def get() -> int:
        return (await next(turn).get(PATH)).status_code

    async def close() -> None:
        for client in clients:
            await client.aclose()

    return get, close


def httpx_aiohttp_transport(base_url: str) -> tuple[Get, Close]:
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    client = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S, transport=AiohttpTransport(limits=limits))
    return _httpx_get(client), client.aclose


def stressor_client(base_url: str) -> tuple[Get, Close]:
    """Built the way ``TestCallsTarget`` builds it (8 shards x 32 connections = its default pool of 256)."""
    from stressor.http.client import HttpClient

    client = HttpClient(shards=8, connections_per_shard=POOL // 8, base_url=base_url, timeout=TIMEOUT_S)

    async def get() -> int:
        return (await client.get(PATH)).status_code

    return get, client.aclose


def aiohttp_alone(base_url: str) -> tuple[Get, Close]:
    session = aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(limit=POOL),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=TIMEOUT_S, connect=TIMEOUT_S),
    )

    async def get() -> int:
        async with session.get(PATH) as response:
            await response.read()
            return response.status

    return get, session.close


def _timeouts() -> dict[str, float | None]:
    return httpx.Timeout(TIMEOUT_S).as_dict()


def _transport_through_client(transport: httpx.AsyncBaseTransport, base_url: str) -> tuple[Get, Close]:
    client = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S, transport=transport)
    return _httpx_get(client), client.aclose


def _transport_direct(transport: httpx.AsyncBaseTransport, base_url: str) -> tuple[Get, Close]:
    """The transport without httpx's client: the request is built and the body read, nothing else (no URL
    merging, cookies, auth, redirects or event hooks)."""
    url = base_url + PATH
    extensions = {"timeout": _timeouts()}

    async def get() -> int:
        response = await transport.handle_async_request(httpx.Request("GET", url, extensions=extensions))
        await response.aread()
        return response.status_code

    return get, transport.aclose


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)


def aiohttp_transport(base_url: str) -> tuple[Get, Close]:
    from stressor.http.aiohttp_transport import AiohttpTransport

    return _transport_through_client(AiohttpTransport(limits=_limits()), base_url)


def aiohttp_transport_direct(base_url: str) -> tuple[Get, Close]:
    from stressor.http.aiohttp_transport import AiohttpTransport

    return _transport_direct(AiohttpTransport(limits=_limits()), base_url)


def wire_transport(base_url: str) -> tuple[Get, Close]:
    from stressor.http.wire import WireTransport

    return _transport_through_client(WireTransport(limits=_limits()), base_url)


def wire_transport_direct(base_url: str) -> tuple[Get, Close]:
    from stressor.http.wire import WireTransport

    return _transport_direct(WireTransport(limits=_limits()), base_url)


def httpx2_default(base_url: str) -> tuple[Get, Close]:
    import httpx2

    client = httpx2.AsyncClient(base_url=base_url, timeout=TIMEOUT_S)

    async def get() -> int:
        return (await client.get(PATH)).status_code

    return get, client.aclose


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except ImportError:
        return "not installed"


@dataclass(frozen=True)
class Candidate:
    name: str
    label: str
    make: Callable[[str], tuple[Get, Close]]
    missing: str = ""


def candidates() -> list[Candidate]:
    return [
        Candidate("httpx-default", "httpx, default pool (100, keep-alive 20)", httpx_default),
        Candidate("httpx-256", "httpx, pool 256, keep-alive 256", httpx_big_pool),
        Candidate("httpx-sharded", "8 httpx clients x 32, round robin", httpx_sharded),
        Candidate(
            "httpx-aiohttp",
            "httpx + httpx_aiohttp.AiohttpTransport (256)",
            httpx_aiohttp_transport,
            "" if _installed("httpx_aiohttp") else "httpx-aiohttp is not installed",
        ),
        Candidate("stressor", "stressor.http.client.HttpClient", stressor_client),
        Candidate("aiohttp", "aiohttp alone (256), no httpx", aiohttp_alone),
        Candidate(
            "httpx2",
            "httpx2 fork, defaults",
            httpx2_default,
            "" if _installed("httpx2") else "httpx2 is not installed (pip install httpx2)",
        ),
        Candidate("aiohttp-tr", "httpx.AsyncClient + stressor's AiohttpTransport (256)", aiohttp_transport),
        Candidate("aiohttp-tr-direct", "stressor's AiohttpTransport called directly (256)", aiohttp_transport_direct),
        Candidate(
            "wire",
            "httpx.AsyncClient + stressor's WireTransport (256)",
            wire_transport,
            "" if _installed("httptools") else "httptools is not installed (pip install httptools)",
        ),
        Candidate(
            "wire-direct",
            "stressor's WireTransport called directly (256)",
            wire_transport_direct,
            "" if _installed("httptools") else "httptools is not installed (pip install httptools)",
        ),
    ]


# --------------------------------------------------------------------------------------------- measures


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=1000, method="inclusive")[round(p * 10) - 1]


@dataclass
class Closed:
    concurrency: int
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s else math.nan

    @property
    def cpu_ms_per_request(self) -> float:
        # CPU seconds per 1,000 requests == CPU milliseconds per request
        return 1000 * self.cpu_s / self.requests if self.requests else math.nan


async def closed_loop(candidate: Candidate, base_url: str, concurrency: int, duration_s: float) -> Closed:
    get, close = candidate.make(base_url)
    result = Closed(concurrency)
    try:
        await asyncio.gather(*(get() for _ in range(concurrency)))  # warm-up: open the connections
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            while (start := time.perf_counter()) < deadline:
                try:
                    await get()
                except Exception:  # noqa: BLE001 (counted; the figures say how many)
                    result.errors += 1
                    continue
                result.latencies.append(time.perf_counter() - start)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - t0
        result.cpu_s = time.process_time() - cpu0
        result.requests = len(result.latencies)
    finally:
        await close()
    return result


@dataclass
class Stall:
    rate: float
    planned: int = 0
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0
    before_p90_s: float = math.nan
    before_p99_s: float = math.nan
    after_p50_s: float = math.nan
    after_p99_s: float = math.nan
    recovery_s: float | None = None  # None: not recovered before the end of the run
    cpu_s: float = 0.0


async def stall_run(candidate: Candidate, base_url: str, args: argparse.Namespace) -> Stall:
    """Open loop at a fixed rate, latency from the due time; the server stalls once."""
    get, close = candidate.make(base_url)
    result = Stall(args.stall_rate)
    done: list[tuple[float, float]] = []  # (due since start, latency)
    tasks: set[asyncio.Task[None]] = set()
    try:
        await asyncio.gather(*(get() for _ in range(16)))

        async def one(due: float, t0: float) -> None:
            try:
                await get()
            except Exception as exc:  # noqa: BLE001 (counted by class)
                result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
                return
            done.append((due, time.perf_counter() - t0 - due))

        count = result.planned = round(args.stall_rate * args.stall_run)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        stalled = False
        for i in range(count):
            due = i / args.stall_rate
            if time.perf_counter() - t0 > args.stall_run + DRAIN_LIMIT_S:
                break  # the client fell this far behind its schedule: what is left is not sent
            result.sent = i + 1
            if not stalled and due >= args.stall_at:
                stalled = True
                await stall_server(base_url, args.stall_for)
            delay = t0 + due - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(due, t0))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=DRAIN_LIMIT_S)
            result.unfinished = len(pending)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        result.cpu_s = time.process_time() - cpu0
    finally:
        await close()
    stall_end = args.stall_at + args.stall_for
    before = [lat for due, lat in done if 0.2 <= due < args.stall_at]
    after = [lat for due, lat in done if stall_end <= due < stall_end + 1.0]
    result.before_p90_s = percentile(before, 90)
    result.before_p99_s = percentile(before, 99)
    result.after_p50_s = percentile(after, 50)
    result.after_p99_s = percentile(after, 99)
    result.recovery_s = recovery(done, stall_end, args.stall_run, result.before_p90_s, result.unfinished > 0)
    return result


def recovery(
    done: list[tuple[float, float]], stall_end: float, run_s: float, before_p90: float, cut: bool
) -> float | None:
    """Seconds after the stall's end from which every 100 ms bin of due times has p90 under the threshold (p90,
    not p99: a bin holds ~40 requests, and one hiccup of a shared machine should not count as no recovery)."""
    if math.isnan(before_p90) or cut:
        return None
    threshold = max(2 * before_p90, before_p90 + 0.002)
    bins: dict[int, list[float]] = {}
    for due, latency in done:
        if due >= stall_end:
            bins.setdefault(int((due - stall_end) / BIN_S), []).append(latency)
    last = int((run_s - stall_end) / BIN_S)
    recovered_from: int | None = None
    for index in range(last):
        ok = index in bins and percentile(bins[index], 90) < threshold
        if ok and recovered_from is None:
            recovered_from = index
        elif not ok:
            recovered_from = None
    return None if recovered_from is None else recovered_from * BIN_S


# --------------------------------------------------------------------------------------------- output


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:.2f}"


def print_closed(rows: dict[str, list[Closed]], concurrencies: list[int]) -> None:
    print()
    print(
        "closed loop: req/s (x httpx default on the same loop) | requests per CPU second of the client | "
        "CPU ms per request | latency p50 / p99 ms"
    )
    print(
        f"{'candidate':<25} {'conc':>5} {'req/s':>8} {'x default':>9} {'req/CPU-s':>9} {'CPU ms/req':>10} "
        f"{'x default':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    )
    for name, results in rows.items():
        loop = name.partition("@")[2]
        base = {row.concurrency: row for row in rows.get(f"httpx-default@{loop}" if loop else "httpx-default", [])}
        for row in results:
            ref = base.get(row.concurrency)
            speed = f"{row.rate / ref.rate:.2f}" if ref and ref.rate else "-"
            cpu = f"{row.cpu_ms_per_request / ref.cpu_ms_per_request:.2f}" if ref and ref.requests else "-"
            print(
                f"{name:<25} {row.concurrency:>5} {row.rate:>8.0f} {speed:>9} {row.per_cpu_second:>9.0f} "
                f"{row.cpu_ms_per_request:>10.3f} {cpu:>9} {ms(percentile(row.latencies, 50)):>8} "
                f"{ms(percentile(row.latencies, 99)):>8} {row.errors:>6}"
            )


def print_stalls(rows: dict[str, Stall], args: argparse.Namespace) -> None:
    print()
    print(
        f"stall: open loop {args.stall_rate:g} req/s for {args.stall_run:g} s, server stalls {args.stall_for:g} s "
        f"at {args.stall_at:g} s; latency from the due time"
    )
    print(
        f"{'candidate':<25} {'sent/planned':>12} {'before p99':>10} {'after p50':>10} {'after p99':>10} "
        f"{'recovery':>9} {'CPU s':>6} {'unfinished':>10}  errors"
    )
    for name, row in rows.items():
        rec = "never" if row.recovery_s is None else f"{row.recovery_s * 1000:.0f} ms"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(row.errors.items())) or "none"
        print(
            f"{name:<25} {f'{row.sent}/{row.planned}':>12} {ms(row.before_p99_s):>10} {ms(row.after_p50_s):>10} "
            f"{ms(row.after_p99_s):>10} {rec:>9} {row.cpu_s:>6.2f} {row.unfinished:>10}  {errors}"
        )
    print(
        "  before p99: due in [0.2 s, stall); after p50/p99: due in the second after the stall ended (ms);\n"
        "  recovery: from the stall's end to the first 100 ms bin from which every bin's p90 < max(2 x before p90,\n"
        "  before p90 + 2 ms) ('never': not within the run, or requests were still in flight "
        f"{DRAIN_LIMIT_S:g} s after it)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="", help="candidates, comma-separated (default: all)")
    parser.add_argument("--concurrency", default="1,16,64,256", help="closed-loop concurrencies")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per closed-loop measure")
    parser.add_argument("--stall-rate", type=float, default=400.0, help="requests per second in the stall run")
    parser.add_argument("--stall-run", type=float, default=5.0, help="seconds of schedule in the stall run")
    parser.add_argument("--stall-at", type=float, default=1.5, help="when the server stalls (s into the run)")
    parser.add_argument("--stall-for", type=float, default=1.0, help="how long the server stalls (s)")
    parser.add_argument("--no-stall", action="store_true", help="skip the stall runs")
    parser.add_argument("--loop", default="asyncio", help="event loops, comma-separated: asyncio, uvloop")
    args = parser.parse_args()
    args.loop = [name.strip() for name in args.loop.split(",") if name.strip()]
    if unknown := set(args.loop) - {"asyncio", "uvloop"}:
        parser.error(f"unknown event loop(s): {', '.join(sorted(unknown))}")
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.only = [name for name in args.only.split(",") if name.strip()]
    if args.stall_at + args.stall_for >= args.stall_run:
        parser.error("the stall must end before the stall run does")
    return args


def run(coroutine: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``coroutine`` on a fresh event loop of the kind asked for."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    return asyncio.run(coroutine)


def main() -> None:
    args = parse_args()
    if args.serve:
        asyncio.run(_serve())
        return
    chosen = [c for c in candidates() if not args.only or c.name in args.only]
    cores = usable_cores()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, httpx {httpx.__version__}, "
        f"aiohttp {aiohttp.__version__}, httptools {_version('httptools')}, uvloop {_version('uvloop')}, "
        f"load average {load}"
    )
    print(f"client pid {os.getpid()} {pin(os.getpid(), CLIENT_CORE, cores)}")
    server = ServerChild([sys.executable, os.path.abspath(__file__), "--serve"], SERVER_CORE, cores)
    base_url = server.base_url
    print(f"server {base_url} pid {server.process.pid} {server.pinning}")
    closed: dict[str, list[Closed]] = {}
    stalls: dict[str, Stall] = {}
    if "uvloop" in args.loop and not _installed("uvloop"):
        args.loop.remove("uvloop")
        print("uvloop: skipped, not installed (pip install uvloop)")
    try:
        for loop in args.loop:
            for candidate in chosen:
                name = candidate.name if args.loop == ["asyncio"] else f"{candidate.name}@{loop}"
                print(f"  {name:<25} {candidate.label}", end="", flush=True)
                if candidate.missing:
                    print(f": skipped, {candidate.missing}")
                    continue
                results = closed.setdefault(name, [])
                for concurrency in args.concurrency:
                    results.append(run(closed_loop(candidate, base_url, concurrency, args.duration), loop))
                    print(f"  {concurrency}: {results[-1].rate:.0f}/s", end="", flush=True)
                if not args.no_stall:
                    stalls[name] = run(stall_run(candidate, base_url, args), loop)
                    print("  stall: done", end="")
                print(flush=True)
    finally:
        server.stop()
    print_closed(closed, args.concurrency)
    if stalls:
        print_stalls(stalls, args)


if __name__ == "__main__":
    main()
