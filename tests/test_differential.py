"""Differential test: stressor against servers the docs allow, under faults, checked against ground truth.

Hypothesis draws a server (the simulator's switches for what the docs leave open) and a fault mix (resets,
5xx and slow answers after the server created the runs, 429/503 storms with and without Retry-After), runs a
short profile against it over real sockets, and checks the promises a user pays for: no run created twice;
``submitted`` never above what the server created; every run the server created accounted for as ended,
open or ``unknown``; the status of every ended run as the server has it; no run the server ended long before
the end reported ``open``; no traceback; a results document always built. CI runs a fixed number of examples;
set ``STRESSOR_DIFFERENTIAL_EXAMPLES`` (say 200) for a night's run.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stressor.engine import Engine
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome
from stressor.profile import Profile, parse_profile
from stressor.report.console import render_summary
from stressor.report.results import build_results
from stressor.sim.config import SimConfig
from stressor.sim.server import serve
from stressor.targets.base import TargetUnavailable
from stressor.targets.testcalls import TestCallsTarget
from stressor.timestamps import ClockAnchor

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("STRESSOR_DIFFERENTIAL_EXAMPLES", "6"))
KEY = "sk_test_differential"
# A run the server ended this long before the engine stopped must not be reported open.
SEEN_WITHIN_S = 2.0

SERVERS = st.fixed_dictionaries(
    {
        "list_order": st.sampled_from(["newest", "oldest"]),
        "list_offset": st.sampled_from(["honoured", "honoured", "ignored"]),
        "page_cap": st.sampled_from([None, 7, 30]),
        "batch_name": st.sampled_from(["whole", "absent", "truncated"]),
        "batch_name_length": st.sampled_from([5, 16]),
        "clock_offset": st.sampled_from([0.0, -6.0, 6.0]),
        "ids": st.sampled_from(["int", "string"]),
    }
)
FAULTS = st.fixed_dictionaries(
    {
        "reset_rate": st.sampled_from([0.0, 0.1]),
        "error_rate": st.sampled_from([0.0, 0.15, 0.3]),
        "error_status": st.sampled_from(["500", "503", "mixed"]),
        "fault_after_create": st.sampled_from([0.0, 0.5, 1.0]),
        "slow_after_create": st.sampled_from([0.0, 0.2]),
        "slow_after_create_delay": st.just(0.6),
        "rate_limit": st.sampled_from([None, 40.0]),
        "rate_limit_status": st.sampled_from([429, 503]),
        "retry_after": st.sampled_from(["seconds", "none"]),
        "rate_limit_scope": st.sampled_from(["all", "create"]),
    }
)


def profile_for(submit: str) -> Profile:
    runs = 1 if submit == "single" else 3
    data = {
        "name": "differential",
        "target": {"submit": submit, "poll_interval": "30ms", "request_timeout": "400ms"},
        "batch": {"runs": runs, "stagger": "0s"},
        "stages": [{"duration": "1s", "rate": "6/s"}],
        "grace": "4s",
        "limits": {"backoff_base": "10ms", "backoff_cap": "200ms"},
    }
    return parse_profile(data, "differential.toml", Path())


async def run_against(profile: Profile, config: SimConfig) -> dict[str, Any]:
    """Run ``profile`` as a session would (preflight, then the engine) against an in-process simulator; the
    results document, the engine's result and the simulator's truth."""
    async with serve(config) as sim:
        metrics = Metrics(ClockAnchor.now())
        governor = Governor(profile.limits)
        target = TestCallsTarget(
            sim.base_url,
            KEY,
            metrics,
            governor=governor,
            submit_mode=profile.target.submit,
            poll_interval_s=profile.target.poll_interval_s,
            timeout_s=profile.target.request_timeout_s,
            reconcile_deadline_s=3.0,
        )
        try:
            try:
                await target.check()
            except TargetUnavailable as refused:
                return {"refused": str(refused), "truth": sim.model.truth()}
            result = await Engine(profile, target, metrics=metrics, governor=governor).run()
        finally:
            await target.aclose()
        batches = {b: sim.model.get_batch(b) for b in {t.batch_id for t in sim.model.truth() if t.batch_id}}
        document = build_results(result, profile, {"kind": "testcalls"}, server=target.server_json())
        return {
            "result": result,
            "truth": sim.model.truth(),
            "names": [batch.sent_name for batch in batches.values() if batch is not None],
            "document": document,
            "ended_wall": metrics.anchor.to_wall_s(result.ended_ns),
        }


def check_against_truth(run: dict[str, Any], submit: str) -> None:
    truth = {t.id: t for t in run["truth"]}
    if "refused" in run:
        assert not truth, "a run refused before its first create created runs"  # refusing is allowed, billing not
        return
    result, document = run["result"], run["document"]
    orjson.dumps(document)  # the results file can always be written
    assert render_summary(document)
    records = list(result.records)
    # No run created twice: one batch per name sent (runs one by one: counted below).
    assert all(n == 1 for n in Counter(run["names"]).values()), f"a batch created twice: {Counter(run['names'])}"
    seen = {r.run_id: r for r in records if r.run_id is not None}
    assert set(seen) <= set(truth), "a run reported that the server never created"
    assert result.metrics.submitted_runs <= len(truth)
    unknown_unseen = sum(1 for r in records if r.outcome is Outcome.UNKNOWN and r.run_id is None)
    unseen = set(truth) - set(seen)
    # Every run the server created is accounted for: seen (ended, open, unknown), or among the unknown creates.
    assert len(unseen) <= unknown_unseen, (
        f"{len(unseen)} runs the server created are accounted for nowhere ({unknown_unseen} unknown creates)"
    )
    for run_id, record in seen.items():
        server = truth[run_id]
        if record.outcome in (Outcome.COMPLETED, Outcome.FAILED):
            assert str(record.outcome) == server.status, (
                f"{run_id}: reported {record.outcome}, server says {server.status}"
            )
        elif record.outcome is Outcome.OPEN and server.completed is not None:
            late = run["ended_wall"] - server.completed
            assert late < SEEN_WITHIN_S, f"{run_id} ended {late:.1f}s before the end, reported open"
    outcomes = document["runs"]
    assert outcomes["unknown"] == sum(1 for r in records if r.outcome is Outcome.UNKNOWN)
    if submit == "batch":
        per_order = Counter(r.batch_seq for r in records)
        assert set(per_order.values()) <= {3}, "an order's runs were counted more or less than once"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 10,  # CI: the same examples every time
    suppress_health_check=[HealthCheck.too_slow],
)
@given(server=SERVERS, faults=FAULTS, submit=st.sampled_from(["batch", "batch", "single"]), seed=st.integers(0, 99))
def test_stressor_keeps_its_promises_against_any_server_the_docs_allow(
    server: dict[str, Any], faults: dict[str, Any], submit: str, seed: int
) -> None:
    config = SimConfig.from_mapping(
        {
            "api_key": KEY,
            "seed": seed,
            "slots": 50,
            "call_duration": "fixed(0.2)",
            "time_scale": 1.0,
            **server,
            **faults,
        }
    )
    profile = profile_for(submit)
    run = anyio.run(run_against, profile, config)
    check_against_truth(run, submit)
