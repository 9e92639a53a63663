"""What the pieces under a batch cost, one at a time, in CPU: the floor below stressor's own work.

Prints, for this process on one core (no I/O but the event loop's own):

- an event loop that sleeps and wakes: CPU per wake at 10, 3 and 1 ms between wakes (on a VM a wake from
  idle costs far more than the loop iteration itself);
- a task: anyio's ``TaskGroup.start_soon`` against ``asyncio.create_task``, from start to its end;
- httpx's objects for one request: building a POST ``Request`` (merged headers, a JSON body) and a
  ``Response`` whose body is read;
- decoding a page of the run list (100 runs, every field the simulator gives a run) with orjson;
- stressor's own bookkeeping of a run that ended: its record made (``OpenRun.record``), counted in the
  metrics (``Metrics.record_run``: totals, variant, scenario) and written to the runs log buffer.

No network, no simulator; each figure is a mean over thousands of repetitions of ``time.process_time``.

    python benchmarks/overheads.py            # ~15 s
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import httpx
import orjson
from pinning import pin, usable_cores

from stressor.engine import OpenRun
from stressor.metrics import Metrics, Outcome
from stressor.runlog import RunLog
from stressor.runtime import loop_for
from stressor.timestamps import ClockAnchor

T = TypeVar("T")
WAKE_GAPS_S = (0.010, 0.003, 0.001)
WAKE_SECONDS = 3.0  # of sleeping and waking per gap
TASKS = 20_000
REQUESTS = 20_000
PAGES = 2_000
RUN = {  # one run object of GET /v1/test-calls, as the simulator writes it
    "id": "tc_0123456789abcdef",
    "target_type": "agent",
    "target_id": 101,
    "direction": "outbound",
    "target_number": None,
    "scenario_prompt": "Ask for the opening hours.",
    "mode": "bot",
    "status": "completed",
    "charge_multiplier": 2,
    "estimated_cost_cents": 16,
    "call_id": "call_0123456789abcdef",
    "sip_call_id": None,
    "error_message": "",
    "batch_id": "tb_0123456789abcdef",
    "started_at": "2026-11-30T02:00:00.123Z",
    "completed_at": "2026-11-30T02:00:00.323Z",
    "created_at": "2026-11-30T02:00:00.100Z",
    "updated_at": "2026-11-30T02:00:00.323Z",
    "duration_seconds": 200,
    "grade": {
        "call_id": "call_0123456789abcdef",
        "score": 86,
        "status": "completed",
        "call_outcome": "success",
        "goal_achievement": "achieved",
        "summary": "The agent handled the scenario and reached the caller's goal.",
        "grader_model": "sim-grader-1",
        "graded_at": "2026-11-30T02:00:00.323Z",
    },
    "transcript": None,
    "recording_url": "https://recordings.sim.invalid/call_0123456789abcdef.wav",
}


def cpu_per_call_us(calls: int, started: float) -> float:
    return (time.process_time() - started) / calls * 1e6


async def wake_costs() -> list[tuple[float, float]]:
    """(gap, CPU µs per wake) for each gap: a loop that only sleeps."""
    rows = []
    for gap_s in WAKE_GAPS_S:
        wakes = round(WAKE_SECONDS / gap_s)
        started = time.process_time()
        for _ in range(wakes):
            await asyncio.sleep(gap_s)
        rows.append((gap_s, cpu_per_call_us(wakes, started)))
    return rows


async def task_costs() -> tuple[float, float]:
    """CPU µs per task, start to end: anyio's task group, then bare asyncio tasks."""

    async def job() -> None:
        await anyio.lowlevel.checkpoint()

    started = time.process_time()
    async with anyio.create_task_group() as group:
        for _ in range(TASKS):
            group.start_soon(job)
    anyio_us = cpu_per_call_us(TASKS, started)
    started = time.process_time()
    await asyncio.gather(*(asyncio.create_task(job()) for _ in range(TASKS)))
    return anyio_us, cpu_per_call_us(TASKS, started)


def httpx_costs() -> tuple[float, float]:
    """CPU µs to build a create request, and to build and read a response of ~300 bytes."""
    headers = httpx.Headers({"Authorization": "Bearer sk_test_overheads", "Content-Type": "application/json"})
    url = httpx.URL("http://127.0.0.1:8000/v1/test-call-batches")
    body = orjson.dumps({"target_type": "agent", "target_id": 1, "run_count": 5, "consent_to_charge": True})
    timeouts = {"timeout": {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}}
    started = time.process_time()
    for _ in range(REQUESTS):
        request = httpx.Request("POST", url, headers=headers, content=body, extensions=timeouts)
    request_us = cpu_per_call_us(REQUESTS, started)
    answer_headers = [(b"content-type", b"application/json"), (b"content-length", b"300")]
    answer = b"x" * 300
    started = time.process_time()
    for _ in range(REQUESTS):
        response = httpx.Response(201, headers=answer_headers, stream=httpx.ByteStream(answer), request=request)
        response.read()
        response.close()
    return request_us, cpu_per_call_us(REQUESTS, started)


def page_decode_us() -> float:
    """CPU µs to decode one list page of 100 runs."""
    page = orjson.dumps([{**RUN, "id": f"tc_{i:016x}"} for i in range(100)])
    started = time.process_time()
    for _ in range(PAGES):
        orjson.loads(page)
    return cpu_per_call_us(PAGES, started)


def bookkeeping_us() -> float:
    """CPU µs of stressor's own work for one completed run once its end is known."""
    anchor = ClockAnchor.now()
    metrics = Metrics(anchor)
    now_ns, wall = time.perf_counter_ns(), time.time()
    with tempfile.TemporaryDirectory() as directory:
        log = RunLog(Path(directory) / "runs.jsonl")
        started = time.process_time()
        for i in range(REQUESTS):
            run = OpenRun(i // 5, i % 5, 0, "v", "s", now_ns - 400_000_000, 0.0, f"tc_{i}", "tb_0", wall - 0.4, 16.0)
            record = run.record(
                Outcome.COMPLETED,
                detected_ns=now_ns,
                started_at=wall - 0.35,
                completed_at=wall - 0.1,
                call_id=f"call_{i}",
            )
            metrics.record_run(record)
            log.write({"type": "run", **record.to_json(anchor, now_ns - 10**9)})
        cost = cpu_per_call_us(REQUESTS, started)
        log.close()
    return cost


def on_loop(fn: Callable[[], Awaitable[T]]) -> T:
    uvloop = loop_for("auto") == "uvloop"
    return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": True} if uvloop else {})


def main() -> None:
    print(f"client pid {os.getpid()} {pin(os.getpid(), 0, usable_cores())}; event loop: {loop_for('auto')}")
    for gap_s, us in on_loop(wake_costs):
        print(f"sleep and wake, {gap_s * 1e3:g} ms apart: {us:7.1f} µs of CPU per wake")
    anyio_us, asyncio_us = on_loop(task_costs)
    print(f"a task, start to end: anyio start_soon {anyio_us:6.1f} µs, asyncio create_task {asyncio_us:6.1f} µs")
    request_us, response_us = httpx_costs()
    print(f"httpx: a create Request {request_us:5.1f} µs; a Response built and read {response_us:5.1f} µs")
    print(f"orjson: a list page of 100 runs decoded in {page_decode_us():5.1f} µs")
    print(f"stressor: a run's record, metrics and runs-log line {bookkeeping_us():5.1f} µs")


if __name__ == "__main__":
    main()
