"""stressor beside its peers: the same workloads driven by stressor, by Locust and (plain HTTP) by wrk.

Two workloads, each client a subprocess pinned to core 0, each server in its own process pinned to core 1
(this process, which only waits, is pinned to core 1 as well):

1. **lifecycle**: create a batch (``POST /v1/test-call-batches``, ``consent_to_charge`` true) and poll it to
   its end (``GET /v1/test-call-batches/{id}`` every poll interval), at a target rate of batch starts per
   second (or, closed, ``--in-flight`` runs kept in flight: a batch whenever there is room), against the
   simulator (``SimulatorProcess``; a fresh one for every client and load; ``--indexed``: with a run list that
   costs O(page), ``benchmarks/indexed_sim.py``). stressor is
   ``stressor run PROFILE --base-url ...`` (the CLI as a user runs it: results file and runs log included);
   Locust is ``locust -f benchmarks/locustfile.py --headless`` with ``FastHttpUser`` users paced by one shared
   schedule. Per client: CPU seconds per 1,000 completed runs, runs per second achieved against the target,
   HTTP requests per completed run (counted by the simulator), start lateness p99, peak RSS. A third client,
   ``benchmarks/bare_lifecycle.py``, sends the same requests as stressor from the barest Python there is
   (uvloop, protocol callbacks, no task per batch, no bookkeeping): the floor both are measured against, as wrk
   is for plain HTTP.
2. **plain**: ``GET /`` against a trivial keep-alive HTTP/1.1 server (raw asyncio protocol on uvloop, in this
   file: ``--serve-plain``), by wrk, by Locust (``benchmarks/locust_plain.py``) and by stressor's own HTTP
   client (``stressor.http.client.HttpClient``: httpx's API over aiohttp) driven by N anyio tasks, on the
   asyncio loop and on uvloop. Per client: requests per second and requests per CPU-second.

A client's CPU and peak RSS are measured the same way for every client: CPU from ``os.wait4`` of its process
(``ru_utime + ru_stime``, start-up included), peak RSS from its ``VmHWM`` (``PeakRss`` says why not
``ru_maxrss``). For the lifecycle, each client also runs once with a single batch (the "start-up" row),
whose CPU is subtracted for the "net" figures.
Loopback only; every load is bounded in time and count, and each client has a hard deadline.

    python benchmarks/peers.py                                  # both workloads, defaults (~3 minutes)
    python benchmarks/peers.py --workload lifecycle --rates 50,400 --duration 20
    python benchmarks/peers.py --workload lifecycle --rates 300 --rounds 5   # ratios as median [lowest, highest]
    python benchmarks/peers.py --workload lifecycle --in-flight 1000,5000 --runs 20 --poll-interval 0.1 --indexed
    python benchmarks/peers.py --workload plain --plain-duration 10 --concurrency 64
    python benchmarks/peers.py --workload plain --rounds 3      # the plain verdict on the median of 3 rounds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from pinning import ServerChild, pin, usable_cores

from stressor.sim.config import SimConfig
from stressor.sim.server import SimulatorProcess, fetch_truth

HERE = Path(__file__).resolve().parent
CLIENT_CORE = 0
SERVER_CORE = 1
API_KEY = "sk_test_benchmark"
SIM_SLOTS = 20_000  # far above rate x call length at every rate here: the server never queues
DEADLINE_SLACK_S = 30.0  # a client still running this long past its expected end is killed (figures lost)
PLAIN_BODY = b'{"status":"ok"}'


# ------------------------------------------------------------------------------------------ child processes


@dataclass(frozen=True, slots=True)
class ChildUsage:
    """What ``os.wait4`` says about a finished client process."""

    exit_code: int
    cpu_s: float
    max_rss_kib: int  # peak RSS (VmHWM), 0 where /proc has none
    wall_s: float
    stdout: str
    stderr: str


def run_pinned(
    command: Sequence[str],
    *,
    core: int,
    cores: set[int],
    deadline_s: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ChildUsage:
    """Run ``command`` pinned to ``core`` and return its own resource usage; it is killed if it outlives
    ``deadline_s``. The pinning is applied right after the process starts, before it has started threads of its
    own (threads started later inherit it), as the other benchmarks pin the simulator."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        pin(process.pid, core, cores)
        killer = threading.Timer(deadline_s, process.kill)
        killer.start()
        peak = PeakRss(process.pid)
        try:
            # wait4 (not Popen.wait) because it hands back the child's own rusage: its CPU
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
            peak.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        wall_s = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return ChildUsage(
            exit_code=process.returncode,
            cpu_s=usage.ru_utime + usage.ru_stime,
            max_rss_kib=peak.kib,
            wall_s=wall_s,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


class PeakRss:
    """The peak RSS of a running process: its ``VmHWM`` (a high-water mark), read every 50 ms until stopped.

    Not ``ru_maxrss`` from ``wait4``: Linux carries the forking parent's RSS high-water mark over into the
    child's ``ru_maxrss`` at exec, so every client would show at least this script's own RSS. VmHWM belongs to
    the memory of the program the child runs; only growth in its last 50 ms can be missed."""

    def __init__(self, pid: int) -> None:
        self.kib = 0
        self._path = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"peak-rss-{pid}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                for line in self._path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))
            except OSError:
                return  # the process is gone
            self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=1.0)


