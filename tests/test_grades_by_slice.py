"""End to end (the simulator in memory, on virtual time): every run's scenario name is the one whose prompt the
simulator received for it, and the grade figures of each scenario and each variant are those of that slice's
runs, as the simulator graded them."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from sessions import run_session

from stressor.metrics import Outcome
from stressor.profile import parse_profile
from stressor.report.results import build_results

CORPUS = (
    ("greet", "Say hello and ask for the opening hours."),
    ("refund", "Ask for a refund of order 1234."),
    ("cancel", "Cancel the subscription, politely but firmly."),
)
THRESHOLD = 0.7


def figures_of(scores: list[float]) -> dict[str, object]:
    """What the results should say of a slice whose completed runs were graded ``scores``."""
    ordered = sorted(scores)

    def at(p: float) -> float:
        return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]

    return {
        "count": len(ordered),
        "mean": pytest.approx(sum(ordered) / len(ordered)),
        "min": ordered[0],
        "p10": at(10),
        "p50": at(50),
        "p90": at(90),
        "max": ordered[-1],
        "below_threshold": sum(score < THRESHOLD for score in ordered),
        "ungraded": 0,
    }


def test_scenario_names_match_the_prompts_sent_and_grades_are_figured_per_slice(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b"\n".join(orjson.dumps({"name": n, "scenario_prompt": p}) for n, p in CORPUS))
    data = {
        "grace": "5s",
        "batch": {"runs": 5, "stagger": "10ms"},  # 5 runs over 3 prompts: each batch starts on another one
        "scenarios": {"corpus": "corpus.jsonl"},
        "variants": [{"name": "spark", "target_id": 201}, {"name": "storm", "target_id": 202}],
        "stages": [{"duration": "2s", "rate": "8/s"}],
        "webhooks": {"enabled": True, "fallback": "1s"},
        "grades": {"threshold": THRESHOLD, "wait": "0.5s", "scale": "1"},
    }
    profile = parse_profile(data, "e2e.toml", tmp_path)
    simulator = {"seed": 4, "failure_rate": 0.1, "grade_scale": 1, "grade_score": "uniform(0.4,1.0)"}
    outcome = run_session(profile, simulator)
    result = outcome.engine
    truth = {run.id: run for run in outcome.truth or ()}
    records = result.records
    assert len(records) == 80 and {r.run_id for r in records} == set(truth)

    prompt_of = dict(CORPUS)
    for record in records:
        assert truth[record.run_id].scenario_prompt == prompt_of[record.scenario], record.run_id
    assert {r.scenario for r in records} == set(prompt_of)
    assert {r.variant for r in records} == {"spark", "storm"}

    # each slice's grades, from the simulator's own scores of the runs that completed in it
    by_scenario: dict[str, list[float]] = defaultdict(list)
    by_variant: dict[str, list[float]] = defaultdict(list)
    for record in records:
        real = truth[record.run_id]
        if real.status == "completed":
            assert real.grade_score is not None
            by_scenario[record.scenario].append(real.grade_score)
            by_variant[record.variant].append(real.grade_score)
        else:
            assert record.outcome is Outcome.FAILED
    results = build_results(result, profile, {"kind": "test-calls"}).to_json()
    for key, expected in (("scenarios", by_scenario), ("variants", by_variant)):
        slices = results[key]
        assert set(slices) == set(expected), key
        for name, scores in expected.items():
            assert slices[name]["grades"] == figures_of(scores), (key, name)
            failed = sum(1 for r in records if getattr(r, key[:-1]) == name and r.outcome is Outcome.FAILED)
            assert slices[name]["outcomes"]["completed"] == len(scores)
            assert slices[name]["outcomes"]["failed"] == failed
    assert sum(len(s) for s in by_scenario.values()) == results["grades"]["count"]
