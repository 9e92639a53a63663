"""The report and compare commands through typer, as the CLI registers them: output, files, exit codes."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
from support.junit_schema import problems
from test_report_fixture import FIXTURE, load_fixture
from typer.testing import CliRunner

from stressor.cli.compare import compare
from stressor.cli.report import report
from stressor.running import ExitCode

EXIT_USAGE, EXIT_THRESHOLDS, EXIT_REGRESSION = ExitCode.USAGE, ExitCode.THRESHOLDS, ExitCode.REGRESSION


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("report")(report)
    app.command("compare")(compare)
    return app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------- report


def test_report_prints_the_summary_and_the_verdicts(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["report", str(FIXTURE), "-t", "failure_rate < 25%", "--threshold", "errored == 0"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stressor: profile 'tiny', 2.0s against the embedded simulator")
    assert "thresholds: 2 of 2 passed" in result.stdout


def test_report_exits_5_on_a_breached_threshold_after_writing_every_file(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "report",
            str(FIXTURE),
            "-t",
            "queue_to_completion.p99 < 10ms",
            "-t",
            "variant[storm].failed == 0",
            "--html",
            str(tmp_path / "out" / "report.html"),
            "--junit",
            str(tmp_path / "junit.xml"),
            "--hgrm-dir",
            str(tmp_path / "hgrm"),
            "--csv-dir",
            str(tmp_path / "csv"),
        ],
    )
    assert result.exit_code == EXIT_THRESHOLDS
    assert result.stderr.splitlines()[-1] == "stressor: 2 of 2 thresholds failed."
    assert "FAIL     queue_to_completion.p99 < 10ms" in result.stdout
    assert (tmp_path / "out" / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert problems((tmp_path / "junit.xml").read_text(encoding="utf-8")) == []  # the strict xUnit schema
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"  # the 2 thresholds: JUnit fails when the gate does
    assert sorted(p.name for p in (tmp_path / "hgrm").iterdir())[0] == "detection_delay.hgrm"
    assert {p.name for p in (tmp_path / "csv").iterdir()} == {"runs.csv", "intervals.csv"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it (No such file or directory)."),
        (b"{not json", "is not JSON ("),
        (b'{"schema": "k6/1"}', "is not a stressor results file (schema stressor.results/1)."),
        (b"[1, 2]", "is not a stressor results file"),
        (
            b'{"schema": "stressor.results/1", "runs": {"completed": "12"}}',
            'runs.completed is "12", not a count (a whole number, 0 or more).',
        ),
        (b'{"schema": "stressor.results/1", "thresholds": "p99 < 1s"}', 'thresholds is "p99 < 1s", not a list.'),
    ],
)
def test_report_refuses_a_bad_results_file_in_one_sentence(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith(f"stressor: {path}: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_refuses_a_bad_threshold_before_printing_anything(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["report", str(FIXTURE), "-t", "failure_rate < 5"])
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert result.stderr.startswith("stressor: threshold 'failure_rate < 5': failure_rate is a share")


def test_report_says_when_a_file_cannot_be_written(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["report", str(FIXTURE), "--html", str(blocker / "report.html")])
    assert result.exit_code == EXIT_USAGE
    assert f"stressor: {blocker / 'report.html'}: cannot write the HTML report" in result.stderr


# --------------------------------------------------------------------------------------------------- compare


def _regressed(tmp_path: Path) -> Path:
    doc = load_fixture()
    doc["failure_rate"] += 0.3  # the default rule failure_rate +1pt, beyond the noise of 40 runs
    return _write(tmp_path / "new.json", doc)


def test_compare_exits_0_without_a_regression(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    same = _write(tmp_path / "same.json", copy.deepcopy(load_fixture()))
    result = runner.invoke(app, ["compare", str(FIXTURE), str(same)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "no regression"


def test_compare_exits_6_on_a_regression_and_writes_json_and_markdown(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    new = _regressed(tmp_path)
    result = runner.invoke(
        app,
        [
            "compare",
            str(FIXTURE),
            str(new),
            "--json",
            str(tmp_path / "cmp.json"),
            "--markdown",
            str(tmp_path / "cmp.md"),
        ],
    )
    assert result.exit_code == EXIT_REGRESSION
    assert result.stderr.splitlines()[-1] == "stressor: 1 regression rule fired."
    assert json.loads((tmp_path / "cmp.json").read_text())["regressed"] is True
    assert (tmp_path / "cmp.md").read_text().startswith("### stressor compare: ❌ regression")


@pytest.mark.parametrize(("fmt", "start"), [("json", "{"), ("markdown", "### stressor compare"), ("text", "stressor")])
def test_compare_prints_the_format_asked(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, fmt: str, start: str
) -> None:
    result = runner.invoke(app, ["compare", str(FIXTURE), str(_regressed(tmp_path)), "--format", fmt])
    assert result.exit_code == EXIT_REGRESSION
    assert result.stdout.startswith(start)
    if fmt == "json":
        assert json.loads(result.stdout)["regressed"] is True


def test_compare_rules_replace_the_defaults(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(FIXTURE), str(_regressed(tmp_path)), "--rule", "failure_rate +40pt"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "failure_rate +1%"], "stressor: regression rule 'failure_rate +1%': a percent on failure_rate"),
        (["--rule", "p99 up"], "stressor: regression rule 'p99 up': unknown measure 'p99'"),
    ],
)
def test_compare_refuses_bad_rules(app: typer.Typer, runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["compare", str(FIXTURE), str(FIXTURE), *args])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith(message)


def test_compare_refuses_a_missing_file(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(FIXTURE), str(tmp_path / "nope.json")])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith(f"stressor: {tmp_path / 'nope.json'}: cannot read it")
