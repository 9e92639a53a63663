"""The ready profiles in ``profiles/``: each one loads, plans, explains itself, and stays short enough to try.

Plus one end-to-end check of the closed model against the simulator's ground truth (in memory, on virtual
time): the runs the *server* has in flight stay at the profile's target.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support.memory import in_memory
from support.virtual import run

from stressor.clock import anchor_of
from stressor.document import load_results
from stressor.engine import Engine, EngineResult
from stressor.estimate import estimate
from stressor.governor import Governor
from stressor.metrics import Metrics
from stressor.profile import Profile, load_profile, parse_profile
from stressor.sim.config import SimConfig
from stressor.sim.records import TruthRecord
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.thresholds import lookup, parse_thresholds
from stressor.timestamps import NS_PER_S

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
SHIPPED = sorted(PROFILES_DIR.glob("*.toml"))
LONG_RUNNING = {"soak.toml"}  # meant to run for minutes; everything else must be quick to try
MAX_STAGES_S = 60.0
MIN_COMMENT_LINES = 3


def test_the_documented_profiles_are_shipped() -> None:
    names = {path.name for path in SHIPPED}
    expected = {
        "smoke.toml",
        "ramp.toml",
        "step.toml",
        "spike.toml",
        "soak.toml",
        "closed-concurrency.toml",
        "tier-benchmark.toml",
        "ci-gate.toml",
    }
    assert expected <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_profile_loads_and_plans(path: Path) -> None:
    profile = load_profile(path)
    stages, total = estimate(profile)
    assert len(stages) == len(profile.stages)
    assert total.runs > 0
    assert total.requests > 0
    assert profile.target.base_url is None, "a shipped profile must default to the embedded simulator"


def leading_comment(path: Path) -> list[str]:
    """The comment lines at the very top of a file, up to the first line that is not a comment."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_profile_explains_itself_at_the_top(path: Path) -> None:
    comment = leading_comment(path)
    assert len(comment) >= MIN_COMMENT_LINES, f"{path.name} needs a comment block at its top"
    text = "\n".join(comment)
    assert f"stressor run profiles/{path.name}" in text
    assert f"stressor plan profiles/{path.name}" in text
    assert "real API" in text  # what it would cost and what to change there


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name not in LONG_RUNNING], ids=lambda p: p.name)
def test_profile_is_short_enough_to_try(path: Path) -> None:
    assert load_profile(path).duration_s < MAX_STAGES_S


def test_tier_benchmark_compares_three_tiers_on_the_same_corpus() -> None:
    profile = load_profile(PROFILES_DIR / "tier-benchmark.toml")
    assert [v.name for v in profile.variants] == ["spark", "bolt", "storm-base"]
    assert len({v.request.target_id for v in profile.variants}) == 3
    assert len(profile.scenarios) >= 6
    assert all(s.expected_outcome for s in profile.scenarios)
    # grades and call durations by default, without webhooks
    assert profile.grades.fetch and profile.calls.fetch and not profile.webhooks.enabled


def test_ci_gate_gates_on_failures_drops_and_queue_time() -> None:
    profile = load_profile(PROFILES_DIR / "ci-gate.toml")
    header = "\n".join(leading_comment(PROFILES_DIR / "ci-gate.toml"))
    assert "no thresholds" not in header
    assert "exit code 5" in header
    gate = parse_thresholds(profile.thresholds)
    assert {t.path.text for t in gate} >= {"failure_rate", "dropped", "errored", "open", "queue_to_completion.p95"}
    assert any(t.abort for t in gate)
    healthy = orjson.loads((Path(__file__).parent / "data" / "results-small.json").read_bytes())
    healthy["runs"] = {**healthy["runs"], "completed": 40, "failed": 0}
    healthy["failure_rate"] = 0.0

    def passes(document: dict) -> list[bool]:
        typed = load_results(document)
        return [(value := lookup(typed, t.path).value) is not None and t.holds(value) for t in gate]

    assert all(passes(healthy))
    failing = {**healthy, "failure_rate": 0.2}
    dropping = {**healthy, "runs": {**healthy["runs"], "not_started": {"runs_in_flight": 3}}}
    queueing = {**healthy, "measures": {**healthy["measures"], "queue_to_completion": {"count": 40, "p95": 30.0}}}
    for bad in (failing, dropping, queueing):
        assert passes(bad).count(False) == 1


# ---------------------------------------------------------------------------------------------- end to end

TARGET = 12
BATCH = 4
POLL_S = 0.05
RAMP_S = 1.0
HOLD_S = 4.0
SETTLE_S = 0.3  # skip the first moments of the hold stage: the ramp's last top-ups are still being created
SAMPLE_STEP_S = 0.005

# Calls of ~2 s (2000 API seconds at time scale 0.001): detection (up to one 50 ms poll) and the top-up's
# round trip are small next to them, so the server's count should sit at the target.
CLOSED_PROFILE = {
    "grace": "5s",
    "target": {"poll_interval": f"{POLL_S}s"},
    "batch": {"runs": BATCH, "stagger": "0s"},
    "scenarios": {"prompts": ["a", "b"]},
    "stages": [
        {"name": "ramp", "duration": f"{RAMP_S}s", "in_flight": {"from": 4, "to": TARGET}},
        {"name": "hold", "duration": f"{HOLD_S}s", "in_flight": TARGET},
    ],
}


async def drive(profile: Profile, config: SimConfig) -> tuple[EngineResult, list[TruthRecord]]:
    """The engine against the simulator in memory, wired as ``stressor run`` wires it (one shared governor)."""
    async with in_memory(config) as sim:
        metrics = Metrics(anchor_of(sim.clock))
        governor = Governor(profile.limits)
        target = TestCallsTarget(
            sim.base_url,
            "sk_test_closed",
            metrics,
            governor=governor,
            poll_interval_s=POLL_S,
            clock=sim.clock,
            transport=sim.transport,
        )
        try:
            await target.check()
            result = await Engine(profile, target, metrics=metrics, governor=governor, clock=sim.clock).run()
        finally:
            await target.aclose()
        return result, sim.model.truth()


def in_flight_at(truth: list[TruthRecord], at: float) -> int:
    """Runs the server had created and not completed at epoch time ``at``."""
    return sum(1 for run in truth if run.created <= at and (run.completed is None or run.completed > at))


def samples(start: float, end: float, step: float) -> list[float]:
    count = int((end - start) / step)
    return [start + i * step for i in range(count + 1)]


def test_closed_model_holds_the_servers_runs_in_flight_at_the_target() -> None:
    config = SimConfig.from_text(slots=4 * TARGET, seed=7, call_duration="lognormal(2000,0.3)")
    profile = parse_profile(CLOSED_PROFILE, "closed.toml", Path())
    result, truth = run(drive, profile, config)  # in memory, on virtual time

    anchor = result.metrics.anchor
    hold_start = anchor.to_wall_s(result.t0_ns + round((RAMP_S + SETTLE_S) * NS_PER_S))
    hold_end = anchor.to_wall_s(result.t0_ns + round((RAMP_S + HOLD_S) * NS_PER_S)) - 0.05
    counts = [in_flight_at(truth, t) for t in samples(hold_start, hold_end, SAMPLE_STEP_S)]

    assert result.metrics.submitted_runs > TARGET  # runs ended and were topped up
    assert min(counts) >= TARGET - BATCH, counts
    assert max(counts) <= TARGET + BATCH, counts
    mean = sum(counts) / len(counts)
    assert abs(mean - TARGET) <= 0.1 * TARGET, mean
