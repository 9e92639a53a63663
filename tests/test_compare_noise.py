"""compare: two runs of the same configuration are not a regression; a real slowdown is. The tail
percentiles are judged by their confidence intervals, read from the runs' HDR histograms."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from support.documents import results
from typer.testing import CliRunner

from stressor.cli.app import app
from stressor.metrics import MEASURE_SOURCES, LatencyRecorder, Measure
from stressor.report.compare import Comparison, Judgement, confidence_interval
from stressor.report.compare import compare as compare_results
from stressor.report.results import measure_figures
from stressor.thresholds import parse_path


def compare(base: dict[str, Any], new: dict[str, Any], **kwargs: Any) -> Comparison:
    return compare_results(results(base), results(new), **kwargs)


def _document(seed: int, runs: int, slower: float = 1.0) -> dict[str, Any]:
    """A results document whose queue-to-completion is ``runs`` draws of a lognormal around 50 ms (the shape
    of the simulator's calls plus queueing), all ``slower`` times longer."""
    draw = random.Random(seed)
    recorder = LatencyRecorder()
    for _ in range(runs):
        recorder.record_s(draw.lognormvariate(-3.0, 0.3) * slower)
    return {
        "schema": "stressor.results/1",
        "profile": {"name": "same"},
        "runs": {"planned": runs, "submitted": runs, "completed": runs, "failed": 0, "errored": 0, "rejected": 0},
        "failure_rate": 0.0,
        "measures": {
            "queue_to_completion": measure_figures(recorder, MEASURE_SOURCES[Measure.QUEUE_TO_COMPLETION]).to_json()
        },
    }


SEEDS = range(8)


def test_runs_of_the_same_configuration_never_regress_though_their_p99s_differ_by_more_than_10_percent() -> None:
    raw_fired = 0
    for base_seed, new_seed in itertools.permutations(SEEDS, 2):
        base, new = _document(base_seed, 150), _document(new_seed, 150)
        judged = compare(base, new)
        assert not judged.regressed, [c.rule.text for c in judged.regressions]
        row = next(r for r in judged.rows if r.path.text == "queue_to_completion.p99")
        assert row.judgement is Judgement.NOISE
        raw_fired += compare(base, new, significant_only=False).regressed
    # The sampling noise is real: on the raw change the +10 % rule fires on some of these pairs.
    assert raw_fired > 0


@pytest.mark.parametrize(("runs", "slower"), [(150, 1.8), (1000, 1.5)])
def test_a_real_slowdown_is_a_regression(runs: int, slower: float) -> None:
    for seed in SEEDS:
        judged = compare(_document(seed, runs), _document(seed + 100, runs, slower))
        assert [c.rule.text for c in judged.regressions] == ["queue_to_completion.p99 +10%"], seed
        row = next(r for r in judged.rows if r.path.text == "queue_to_completion.p99")
        assert row.judgement is Judgement.WORSE


def test_the_interval_holds_the_percentile_and_narrows_as_runs_grow() -> None:
    path = parse_path("queue_to_completion.p99")
    widths = []
    for runs in (150, 1000, 10_000):
        doc = _document(1, runs)
        figures = doc["measures"]["queue_to_completion"]
        interval = confidence_interval(results(doc), path, figures["p99"], figures["count"])
        assert interval is not None
        low, high = interval
        assert figures["p95"] * 0.99 <= low <= figures["p99"] <= high <= figures["max"] * 1.001
        widths.append((high - low) / figures["p99"])
    # At 150 runs the interval reaches the maximum on one side, so only the trend is firm.
    assert widths[2] < min(widths[0], widths[1]) / 2


def test_without_a_histogram_the_interval_is_bracketed_by_the_stated_percentiles() -> None:
    doc = _document(1, 150)
    figures = doc["measures"]["queue_to_completion"]
    del figures["hdr"]
    found = confidence_interval(results(doc), parse_path("queue_to_completion.p99"), figures["p99"], 150)
    low, high = found or (0, 0)
    assert (low, high) == (figures["p95"], figures["max"])


def test_compare_on_the_command_line_exits_0_on_noise_and_6_on_a_regression(tmp_path: Path) -> None:
    paths = {}
    for name, doc in {"a": _document(6, 150), "b": _document(3, 150), "slow": _document(9, 1000, 1.5)}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    base = tmp_path / "base.json"
    base.write_text(json.dumps(_document(3, 1000)))
    runner = CliRunner()
    raw = runner.invoke(app, ["compare", str(paths["a"]), str(paths["b"]), "--raw-rules"])
    assert raw.exit_code == 6  # this pair's p99 differs by 17 %: on the raw change the rule fires
    assert runner.invoke(app, ["compare", str(paths["a"]), str(paths["b"])]).exit_code == 0
    slow = runner.invoke(app, ["compare", str(base), str(paths["slow"])])
    assert slow.exit_code == 6, slow.output
