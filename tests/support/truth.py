"""Run a profile against the simulator in memory as a session does (preflight, then the engine) and check the
outcome against the simulator's ground truth: the promises stressor makes against any server the docs allow.
``run_against`` runs on the loop's clock: virtual time under ``support.virtual.run``."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson

from stressor.clock import anchor_of
from stressor.engine import Engine
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome
from stressor.profile import Profile
from stressor.report.console import render_summary
from stressor.report.results import build_results
from stressor.sim.config import SimConfig
from stressor.targets.base import TargetUnavailable
from stressor.targets.testcalls.target import TestCallsTarget
from support.memory import in_memory

KEY = "sk_test_differential"
# A run the server ended this long before the engine stopped must not be reported open.
SEEN_WITHIN_S = 2.0


async def run_against(profile: Profile, config: SimConfig) -> dict[str, Any]:
    """Run ``profile`` as a session would (preflight, then the engine) against the simulator in memory; the
    results document, the engine's result and the simulator's truth."""
    async with in_memory(config) as sim:
        metrics = Metrics(anchor_of(sim.clock))
        governor = Governor(profile.limits, random.Random(config.seed))
        target = TestCallsTarget(
            sim.base_url,
            KEY,
            metrics,
            governor=governor,
            submit_mode=profile.target.submit,
            poll_interval_s=profile.target.poll_interval_s,
            timeout_s=profile.target.request_timeout_s,
            reconcile_deadline_s=3.0,
            clock=sim.clock,
            transport=sim.transport,
            rng=random.Random(config.seed),
        )
        try:
            try:
                await target.check()
            except TargetUnavailable as refused:
                return {"refused": str(refused), "truth": sim.model.truth()}
            result = await Engine(profile, target, metrics=metrics, governor=governor, clock=sim.clock).run()
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


def check_against_truth(run: dict[str, Any], runs_per_order: int) -> None:
    truth = {t.id: t for t in run["truth"]}
    if "refused" in run:
        assert not truth, "a run refused before its first create created runs"  # refusing is allowed, billing not
        return
    result, document = run["result"], run["document"]
    orjson.dumps(document.to_json())  # the results file can always be written
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
    assert document.runs.unknown == sum(1 for r in records if r.outcome is Outcome.UNKNOWN)
    per_order = Counter(r.batch_seq for r in records)
    assert set(per_order.values()) <= {runs_per_order}, "an order's runs were counted more or less than once"
