"""The console summary: what the governor did is named (refusals, each kind of wait, the breaker), and a partial
results file renders what it has (a field of the wrong type is refused in one sentence) instead of failing with
a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.cli import stressor_here
from support.documents import results

from stressor.document import ResultsError
from stressor.report.console import render_summary


def summary(document: dict[str, Any]) -> str:
    return render_summary(results(document))


def limits(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "mode": "obey",
        "throttle_wait_s": 0.0,
        "client_wait_s": 0.0,
        "server_rate_wait_s": 0.0,
        "server_pause_s": 0.0,
        "capacity_wait_s": 0.0,
        "responses": {"429": 0, "503": 0},
        "learned_rates": {"create": None, "poll": None},
        "retries": {},
        "retry_after": {"count": 0, "max": None},
        "breaker": None,
    }
    return {**base, **changes}


def limits_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("limits ("))


def test_refusals_and_each_kind_of_wait_are_named_apart() -> None:
    text = summary(
        {
            "limits": limits(
                responses={"429": 187, "503": 4},
                server_pause_s=2.5,
                server_rate_wait_s=3.25,
                client_wait_s=0.5,
                throttle_wait_s=3.5,
                learned_rate=9.5,
            )
        }
    )
    line = limits_line(text)
    assert "refused 429 x187, 503 x4" in line
    assert "paused by the server 2.5" in line
    assert "held to the server's rate 3.2" in line
    assert "held by client rate limits 500" in line  # 0.5 s, in the summary's own unit
    assert "rate learned from refusals 9.5/s" in line  # results written before the rates were per kind
    per_kind = limits_line(summary({"limits": limits(learned_rates={"create": 4.25, "poll": None})}))
    assert "rate learned from refusals create 4.25/s" in per_kind and "poll" not in per_kind
    quiet = summary({"limits": limits()})
    assert "limits (" not in quiet  # nothing happened: no line


def test_a_breaker_stop_is_named_in_the_summary() -> None:
    reason = "stopped submitting: 30 of 30 requests failed (100 %) over the last 2 s"
    text = summary({"stop_reason": reason, "limits": limits(breaker=reason, responses={"429": 0, "503": 30})})
    assert f"STOPPED EARLY: {reason}" in text.splitlines()
    assert f"BREAKER: {reason}" in text.splitlines()
    assert "refused 503 x30" in limits_line(text)


def test_a_partial_document_renders_what_it_has() -> None:
    for document in (
        {"schema": "stressor.results/1"},
        {"schema": "stressor.results/1", "runs": {"planned": 3, "not_started": None}, "limits": {"mode": "obey"}},
        {"measures": {"submit_rtt": {"count": 2}}, "variants": {"a": {}, "b": {"outcomes": None}}, "webhooks": None},
    ):
        text = summary(document)
        assert text.startswith("stressor: profile '?'")
        assert "runs: planned" in text


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"runs": "garbage"}, 'runs is "garbage", not an object.'),
        ({"measures": {"submit_rtt": {"count": "x"}}}, 'measures.submit_rtt.count is "x", not a count'),
        ({"variants": {"a": 1}}, "variants.a is 1, not an object."),
        ({"variants": {"b": None}}, "variants.b is null, not an object."),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_in_one_sentence_naming_it(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ResultsError) as caught:
        summary(document)
    assert str(caught.value).startswith(message)


def test_stressor_report_on_a_partial_results_file_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"schema": "stressor.results/1", "runs": {"planned": 3}}))
    done = stressor_here("report", str(path))
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode in (0, 2)
    if done.returncode == 0:
        assert "runs: planned 3" in done.stdout
