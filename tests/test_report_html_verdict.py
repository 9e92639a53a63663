"""The report's verdict banner says at a glance whether the run passed and why; a simulated cost says so; the
variants and scenarios are charted, not only tabled."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.documents import results
from test_report_fixture import load_fixture
from test_report_html import _charts, _parse

from stressor.report.html import render_html
from stressor.thresholds import evaluate, parse_thresholds


def _banner(page: str) -> tuple[str, str, dict[str, str]]:
    """The banner's word, tone and facts (topic -> text)."""
    found = re.search(r'<section id="verdict" class="banner (\w+)" data-verdict="([^"]+)">(.*?)</section>', page, re.S)
    assert found is not None
    facts = dict(re.findall(r'<li data-fact="([^"]+)"><span class="badge \w+">[^<]*</span> (.*?)</li>', found[3]))
    return found[2], found[1], facts


def _page(doc: dict[str, Any], *thresholds: str) -> str:
    document = results(doc)
    return render_html(document, evaluate(parse_thresholds(list(thresholds)), document))


def _verdicts(doc: dict[str, Any], **statuses: str) -> None:
    for name, status in statuses.items():
        doc["scenarios"][name]["verdict"] = {
            "status": status,
            "expected": "success",
            "matched": 2,
            "mismatched": 1 if status == "failed" else 0,
            "undecided": 0,
            "observed": {"completed/success": 2},
        }
    counts = list(statuses.values())
    doc["scenario_verdicts"] = {s: counts.count(s) for s in ("passed", "failed", "undecided")}


def test_a_failed_threshold_makes_the_banner_fail_and_names_it() -> None:
    word, tone, facts = _banner(_page(load_fixture(), "failure_rate < 25%", "queue_to_completion.p99 < 50ms"))
    assert (word, tone) == ("FAIL", "bad")
    assert facts["thresholds"].startswith("1 of 2 failed:")
    assert "<code>queue_to_completion.p99 &lt; 50ms failed: was 82.6ms, 65.2% over 50ms</code>" in facts["thresholds"]
    assert facts["ended"] == "ran its whole plan"
    assert "<small>a threshold failed</small>" in _page(load_fixture(), "queue_to_completion.p99 < 50ms")


def test_thresholds_that_all_pass_make_the_banner_pass() -> None:
    word, tone, facts = _banner(_page(load_fixture(), "failure_rate < 25%"))
    assert (word, tone) == ("PASS", "ok")
    assert facts["thresholds"] == "all 1 passed"


def test_with_nothing_to_judge_the_banner_says_so_rather_than_pass() -> None:
    word, tone, facts = _banner(_page(load_fixture()))
    assert (word, tone) == ("NOT GATED", "muted")
    assert facts["thresholds"].startswith("none set")


def test_a_scenario_that_missed_its_expected_outcome_fails_the_banner_without_a_threshold() -> None:
    doc = load_fixture()
    _verdicts(doc, refund="failed", hours="undecided")
    word, _, facts = _banner(_page(doc))
    assert word == "FAIL"
    assert facts["scenarios"] == "against their expected outcome: 0 passed, 1 FAILED (refund), 1 undecided (hours)"
    page = _parse(_page(doc))
    # the scenario charts colour the failed scenario's label and say its verdict
    labels = [a.get("style") for tag, a, chart in page.elements if tag == "text" and chart == "scenario-outcomes"]
    assert "fill:#9b2c2c" in labels


@pytest.mark.parametrize(
    ("change", "topic", "said"),
    [
        ({"interrupted": True}, "ended", "interrupted: the figures cover what was gathered until then"),
        ({"stop_reason": "the target refused the key"}, "ended", "stopped early: the target refused the key"),
        ({"runs": {"unknown": 3}}, "unknown runs", "3: stressor could not tell whether they exist or how they ended"),
    ],
)
def test_a_run_that_did_not_cover_its_plan_is_incomplete_even_when_its_thresholds_pass(
    change: dict[str, Any], topic: str, said: str
) -> None:
    doc = load_fixture()
    for key, value in change.items():
        if isinstance(value, dict):
            doc[key].update(value)
        else:
            doc[key] = value
    word, tone, facts = _banner(_page(doc, "failure_rate < 25%"))
    assert (word, tone) == ("INCOMPLETE", "warn")
    assert facts[topic].startswith(said)


def test_the_breaker_fails_the_banner() -> None:
    doc = load_fixture()
    doc["limits"]["breaker"] = "more than half of 40 requests failed over 30s"
    word, _, facts = _banner(_page(doc, "failure_rate < 25%"))
    assert word == "FAIL" and facts["ended"] == "stopped by the breaker: more than half of 40 requests failed over 30s"


def test_the_banner_gives_the_headline_figures() -> None:
    page = _page(load_fixture(), "failure_rate < 25%")
    banner = page[page.index('<section id="verdict"') : page.index("</section>")]
    assert "failure rate <b>20%</b>" in banner
    assert "queue-to-completion p95 <b>" in banner and "achieved of" in banner


def test_a_cost_against_the_simulator_is_marked_simulated_and_a_real_one_is_not() -> None:
    doc = load_fixture()
    assert doc["target"]["embedded_simulator"] is True and doc["estimated_cost_cents"]
    cost = f"{doc['estimated_cost_cents'] / 100:.2f} USD"
    page = _page(doc)
    assert f'<div class="card sim"><div class="value">{cost} (simulated)</div>' in page
    assert "simulated cost (the simulator&#x27;s estimate, not a bill)" in page
    assert _banner(page)[2]["target"].startswith("the embedded simulator: every figure, and the cost, is simulated")
    doc["target"].update(embedded_simulator=False, base_url="https://api.example.invalid")
    page = _page(doc)
    assert f'<div class="value">{cost}</div><div class="label">estimated cost</div>' in page
    assert "simulated" not in page


def test_variants_and_scenarios_are_charted_with_a_row_each() -> None:
    doc = load_fixture()
    page = _parse(_page(doc))
    assert {"variant-latency", "variant-outcomes", "scenario-latency", "scenario-outcomes"} <= set(_charts(page))
    for chart, names in (("variant-outcomes", doc["variants"]), ("scenario-latency", doc["scenarios"])):
        rows = [a.get("data-row") for tag, a, within in page.elements if tag == "g" and within == chart]
        assert [r for r in rows if r] == list(names)
    # every bar of the outcome charts says what it is
    text = " ".join(page.text)
    completed = doc["variants"]["bolt"]["outcomes"]["completed"]
    assert f"variant bolt: {completed} completed" in text
