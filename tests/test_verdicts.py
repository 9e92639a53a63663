"""Verdicts per scenario: a corpus entry's ``expected_outcome`` checked against every run of it (the run's end and
its grade's ``call_outcome``), a verdict per scenario, shown in the results, the summary, HTML and JUnit, and
gated on by thresholds. Pure, but for the CLI checks (in process, on virtual time)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support.cli import stressor_here as stressor

BAD_CORPUS = (
    '{"name": "hours", "scenario_prompt": "Ask the hours", "expected_outcome": "success"}\n'
    '{"name": "refund", "scenario_prompt": "Ask for a refund", "expected_outcome": "The agent issues a refund."}\n'
)
PROFILE = '[scenarios]\ncorpus = "c.jsonl"\n[[stages]]\nduration = "1s"\nrate = "2/s"\n'


@pytest.mark.parametrize("command", ["run", "plan"])
def test_an_expected_outcome_that_is_not_a_known_value_is_one_sentence_and_exit_2(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "c.jsonl").write_text(BAD_CORPUS)
    (tmp_path / "p.toml").write_text(PROFILE)
    outputs = ["--out", str(tmp_path / "r.json")] if command == "run" else []
    done = stressor(command, str(tmp_path / "p.toml"), *outputs)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"stressor: {tmp_path / 'p.toml'}: scenarios.corpus: {tmp_path / 'c.jsonl'}: line 2.expected_outcome: must "
        "be one of 'success', 'failure', 'no_conversation', 'completed', 'failed', got 'The agent issues a "
        "refund.' (free text describing the goal goes in 'goal')"
    ]
    assert not (tmp_path / "r.json").exists()


CORPUS = (
    '{"name": "hours", "scenario_prompt": "Ask the hours", "expected_outcome": "success", "goal": "Gives hours"}\n'
    '{"name": "any", "scenario_prompt": "Say hello", "expected_outcome": "completed"}\n'
    '{"name": "broken", "scenario_prompt": "Hang up", "expected_outcome": "failed"}\n'
)
GRADED = """
name = "graded"
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 3
stagger = "5ms"
[scenarios]
corpus = "c.jsonl"
[grades]
wait = "1s"
[[stages]]
duration = "2s"
rate = "5/s"
"""


def _graded_run(tmp_path: Path, *args: str) -> tuple[int, str, dict]:
    (tmp_path / "c.jsonl").write_text(CORPUS)
    (tmp_path / "p.toml").write_text(GRADED)
    out = tmp_path / "r.json"
    done = stressor("run", str(tmp_path / "p.toml"), "--out", str(out), "--webhooks", *args)
    return done.returncode, done.stdout, orjson.loads(out.read_bytes())


def test_each_completed_runs_record_carries_its_grades_call_outcome(tmp_path: Path) -> None:
    code, _, results = _graded_run(tmp_path, "--sim-failure-rate", "0.2")
    assert code == 0
    completed = [r for r in results["run_records"] if r["outcome"] == "completed"]
    assert completed and all(r["grade"] is not None for r in completed)
    # the simulator's grade: success from a score of 0.6 up, failure below
    assert all(r["call_outcome"] == ("success" if r["grade"] >= 0.6 else "failure") for r in completed)
