"""The guide's regression workflow end to end, on virtual time against the simulator in memory: a corpus run
with grades and transcripts at the agent's version 1 (the baseline), the same run after a prompt change
(version 2), and ``stressor compare --scenarios`` naming exactly the scenarios the change broke and those it
reworded, exiting 6."""

from __future__ import annotations

from pathlib import Path

import orjson
from support.cli import stressor_here

from stressor.running import ExitCode
from stressor.sim.agents import prompt_change

CORPUS = Path(__file__).parent.parent / "profiles" / "scenarios" / "support.jsonl"
# 4 s of 2 batches/s of the 6 scenarios: 8 runs of each, graded, their call logs and transcripts fetched
PROFILE = f"""
name = "support-regression"
grace = "5s"
[target]
poll_interval = "50ms"
[target.request]
target_type = "agent"
target_id = 201
[batch]
runs = 6
stagger = "10ms"
[scenarios]
corpus = "{CORPUS}"
[[stages]]
duration = "4s"
rate = "2/s"
[grades]
fetch = true
wait = "200ms"
[calls]
fetch = true
[simulator]
seed = 7
"""


def changes() -> dict[str, str]:
    """What version 2 does to each scenario of the corpus, as the simulator decides it."""
    entries = [orjson.loads(line) for line in CORPUS.read_bytes().splitlines() if line.strip()]
    return {entry["name"]: prompt_change(entry["scenario_prompt"], 2) for entry in entries}


def run(tmp_path: Path, out: str, *flags: str) -> Path:
    done = stressor_here("run", str(tmp_path / "p.toml"), "--transcripts", "--out", str(tmp_path / out), *flags)
    assert done.returncode == 0, done.stderr
    return tmp_path / out


def test_compare_names_the_scenarios_a_prompt_change_broke_and_reworded(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(PROFILE)
    base = run(tmp_path, "base.json", "--progress", "0")
    new = run(tmp_path, "new.json", "--progress", "0", "--sim-agent-versions", "201=2")
    truth = changes()
    broken = {name for name, change in truth.items() if change == "regressed"}
    reworded = {name for name, change in truth.items() if change == "reworded"}
    assert broken == {"reschedule", "double-charge", "human-handoff"}  # as docs/profiles.md says
    assert reworded == {"opening-hours", "cancel-subscription"}

    done = stressor_here(
        "compare", str(base), str(new), "--scenarios", "--json", str(tmp_path / "c.json"),
        "--markdown", str(tmp_path / "pr.md"),
    )  # fmt: skip
    assert done.returncode == ExitCode.REGRESSION, done.stderr
    assert done.stderr.splitlines()[-1] == "stressor: 3 scenarios regressed."
    found = {s["scenario"]: s for s in orjson.loads((tmp_path / "c.json").read_bytes())["scenarios"]}
    assert set(found) == set(truth)
    assert {name for name, s in found.items() if s["regressed"]} == broken
    for name in broken:  # the verdict and the grade both tell
        assert found[name]["verdict"] == {"base": "passed", "new": "failed"}
        assert found[name]["grade"]["beyond_noise"] and found[name]["grade"]["median_difference"]["high"] < 0
        assert found[name]["transcripts"]["lowest_similarity"] < 1
    for name in reworded:  # other words, the very same grades and outcomes
        assert found[name]["change"] == "changed" and found[name]["verdict"] == {"base": "passed", "new": "passed"}
        said = found[name]["transcripts"]
        assert said["compared"] == said["differing"] == 8 and said["lowest_similarity"] < 1
        assert all(pair["grade_delta"] == 0 for pair in found[name]["runs"])
        assert found[name]["outcome_changes"] == []
    (same,) = set(truth) - broken - reworded
    assert found[same]["change"] == "same" and found[same]["transcripts"]["mean_similarity"] == 1.0

    # what the user sees: the table names each scenario's change; the diff shows the agent's words
    lines = done.stdout.splitlines()
    for name in truth:
        (row,) = [line for line in lines if line.split()[:1] == [name]]
        word = {"regressed": "REGRESSED", "reworded": "changed", "unchanged": "same"}[truth[name]]
        assert row.split()[1] == word, row
    assert lines[-1] == "REGRESSED: 3 scenarios (double-charge, human-handoff, reschedule)"
    assert any(line.startswith("    - agent: ") for line in lines) and any(
        line.startswith("    + agent: ") for line in lines
    )
    markdown = (tmp_path / "pr.md").read_text()
    assert markdown.startswith("### stressor compare --scenarios: ❌ 3 of 6 scenarios regressed")
    assert markdown.count("<details>") == 5 and markdown.count("```diff") == 5


def test_the_same_run_twice_compares_the_same(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(PROFILE)
    base = run(tmp_path, "base.json", "--progress", "0")
    again = run(tmp_path, "again.json", "--progress", "0")
    done = stressor_here("compare", str(base), str(again), "--scenarios")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "stressor compare --scenarios: no regression; 0 of 6 scenarios changed"
