"""Running the simulator: on loopback inside the current event loop (``serve``), without a socket on an injected
clock (``simulate``), or in a separate process (``SimulatorProcess``); see docs/internals.md#running-the-simulator.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

import anyio
import httpx
import orjson

from stressor.asgi_server import base_url_of, serve_asgi
from stressor.beside import tasks_beside
from stressor.clock import SYSTEM, Clock, anchor_of
from stressor.sim.app import Middleware, RequestStats, SimApp, StatsSource, create_app
from stressor.sim.config import API_KEY_ENV, WEBHOOK_SECRET_ENV, SimConfig
from stressor.sim.faults import FaultLayer
from stressor.sim.model import SimModel
from stressor.sim.records import SimEvent, TruthRecord
from stressor.sim.views import truth_from_json
from stressor.sim.webhooks import WebhookSender
from stressor.timestamps import NS_PER_S

LISTENING_PREFIX = "stressor-sim listening on "
PARENT_PID_ENV = "STRESSOR_SIM_PARENT_PID"

_LISTENING_RE = re.compile(re.escape(LISTENING_PREFIX) + r"(http://\S+)")
_MIN_SLEEP_S = 0.001  # sleeping less than 1 ms busy-loops on some event loops


def monotonic_seconds() -> float:
    """The simulator's clock: ``time.perf_counter_ns`` in seconds (the clock ``ClockAnchor`` pairs with)."""
    return time.perf_counter_ns() / NS_PER_S


def seconds_of(clock: Clock) -> Callable[[], float]:
    """The monotonic seconds the simulator's parts read, from ``clock``."""
    if clock is SYSTEM:
        return monotonic_seconds

    def seconds() -> float:
        return clock.now_ns() / NS_PER_S

    return seconds


@dataclass(frozen=True, slots=True)
class Simulator:
    """The simulator's live parts, in the current event loop: ``webhooks`` is None without a ``webhook_url``."""

    model: SimModel
    app: SimApp
    faults: FaultLayer | None = None
    webhooks: WebhookSender | None = None

    @property
    def stats(self) -> RequestStats:
        """Requests answered so far, by method, route template and status."""
        return self.app.stats


@dataclass(frozen=True, slots=True)
class RunningSimulator(Simulator):
    """A simulator serving on ``base_url``."""

    base_url: str = ""
    host: str = ""
    port: int = 0


class _Wakeup:
    """Lets request handling wake the driver when new events were scheduled."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def on_event(self, event: SimEvent) -> None:
        if event.kind in ("run.created", "batch.created"):
            self._event.set()

    async def wait(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            await self._event.wait()
        self._event = anyio.Event()


async def _drive(model: SimModel, clock: Callable[[], float], wakeup: _Wakeup) -> None:
    while True:
        model.advance(clock())
        due = model.next_event_time()
        await wakeup.wait(math.inf if due is None else max(due - clock(), _MIN_SLEEP_S))


def _assemble(
    config: SimConfig,
    clock: Clock,
    middleware: Sequence[Middleware],
    webhook_transport: httpx.AsyncBaseTransport | None,
) -> tuple[Simulator, list[Callable[[], Awaitable[None]]]]:
    """The simulator's parts on ``clock``, and the tasks that must run beside its app: the driver that
    advances the model at each event's due time (so events happen, and are pushed out as webhooks, even when
    no client asks), and the webhook sender."""
    anchor = anchor_of(clock)
    model = SimModel(config, wall_at_zero=(anchor.wall_ns - anchor.mono_ns) / NS_PER_S)
    seconds = seconds_of(clock)
    # the fault layer is outermost: it stands for the network and the front door, before any other middleware
    faults = FaultLayer.for_model(model, seconds)
    stats: dict[str, StatsSource] = {"faults": faults.snapshot}
    webhooks = None
    if config.webhook_url is not None:
        webhooks = WebhookSender.for_model(model, seconds, transport=webhook_transport)
        model.add_listener(webhooks.on_event)
        stats["webhooks"] = webhooks.snapshot
    app = create_app(model, seconds, middleware=[faults, *middleware], stats=stats)
    wakeup = _Wakeup()
    model.add_listener(wakeup.on_event)
    jobs: list[Callable[[], Awaitable[None]]] = [lambda: _drive(model, seconds, wakeup)]
    if webhooks is not None:
        jobs.append(webhooks.run)
    return Simulator(model, app, faults, webhooks), jobs


@asynccontextmanager
async def simulate(
    config: SimConfig | None = None,
    clock: Clock = SYSTEM,
    *,
    middleware: Sequence[Middleware] = (),
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Simulator]:
    """The simulator without a socket, in the current event loop until the block exits: its model driven and
    its webhooks sent (over ``webhook_transport`` when given) by tasks of this loop; reach ``app`` in memory."""
    simulator, jobs = _assemble(config or SimConfig(), clock, middleware, webhook_transport)
    async with tasks_beside() as tasks:
        for job in jobs:
            tasks.start_soon(job)
        yield simulator


@asynccontextmanager
async def serve(
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    middleware: Sequence[Middleware] = (),
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator on host:port inside the current event loop until the block exits.

    Raises OSError (before anything runs) when the address cannot be bound.
    """
    simulator, jobs = _assemble(config or SimConfig(), SYSTEM, middleware, None)
    # the app writes Date on its own clock (clock_offset): uvicorn's would be a second, true one
    async with serve_asgi(simulator.app, host, port, what="the simulator", background=jobs, date_header=False) as (
        bound_host,
        bound_port,
    ):
        yield RunningSimulator(
            simulator.model,
            simulator.app,
            simulator.faults,
            simulator.webhooks,
            base_url=base_url_of(bound_host, bound_port),
            host=bound_host,
            port=bound_port,
        )


