"""`stressor report --junit`: the exit code and the JUnit file agree (exit 0 <=> failures="0", here where no
scenario failed its expected outcome: tests/test_verdicts.py has those), and the run's
own thresholds, saved in its results, are checked again."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from support.junit_schema import problems
from test_report_fixture import load_fixture
from typer.testing import CliRunner

from stressor.cli.app import app


def _report(tmp_path: Path, doc: dict[str, Any], *args: str) -> tuple[int, ET.Element, str]:
    results = tmp_path / "r.json"
    results.write_text(json.dumps(doc), encoding="utf-8")
    junit = tmp_path / "j.xml"
    done = CliRunner().invoke(app, ["report", str(results), "--junit", str(junit), *args])
    assert problems(junit.read_text(encoding="utf-8")) == []  # the strict schema Jenkins' xUnit plugin checks
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    return done.exit_code, suite, done.stdout


@pytest.mark.parametrize(
    "thresholds",
    [
        [],
        ["failure_rate < 50%"],
        ["failure_rate < 10%"],
        ["scenario[*].failed == 0"],
        ["scenario[*].failure_rate < 90%", "errored < 100"],
        ["variant[storm].failed == 0"],
    ],
)
@pytest.mark.parametrize("interrupted", [False, True])
def test_exit_0_means_no_junit_failure_and_a_failure_means_exit_5(
    tmp_path: Path, thresholds: list[str], interrupted: bool
) -> None:
    doc = load_fixture()
    assert doc["runs"]["failed"] > 0  # runs failed: that alone fails no gate, so no JUnit case either
    doc["interrupted"] = interrupted
    args = [arg for text in thresholds for arg in ("-t", text)]
    code, suite, _ = _report(tmp_path, doc, *args)
    failures = int(suite.get("failures") or "0")
    assert code in (0, 5)
    assert (code == 0) == (failures == 0), (code, failures)
    assert failures == len(suite.findall(".//failure"))


def test_the_thresholds_saved_in_the_results_are_checked_again(tmp_path: Path) -> None:
    doc = load_fixture()
    doc["thresholds"] = ["queue_to_completion.p99 < 1ms", "failure_rate < 99%"]
    code, suite, stdout = _report(tmp_path, doc)
    assert code == 5
    assert "thresholds: 1 of 2 passed" in stdout
    names = {c.get("name") for c in suite.findall("testcase") if c.get("classname") == "stressor.thresholds"}
    assert names == set(doc["thresholds"])
    # Given again on the command line, a saved threshold is checked once.
    code, _, stdout = _report(tmp_path, doc, "-t", "failure_rate < 99%")
    assert "thresholds: 1 of 2 passed" in stdout
    code, _, stdout = _report(tmp_path, doc, "--no-saved-thresholds")
    assert code == 0 and "thresholds:" not in stdout


def test_a_saved_threshold_that_cannot_be_read_is_one_sentence(tmp_path: Path) -> None:
    doc = load_fixture()
    doc["thresholds"] = ["latency < 5s"]
    results = tmp_path / "r.json"
    results.write_text(json.dumps(doc), encoding="utf-8")
    done = CliRunner().invoke(app, ["report", str(results)])
    assert done.exit_code == 2
    assert f"{results}: a saved threshold cannot be read: threshold 'latency < 5s'" in done.stderr
