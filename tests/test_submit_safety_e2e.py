"""End to end (in memory, on virtual time) against a simulator that loses answers to run-creating POSTs: a stall
longer than the request timeout, bursts of 500s, dropped connections. Each planned run must exist EXACTLY once on
the server (never billed twice, never lost), and every run created must be followed to its end."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sessions import drive, profile_of
from support.virtual import run

from stressor.engine import EngineResult
from stressor.metrics import Outcome
from stressor.profile import Profile


def profile(request_timeout: str, seconds: str = "3s") -> Profile:
    return profile_of(
        {
            "grace": "60s",
            "target": {"poll_interval": "100ms", "request_timeout": request_timeout},
            "batch": {"runs": 3},
            "stages": [{"duration": seconds, "rate": "10/s"}],
            "limits": {
                "backoff_base": "10ms",
                "backoff_cap": "200ms",
                "retry_ratio": 0.5,
                "max_retries": 20,
                "breaker_failure_ratio": 0.99,
                "breaker_min_requests": 100000,
            },
        }
    )


def exactly_one_run_per_planned_run(result: EngineResult, truth: list[Any]) -> None:
    planned = result.metrics.planned_runs
    outcomes = {str(k): v for k, v in result.metrics.outcomes.items() if v}
    per_batch = Counter(t.batch_id for t in truth)
    ours = [r.run_id for r in result.records if r.run_id is not None]
    orphans = {t.id for t in truth} - set(ours)
    context = f"planned {planned}, on the server {len(truth)} in {len(per_batch)} batches, outcomes {outcomes}"
    assert len(truth) == planned, context  # == : none billed twice, none lost
    assert not orphans, context  # every run created is one stressor knows about...
    assert len(ours) == len(set(ours)) == planned, context
    assert result.metrics.outcomes[Outcome.COMPLETED] + result.metrics.outcomes[Outcome.FAILED] == planned, context
    assert all(t.status in ("completed", "failed") for t in truth)  # ...and followed to its end


def test_a_stall_longer_than_the_request_timeout_bills_no_run_twice() -> None:
    # Every POST sent from 1 s to 4 s is held by the server past the 1 s request timeout, then handled: its runs
    # exist although the client saw a timeout. A listing right after the timeout would show nothing yet.
    result, truth, stats = run(drive, profile("1s"), {"stall": "at=1s,for=3s"})
    assert stats["faults"]["stalled"] > 0
    assert result.metrics.requests["submit timeout"] > 0
    exactly_one_run_per_planned_run(result, truth)
    assert result.metrics.requests["submit reconciled"] > 0


def test_bursts_of_500_after_creating_bill_no_run_twice() -> None:
    # 500s for 0.5 s of every 1.5 s, most after the runs were created; the reconciliation's own listings fall
    # into later bursts and must keep trying rather than give up and count existing runs errored.
    simulator = {"error_burst": "every=1.5s,length=0.5s,status=500", "fault_after_create": 0.8}
    result, truth, stats = run(drive, profile("1s"), simulator)
    assert stats["faults"]["burst"] > 0 and stats["faults"]["after_create"] > 0
    exactly_one_run_per_planned_run(result, truth)
    assert result.metrics.requests["submit reconciled"] > 0


def test_resets_after_creating_bill_no_run_twice() -> None:
    simulator = {"reset_rate": 0.15, "fault_after_create": 0.8}
    result, truth, stats = run(drive, profile("1s"), simulator)
    assert stats["faults"]["reset"] > 0 and stats["faults"]["after_create"] > 0
    exactly_one_run_per_planned_run(result, truth)
    assert result.metrics.requests["submit reconciled"] > 0