# -- a simulator in its own process ----------------------------------------------------------------------


class SimulatorStartError(OSError):
    """The simulator process did not come up; the message says why (with the tail of its stderr).

    An OSError, like the other ways starting a process or binding a port can fail, so callers catch one type.
    """


def simulator_command(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> list[str]:
    """The ``python -m stressor.sim`` command line for ``config``. The API key and the webhook secret go by
    environment (``SimulatorProcess`` sets it), never on a command line other users could read. Settings
    beyond the core ones are passed only when they differ from their defaults."""
    command = [
        sys.executable,
        "-m",
        "stressor.sim",
        "--host",
        host,
        "--port",
        str(port),
        "--slots",
        str(config.slots),
        "--call-duration",
        str(config.call_duration),
        "--time-scale",
        repr(config.time_scale),
        "--failure-rate",
        repr(float(config.failure_rate)),
        "--estimated-cost-cents",
        str(config.estimated_cost_cents),
        "--charge-multiplier",
        str(config.charge_multiplier),
        "--product",
        config.product,
    ]
    if config.seed is not None:
        command += ["--seed", str(config.seed)]
    return command + _optional_flags(config)


def _optional_flags(config: SimConfig) -> list[str]:
    defaults = SimConfig()
    flags: list[str] = []
    for name in _OPTIONAL_SETTINGS:
        value = getattr(config, name)
        if value == getattr(defaults, name):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, float):
            flags += [flag, repr(value)]  # repr round-trips a float exactly
        elif name in ("agents", "agent_versions"):
            flags += [flag, ",".join(f"{agent_id}={setting}" for agent_id, setting in value)]
        else:
            flags += [flag, str(value)]
    return flags


# every setting of SimConfig that simulator_command passes only when set (the secret goes by environment)
_OPTIONAL_SETTINGS: tuple[str, ...] = (
    "agents",
    "agent_versions",
    "list_order",
    "list_offset",
    "page_cap",
    "batch_name",
    "batch_name_length",
    "clock_offset",
    "ids",
    "slow_after_create",
    "slow_after_create_delay",
    "rate_limit",
    "rate_limit_burst",
    "rate_limit_scope",
    "rate_limit_status",
    "retry_after",
    "rate_limit_headers",
    "error_rate",
    "error_status",
    "error_burst",
    "fault_after_create",
    "latency",
    "reset_rate",
    "stall",
    "webhook_url",
    "webhook_duplicate_rate",
    "webhook_delay",
    "webhook_reorder",
    "webhook_drop_rate",
    "webhook_max_attempts",
    "webhook_retry_base",
    "webhook_retry_cap",
    "webhook_payload",
    "grade_score",
    "grade_scale",
    "grade_delay",
    "grade_twice",
)


