"""The profiles for the real API in ``profiles/real/``: ready for it (consent, a budget that covers the plan, real
call durations and polls), their comments true (the plan's table as ``stressor plan`` prints it), and each run
against the simulator in memory on virtual time at the real API's pace (time scale 1: calls of ~55 s, the
2-minute grades wait), doing what its comment says. Plus the README's walkthroughs, run as pasted.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.cli import Done, stressor_here
from support.virtual import START_S

from stressor.estimate import estimate
from stressor.profile import DEFAULT_CALLS_WAIT_S, load_profile
from stressor.running import ExitCode, Overrides, with_overrides

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "profiles" / "real"
PROFILES = sorted(REAL.glob("*.toml"))
MIN_POLL_S = 1.0  # the SDKs poll about once a second: faster only loads the API
MIN_CALL_S = 30.0  # a real call lasts about a minute
MIN_GRACE_S = 120.0
# requests a run at the real API's pace made, against the plan's estimate: the plan is an estimate, not a bound
PLAN_SLACK = (0.6, 1.3)
# calls of ~55 s as on the real API; seed 7, the regression profiles' own
REAL_PACE = ("--sim-time-scale", "1", "--sim-seed", "7", "--progress", "0")


def header(path: Path) -> list[str]:
    """The comment lines at the top of a file."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def plan_table(stdout: str) -> list[str]:
    """The table ``stressor plan`` prints: its header line to its total line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["stage", "model"])
    end = next(i for i, line in enumerate(lines) if line.split()[:1] == ["total"])
    return lines[start : end + 1]


def results(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


def test_the_four_patterns_and_the_prompt_change_are_shipped() -> None:
    assert {p.name for p in PROFILES} == {
        "release-smoke.toml",
        "regression.toml",
        "regression-prompt-changed.toml",
        "tier-benchmark.toml",
        "concurrency-limit.toml",
    }


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_the_comment_shows_the_table_stressor_plan_prints(path: Path) -> None:
    done = stressor_here("plan", str(path))
    assert done.returncode == 0, done.stderr
    table = ["# " + line for line in plan_table(done.stdout)]
    comment = header(path)
    assert table[0] in comment, f"{path.name}: its comment lacks the plan's table; paste it from stressor plan"
    at = comment.index(table[0])
    assert comment[at : at + len(table)] == table, (
        f"{path.name}: the plan's table in its comment is not what stressor plan prints now:\n"
        + "\n".join(table)
    )


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_it_is_ready_for_the_real_api(path: Path) -> None:
    profile = load_profile(path)
    _, total = estimate(profile)
    assert profile.target.base_url is None, "the embedded simulator without --base-url: nothing billed by mistake"
    assert profile.cost.consent_to_charge
    assert profile.cost.budget_cents is not None and total.cost_cents <= profile.cost.budget_cents
    assert profile.target.poll_interval_s >= MIN_POLL_S
    assert profile.mean_call_duration_s >= MIN_CALL_S
    assert profile.grace_s >= MIN_GRACE_S
    # the prompt change's stand-in on the simulator: regression.toml is the run against the real API
    real = REAL / "regression.toml" if path.name == "regression-prompt-changed.toml" else path
    text = "\n".join(header(real))
    assert f"THUNDERPHONE_API_KEY=sk_live_... stressor run profiles/real/{real.name} " in text
    assert "--base-url https://api.thunderphone.com" in text
    assert f"stressor plan profiles/real/{path.name}" in "\n".join(header(path))
    assert not re.search(r"sk_live_\w", path.read_text(encoding="utf-8")), "a key in a file of the repo"


def run_at_real_pace(path: Path, out: Path, *flags: str) -> tuple[Done, dict[str, Any]]:
    done = stressor_here("run", str(path), "--out", str(out), *REAL_PACE, *flags)
    return done, results(out)


def check_plan(path: Path, document: dict[str, Any]) -> None:
    """The requests the run made are about those its plan (the comment's table) says."""
    _, total = estimate(load_profile(path))
    made = sum(count for kind, count in document["requests"].items() if not kind.startswith("check"))
    low, high = PLAN_SLACK
    assert low * total.requests <= made <= high * total.requests, (made, total.requests)


@pytest.mark.parametrize("name", ["release-smoke", "regression"])
def test_a_corpus_passes_every_scenario_with_its_grades_after_the_real_wait(name: str, tmp_path: Path) -> None:
    path = REAL / f"{name}.toml"
    done, document = run_at_real_pace(path, tmp_path / "r.json")
    assert done.returncode == 0, done.stdout + done.stderr
    corpus = load_profile(path).scenarios
    assert document["scenario_verdicts"] == {"passed": len({s.name for s in corpus}), "failed": 0, "undecided": 0}
    assert document["runs"]["completed"] == load_profile(path).stages[0].batch.runs
    check_plan(path, document)


def test_the_prompt_change_breaks_insurance_and_emergency_and_compare_says_so(tmp_path: Path) -> None:
    base_done, _ = run_at_real_pace(REAL / "regression.toml", tmp_path / "base.json")
    new_done, new = run_at_real_pace(REAL / "regression-prompt-changed.toml", tmp_path / "new.json")
    assert base_done.returncode == 0, base_done.stdout
    assert new_done.returncode == ExitCode.THRESHOLDS, new_done.stdout  # as its comment says: exit 5
    failed = {name for name, s in new["scenarios"].items() if s["verdict"]["status"] == "failed"}
    assert failed == {"insurance", "emergency"}
    done = stressor_here(
        "compare", str(tmp_path / "base.json"), str(tmp_path / "new.json"), "--scenarios",
        "--json", str(tmp_path / "c.json"),
    )  # fmt: skip
    assert done.returncode == ExitCode.REGRESSION, done.stderr
    change = {s["scenario"]: s["change"] for s in results(tmp_path / "c.json")["scenarios"]}
    assert change == {
        "insurance": "regressed",
        "emergency": "regressed",
        "book-cleaning": "changed",
        "wrong-number": "changed",
        "reschedule": "same",
        "cancel": "same",
    }


def test_the_tier_benchmark_finds_storm_base_slower_than_spark(tmp_path: Path) -> None:
    path = REAL / "tier-benchmark.toml"
    done, document = run_at_real_pace(path, tmp_path / "r.json")
    assert done.returncode == 0, done.stderr
    assert re.search(r"call duration: storm-base is \S+ s slower at p50 than spark, 95 % CI \[", done.stdout)
    durations = document["variant_comparison"]["measures"]["call_duration"]
    counts = {name: v["count"] for name, v in durations["variants"].items()}
    assert counts == {"spark": 30, "bolt": 30, "storm-base": 30}  # every call log fetched
    assert durations["differences"]["storm-base"]["p50"]["significant"]
    check_plan(path, document)


def test_the_closed_ramp_finds_the_simulators_concurrency_limit(tmp_path: Path) -> None:
    path = REAL / "concurrency-limit.toml"
    done, document = run_at_real_pace(path, tmp_path / "r.json")
    assert done.returncode == 0, done.stderr
    slots = 12  # the profile's [simulator] slots
    # the comment's jq: the most runs in progress while others queued
    assert max(i["runs"]["in_progress"] for i in document["intervals"] if i["runs"]["queued"] > 0) == slots
    check_plan(path, document)


# ------------------------------------------------------------------------------------------ the README

WALKTHROUGHS = "## The guide's three workflows"


def walkthrough_commands() -> list[list[str]]:
    """The ``.venv/bin/stressor`` commands in the README's walkthrough section's code blocks, as pasted."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(WALKTHROUGHS, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith(".venv/bin/stressor ") and "--base-url" not in line:  # the real API's: not here
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def test_the_readme_walkthroughs_run_as_pasted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = walkthrough_commands()
    profiles = {arg for command in commands for arg in command if arg.startswith("profiles/real/")}
    assert profiles == {f"profiles/real/{p.name}" for p in PROFILES}, "a walkthrough for every profile"
    (tmp_path / "profiles").symlink_to(ROOT / "profiles")
    monkeypatch.chdir(tmp_path)  # the outputs land here, as in a clone
    for command in commands:
        done = stressor_here(*command)
        expected = ExitCode.OK
        if "profiles/real/regression-prompt-changed.toml" in command:
            expected = ExitCode.THRESHOLDS  # two scenarios fail their expected outcome
        elif command[0] == "compare":
            expected = ExitCode.REGRESSION
        assert done.returncode == expected, f"{shlex.join(command)}\n{done.stdout}\n{done.stderr}"


def test_grades_wait_0s_skips_the_real_apis_wait_for_grades_on_the_simulator(tmp_path: Path) -> None:
    path = REAL / "release-smoke.toml"
    waited = stressor_here("run", str(path), "--out", str(tmp_path / "a.json"), "--progress", "0")
    quick = stressor_here("run", str(path), "--out", str(tmp_path / "b.json"), "--progress", "0", "--grades-wait", "0s")
    assert waited.returncode == quick.returncode == 0, waited.stderr + quick.stderr
    grades_wait_s = load_profile(path).grades.wait_s
    assert waited.loop.time() - START_S > grades_wait_s  # virtual seconds: the 2 minutes were waited
    assert quick.loop.time() - START_S < grades_wait_s / 10
    assert results(tmp_path / "b.json")["grades"]["count"] == 5  # and every grade came all the same


def test_grades_wait_moves_the_call_logs_delay_with_it_and_keeps_their_margin() -> None:
    profile = with_overrides(load_profile(REAL / "regression.toml"), Overrides(grades_wait_s=0.0))
    assert profile.grades.wait_s == 0.0
    assert (profile.calls.delay_s, profile.calls.wait_s) == (0.0, DEFAULT_CALLS_WAIT_S)
