"""The least a Python client can spend on the lifecycle workload of ``benchmarks/peers.py``: the row wrk is for
plain HTTP, so that stressor's and Locust's CPU per run can be read against a floor.

It sends the same requests as stressor: a ``POST /v1/test-call-batches`` per due batch (closed, with
``PEERS_IN_FLIGHT``: whenever a batch more fits under that many runs in flight), then one scan of the run list's
top every poll interval (``GET /v1/test-calls?limit=200&offset=...``, page after page until every open run has
been seen), which is how stressor follows batches within its scan's reach. It does it the
cheapest way Python allows: uvloop, ``asyncio.Protocol`` keep-alive connections parsed by httptools, orjson,
and no task at all: the loop's timers send the creates, the answers' callbacks note the runs, the scan's
callbacks see them end. It keeps none of what makes a load tester's figures trustworthy or its load safe: no
limits, retries, timeouts, error classes, per-run records or server timestamps, only the counts peers.py
prints. Not a tool: a measuring stick.

Settings come from the environment, as for ``benchmarks/locustfile.py`` (``peers.py`` sets them):
``PEERS_RATE``, ``PEERS_DURATION``, ``PEERS_RUNS``, ``PEERS_POLL_INTERVAL``, ``PEERS_OUT``, ``PEERS_API_KEY``;
the base URL (loopback) is the one argument.

    PEERS_OUT=/tmp/bare.json python benchmarks/bare_lifecycle.py http://127.0.0.1:8080
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop
from lifecycle_workload import Workload, batch_body

from stressor.loopback import is_loopback

RATE, DURATION_S, RUNS_PER_BATCH, POLL_INTERVAL_S, OUT, API_KEY, IN_FLIGHT = Workload.from_env("bare-lifecycle.json")
LEAD_S = 0.2  # from start-up to the first due time
GRACE_S = 10.0  # past the schedule's end, how long open runs are still followed
PAGE_SIZE = 200

Done = Callable[[int, bytes], None]  # (status, body) of an answer


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; back in ``idle`` once its answer is read."""

    def __init__(self, idle: list[Connection]) -> None:
        self.idle = idle
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.done: Done | None = None
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.idle:
            self.idle.remove(self)
        done, self.done = self.done, None
        if done is not None:
            done(0, b"")  # no answer: the create counts as errored, the scan stops

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        done, self.done = self.done, None
        self.idle.append(self)
        assert done is not None
        done(self.parser.get_status_code(), body)

    def send(self, data: bytes, done: Done) -> None:
        assert self.transport is not None
        self.done = done
        self.transport.write(data)


