"""Every measure is broken down per variant and per scenario, and the per-variant parts add up to the totals:
each histogram bucket, each count, each cause of runs not started, the cost."""

from __future__ import annotations

import random
from pathlib import Path

from stressor.governor import Governor
from stressor.metrics import LatencyRecorder, Measure, Metrics, Outcome, RunRecord
from stressor.profile import Limits, parse_profile
from stressor.report.results import figures
from stressor.timestamps import NS_PER_S, ClockAnchor

ANCHOR = ClockAnchor(wall_ns=1_700_000_000 * NS_PER_S, mono_ns=0)
VARIANTS = ("spark", "bolt", "arc")
SCENARIOS = ("refund", "greeting")


def fed(seed: int) -> Metrics:
    """A run's worth of batches and runs over three variants and two scenarios, each with every figure."""
    rng = random.Random(seed)
    metrics = Metrics(ANCHOR)
    for seq in range(120):
        variant = VARIANTS[seq % len(VARIANTS)]
        due = seq * NS_PER_S // 10
        scenarios = [SCENARIOS[(seq + i) % 2] for i in range(3)]
        if seq % 10 == 9:  # some batches never start, for a cause
            cause = rng.choice(["budget", "runs_in_flight"])
            metrics.record_not_started(cause, 3, variant=variant, scenarios=scenarios)
            continue
        sent = due + rng.randrange(10**3, 10**7)
        metrics.record_batch_start(due, sent, variant=variant, scenarios=scenarios)
        metrics.record_submit(sent, sent + rng.randrange(10**6, 10**9), variant=variant, scenarios=scenarios)
        for index, scenario in enumerate(scenarios):
            outcome = rng.choice([Outcome.COMPLETED, Outcome.COMPLETED, Outcome.FAILED, Outcome.OPEN])
            ended = outcome in (Outcome.COMPLETED, Outcome.FAILED)
            created = ANCHOR.to_wall_s(sent) + 0.01
            record = RunRecord(
                batch_seq=seq,
                index=index,
                stage=0,
                variant=variant,
                scenario=scenario,
                outcome=outcome,
                due_ns=due,
                run_id=f"run-{seq}-{index}",
                detected_ns=sent + rng.randrange(10**9, 10**10) if ended else None,
                created_at=created,
                started_at=created + rng.uniform(0.0, 2.0) if ended else None,
                completed_at=created + rng.uniform(2.0, 9.0) if ended else None,
                cost_cents=rng.choice([1.5, 2.0]),
            )
            metrics.record_run(record)
    return metrics


def test_the_parts_per_variant_add_up_to_the_totals() -> None:
    metrics = fed(5)
    assert metrics.by_variant.keys() == set(VARIANTS)
    for measure in Measure:
        parts = LatencyRecorder()
        for piece in metrics.by_variant.values():
            assert piece.measures[measure].count > 0  # every measure is there, per variant
            parts.merge(piece.measures[measure])
        total = metrics.recorders[measure]
        assert parts.count == total.count > 0
        assert parts.encode() == total.encode()  # bucket for bucket
        assert parts.summary() == total.summary()
    pieces = metrics.by_variant.values()
    assert sum((p.outcomes for p in pieces), start=type(metrics.outcomes)()) == metrics.outcomes
    assert sum((p.not_started for p in pieces), start=type(metrics.not_started)()) == metrics.not_started
    assert sum(p.cost_cents for p in pieces) == sum(
        p.cost_cents for p in metrics.by_scenario.values()
    )  # each run's cost in one variant and one scenario
    assert sum(p.submitted_runs for p in pieces) == sum(metrics.outcomes.values())


def test_the_scenarios_have_every_run_level_figure_and_count_each_batch_once() -> None:
    metrics = fed(9)
    run_level = (Measure.QUEUE_TO_COMPLETION, Measure.TIME_QUEUED, Measure.TIME_IN_PROGRESS, Measure.DETECTION_DELAY)
    for measure in run_level:
        assert sum(p.measures[measure].count for p in metrics.by_scenario.values()) == metrics.recorders[measure].count
    # A batch carrying both scenarios counts its start lateness in each of them once, not once per run.
    batches = metrics.recorders[Measure.START_LATENESS].count
    per_scenario = sum(p.measures[Measure.START_LATENESS].count for p in metrics.by_scenario.values())
    assert per_scenario == 2 * batches
    assert sum(sum(p.not_started.values()) for p in metrics.by_scenario.values()) == sum(metrics.not_started.values())


def test_the_results_file_carries_each_variants_figures_and_they_add_up() -> None:
    metrics = fed(11)
    profile = parse_profile({"stages": [{"duration": "12s", "rate": "10/s"}]}, "p.toml", Path())
    document = figures(metrics, Governor(Limits()), profile, 12.0, with_histograms=False).to_json()
    variants = document["variants"]
    for measure in Measure:
        counts = [variants[v]["measures"][str(measure)]["count"] for v in VARIANTS]
        assert sum(counts) == document["measures"][str(measure)]["count"]
    for cause, runs in document["runs"]["not_started"].items():
        assert sum(variants[v]["not_started"].get(cause, 0) for v in VARIANTS) == runs
    assert sum(variants[v]["submitted"] for v in VARIANTS) == sum(metrics.outcomes.values())
    assert sum(variants[v]["estimated_cost_cents"] for v in VARIANTS) > 0
    # A slice that never had a value of a measure still shows it, empty.
    lone = Metrics(ANCHOR)
    lone.record_not_started("budget", 2, variant="idle")
    empty = figures(lone, Governor(Limits()), profile, 1.0, with_histograms=False).to_json()["variants"]["idle"]
    assert empty["measures"]["submit_rtt"]["count"] == 0 and empty["not_started"] == {"budget": 2}


def test_each_scenario_slice_carries_the_outcome_its_corpus_entry_expects(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(
        '{"name": "refund", "scenario_prompt": "Ask for a refund", "expected_outcome": "success", '
        '"goal": "refund issued"}\n'
        '{"name": "greeting", "scenario_prompt": "Say hello"}\n'
    )
    stages = [{"duration": "12s", "rate": "10/s"}]
    profile = parse_profile({"stages": stages, "scenarios": {"corpus": "c.jsonl"}}, "p.toml", tmp_path)
    scenarios = figures(fed(3), Governor(Limits()), profile, 12.0, with_histograms=False).to_json()["scenarios"]
    assert scenarios["refund"]["expected_outcome"] == "success"
    assert "expected_outcome" not in scenarios["greeting"]