def client_env(**extra: str) -> dict[str, str]:
    """This environment without proxies (loopback must never go through one), plus ``extra``. Bytecode may be
    written: Locust runs from site-packages, compiled when it was installed, and a stressor from source that
    may not cache its bytecode compiles ~18,000 lines at every start (~0.09 s of CPU charged to each run)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def tail(text: str, lines: int = 8) -> str:
    """The last lines of a child's output, indented, for an error message."""
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


# ------------------------------------------------------------------------------------------ lifecycle


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The lifecycle workload's shape: open (``rate`` batch starts a second) or closed (``in_flight`` runs kept in
    flight, a batch started whenever there is room for one)."""

    rate: float  # batch starts per second (open); 0 when closed
    duration_s: float
    runs_per_batch: int
    poll_interval_s: float
    call_duration: str  # API seconds, scaled by the simulator's time scale (0.001)
    call_s: float  # the call's real length, for the grace and the number of Locust users
    in_flight: int = 0  # runs in flight (closed); 0 when open

    @property
    def label(self) -> str:
        """The load in a few characters: ``300/s`` or ``1000 in flight``."""
        return f"{self.in_flight} in flight" if self.in_flight else f"{self.rate:g}/s"

    @property
    def expected_runs(self) -> float:
        """Runs the schedule starts: open, rate x duration batches; closed, in flight x duration / the call."""
        if self.in_flight:
            return self.in_flight * self.duration_s / self.call_s
        return math.ceil(self.rate * self.duration_s) * self.runs_per_batch

    @property
    def grace_s(self) -> float:
        """Past the schedule's end, how long runs in flight are still followed: the call, two polls, 2 s."""
        return self.call_s + 2 * self.poll_interval_s + 2.0

    @property
    def target_runs_per_s(self) -> float:
        if self.in_flight:
            return self.in_flight / self.call_s  # Little's law, were runs seen to end the moment they end
        return self.rate * self.runs_per_batch


@dataclass(frozen=True, slots=True)
class LifecycleRow:
    """One client's figures at one rate."""

    client: str
    shape: Lifecycle
    usage: ChildUsage
    completed_runs: int  # runs the client itself saw end completed
    server_completed: int  # runs the simulator completed (the client may not have seen them all end)
    completed_in_window: int
    lateness_p99_s: float | None
    lateness_count: int
    requests: int
    note: str = ""
    detection_p99_s: float | None = None  # server completed_at -> the client saw the run end (stressor only)
    server_cpu_s: float = math.nan
    round_no: int = 0  # of --rounds: the clients of a round run one after the other

    @property
    def achieved_runs_per_s(self) -> float:
        """Completed runs created (by the simulator's clock) within the schedule's length of the first create,
        per second of that window: the rate the client actually delivered."""
        return self.completed_in_window / self.shape.duration_s

    def cpu_per_1000(self, startup_cpu_s: float = 0.0) -> float:
        """Client CPU seconds per 1,000 completed runs (less ``startup_cpu_s``: the "net" figure)."""
        if not self.completed_runs:
            return math.nan
        return 1000 * max(0.0, self.usage.cpu_s - startup_cpu_s) / self.completed_runs

    def runs_per_cpu_s(self, startup_cpu_s: float = 0.0) -> float:
        """Completed runs per client CPU second (less ``startup_cpu_s``: the "net" figure)."""
        cpu = max(1e-9, self.usage.cpu_s - startup_cpu_s)
        return self.completed_runs / cpu

    @property
    def requests_per_run(self) -> float:
        """API requests the simulator answered per run the client saw complete."""
        return self.requests / self.completed_runs if self.completed_runs else math.nan


def stressor_profile(shape: Lifecycle) -> str:
    """The lifecycle workload as a stressor profile (TOML). The cost guard wants consent and a budget because
    the base URL is given (the simulator here is not the embedded one)."""
    runs = math.ceil(shape.expected_runs)
    load = f"in_flight = {shape.in_flight}" if shape.in_flight else f'rate = "{shape.rate:g}/s"'
    return f"""\
name = "peers-lifecycle"
grace = "{shape.grace_s:g}s"
mean_call_duration = "{shape.call_s:g}s"

[target]
kind = "test-calls"
submit = "batch"
poll_interval = "{shape.poll_interval_s:g}s"
request_timeout = "10s"

[target.request]
target_type = "agent"
target_id = 101
direction = "outbound"
mode = "bot"

[batch]
runs = {shape.runs_per_batch}
stagger = 0

[scenarios]
prompts = ["Ask for the opening hours."]

[cost]
consent_to_charge = true
budget_cents = {runs * 16 * 2 * 2}

[[stages]]
name = "steady"
duration = "{shape.duration_s:g}s"
{load}
"""


def locust_users(shape: Lifecycle) -> int:
    """Users enough that a free one is always there for the next slot while the server answers at once: a
    lifecycle lasts at most a create, the call, one poll interval and the polls' round trips; twice that."""
    if shape.in_flight:
        return math.ceil(shape.in_flight / shape.runs_per_batch)  # each user one batch at a time: a closed loop
    lifecycle_s = shape.call_s + shape.poll_interval_s + 0.1
    return max(4, math.ceil(2 * shape.rate * lifecycle_s))


@dataclass(frozen=True, slots=True)
class ServerCount:
    """What the simulator saw of one client: API requests, and the completed runs (all, and in the window)."""

    requests: int
    completed: int
    completed_in_window: int


