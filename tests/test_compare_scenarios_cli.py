"""``stressor compare --scenarios`` as a user runs it: the calls logs found (where the results say, or beside
them), missing or partial ones said plainly, the flags that do not go with the mode refused, and the exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from support.cli import stressor_here
from test_compare_scenarios import BASE_GRADES, OPEN, REWORDED, calls_lines, document, grades, write_results

from stressor.running import ExitCode

NAMES = ("hours", "refund")


def runs(regressed: bool = False) -> list[dict[str, Any]]:
    found = grades("hours", BASE_GRADES)
    drop = 0.4 if regressed else 0.0
    return found + grades("refund", [g - drop for g in BASE_GRADES])


def pair(tmp_path: Path, regressed: bool = False, new_said: Any = REWORDED) -> tuple[Path, Path]:
    """A base and a new run, each with its calls log where its results say (the new one says other words)."""
    base_runs, new_runs = runs(), runs(regressed)
    (tmp_path / "base.calls.jsonl").write_bytes(calls_lines(base_runs, OPEN))
    (tmp_path / "new.calls.jsonl").write_bytes(calls_lines(new_runs, new_said))
    base = write_results(tmp_path / "base.json", document(base_runs), str(tmp_path / "base.calls.jsonl"))
    new = write_results(tmp_path / "new.json", document(new_runs), str(tmp_path / "new.calls.jsonl"))
    return base, new


def test_no_regression_exits_0_and_reads_both_calls_logs(tmp_path: Path) -> None:
    base, new = pair(tmp_path)
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == 0, done.stderr
    assert f"  base transcripts: {tmp_path / 'base.calls.jsonl'}" in done.stdout
    assert "hours: changed (said otherwise in 8 of 8 pairs)" in done.stdout
    assert done.stdout.splitlines()[-1] == "no regression"


def test_a_regression_exits_6_and_writes_the_markdown_and_json(tmp_path: Path) -> None:
    base, new = pair(tmp_path, regressed=True)
    md, js = tmp_path / "out" / "pr.md", tmp_path / "out" / "cmp.json"
    done = stressor_here("compare", str(base), str(new), "--scenarios", "--markdown", str(md), "--json", str(js))
    assert done.returncode == ExitCode.REGRESSION
    assert done.stderr.splitlines()[-1] == "stressor: 1 scenario regressed."
    assert done.stdout.splitlines()[-1] == "REGRESSED: 1 scenario (refund)"
    assert md.read_text().startswith("### stressor compare --scenarios: ❌ 1 of 2 scenarios regressed")
    regressed = [s["scenario"] for s in orjson.loads(js.read_bytes())["scenarios"] if s["regressed"]]
    assert regressed == ["refund"]


@pytest.mark.parametrize(("fmt", "start"), [("json", "{"), ("markdown", "### stressor compare --scenarios")])
def test_the_format_asked_is_printed(tmp_path: Path, fmt: str, start: str) -> None:
    base, new = pair(tmp_path)
    done = stressor_here("compare", str(base), str(new), "--scenarios", "--format", fmt)
    assert done.returncode == 0 and done.stdout.startswith(start)


def test_results_moved_with_their_calls_logs_still_find_them_beside(tmp_path: Path) -> None:
    moved = tmp_path / "artifacts"
    moved.mkdir()
    base, new = pair(moved)
    # the results name the logs where the run wrote them: a directory that is gone
    for path in (base, new):
        doc = orjson.loads(path.read_bytes())
        doc["calls"]["log"] = f"/ci/workspace/{path.stem}.calls.jsonl"
        path.write_bytes(orjson.dumps(doc))
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == 0, done.stderr
    assert f"  new transcripts: {moved / 'new.calls.jsonl'}" in done.stdout
    assert "hours: changed (said otherwise in 8 of 8 pairs)" in done.stdout


def test_a_missing_calls_log_is_said_plainly_and_the_rest_is_compared(tmp_path: Path) -> None:
    base, new = pair(tmp_path, regressed=True)
    (tmp_path / "new.calls.jsonl").unlink()
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == ExitCode.REGRESSION  # the grades still tell
    assert (
        f"note: the new calls log {tmp_path / 'new.calls.jsonl'} is not there (nor beside {new}): "
        "transcripts not compared"
    ) in done.stdout
    assert "said otherwise" not in done.stdout and "Traceback" not in done.stderr


def test_a_cut_off_calls_log_is_said_and_its_whole_lines_are_compared(tmp_path: Path) -> None:
    base, new = pair(tmp_path)
    log = tmp_path / "new.calls.jsonl"
    log.write_bytes(log.read_bytes()[:-40])  # a kill mid-line: the last line is cut
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == 0, done.stderr
    assert f"note: the new calls log {log}: 1 of its 16 lines could not be read (cut off, or not JSON)" in done.stdout
    assert "refund: changed (said otherwise in 7 of 7 pairs)" in done.stdout


def test_a_calls_log_without_transcripts_says_how_to_get_them(tmp_path: Path) -> None:
    base, new = pair(tmp_path, new_said=None)
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == 0
    assert (
        f"note: the new calls log {tmp_path / 'new.calls.jsonl'} holds no transcripts (run it with --transcripts): "
        "transcripts not compared"
    ) in done.stdout


def test_results_without_call_logs_say_so(tmp_path: Path) -> None:
    base = write_results(tmp_path / "a.json", document(runs()), None)
    new = write_results(tmp_path / "b.json", document(runs()), None)
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == 0
    assert "note: the base run fetched no call logs (run it with --transcripts)" in done.stdout


def test_calls_logs_named_on_the_command_line_are_used(tmp_path: Path) -> None:
    base, new = pair(tmp_path)
    elsewhere = tmp_path / "said.jsonl"
    (tmp_path / "new.calls.jsonl").rename(elsewhere)
    done = stressor_here("compare", str(base), str(new), "--scenarios", "--new-calls", str(elsewhere))
    assert done.returncode == 0 and f"  new transcripts: {elsewhere}" in done.stdout
    missing = stressor_here("compare", str(base), str(new), "--scenarios", "--base-calls", str(tmp_path / "no"))
    assert missing.returncode == ExitCode.USAGE
    assert missing.stderr == f"stressor: {tmp_path / 'no'}: the base calls log cannot be read (no such file).\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scenarios", "-r", "failure_rate +1pt"], "stressor: --rule judges the figures, not --scenarios"),
        (["--scenarios", "--tolerance", "0.1"], "stressor: --tolerance judges the figures, not --scenarios"),
        (["--grade-drop", "0"], "stressor: --grade-drop goes with --scenarios."),
        (["--new-calls", "x.jsonl"], "stressor: --new-calls goes with --scenarios."),
    ],
)
def test_flags_of_the_other_mode_are_refused_in_one_sentence(tmp_path: Path, flags: list[str], message: str) -> None:
    base, new = pair(tmp_path)
    done = stressor_here("compare", str(base), str(new), *flags)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.startswith(message) and len(done.stderr.splitlines()) == 1


def test_results_with_no_scenario_in_common_are_refused(tmp_path: Path) -> None:
    base = write_results(tmp_path / "a.json", document(grades("hours", BASE_GRADES)), None)
    new = write_results(tmp_path / "b.json", document(grades("other", BASE_GRADES)), None)
    done = stressor_here("compare", str(base), str(new), "--scenarios")
    assert done.returncode == ExitCode.USAGE
    assert done.stderr == (
        f"stressor: {base} and {new} have no run of a scenario in common: nothing to pair "
        "(compare two runs of one corpus).\n"
    )


def test_a_bad_results_file_exits_2_with_one_sentence(tmp_path: Path) -> None:
    base, _ = pair(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = stressor_here("compare", str(base), str(broken), "--scenarios")
    assert done.returncode == ExitCode.USAGE and done.stderr.startswith(f"stressor: {broken}: is not JSON")
