"""Comparison of two runs: judgements, the noise rule, regression rules, per-scenario grades, renderings."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from support.documents import results
from test_report_fixture import load_fixture

from stressor.report.compare import (
    DEFAULT_RULES,
    Comparison,
    Judgement,
    RuleError,
    comparison_json,
    judge,
    parse_rule,
    render_markdown,
    render_text,
)
from stressor.report.compare import compare as compare_results
from stressor.thresholds import parse_path


def compare(base: dict, new: dict, *args: Any, **kwargs: Any) -> Comparison:
    """Compare two documents crafted as JSON, typed through the loader."""
    return compare_results(results(base), results(new), *args, **kwargs)


def _big(doc: dict, n: int = 1000) -> dict:
    """The fixture with sample counts large enough for the tolerance to be the plain 5 %."""
    doc["measures"]["queue_to_completion"]["count"] = n
    doc["runs"].update(completed=n - n // 5, failed=n // 5, errored=0, rejected=0)
    doc["grades"]["count"] = n
    return doc


def _pair() -> tuple[dict, dict]:
    base = _big(load_fixture())
    return base, copy.deepcopy(base)


def _row(comparison, section: str, measure: str):
    return next(r for r in comparison.rows if r.section == section and r.path.name == measure)


# ------------------------------------------------------------------------------------------------ judging


def test_better_worse_and_within_noise() -> None:
    base, new = _pair()
    q2c = new["measures"]["queue_to_completion"]
    q2c["p50"] = base["measures"]["queue_to_completion"]["p50"] * 0.8  # 20 % faster
    q2c["p90"] = base["measures"]["queue_to_completion"]["p90"] * 1.03  # 3 %: noise
    q2c["p99"] = base["measures"]["queue_to_completion"]["p99"] * 1.2  # 20 % slower
    new["grades"]["mean"] = base["grades"]["mean"] + 0.1
    comparison = compare(base, new)
    assert _row(comparison, "overall", "queue_to_completion.p50").judgement is Judgement.BETTER
    assert _row(comparison, "overall", "queue_to_completion.p90").judgement is Judgement.NOISE
    assert _row(comparison, "overall", "queue_to_completion.p99").judgement is Judgement.WORSE
    assert _row(comparison, "overall", "grade.mean").judgement is Judgement.BETTER
    assert _row(comparison, "overall", "completed").judgement is Judgement.INFO  # counts follow the profile


def test_the_noise_tolerance_grows_as_the_sample_count_shrinks() -> None:
    path = parse_path("queue_to_completion.mean")
    # An 8 % rise: beyond 5 % with 10,000 samples each, within 1/sqrt(100) = 10 % with 100.
    assert judge(path, 1.0, 1.08, 10_000, 10_000, "lower")[0] is Judgement.WORSE
    assert judge(path, 1.0, 1.08, 100, 10_000, "lower")[0] is Judgement.NOISE
    _, band = judge(path, 1.0, 1.08, 100, 100, "lower")
    assert band == pytest.approx(0.1)
    # A duration change under 1 ms is noise whatever the relative change (the API stamps milliseconds).
    assert judge(path, 0.0, 0.0008, 10_000, 10_000, "lower")[0] is Judgement.NOISE
    assert judge(path, 0.0, 0.002, 10_000, 10_000, "lower")[0] is Judgement.WORSE


def test_order_statistics_of_too_few_samples_are_not_judged() -> None:
    p50, p99 = parse_path("queue_to_completion.p50"), parse_path("queue_to_completion.p99")
    assert judge(p50, 0.1, 0.5, 29, 1000, "lower")[0] is Judgement.TOO_FEW
    assert judge(p50, 0.1, 0.5, 30, 1000, "lower")[0] is Judgement.WORSE
    # A p99 of fewer than 100 values is the maximum of them: it needs 100.
    assert judge(p99, 0.1, 0.5, 99, 1000, "lower")[0] is Judgement.TOO_FEW
    assert judge(p99, 0.1, 0.5, 100, 1000, "lower")[0] is Judgement.WORSE
    assert judge(parse_path("queue_to_completion.p99_9"), 0.1, 0.5, 999, 999, "lower")[0] is Judgement.TOO_FEW
    # A mean of few samples is judged, with a wide band.
    assert judge(parse_path("grade.mean"), 0.8, 0.5, 10, 10, "higher")[0] is Judgement.WORSE


def test_failure_rates_are_judged_by_a_two_proportion_test() -> None:
    rate = parse_path("failure_rate")
    # 20 % -> 25 %: noise over 40 runs each, a real change over 10,000 each.
    assert judge(rate, 0.20, 0.25, 40, 40, "lower")[0] is Judgement.NOISE
    assert judge(rate, 0.20, 0.25, 10_000, 10_000, "lower")[0] is Judgement.WORSE
    assert judge(rate, 0.25, 0.20, 10_000, 10_000, "lower")[0] is Judgement.BETTER
    assert judge(rate, 0.0, 0.0, 100, 100, "lower")[0] is Judgement.NOISE
    assert judge(rate, None, 0.1, None, 100, "lower")[0] is Judgement.MISSING


def test_small_runs_from_the_fixture_are_marked_too_few_per_slice() -> None:
    base = load_fixture()  # 20 runs per variant and scenario
    comparison = compare(base, copy.deepcopy(base))
    assert _row(comparison, "variant spark", "queue_to_completion.p50").judgement is Judgement.TOO_FEW
    assert _row(comparison, "overall", "queue_to_completion.p50").judgement is Judgement.NOISE  # 40 samples
    assert _row(comparison, "overall", "queue_to_completion.p99").judgement is Judgement.TOO_FEW
    assert not comparison.regressed


# -------------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("text", "direction", "amount", "relative"),
    [
        ("queue_to_completion.p99 +10%", "up", 0.10, True),
        ("failure_rate +1pt", "up", 0.01, False),
        ("failure_rate +0.5pts", "up", 0.005, False),
        ("failure_rate +0.02", "up", 0.02, False),
        ("grade.mean -0.05", "down", 0.05, False),
        ("grade.mean -5%", "down", 0.05, True),
        ("time_queued.p99 +50ms", "up", 0.05, False),
        ("achieved_runs_per_s -10%", "down", 0.10, True),
        ("variant[*].queue_to_completion.p99 +15%", "up", 0.15, True),
        ("scenario[refund].grade.mean -0.1", "down", 0.1, False),
    ],
)
def test_rules_parse(text: str, direction: str, amount: float, relative: bool) -> None:
    rule = parse_rule(text)
    assert (rule.direction, rule.relative) == (direction, relative)
    assert rule.amount == pytest.approx(amount)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("queue_to_completion.p99", "write it as a measure and a signed change"),
        ("queue_to_completion.p99 10%", "give the change a direction: + for 'up by more than'"),
        ("queue_to_completion.p99 +lots", "'+lots' is not a signed change like +10%, +1pt, +50ms or -0.05"),
        ("failure_rate +1%", "a percent on failure_rate is ambiguous: write +1pt for percentage points"),
        ("queue_to_completion.p99 +1pt", "points fit shares like failure_rate"),
        ("grade.mean -50ms", "a duration does not fit grade.mean, a score"),
        ("queue_to_completion.p99 +10", "queue_to_completion.p99 is a duration: write +10% or a duration"),
        ("queue_to_completion.p99 +10parsecs", "unknown unit 'parsecs'"),
        ("latency.p99 +10%", "unknown measure 'latency.p99'"),
    ],
)
def test_bad_rules_fail_with_one_sentence_naming_them(text: str, fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    message = str(caught.value)
    assert message.startswith(f"regression rule {text!r}: ") and message.endswith(".")
    assert fragment in message


def test_default_rules_fire_on_slower_p99_and_more_failures() -> None:
    base, new = _pair()
    new["measures"]["queue_to_completion"]["p99"] = base["measures"]["queue_to_completion"]["p99"] * 1.11
    new["failure_rate"] = base["failure_rate"] + 0.011
    comparison = compare(base, new, significant_only=False)  # the rules' own margins
    assert [c.rule.text for c in comparison.regressions] == ["queue_to_completion.p99 +10%", "failure_rate +1pt"]
    assert comparison.regressed


def test_default_rules_hold_within_their_margins() -> None:
    base, new = _pair()
    new["measures"]["queue_to_completion"]["p99"] = base["measures"]["queue_to_completion"]["p99"] * 1.09
    new["failure_rate"] = base["failure_rate"] + 0.009
    new["grades"]["mean"] = base["grades"]["mean"] - 0.049
    comparison = compare(base, new)
    assert not comparison.regressed
    assert [c.rule.text for c in comparison.checks][:3] == list(DEFAULT_RULES)


def test_a_rule_on_an_order_statistic_of_too_few_samples_is_not_judged() -> None:
    base = load_fixture()
    new = copy.deepcopy(base)
    new["variants"]["spark"]["queue_to_completion"]["p99"] *= 2
    comparison = compare(base, new, [parse_rule("variant[*].queue_to_completion.p99 +10%")])
    spark = next(c for c in comparison.checks if c.path.scope_name == "spark")
    assert not spark.regressed
    assert spark.note == "not judged: too few samples (20 < 100)"


def test_a_value_the_new_run_lacks_is_a_regression() -> None:
    base, new = _pair()
    new["measures"]["queue_to_completion"].update(count=0, p99=None)
    comparison = compare(base, new)
    check = comparison.regressions[0]
    assert check.path.text == "queue_to_completion.p99"
    assert check.note.startswith("no data in the new run (no run ended)")


def test_a_value_the_base_run_lacks_is_not_judged() -> None:
    base, new = _pair()
    base["grades"].update(count=0, mean=None)
    for piece in base["scenarios"].values():
        piece["grades"].update(count=0, mean=None)
    comparison = compare(base, new)
    assert not comparison.regressed
    grade = next(c for c in comparison.checks if c.path.text == "grade.mean")
    assert grade.note.startswith("no data in the base run")


def test_wildcard_rules_apply_to_every_slice_in_both_runs() -> None:
    base, new = _pair()
    for doc in (base, new):
        for piece in doc["variants"].values():
            piece["queue_to_completion"]["count"] = 500
    new["variants"]["bolt"]["queue_to_completion"]["p99"] *= 1.5
    comparison = compare(base, new, [parse_rule("variant[*].queue_to_completion.p99 +10%")], significant_only=False)
    assert {c.path.scope_name: c.regressed for c in comparison.checks} == {"spark": False, "bolt": True}


# ------------------------------------------------------------------------------------------ grade diffs


def test_per_scenario_grades_are_diffed_and_drops_beyond_the_rule_flagged() -> None:
    base, new = _pair()
    new["scenarios"]["refund"]["grades"]["mean"] = base["scenarios"]["refund"]["grades"]["mean"] - 0.1
    new["scenarios"]["hours"]["grades"]["mean"] = base["scenarios"]["hours"]["grades"]["mean"] - 0.03
    comparison = compare(base, new, significant_only=False)
    diffs = {d.scenario: d for d in comparison.grades}
    assert diffs["refund"].dropped and diffs["refund"].delta == pytest.approx(-0.1)
    assert not diffs["hours"].dropped and diffs["hours"].delta == pytest.approx(-0.03)
    assert [c.path.text for c in comparison.regressions] == ["scenario[refund].grade.mean"]
    # The overall grade.mean rule judged the scenario: its sentence says where.
    assert "grade.mean -0.05 on scenario[refund].grade.mean: 0.884 → 0.784 (-0.1), REGRESSED" in render_text(comparison)


def test_a_scenario_rule_overrides_the_overall_grade_rule() -> None:
    base, new = _pair()
    new["scenarios"]["refund"]["grades"]["mean"] -= 0.1
    rules = [parse_rule("grade.mean -0.05"), parse_rule("scenario[refund].grade.mean -0.2")]
    comparison = compare(base, new, rules)
    assert not comparison.regressed
    assert not {d.scenario: d.dropped for d in comparison.grades}["refund"]


def test_scenarios_in_one_run_only_are_noted_not_judged() -> None:
    base, new = _pair()
    new["scenarios"]["cancel"] = new["scenarios"].pop("refund")
    comparison = compare(base, new)
    assert "scenarios only in the base run: refund" in comparison.notes
    assert "scenarios only in the new run: cancel" in comparison.notes
    assert not comparison.regressed


# ---------------------------------------------------------------------------------------------- renderings


def _regressed_pair() -> tuple[dict, dict]:
    base, new = _pair()
    new["measures"]["queue_to_completion"]["p99"] = base["measures"]["queue_to_completion"]["p99"] * 1.3
    new["scenarios"]["refund"]["grades"]["mean"] -= 0.1
    return base, new


def _raw(pair: tuple[dict, dict]):
    """Compared with the rules firing on the raw change (the renderings show both rules fired)."""
    return compare(*pair, significant_only=False)


def test_json_rendering_is_serialisable_and_complete() -> None:
    comparison = _raw(_regressed_pair())
    data = json.loads(orjson.dumps(comparison_json(comparison)))
    assert data["schema"] == "stressor.comparison/1"
    assert data["regressed"] is True
    row = next(r for r in data["rows"] if r["measure"] == "queue_to_completion.p99")
    assert row["judgement"] == "worse" and row["regressed"] is True
    assert row["relative"] == pytest.approx(0.3)
    assert {r["rule"] for r in data["rules"]} >= set(DEFAULT_RULES)
    assert next(g for g in data["grades_by_scenario"] if g["scenario"] == "refund")["dropped"] is True


def test_json_writes_an_infinite_relative_change_as_a_string() -> None:
    base, new = _pair()
    for doc in (base, new):
        doc["measures"]["time_queued"]["count"] = 1000
    base["measures"]["time_queued"]["p99"] = 0.0
    new["measures"]["time_queued"]["p99"] = 0.5
    comparison = compare(base, new, [parse_rule("time_queued.p99 +10%")])
    data = comparison_json(comparison)
    assert data["rules"][0]["change"] == "+inf" and data["regressed"] is True
    assert "from a base of 0" in data["rules"][0]["note"]
    orjson.dumps(data)


def test_text_rendering() -> None:
    text = render_text(_raw(_regressed_pair()))
    assert text.splitlines()[:2] == ["stressor compare", f"  base: {_raw(_regressed_pair()).base.label}"]
    assert text.splitlines()[1].startswith("  base: 'tiny' 20")
    line = next(x for x in text.splitlines() if x.strip().startswith("queue_to_completion p99"))
    assert line.split()[-3:] == ["(+30.0%)", "worse", "REGRESSED"] or line.split()[-2:] == ["worse", "REGRESSED"]
    assert "grades by scenario (mean):" in text
    assert text.splitlines()[-1] == "REGRESSED: 2 regression rules fired"
    base, _ = _pair()
    assert render_text(compare(base, copy.deepcopy(base))).splitlines()[-1] == "no regression"


def test_markdown_rendering_for_a_pull_request() -> None:
    markdown = render_markdown(_raw(_regressed_pair()))
    assert markdown.startswith("### stressor compare: ❌ regression\n")
    assert "| ❌ | overall | `queue_to_completion p99` | 82.6ms | 107ms | +24.8ms (+30.0%) | worse |" in markdown
    assert "| ✅ | overall | `failure_rate` |" in markdown
    assert "| ❌ | refund | 0.884 | 0.784 | -0.1 |" in markdown
    assert "<details><summary>Per variant and scenario</summary>" in markdown
    base, _ = _pair()
    assert render_markdown(compare(base, copy.deepcopy(base))).startswith("### stressor compare: ✅ no regression")


def test_markdown_escapes_names_from_the_documents() -> None:
    base, new = _pair()
    for doc in (base, new):
        doc["scenarios"]["a|b <img src=x>"] = doc["scenarios"].pop("refund")
    markdown = render_markdown(compare(base, new))
    assert "<img" not in markdown
    assert r"a\|b &lt;img src=x&gt;" in markdown


def test_a_worse_figure_that_breaks_no_rule_is_a_warning() -> None:
    base, new = _pair()
    new["measures"]["time_in_progress"]["p90"] *= 1.5
    comparison = compare(base, new)
    assert not comparison.regressed
    assert "| ⚠️ | overall | `time_in_progress p90` |" in render_markdown(comparison)