def server_count(base_url: str, window_s: float) -> ServerCount:
    """Read the simulator's request counts and ground truth after a client has finished."""
    with httpx.Client(base_url=base_url, timeout=30.0, trust_env=False) as client:
        stats = client.get("/_sim/stats").json()
    requests = sum(
        sum(by_status.values()) for route, by_status in stats["requests"].items() if route != "GET /v1/healthz"
    )
    truth = fetch_truth(base_url, timeout=60.0)
    first = min((record.created for record in truth), default=0.0)
    done = [record for record in truth if record.status == "completed"]
    in_window = sum(1 for record in done if record.created <= first + window_s)
    return ServerCount(requests, len(done), in_window)


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile (p in 0..100) of ``values``, or None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def run_stressor_lifecycle(shape: Lifecycle, base_url: str, cores: set[int], work: Path) -> LifecycleRow:
    """``stressor run`` of the workload's profile against ``base_url``."""
    profile = work / "lifecycle.toml"
    profile.write_text(stressor_profile(shape))
    results = work / "stressor-results.json"
    usage = run_pinned(
        [
            sys.executable,
            "-m",
            "stressor",
            "run",
            str(profile),
            "--base-url",
            base_url,
            "--out",
            str(results),
            "--progress",
            "0",
        ],
        core=CLIENT_CORE,
        cores=cores,
        deadline_s=shape.duration_s + shape.grace_s + DEADLINE_SLACK_S,
        env=client_env(THUNDERPHONE_API_KEY=API_KEY),
        cwd=work,
    )
    if usage.exit_code != 0 or not results.exists():
        raise RuntimeError(f"stressor run exited {usage.exit_code}:\n{tail(usage.stdout + usage.stderr)}")
    document = json.loads(results.read_text())
    lateness = document["measures"]["start_lateness"]
    detection = document["measures"].get("detection_delay") or {}
    counted = server_count(base_url, shape.duration_s)
    return LifecycleRow(
        client="stressor",
        shape=shape,
        usage=usage,
        completed_runs=document["runs"]["completed"],
        server_completed=counted.completed,
        completed_in_window=counted.completed_in_window,
        lateness_p99_s=lateness.get("p99"),
        lateness_count=lateness.get("count", 0),
        requests=counted.requests,
        note=f"open {document['runs']['open']}, errored {document['runs']['errored']}",
        detection_p99_s=detection.get("p99"),
    )