class SimulatorProcess:
    """The simulator in a child process on loopback: ``with SimulatorProcess(config) as base_url: ...``.

    Also usable with ``async with`` (start and stop run in a worker thread). On exit the process gets SIGTERM
    (a clean uvicorn shutdown), then SIGKILL if it has not gone after ``stop_timeout`` seconds.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[str] | None = None
        self._base_url: str | None = None
        self._stderr: IO[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running simulator."""
        if self._base_url is None:
            raise RuntimeError("the simulator process is not running")
        return self._base_url

    @property
    def pid(self) -> int | None:
        """Process id of the simulator, while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self) -> str:
        """Start the process, wait until ``/v1/healthz`` answers, and return the base URL."""
        if self.process is not None:
            raise RuntimeError("the simulator process was already started")
        env = dict(os.environ)
        env.pop(API_KEY_ENV, None)
        env.pop(WEBHOOK_SECRET_ENV, None)
        if self.config.api_key is not None:
            env[API_KEY_ENV] = self.config.api_key
        if self.config.webhook_secret is not None:
            env[WEBHOOK_SECRET_ENV] = self.config.webhook_secret
        env["PYTHONUNBUFFERED"] = "1"
        env[PARENT_PID_ENV] = str(os.getpid())  # the child exits when this process is gone
        # the file outlives this method (the child writes to it until stop() closes it)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            simulator_command(self.config, self.host, 0),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        try:
            self._base_url = self._await_listening_line(self.process)
            self._await_health(self._base_url)
        except BaseException:
            self.stop()
            raise
        return self._base_url

    def _await_listening_line(self, process: subprocess.Popen[str]) -> str:
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = process.stdout
        if stdout is None:
            raise SimulatorStartError("the simulator process has no stdout pipe")

        def pump() -> None:
            # keeps draining stdout for the life of the process so the child never blocks on a full pipe
            for line in stdout:
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=pump, name="stressor-sim-stdout", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SimulatorStartError(
                    f"the simulator process printed no listening line within {self.startup_timeout:g} s"
                    f"{self._stderr_tail()}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if line is None:
                code = process.wait()
                raise SimulatorStartError(f"the simulator process exited with code {code}{self._stderr_tail()}")
            found = _LISTENING_RE.search(line)
            if found:
                return found.group(1)

    def _await_health(self, base_url: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(base_url=base_url, timeout=1.0, trust_env=False) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/v1/healthz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise SimulatorStartError(
                        f"the simulator at {base_url} did not answer /v1/healthz within {self.startup_timeout:g} s"
                    )
                time.sleep(0.01)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip()[-2000:]
        return f"; its stderr ends with:\n{tail}" if tail else ""

    def stop(self) -> None:
        """Terminate the process (idempotent)."""
        process, self.process, self._base_url = self.process, None, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
            self._reader = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)


# -- ground truth over HTTP ------------------------------------------------------------------------------


def truth_from_document(document: Any) -> list[TruthRecord]:
    """The records of a ``GET /_sim/truth`` answer; raises ValueError when it is not one."""
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise ValueError("not a simulator ground-truth document: expected an object with a 'runs' list")
    return [truth_from_json(item) for item in document["runs"]]


def fetch_truth(base_url: str, *, timeout: float = 10.0) -> list[TruthRecord]:
    """Ground truth of every run from a running simulator (``GET /_sim/truth``)."""
    with httpx.Client(base_url=base_url, timeout=timeout, trust_env=False) as client:
        response = client.get("/_sim/truth")
        response.raise_for_status()
        return truth_from_document(orjson.loads(response.content))


async def fetch_truth_async(base_url: str, *, client: httpx.AsyncClient | None = None) -> list[TruthRecord]:
    """``fetch_truth`` for async code; reuses ``client`` when given."""
    if client is None:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as own:
            return await fetch_truth_async(base_url, client=own)
    response = await client.get(base_url.rstrip("/") + "/_sim/truth")
    response.raise_for_status()
    return truth_from_document(orjson.loads(response.content))