class Bare:
    """The workload: ``RATE`` batches a second for ``DURATION_S``, each followed to its end."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {API_KEY}\r\nUser-Agent: bare\r\n".encode()
        body = orjson.dumps(batch_body(RUNS_PER_BATCH))
        self.create = (
            b"POST /v1/test-call-batches HTTP/1.1\r\n%bContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
            % (head, len(body), body)
        )
        self.head = head
        self.idle: list[Connection] = []
        self.open: dict[object, float] = {}  # run id -> its batch's due time
        self.total = 0 if IN_FLIGHT else round(RATE * DURATION_S)  # closed: creates sent so far
        self.creating = 0  # runs of creates not answered yet (closed)
        self.end = 0.0  # monotonic end of the schedule
        self.lateness_s: list[float] = []
        self.settled = 0  # batches whose create was answered (their runs are then followed)
        self.completed_runs = self.failed_runs = self.errored_runs = 0
        self.scanning = False
        self.finished: asyncio.Future[None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.finished = loop.create_future()
        # the loop's clock and time.monotonic (the one lateness is read on) differ by a constant
        offset = loop.time() - time.monotonic()
        t0 = time.monotonic() + LEAD_S
        self.end = t0 + DURATION_S
        if IN_FLIGHT:
            loop.call_at(t0 + offset, self.top_up)
        for k in range(self.total):
            loop.call_at(t0 + k / RATE + offset, self.send_create, t0 + k / RATE)
        loop.call_at(t0 + POLL_INTERVAL_S + offset, self.tick, t0 + POLL_INTERVAL_S, offset)
        with contextlib.suppress(TimeoutError):  # runs still open then count as not completed
            await asyncio.wait_for(self.finished, LEAD_S + DURATION_S + GRACE_S)

    def send(self, data: bytes, done: Done) -> None:
        if self.idle:
            self.idle.pop().send(data, done)
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: Connection(self.idle), self.host, self.port))
        task.add_done_callback(lambda made: made.result()[1].send(data, done))

    def top_up(self) -> None:
        """Closed: a create for every whole batch that fits under ``IN_FLIGHT`` runs, until the schedule's end."""
        now = time.monotonic()
        while now < self.end and len(self.open) + self.creating + RUNS_PER_BATCH <= IN_FLIGHT:
            self.total += 1
            self.creating += RUNS_PER_BATCH
            self.send_create(now)

    def send_create(self, due: float) -> None:
        now = time.monotonic()
        if now < due:  # the loop's timers keep whole milliseconds: never send before the due time
            asyncio.get_running_loop().call_later(due - now, self.send_create, due)
            return
        self.lateness_s.append(now - due)
        self.send(self.create, lambda status, body: self.created(due, status, body))

    def created(self, due: float, status: int, body: bytes) -> None:
        self.settled += 1
        if IN_FLIGHT:
            self.creating -= RUNS_PER_BATCH
        if 200 <= status < 300:
            for run_id in orjson.loads(body)["run_ids"]:
                self.open[run_id] = due  # as the list shows it (the simulator gives integer ids)
        else:
            self.errored_runs += RUNS_PER_BATCH
            if IN_FLIGHT:
                self.top_up()
        self.check_finished()

    def tick(self, when: float, offset: float) -> None:
        if not self.scanning and self.open:
            self.scanning = True
            self.scan(0, 0, len(self.open))
        nxt = when + POLL_INTERVAL_S
        asyncio.get_running_loop().call_at(nxt + offset, self.tick, nxt, offset)

    def scan(self, offset: int, seen: int, wanted: int) -> None:
        """Read the page at ``offset``; ``seen`` of the ``wanted`` runs open when the scan began were found on
        the pages above it (runs created since are above the first page read)."""

        def page(status: int, body: bytes) -> None:
            found = seen
            items = orjson.loads(body) if status == 200 else []
            for item in items:
                run_id = item["id"]
                if run_id in self.open:
                    found += 1
                    status = item["status"]
                    if status in ("completed", "failed"):
                        del self.open[run_id]
                        if status == "completed":
                            self.completed_runs += 1
                        else:
                            self.failed_runs += 1
            if found < wanted and len(items) == PAGE_SIZE:
                self.scan(offset + PAGE_SIZE, found, wanted)
            else:
                self.scanning = False
                if IN_FLIGHT:
                    self.top_up()
                self.check_finished()

        self.send(b"GET /v1/test-calls?limit=%d&offset=%d HTTP/1.1\r\n%b\r\n" % (PAGE_SIZE, offset, self.head), page)

    def check_finished(self) -> None:
        assert self.finished is not None
        over = not IN_FLIGHT or time.monotonic() >= self.end
        if over and self.settled == self.total and not self.open and not self.finished.done():
            self.finished.set_result(None)


def main() -> None:
    if len(sys.argv) != 2 or not is_loopback(urlsplit(sys.argv[1]).hostname or ""):
        sys.exit("usage: bare_lifecycle.py http://127.0.0.1:PORT (loopback only: it is a benchmark's client)")
    bare = Bare(sys.argv[1])
    uvloop.run(bare.run())
    figures = {
        "scheduled": bare.total,
        "settled": bare.settled,
        "completed_runs": bare.completed_runs,
        "failed_runs": bare.failed_runs,
        "errored_runs": bare.errored_runs,
        "open_runs": len(bare.open),
        "lateness_s": bare.lateness_s,
    }
    with open(OUT, "w") as out:
        json.dump(figures, out)


if __name__ == "__main__":
    main()