def locust_command(locustfile: str, users: int, run_time_s: int, base_url: str) -> list[str]:
    """Locust headless in one process: ``users`` users spawned at once, for ``run_time_s`` seconds."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / locustfile),
        "--headless",
        "--only-summary",
        *("-u", str(users), "-r", "1000", "-t", f"{run_time_s}s"),
        *("--host", base_url, "--loglevel", "WARNING"),
    ]


def workload_env(shape: Lifecycle, out: Path, **extra: str) -> dict[str, str]:
    """The environment that gives the locustfile and the bare client the workload and where to write figures."""
    return client_env(
        PEERS_RATE=repr(shape.rate),
        PEERS_IN_FLIGHT=str(shape.in_flight),
        PEERS_DURATION=repr(shape.duration_s),
        PEERS_RUNS=str(shape.runs_per_batch),
        PEERS_POLL_INTERVAL=repr(shape.poll_interval_s),
        PEERS_OUT=str(out),
        PEERS_API_KEY=API_KEY,
        **extra,
    )


def run_locust_lifecycle(shape: Lifecycle, base_url: str, cores: set[int], work: Path) -> LifecycleRow:
    """Locust, headless, one process, ``benchmarks/locustfile.py`` against ``base_url``."""
    out = work / "locust-lifecycle.json"
    users = locust_users(shape)
    lead_s = 1.0  # users spawn at 1,000/s: ready well before the first slot
    run_time_s = math.ceil(lead_s + shape.duration_s + shape.grace_s)
    usage = run_pinned(
        locust_command("locustfile.py", users, run_time_s, base_url),
        core=CLIENT_CORE,
        cores=cores,
        deadline_s=run_time_s + DEADLINE_SLACK_S,
        env=workload_env(shape, out, PEERS_LEAD=repr(lead_s)),
        cwd=work,
    )
    return figures_row("locust", shape, usage, base_url, out, f"{users} users")


def figures_row(client: str, shape: Lifecycle, usage: ChildUsage, base_url: str, out: Path, note: str) -> LifecycleRow:
    """The row of a client that writes its figures as the locustfile does: ``scheduled`` and ``settled``
    batches, ``completed_runs``, ``errored_runs``, ``lateness_s`` (one per create sent)."""
    if not out.exists():
        raise RuntimeError(f"{client} exited {usage.exit_code} without figures:\n{tail(usage.stdout + usage.stderr)}")
    figures = json.loads(out.read_text())
    counted = server_count(base_url, shape.duration_s)
    unsettled = (figures["scheduled"] - figures["settled"]) * shape.runs_per_batch
    return LifecycleRow(
        client=client,
        shape=shape,
        usage=usage,
        completed_runs=figures["completed_runs"],
        server_completed=counted.completed,
        completed_in_window=counted.completed_in_window,
        lateness_p99_s=percentile(figures["lateness_s"], 99),
        lateness_count=len(figures["lateness_s"]),
        requests=counted.requests,
        note=f"{note}, unsettled {unsettled}, errored {figures['errored_runs']}",
    )


def run_bare_lifecycle(shape: Lifecycle, base_url: str, cores: set[int], work: Path) -> LifecycleRow:
    """``benchmarks/bare_lifecycle.py``: the same requests as stressor from the barest Python client (a floor)."""
    out = work / "bare-lifecycle.json"
    usage = run_pinned(
        [sys.executable, str(HERE / "bare_lifecycle.py"), base_url],
        core=CLIENT_CORE,
        cores=cores,
        deadline_s=shape.duration_s + shape.grace_s + DEADLINE_SLACK_S,
        env=workload_env(shape, out),
        cwd=work,
    )
    if usage.exit_code != 0:
        raise RuntimeError(f"bare_lifecycle exited {usage.exit_code}:\n{tail(usage.stdout + usage.stderr)}")
    open_runs = json.loads(out.read_text())["open_runs"] if out.exists() else 0
    return figures_row("bare", shape, usage, base_url, out, f"open {open_runs}")


LifecycleClient = Callable[[Lifecycle, str, set[int], Path], LifecycleRow]
LIFECYCLE_CLIENTS: dict[str, LifecycleClient] = {
    "stressor": run_stressor_lifecycle,
    "locust": run_locust_lifecycle,
    "bare": run_bare_lifecycle,
}


def lifecycle_run(client: str, shape: Lifecycle, cores: set[int]) -> LifecycleRow:
    """One client at one rate against a fresh simulator (so neither client inherits the other's runs)."""
    config = SimConfig.from_text(slots=SIM_SLOTS, call_duration=shape.call_duration, seed=1)
    simulator = SimulatorProcess(config)
    base_url = simulator.start()
    try:
        assert simulator.pid is not None
        pin(simulator.pid, SERVER_CORE, cores)
        with tempfile.TemporaryDirectory(prefix="peers-") as work:
            row = LIFECYCLE_CLIENTS[client](shape, base_url, cores, Path(work))
        return replace(row, server_cpu_s=process_cpu_s(simulator.pid))
    finally:
        simulator.stop()


def use_indexed_list() -> None:
    """From now on, simulators started here run ``benchmarks/indexed_sim.py``: the simulator with a run list
    that costs O(page) (``simulator_command`` is looked up when a ``SimulatorProcess`` starts)."""
    from stressor.sim import server

    own = server.simulator_command

    def command(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> list[str]:
        argv = own(config, host, port)
        at = argv.index("-m")  # [python, -m, stressor.sim, flags...]
        return [*argv[:at], str(HERE / "indexed_sim.py"), *argv[at + 2 :]]

    server.simulator_command = command


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (``/proc/PID/stat``), NaN where there is no /proc: to
    show whether the server, not the client, was the limit."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def ratio(a: float | None, b: float | None) -> str:
    """a / b with two decimals, or '-' when either is missing or b is zero."""
    value = ratio_of(a, b)
    return "-" if value is None else f"{value:.2f}"


# ------------------------------------------------------------------------------------------ plain HTTP


class _PlainConnection(asyncio.Protocol):
    """HTTP/1.1 keep-alive; answers every request with the same small JSON body at once (no pipelining here:
    every client sends one request per connection at a time, and requests have no body)."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(PLAIN_BODY)).encode()
        + b"\r\n\r\n"
        + PLAIN_BODY
    )

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they have write()
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = self.buffer.count(b"\r\n\r\n")
        if answers and self.transport is not None:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(self.RESPONSE * answers)


async def _serve_plain() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_PlainConnection, "127.0.0.1", 0, backlog=4096)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def serve_plain() -> None:
    """``--serve-plain``: the trivial server, on uvloop so that it outruns every client here (wrk included)."""
    import uvloop

    uvloop.run(_serve_plain())


async def _stressor_plain(base_url: str, concurrency: int, warmup_s: float, duration_s: float) -> dict[str, float]:
    """N tasks, each sending ``GET /`` through one ``HttpClient`` as fast as answers come; counts the requests
    answered inside the window that starts after the warm-up."""
    import anyio

    from stressor.http.client import HttpClient

    client = HttpClient(shards=1, connections_per_shard=concurrency, base_url=base_url, timeout=httpx.Timeout(10.0))
    counts = {"requests": 0, "errors": 0}
    started = time.perf_counter()
    window_start = started + warmup_s
    window_end = window_start + duration_s
    marks: dict[str, float] = {}

    async def worker() -> None:
        while (now := time.perf_counter()) < window_end:
            response = await client.get("/")
            if now >= window_start:
                counts["requests" if response.status_code == 200 else "errors"] += 1

    async def mark() -> None:
        await anyio.sleep(max(0.0, window_start - time.perf_counter()))
        marks["cpu0"] = time.process_time()
        await anyio.sleep(max(0.0, window_end - time.perf_counter()))
        marks["cpu1"] = time.process_time()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(mark)
            for _ in range(concurrency):
                tasks.start_soon(worker)
    finally:
        await client.aclose()
    return {
        "requests": counts["requests"],
        "errors": counts["errors"],
        "window_s": duration_s,
        "cpu_s_window": marks["cpu1"] - marks["cpu0"],
    }


def plain_child(args: argparse.Namespace) -> None:
    """``--plain-child``: stressor's side of the plain workload; prints its figures as one JSON line."""
    import anyio

    options = {"use_uvloop": True} if args.uvloop else {}
    figures = anyio.run(
        _stressor_plain, args.url, args.concurrency, args.warmup, args.plain_duration, backend_options=options
    )
    print(json.dumps(figures), flush=True)


@dataclass(frozen=True, slots=True)
class PlainRow:
    """One client's figures on the plain workload."""

    client: str
    requests: int
    window_s: float
    cpu_s_window: float
    usage: ChildUsage
    errors: int = 0
    round_no: int = 0  # of --rounds: the clients of a round run one after the other

    @property
    def rate(self) -> float:
        return self.requests / self.window_s

    @property
    def per_cpu_s(self) -> float:
        return self.requests / self.cpu_s_window if self.cpu_s_window > 0 else math.nan


def run_stressor_plain(base_url: str, args: argparse.Namespace, cores: set[int], uvloop: bool) -> PlainRow:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--plain-child",
        "--url",
        base_url,
        "--concurrency",
        str(args.concurrency),
        "--plain-duration",
        repr(args.plain_duration),
        "--warmup",
        repr(args.warmup),
    ] + (["--uvloop"] if uvloop else [])
    usage = run_pinned(
        command,
        core=CLIENT_CORE,
        cores=cores,
        deadline_s=args.warmup + args.plain_duration + DEADLINE_SLACK_S,
        env=client_env(),
    )
    lines = [line for line in usage.stdout.splitlines() if line.startswith("{")]
    if usage.exit_code != 0 or not lines:
        raise RuntimeError(f"the stressor plain client exited {usage.exit_code}:\n{tail(usage.stdout + usage.stderr)}")
    figures = json.loads(lines[-1])
    return PlainRow(
        client="stressor (uvloop)" if uvloop else "stressor (asyncio)",
        requests=int(figures["requests"]),
        window_s=figures["window_s"],
        cpu_s_window=figures["cpu_s_window"],
        usage=usage,
        errors=int(figures["errors"]),
    )


def run_locust_plain(base_url: str, args: argparse.Namespace, cores: set[int]) -> PlainRow:
    with tempfile.TemporaryDirectory(prefix="peers-") as work:
        out = Path(work) / "locust-plain.json"
        run_time_s = math.ceil(args.warmup + args.plain_duration + 5)  # the locustfile quits at the window's end
        usage = run_pinned(
            locust_command("locust_plain.py", args.concurrency, run_time_s, base_url),
            core=CLIENT_CORE,
            cores=cores,
            deadline_s=run_time_s + DEADLINE_SLACK_S,
            env=client_env(
                PEERS_WARMUP=repr(args.warmup), PEERS_DURATION=repr(args.plain_duration), PEERS_OUT=str(out)
            ),
            cwd=Path(work),
        )
        if not out.exists():
            raise RuntimeError(f"locust exited {usage.exit_code} without figures:\n{tail(usage.stdout + usage.stderr)}")
        figures = json.loads(out.read_text())
    return PlainRow(
        client="locust",
        requests=int(figures["requests"]),
        window_s=figures["window_s"],
        cpu_s_window=figures["cpu_s_window"],
        usage=usage,
        errors=int(figures["failures"]),
    )


def run_wrk(base_url: str, args: argparse.Namespace, cores: set[int]) -> PlainRow | None:
    """wrk with one thread and the same number of connections; its CPU is its whole run (it has no warm-up)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    seconds = max(1, round(args.plain_duration))
    usage = run_pinned(
        [wrk, "-t1", f"-c{args.concurrency}", f"-d{seconds}s", base_url + "/"],
        core=CLIENT_CORE,
        cores=cores,
        deadline_s=seconds + DEADLINE_SLACK_S,
        env=client_env(),
    )
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", usage.stdout)
    if usage.exit_code != 0 or found is None:
        raise RuntimeError(f"wrk exited {usage.exit_code}:\n{tail(usage.stdout + usage.stderr)}")
    window_s = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", usage.stdout)
    return PlainRow("wrk", int(found.group(1)), window_s, usage.cpu_s, usage, int(errors.group(1)) if errors else 0)


# ------------------------------------------------------------------------------------------ report


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def ms_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


class StartUp:
    """The start-up rows (one batch, whole process) of each client, one per round; the median is subtracted
    from a client's CPU for its "net" figures."""

    def __init__(self) -> None:
        self.rows: dict[str, list[LifecycleRow]] = {}

    def add(self, row: LifecycleRow) -> None:
        self.rows.setdefault(row.client, []).append(row)

    def cpu_s(self, client: str) -> float:
        rows = self.rows.get(client)
        return statistics.median(row.usage.cpu_s for row in rows) if rows else 0.0


def print_lifecycle(rows: list[LifecycleRow], startup: StartUp) -> None:
    """The lifecycle table (start-up rows first), then, at each rate, the ratios stressor / Locust and each
    client's CPU per run against the floor's: per round (the clients of a round ran one after the other), and
    their median when there are several rounds."""
    rounds = max((row.round_no for row in rows), default=0) + 1
    print()
    print("lifecycle: create a batch, poll it to its end (CPU: os.wait4 of the client process; RSS: its VmHWM)")
    print(
        f"{'client':<9} {'round':>5} {'load':>14} {'target runs/s':>13} {'achieved':>8} {'completed':>9} "
        f"{'CPU s':>6} {'CPU s/1k runs':>13} {'net':>6} {'runs/CPU-s':>10} {'net':>6} {'req/run':>7} "
        f"{'late p99 ms':>11} {'detect p99 ms':>13} {'RSS MiB':>7} {'sim CPU s':>9}  note"
    )
    for name, starts in startup.rows.items():
        for row in starts:
            print(
                f"{name:<9} {row.round_no + 1:>5} {'start':>14} {'1 batch':>13} {'':>8} {row.completed_runs:>9} "
                f"{row.usage.cpu_s:>6.2f} {'':>13} {'':>6} {'':>10} {'':>6} {'':>7} {'':>11} {'':>13} "
                f"{mib(row.usage.max_rss_kib):>7} {'':>9}  start-up: one batch (the median is subtracted for 'net')"
            )
    for row in rows:
        base = startup.cpu_s(row.client)
        print(
            f"{row.client:<9} {row.round_no + 1:>5} {row.shape.label:>14} {row.shape.target_runs_per_s:>13.0f} "
            f"{row.achieved_runs_per_s:>8.1f} {row.completed_runs:>9} {row.usage.cpu_s:>6.2f} "
            f"{row.cpu_per_1000():>13.3f} {row.cpu_per_1000(base):>6.3f} {row.runs_per_cpu_s():>10.0f} "
            f"{row.runs_per_cpu_s(base):>6.0f} {row.requests_per_run:>7.2f} {ms_or_dash(row.lateness_p99_s):>11} "
            f"{ms_or_dash(row.detection_p99_s):>13} {mib(row.usage.max_rss_kib):>7} {row.server_cpu_s:>9.2f}  "
            f"{row.note}"
        )
    print(LIFECYCLE_LEGEND)
    print()
    spread = f", the median of {rounds} rounds [lowest, highest]" if rounds > 1 else ""
    print(
        f"ratios stressor / locust at each load{spread} (CPU per run: below 1 favours stressor; runs per "
        "CPU-s: above 1)"
    )
    columns = ("CPU/1k runs", "net", "runs/CPU-s", "net", "achieved", "req/run", "late p99", "peak RSS")
    width = 18 if rounds > 1 else 11
    print(f"{'load':>14} " + " ".join(f"{column:>{width}}" for column in columns))
    sb, lb = startup.cpu_s("stressor"), startup.cpu_s("locust")
    figures: list[Callable[[LifecycleRow, float], float | None]] = [
        lambda row, base: row.cpu_per_1000(),
        lambda row, base: row.cpu_per_1000(base),
        lambda row, base: row.runs_per_cpu_s(),
        lambda row, base: row.runs_per_cpu_s(base),
        lambda row, base: row.achieved_runs_per_s,
        lambda row, base: row.requests_per_run,
        lambda row, base: row.lateness_p99_s,
        lambda row, base: row.usage.max_rss_kib,
    ]
    for load, pairs in pairs_by_rate(rows, "stressor", "locust").items():
        cells = [spread_of([ratio_of(figure(s, sb), figure(lo, lb)) for s, lo in pairs]) for figure in figures]
        print(f"{load:>14} " + " ".join(f"{cell:>{width}}" for cell in cells))
    floor_base = startup.cpu_s("bare")
    floors = list(dict.fromkeys(row.shape.label for row in rows if row.client == "bare"))
    if floors:
        print()
        print("CPU per completed run, times the floor's (bare: the same requests with no load tester around them)")
        print(f"{'load':>14} " + " ".join(f"{column:>{width}}" for column in ("stressor", "net", "locust", "net")))
        against_floor = {client: pairs_by_rate(rows, client, "bare") for client in ("stressor", "locust")}
        for rate in floors:
            cells = []
            for client, by_rate in against_floor.items():
                pairs = by_rate.get(rate, [])
                base = startup.cpu_s(client)
                cells.append(spread_of([ratio_of(c.cpu_per_1000(), f.cpu_per_1000()) for c, f in pairs]))
                cells.append(spread_of([ratio_of(c.cpu_per_1000(base), f.cpu_per_1000(floor_base)) for c, f in pairs]))
            print(f"{rate:>14} " + " ".join(f"{cell:>{width}}" for cell in cells))


def ratio_of(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def spread_of(values: Sequence[float | None]) -> str:
    """The median with two decimals, then [lowest, highest] when there are several; '-' for none."""
    known = [value for value in values if value is not None]
    if not known:
        return "-"
    if len(known) == 1:
        return f"{known[0]:.2f}"
    return f"{statistics.median(known):.2f} [{min(known):.2f}, {max(known):.2f}]"


def pairs_by_rate(
    rows: list[LifecycleRow], first: str, second: str
) -> dict[str, list[tuple[LifecycleRow, LifecycleRow]]]:
    """At each load (its label), the rows of ``first`` and ``second`` from each round in which both ran."""
    by_round: dict[tuple[str, int], dict[str, LifecycleRow]] = {}
    for row in rows:
        by_round.setdefault((row.shape.label, row.round_no), {})[row.client] = row
    pairs: dict[str, list[tuple[LifecycleRow, LifecycleRow]]] = {}
    for (rate, _), clients in by_round.items():
        if first in clients and second in clients:
            pairs.setdefault(rate, []).append((clients[first], clients[second]))
    return pairs


LIFECYCLE_LEGEND = """\
  achieved: runs the simulator completed that it created within the schedule's length of the first create, per s
  completed: runs the client saw end completed (runs it did not see end within the grace are not counted)
  CPU s: user + system of the whole client process (start-up included); net: minus its start-up rows' median
  req/run: API requests the simulator answered / completed runs (stressor also reads the run list to learn
    each run's end time; Locust only polls the batch); late p99: batch due -> create request sent
  sim CPU s: the simulator's CPU during the client's run (its core is the limit near 1 s per wall second)"""


def print_plain(rows: list[PlainRow], args: argparse.Namespace, server: str) -> None:
    """The plain table with each client's ratios to Locust of the same round."""
    print()
    print(f"plain: GET / against {server}, {args.concurrency} concurrent requests, each client on one core")
    print(
        f"{'client':<19} {'round':>5} {'req/s':>8} {'x locust':>8} {'req/CPU-s':>9} {'x locust':>8} "
        f"{'CPU busy':>8} {'errors':>6} {'RSS MiB':>7}"
    )
    for row in rows:
        locust = next((r for r in rows if r.client == "locust" and r.round_no == row.round_no), None)
        busy = row.cpu_s_window / row.window_s
        print(
            f"{row.client:<19} {row.round_no + 1:>5} {row.rate:>8.0f} "
            f"{ratio(row.rate, locust.rate if locust else None):>8} {row.per_cpu_s:>9.0f} "
            f"{ratio(row.per_cpu_s, locust.per_cpu_s if locust else None):>8} {busy:>8.0%} {row.errors:>6} "
            f"{mib(row.usage.max_rss_kib):>7}"
        )
    print(
        "  req/s: answers inside the window / its length (after a warm-up, except wrk); req/CPU-s: the same\n"
        "  answers / the client's CPU in the window (wrk: its whole run), i.e. req/s per fully used core; CPU busy:\n"
        "  that CPU / the window (below ~95 %: the client did not get its core, or the server was the limit)"
    )


def targets_verdict(rows: list[LifecycleRow], plain: list[PlainRow]) -> None:
    """The issue's two targets, met or missed, with the figures behind each."""
    print()
    # per CPU-second, i.e. per core: on a shared machine a client does not always get all of its core
    details: list[tuple[float, str]] = []  # each round's ratio: stressor's better loop / Locust, and its figures
    for round_no in sorted({row.round_no for row in plain}):
        stressor_plain = [row for row in plain if row.client.startswith("stressor") and row.round_no == round_no]
        locust_plain = next((row for row in plain if row.client == "locust" and row.round_no == round_no), None)
        if stressor_plain and locust_plain:
            best = max(stressor_plain, key=lambda row: row.per_cpu_s)
            figures = f"{best.client} {best.per_cpu_s:.0f} / Locust {locust_plain.per_cpu_s:.0f} requests per CPU-s"
            details.append((best.per_cpu_s / locust_plain.per_cpu_s, figures))
    if details:
        ratios = [x for x, _ in details]
        x = statistics.median(ratios)
        said = details[0][1] if len(details) == 1 else f"the median of {len(ratios)} rounds: {spread_of(ratios)}"
        print(f"target plain req/s per core >= 1.5x Locust: {'MET' if x >= 1.5 else 'MISSED'} ({x:.2f}x, {said})")
    lifecycle_verdicts(rows)


def lifecycle_verdicts(rows: list[LifecycleRow]) -> None:
    """Issue 19's targets at each load, on the medians of the rounds: stressor's requests per completed run,
    its CPU per completed run against the floor's (bare) and Locust's, whole process, and its detection delay
    p99 against the poll interval."""
    stressor_rows: dict[str, list[LifecycleRow]] = {}
    for row in rows:
        if row.client == "stressor":
            stressor_rows.setdefault(row.shape.label, []).append(row)
    floors, locusts = pairs_by_rate(rows, "stressor", "bare"), pairs_by_rate(rows, "stressor", "locust")
    for load, own in stressor_rows.items():
        per_run = statistics.median(row.requests_per_run for row in own)
        print(f"target requests per completed run <= 0.25 at {load}: {'MET' if per_run <= 0.25 else 'MISSED'} "
              f"({per_run:.3f}, {spread_of([row.requests_per_run for row in own])})")
        for against, pairs, bound in (("the floor (bare)", floors, 2.0), ("Locust", locusts, 1.0)):
            ratios = [ratio_of(s.cpu_per_1000(), other.cpu_per_1000()) for s, other in pairs.get(load, [])]
            known = [x for x in ratios if x is not None]
            if known:
                x = statistics.median(known)
                print(f"target CPU per completed run <= {bound:g}x {against} at {load}: "
                      f"{'MET' if x <= bound else 'MISSED'} ({spread_of(known)}x, whole process)")
        detected = [row.detection_p99_s for row in own if row.detection_p99_s is not None]
        if detected:
            bound_s = own[0].shape.poll_interval_s + 0.010
            p99 = statistics.median(detected)
            print(f"target detection delay p99 <= poll interval + 10 ms ({bound_s * 1e3:g} ms) at {load}: "
                  f"{'MET' if p99 <= bound_s else 'MISSED'} ({p99 * 1e3:.1f} ms, "
                  f"{spread_of([d * 1e3 for d in detected])} ms)")
        late = [row.lateness_p99_s for row in own if row.lateness_p99_s is not None]
        if late:
            print(f"  start lateness p99 at {load}: {spread_of([x * 1e3 for x in late])} ms (target < 2 ms at the "
                  "highest rate the README claims)")


# ------------------------------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("both", "lifecycle", "plain"), default="both")
    parser.add_argument(
        "--rates", default="50,150,300,1000", help="lifecycle: batch starts per second, comma-separated"
    )
    parser.add_argument(
        "--in-flight",
        default="",
        help="lifecycle, closed: runs kept in flight, comma-separated (instead of --rates), e.g. 1000,5000",
    )
    parser.add_argument(
        "--indexed",
        action="store_true",
        help="lifecycle: a simulator whose run list costs O(page), as an indexed database (benchmarks/indexed_sim.py)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="lifecycle: seconds of schedule per rate")
    parser.add_argument("--runs", type=int, default=5, help="lifecycle: runs per batch (1..20)")
    parser.add_argument("--poll-interval", type=float, default=0.25, help="lifecycle: seconds between polls")
    parser.add_argument(
        "--call-duration",
        type=float,
        default=200.0,
        help="lifecycle: call length in API seconds (fixed; the simulator's time scale 0.001 makes it milliseconds)",
    )
    parser.add_argument("--no-startup", action="store_true", help="lifecycle: skip the one-batch start-up rows")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every client (at every rate) this many times, interleaved"
    )
    parser.add_argument(
        "--clients", default="stressor,locust,bare", help="lifecycle clients, comma-separated (bare: the floor)"
    )
    parser.add_argument("--plain-duration", type=float, default=5.0, help="plain: seconds of measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="plain: seconds before the window")
    parser.add_argument("--concurrency", type=int, default=64, help="plain: concurrent requests (users, tasks)")
    # internal: the child processes this script starts
    parser.add_argument("--serve-plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    args.in_flight = [int(runs) for runs in args.in_flight.split(",") if runs.strip()]
    if args.in_flight and min(args.in_flight) < 1:
        parser.error("--in-flight must be positive")
    args.clients = [name.strip() for name in args.clients.split(",") if name.strip()]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not args.rates or min(args.rates) <= 0 or min(args.duration, args.poll_interval, args.plain_duration) <= 0:
        parser.error("rates, durations and the poll interval must be positive")
    if not 1 <= args.runs <= 20 or args.concurrency < 1 or args.warmup < 0 or args.call_duration <= 0:
        parser.error("--runs must be 1..20, --concurrency at least 1, --warmup >= 0, --call-duration > 0")
    if unknown := set(args.clients) - set(LIFECYCLE_CLIENTS):
        parser.error(f"unknown lifecycle clients: {', '.join(sorted(unknown))}")
    if args.url and not args.url.startswith("http://127.0.0.1:"):
        parser.error("--url must be on 127.0.0.1")
    return args


def main() -> None:
    args = parse_args()
    if args.serve_plain:
        serve_plain()
        return
    if args.plain_child:
        plain_child(args)
        return
    cores = usable_cores()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}")
    split = len(cores) >= 2 and {CLIENT_CORE, SERVER_CORE} <= cores
    where = f"clients pinned to core {CLIENT_CORE}, servers to core {SERVER_CORE}" if split else "nothing pinned"
    print(f"{where}; this process (it only waits) {pin(os.getpid(), SERVER_CORE, cores)}", flush=True)
    rows: list[LifecycleRow] = []
    startup = StartUp()
    plain: list[PlainRow] = []
    if args.workload in ("both", "lifecycle"):
        call_s = args.call_duration * 0.001
        shape_of = lambda rate, duration, in_flight=0: Lifecycle(  # noqa: E731
            rate, duration, args.runs, args.poll_interval, f"fixed({args.call_duration:g})", call_s, in_flight
        )
        loads = (
            [shape_of(0.0, args.duration, runs) for runs in args.in_flight]
            if args.in_flight
            else [shape_of(rate, args.duration) for rate in args.rates]
        )
        if args.indexed:
            use_indexed_list()
        listing = "O(page) (benchmarks/indexed_sim.py)" if args.indexed else "the simulator's own (O(offset + page))"
        print(
            f"lifecycle: batches of {args.runs} runs (stagger 0), calls {call_s * 1e3:g} ms, poll interval "
            f"{args.poll_interval:g} s, {args.duration:g} s per load, {SIM_SLOTS} slots, run list {listing}",
            flush=True,
        )
        # Round by round, each client in turn: a machine whose speed drifts favours no client
        for round_ in range(args.rounds):
            if not args.no_startup:
                for client in args.clients:
                    start = replace(lifecycle_run(client, shape_of(1.0, 1.0), cores), round_no=round_)
                    startup.add(start)
                    print(f"  round {round_ + 1}: start-up {client}: CPU {start.usage.cpu_s:.2f} s", flush=True)
            for shape in loads:
                for client in args.clients:
                    row = replace(lifecycle_run(client, shape, cores), round_no=round_)
                    print(
                        f"  round {round_ + 1}: {client} at {shape.label}: {row.completed_runs} runs "
                        f"completed, CPU {row.usage.cpu_s:.2f} s, wall {row.usage.wall_s:.1f} s, "
                        f"{row.requests_per_run:.3f} requests per run",
                        flush=True,
                    )
                    rows.append(row)
        print_lifecycle(rows, startup)
    server = ""
    if args.workload in ("both", "plain"):
        plain_server = ServerChild([sys.executable, str(Path(__file__).resolve()), "--serve-plain"], SERVER_CORE, cores)
        server = f"a raw asyncio protocol server on uvloop ({plain_server.base_url}, {plain_server.pinning})"
        try:
            candidates: list[Callable[[], PlainRow | None]] = [
                lambda: run_wrk(plain_server.base_url, args, cores),
                lambda: run_locust_plain(plain_server.base_url, args, cores),
                lambda: run_stressor_plain(plain_server.base_url, args, cores, uvloop=False),
                lambda: run_stressor_plain(plain_server.base_url, args, cores, uvloop=True),
            ]
            for round_ in range(args.rounds):
                for candidate in candidates:
                    found = candidate()
                    if found is not None:
                        plain.append(replace(found, round_no=round_))
                        print(f"  round {round_ + 1}: plain {found.client}: {found.rate:.0f} req/s", flush=True)
        finally:
            plain_server.stop()
        print_plain(plain, args, server)
    targets_verdict(rows, plain)


if __name__ == "__main__":
    main()
