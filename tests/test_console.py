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


def unwrapped(text: str) -> list[str]:
    """The summary's lines as written, before they were wrapped to 80 columns (a continuation is indented two
    more spaces than its line)."""
    lines: list[str] = []
    depth = 0
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if lines and line.strip() and indent == depth + 2 and not line.lstrip().startswith(("measure", "by ")):
            lines[-1] += " " + line.strip()
            continue
        lines.append(line)
        depth = indent
    return lines


def limits_line(text: str) -> str:
    return next(line for line in unwrapped(text) if line.startswith("limits ("))


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
    assert f"STOPPED EARLY: {reason}" in unwrapped(text)
    assert f"BREAKER: {reason}" in unwrapped(text)
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


def busy_document() -> dict[str, Any]:
    """The fixture's results with every optional line of the summary made long."""
    document = json.loads((Path(__file__).parent / "data" / "results-current.json").read_text())
    long_name = "refund-request-from-an-angry-customer-who-called-twice"
    document["scenarios"][long_name] = document["scenarios"]["refund"]
    document["target"] = {**document["target"], "embedded_simulator": False,
                          "base_url": "https://api.example.com/a/rather/long/path/to/the/test/calls/api"}  # fmt: skip
    document["stop_reason"] = "stopped submitting: 30 of 30 requests failed (100 %) over the last 2 s, " * 2
    document["limits"] = limits(
        responses={"429": 187, "503": 4}, server_pause_s=2.5, server_rate_wait_s=3.25, client_wait_s=0.5,
        capacity_wait_s=1.0, learned_rates={"create": 4.25, "poll": 30.5}, retries={"429": 12, "connect": 3},
        retry_after={"count": 3, "max": 2.0}, breaker="30 of 30 requests failed (100 %) over the last 2 s",
    )  # fmt: skip
    document["errors"] = {f"cause_number_{i}_with_a_long_name": i for i in range(12)}
    document["runs"]["unknown"] = 3
    document["generator"] = {"dispatch_lag_p99": 0.5, "limit": 0.002, "behind": True}
    return document


def test_every_line_of_the_summary_fits_80_columns() -> None:
    document = busy_document()
    text = summary(document)
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    # Nothing is lost by the fitting: every measure's source is there, under its figures; each error is named.
    logical = unwrapped(text)
    for name, figures in document["measures"].items():
        row = next(i for i, line in enumerate(logical) if line.startswith(f"  {name} "))
        assert logical[row + 1].strip() == figures["source"]
    assert "STOPPED EARLY: " + document["stop_reason"].strip() in logical
    errors = next(line for line in logical if line.startswith("errors: "))
    assert all(f"cause_number_{i}_with_a_long_name {i}" in errors for i in range(1, 12))
    assert "HTTP requests:" in text and "estimated cost:" in text
    assert any(line.startswith("  refund-request… ") for line in lines)  # a long name is cut, not wrapped
