"""Time under control: the clocks, the virtual-time loop the tests run on, and the simulator reached in memory.

The promises the migrated tests lean on: a virtual loop jumps to its next timer and never short of it, a test
that would hang fails with the tasks it waits on, the simulator in memory answers as over a socket where the
tests look (a reset is a reset, a timeout a timeout, a create the client gave up on still happens), and a
seeded run on virtual time comes out the same every time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from support.memory import in_memory
from support.truth import KEY, run_against
from support.virtual import VIRTUAL, Deadlock, VirtualTimeLoop, clock, run

from stressor.clock import SYSTEM, LoopClock, anchor_of, now_s
from stressor.engine import Engine
from stressor.metrics import Outcome
from stressor.profile import parse_profile
from stressor.sim.config import SimConfig
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmittedRun

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> object:
    return VIRTUAL


def test_the_system_clock_reads_the_machines_clocks_as_they_are() -> None:
    assert SYSTEM.now_ns is time.perf_counter_ns  # nothing added per reading on the hot path
    assert SYSTEM.wall is time.time
    anchor = anchor_of(SYSTEM)
    assert abs(anchor.wall_ns / 1e9 - time.time()) < 1.0 and anchor.mono_ns <= time.perf_counter_ns()


async def test_a_virtual_loop_jumps_to_each_timer_and_never_short_of_it() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    the_clock = clock()
    began_ns, began_wall = the_clock.now_ns(), the_clock.wall()
    await anyio.sleep(10)
    assert the_clock.now_ns() - began_ns == 10 * 10**9
    assert the_clock.wall() - began_wall == pytest.approx(10.0)
    for offset_ns in (1, 333_333_333, 7 * 10**9 + 1):  # instants a float cannot hold exactly
        when_ns = the_clock.now_ns() + offset_ns
        await the_clock.sleep_until(when_ns)
        assert when_ns <= the_clock.now_ns() <= when_ns + 1
    with anyio.move_on_after(5) as scope:  # a deadline on what never comes: it passes, in no real time
        await anyio.Event().wait()
    assert scope.cancelled_caught


def test_a_test_that_would_hang_fails_naming_what_it_waits_on() -> None:
    async def waits_for_ever() -> None:
        await anyio.Event().wait()

    with pytest.raises(Deadlock, match="nothing is scheduled and nothing can become ready"):
        run(waits_for_ever, deadlock_wait_s=0.05)


def test_a_task_that_ticks_for_ever_fails_at_the_horizon() -> None:
    async def ticks() -> None:
        while True:
            await anyio.sleep(3600)

    with pytest.raises(Deadlock, match="horizon"):
        run(ticks)


def test_a_thread_still_wakes_a_virtual_loop() -> None:
    async def waits_on_a_thread() -> str:
        await anyio.to_thread.run_sync(time.sleep, 0.05)
        return "woken"

    assert run(waits_on_a_thread) == "woken"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the machine's clock, on a real loop
async def test_the_system_clock_sleeps_until_an_instant_never_before_it() -> None:
    when_ns = time.perf_counter_ns() + 20_000_000
    await SYSTEM.sleep_until(when_ns)
    assert time.perf_counter_ns() >= when_ns
    await SYSTEM.sleep_until(time.perf_counter_ns() - 1)  # passed: a checkpoint, no wait
    real = LoopClock(asyncio.get_running_loop())  # a real loop's clock: its wall is the machine's
    assert abs(real.wall() - time.time()) < 0.5


def test_a_loop_clock_reads_its_loops_time() -> None:
    loop = VirtualTimeLoop()
    try:
        the_clock = LoopClock(loop, wall_at_zero=100.0)
        assert the_clock.now_ns() == round(loop.time() * 1e9)
        assert the_clock.wall() == 100.0 + loop.time()
        assert now_s(the_clock) == pytest.approx(loop.time())
    finally:
        loop.close()


async def test_the_simulator_in_memory_resets_times_out_and_goes_on_as_over_a_socket() -> None:
    config = SimConfig.from_mapping(
        {"api_key": KEY, "seed": 1, "reset_rate": 1.0, "fault_after_create": 1.0, "rate_limit_scope": "create"}
    )
    run_body = {"target_type": "agent", "target_id": 7, "scenario_prompt": "x", "consent_to_charge": True}
    async with in_memory(config) as sim, sim.client(headers={"Authorization": f"Bearer {KEY}"}) as client:
        with pytest.raises(httpx.ReadError, match="reset"):
            await client.post("/v1/test-calls", json=run_body)
        assert len(sim.model.truth()) == 1  # the fault came after the create: the run exists
        assert (await sim.stats_json())["faults"]["reset"] == 1
    stalled = SimConfig.from_mapping({"api_key": KEY, "seed": 1, "stall": "at=0s,for=5s"})
    async with in_memory(stalled) as sim, sim.client(headers={"Authorization": f"Bearer {KEY}"}) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/v1/test-calls", json=run_body, timeout=1.0)
        assert not sim.model.truth()  # still held by the stall
        await anyio.sleep(5)
        assert len(sim.model.truth()) == 1  # the client gave up; the server went on and created it


def test_a_ten_second_profile_runs_on_virtual_time_the_same_way_every_time() -> None:
    profile = parse_profile(
        {
            "name": "ten",
            "target": {"poll_interval": "50ms", "request_timeout": "1s"},
            "batch": {"runs": 3},
            "stages": [{"duration": "10s", "rate": "5/s"}],
            "grace": "5s",
        },
        "ten.toml",
        Path(),
    )
    config = SimConfig.from_mapping(
        {"api_key": KEY, "seed": 8, "call_duration": "uniform(0.2,2)", "time_scale": 1.0, "reset_rate": 0.05}
    )
    first, second = run(run_against, profile, config), run(run_against, profile, config)
    assert first["result"].elapsed_s >= 10.0
    assert first["result"].metrics.planned_runs == 150

    def records(outcome: dict) -> list[tuple]:
        result = outcome["result"]
        rows = [(r.batch_seq, r.index, r.outcome, r.due_ns, r.detected_ns, r.run_id) for r in result.records]
        return sorted(rows, key=repr)

    assert records(first) == records(second)
    assert [t.completed for t in first["truth"]] == [t.completed for t in second["truth"]]


async def test_an_engine_on_another_clock_starts_every_batch_at_its_instant_on_that_clock() -> None:
    # The kernel's timer and the early wake are the machine's clock's: on another, the pacer waits on its timers.
    profile = parse_profile(
        {"name": "c", "batch": {"runs": 1}, "stages": [{"duration": "2s", "rate": "50/s"}], "grace": "1s"},
        "c.toml",
        Path(),
    )
    target = InstantTarget()
    result = await Engine(profile, target, clock=clock()).run()
    assert result.metrics.planned_runs == 100
    assert result.metrics.outcomes == {Outcome.COMPLETED: 100}
    first = target.sent_ns[0]
    assert first == result.t0_ns
    assert [sent - first for sent in target.sent_ns] == [i * 20_000_000 for i in range(100)]  # to the nanosecond


class InstantTarget:
    """Runs that end as soon as they are submitted; the instant (ns) each order was sent."""

    def __init__(self) -> None:
        self.sent_ns: list[int] = []
        self._ids = itertools.count()

    async def submit(self, order: BatchOrder) -> Submission:
        self.sent_ns.append(clock().now_ns())
        return Submission(batch_id=None, runs=(SubmittedRun(f"r{next(self._ids)}", 0, None, None),))

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        for submitted in submission.runs:
            on_end(RunEnd(submitted.run_id, "completed", clock().now_ns(), None, None))

    def clock_offset(self) -> None:
        return None
