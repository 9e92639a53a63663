"""The simulator can send ``X-RateLimit-Reset`` as an epoch time (``rate_limit_headers = "x-ratelimit-epoch"``),
and the client reads it as the moment the quota is back, not as a delay of 1.8 billion seconds."""

from __future__ import annotations

import math

import httpx
from sessions import profile_of
from support.memory import in_memory
from support.virtual import run

from stressor.clock import anchor_of
from stressor.engine import Engine, EngineResult
from stressor.governor import Governor
from stressor.limits.signals import read_signal
from stressor.metrics import Metrics, Outcome
from stressor.sim.config import SimConfig
from stressor.sim.faults import RateLimiter, quota_headers
from stressor.targets.testcalls.target import TestCallsTarget

WALL = 1_800_000_000.0


def test_the_epoch_form_writes_the_reset_as_the_epoch_second_the_burst_is_back() -> None:
    limiter = RateLimiter(rate=5, burst=5)
    for _ in range(5):
        limiter.admit(0.0)
    delay = dict(quota_headers("x-ratelimit", limiter, 0.0, WALL))
    epoch = dict(quota_headers("x-ratelimit-epoch", limiter, 0.0, WALL + 0.25))
    assert delay["x-ratelimit-reset"] == "1"
    assert epoch == {**delay, "x-ratelimit-reset": str(math.ceil(WALL + 0.25 + 1.0))}
    signal = read_signal(200, epoch, now_mono=0.0, now_wall=WALL + 0.25)
    assert signal is not None and signal.remaining == 0
    # read as an epoch: back 1 s from now, rounded up to the next whole epoch second (not 1.8e9 s away)
    assert signal.retry_at is not None and 1.0 <= signal.retry_at < 2.0


def test_the_simulator_flag_takes_the_epoch_form() -> None:
    config = SimConfig.from_mapping({"rate_limit": 5, "rate_limit_headers": "x-ratelimit-epoch"})
    assert config.rate_limit_headers == "x-ratelimit-epoch"


def test_a_run_against_epoch_resets_obeys_them_and_every_run_completes() -> None:
    profile = profile_of(
        {
            "grace": "20s",
            "target": {"poll_interval": "100ms"},
            "batch": {"runs": 2},
            "stages": [{"duration": "2s", "rate": "10/s"}],
            "limits": {"breaker_failure_ratio": 0.99},
        }
    )

    async def drive() -> tuple[EngineResult, Governor, httpx.Response, float]:
        # 8 requests a second, fewer than the 10 creates: the quota runs out whatever else is asked
        config = SimConfig.from_mapping(
            {"seed": 3, "rate_limit": 8, "rate_limit_headers": "x-ratelimit-epoch", "retry_after": "none"}
        )
        async with in_memory(config) as sim:  # on virtual time
            async with sim.client() as client:
                answer = await client.get("/v1/test-calls", params={"limit": 1})
                seen_wall = sim.clock.wall()
            metrics = Metrics(anchor_of(sim.clock))
            governor = Governor(profile.limits)
            target = TestCallsTarget(
                sim.base_url,
                "sk_test_epoch",
                metrics,
                governor=governor,
                poll_interval_s=0.1,
                clock=sim.clock,
                transport=sim.transport,
            )
            try:
                result = await Engine(profile, target, metrics=metrics, governor=governor, clock=sim.clock).run()
            finally:
                await target.aclose()
            return result, governor, answer, seen_wall

    result, governor, answer, seen_wall = run(drive)
    reset = int(answer.headers["x-ratelimit-reset"])
    assert seen_wall - 5 < reset < seen_wall + 5  # an epoch second, near now
    # Read as a delay, an exhausted quota would pause every request for max_pause (300 s): no run would end.
    assert result.metrics.outcomes[Outcome.COMPLETED] == result.metrics.planned_runs == 40
    assert 0 < governor.server_pause_s < 30  # the quota ran out and was waited for, as long as the epoch said
    assert not governor.unparseable
