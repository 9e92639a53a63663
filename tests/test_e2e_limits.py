"""End to end against a misbehaving simulator: its rate limit obeyed, faults survived, no run billed twice,
the breaker stopping a run that cannot succeed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest
from sessions import profile_of

from stressor.engine import Engine, EngineResult
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome
from stressor.profile import Profile
from stressor.sim.config import SimConfig
from stressor.sim.server import serve
from stressor.targets.testcalls import TestCallsTarget
from stressor.timestamps import ClockAnchor

pytestmark = pytest.mark.e2e

LIMIT = 20.0


class Arrivals(httpx.AsyncBaseTransport):
    """The client's transport, noting when each request went out, what status came back and when: on loopback,
    the requests the simulator saw (refused ones included) and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, int]] = []
        self.refusals_received: list[float] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = await self._inner.handle_async_request(request)
        self.sent.append((sent, response.status_code))
        if response.status_code == 429:
            self.refusals_received.append(time.monotonic())
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def drive(profile: Profile, simulator: Mapping[str, Any], arrivals: Arrivals | None = None):
    config = SimConfig.from_mapping({"seed": 4, **simulator})
    async with serve(config) as sim:
        metrics = Metrics(ClockAnchor.now())
        governor = Governor(profile.limits)
        target = TestCallsTarget(
            sim.base_url,
            "sk_test_limits",
            metrics,
            governor=governor,
            poll_interval_s=profile.target.poll_interval_s,
            timeout_s=profile.target.request_timeout_s,
            transport=arrivals,
        )
        try:
            result = await Engine(profile, target, metrics=metrics, governor=governor).run()
        finally:
            await target.aclose()
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            stats = (await client.get("/_sim/stats")).json()
        return result, sim.model.truth(), stats


def every_run_completed_once(result: EngineResult, truth: list) -> None:
    assert result.metrics.outcomes[Outcome.OPEN] == 0
    assert result.metrics.outcomes[Outcome.ERRORED] == 0
    assert {r.run_id for r in result.records} == {t.id for t in truth}
    assert len(truth) == result.metrics.planned_runs  # one run on the server per planned run: none billed twice


@pytest.mark.parametrize(
    ("headers", "retry_after"), [("ietf", "seconds"), ("x-ratelimit", "seconds"), ("none", "http-date")]
)
def test_the_servers_rate_limit_is_obeyed_and_every_run_still_completes(headers: str, retry_after: str) -> None:
    # Offered: 10 batches/s, each a POST plus polls every 50 ms: far over 20 requests/s.
    profile = profile_of(
        {
            "grace": "30s",
            "target": {"poll_interval": "50ms"},
            "batch": {"runs": 2},
            "stages": [{"duration": "3s", "rate": "10/s"}],
            "limits": {"max_start_delay": "60s"},
        }
    )
    arrivals = Arrivals()
    simulator = {"rate_limit": LIMIT, "retry_after": retry_after, "rate_limit_headers": headers}
    result, truth, stats = anyio.run(drive, profile, simulator, arrivals)
    every_run_completed_once(result, truth)
    sent = sorted(arrivals.sent)
    refused = [t for t, status in sent if status == 429]
    assert len(refused) == stats["faults"]["rate_limited"]
    if headers == "ietf":
        # Told the quota up front (RateLimit-Policy): paced to it from the start, no 429 needed, full use.
        assert result.governor.server_rate == LIMIT
        assert not refused
        during_stage = [t for t, _ in sent if t < sent[0][0] + 3.0]
        assert 0.9 * LIMIT <= len(during_stage) / 3.0 <= 1.1 * LIMIT
    else:
        # Told only by 429s (and a remaining count): once the first 429 is in, the client sends no faster than
        # the limit, whatever it offers, because it pauses everything until the time the server named. Requests
        # sent before that answer arrived could not know; the server's burst allowance (a second's worth) aside.
        assert refused and result.governor.server_pause_s > 0
        told = min(arrivals.refusals_received)
        after = [t for t, _ in sent if t >= told]
        assert len(after) - LIMIT <= 1.1 * LIMIT * (sent[-1][0] - told)


def test_5xx_and_resets_after_creating_never_bill_a_run_twice() -> None:
    # A third of the requests fail (500/503 or a dropped connection), and most failed creates (500s, resets)
    # had made their runs first: only reconciliation can tell; a blind retry would create a second, billed batch.
    profile = profile_of(
        {
            "grace": "20s",
            "target": {"poll_interval": "50ms"},
            "batch": {"runs": 3},
            "stages": [{"duration": "3s", "rate": "10/s"}],
            "limits": {
                "backoff_base": "10ms",
                "backoff_cap": "100ms",
                "retry_ratio": 0.5,
                "breaker_failure_ratio": 0.9,
            },
        }
    )
    simulator = {"error_rate": 0.2, "error_status": "mixed", "reset_rate": 0.15, "fault_after_create": 0.8}
    result, truth, stats = anyio.run(drive, profile, simulator)
    assert stats["faults"]["after_create"] > 0 and stats["faults"]["reset"] > 0
    created = {t.id for t in truth}
    ours = [r.run_id for r in result.records if r.run_id is not None]
    assert len(ours) == len(set(ours))
    assert set(ours) <= created
    batches = {t.batch_id for t in truth}
    assert len(batches) == len({r.batch_id for r in result.records if r.batch_id})  # each batch created once
    assert len(truth) <= result.metrics.planned_runs  # never more runs on the server than planned
    # Every planned run is accounted for: completed, or errored with a cause (a create that stayed unknown).
    counted = sum(result.metrics.outcomes.values())
    assert counted == result.metrics.planned_runs == 90
    assert result.metrics.requests["submit reconciled"] > 0
    orphans = created - set(ours)  # created on the server but unknown to us: must be none
    assert not orphans


def test_the_breaker_stops_a_run_the_server_keeps_failing_and_says_why() -> None:
    profile = profile_of(
        {
            "grace": "5s",
            "target": {"poll_interval": "50ms"},
            "stages": [{"duration": "20s", "rate": "10/s"}],
            "limits": {"breaker_window": "2s", "breaker_min_requests": 10, "max_retries": 1},
        }
    )
    result, truth, _ = anyio.run(drive, profile, {"error_rate": 1.0, "error_status": "503", "retry_after": "none"})
    assert result.stop_cause == "breaker"
    assert result.stop_reason is not None and "requests failed" in result.stop_reason
    assert result.elapsed_s < 10  # stopped early, not after the 20 s of the plan
    assert result.metrics.not_started["breaker"] > 100
    assert result.metrics.outcomes[Outcome.REJECTED] > 0
    assert not truth  # 503 created nothing
