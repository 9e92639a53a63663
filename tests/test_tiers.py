"""Variants (product tiers) compared: each measure of their completed runs side by side, each variant's
difference from the first at p50 and p90 with a bootstrap interval and a rank test, and the sentences the reports
print. Pure, but for one run in process on virtual time."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support.cli import stressor_here as stressor

from stressor.document import RunEntry, load_results
from stressor.tiers import Compared, compare_variants, quantile, sentences, variant_order

BASE = [1.0 + 0.02 * i for i in range(40)]  # 1.0 .. 1.78 s, p50 1.39 s


def runs(variant: str, q2c: list[float], *, outcome: str = "completed", seq: int = 0) -> list[RunEntry]:
    return [
        RunEntry(variant=variant, batch_seq=seq, outcome=outcome, due_s=10.0, detected_s=10.0 + value) for value in q2c
    ]


def test_a_slower_tier_is_said_slower_by_how_much_with_its_interval() -> None:
    records = runs("spark", BASE) + runs("storm-base", [v + 1.8 for v in BASE]) + runs("bolt", BASE[::-1])
    comparison = compare_variants(records, ["spark", "bolt", "storm-base"])
    assert comparison is not None and comparison.reference == "spark" and comparison.confidence == 0.95
    measure = comparison.measures["queue_to_completion"]
    assert list(measure.variants) == ["spark", "bolt", "storm-base"]
    assert measure.variants["storm-base"].p50 == pytest.approx(quantile(BASE, 0.5) + 1.8)
    slower = measure.differences["storm-base"]["p50"]
    assert slower.estimate == pytest.approx(1.8) and slower.significant
    assert slower.low is not None and slower.high is not None and 1.0 < slower.low <= 1.8 <= slower.high < 2.6
    assert set(measure.differences) == {"bolt", "storm-base"}  # the reference has none of its own
    said = sentences(comparison)
    storm = next(line for line in said if "storm-base" in line)
    assert storm == (
        f"queue-to-completion: storm-base is 1.8 s slower at p50 than spark, 95 % CI [{slower.low:.1f}, "
        f"{slower.high:.1f}] (Mann-Whitney p < 0.001)"
    )
    bolt = next(line for line in said if "bolt" in line)  # the same runs in another order: no difference
    assert bolt.startswith("queue-to-completion: bolt and spark are equal at p50, 95 % CI [")
    assert bolt.endswith(": not significant (the interval includes no difference; Mann-Whitney p = 1)")


def test_a_faster_tier_is_said_faster_with_its_interval_turned_the_same_way() -> None:
    records = runs("storm-base", BASE) + runs("spark", [v - 0.5 for v in BASE])
    comparison = compare_variants(records, ["storm-base", "spark"])
    assert comparison is not None
    found = comparison.measures["queue_to_completion"].differences["spark"]["p50"]
    assert found.estimate == pytest.approx(-0.5) and found.significant
    assert found.low is not None and found.high is not None
    (line,) = sentences(comparison)
    assert line == (
        f"queue-to-completion: spark is 500 ms faster at p50 than storm-base, 95 % CI [{-found.high * 1000:.0f}, "
        f"{-found.low * 1000:.0f}] (Mann-Whitney p < 0.001)"
    )


def test_grades_are_compared_as_scores_higher_or_lower() -> None:
    records = [RunEntry(variant="spark", outcome="completed", grade=0.6 + 0.01 * i) for i in range(20)]
    records += [RunEntry(variant="storm-base", outcome="completed", grade=0.9 + 0.001 * i) for i in range(20)]
    comparison = compare_variants(records, ["spark", "storm-base"])
    assert comparison is not None
    assert list(comparison.measures) == ["grade"]  # no run ended with a time: those measures are left out
    found = comparison.measures["grade"].differences["storm-base"]["p50"]
    assert found.estimate == pytest.approx(0.9095 - 0.695)
    (line,) = sentences(comparison)
    assert line == (
        f"grade: storm-base scores 0.21 higher at p50 than spark, 95 % CI [{found.low:.2f}, {found.high:.2f}] "
        "(Mann-Whitney p < 0.001)"
    )


def test_a_difference_the_rank_test_does_not_confirm_is_not_significant() -> None:
    # Three runs a side, wholly apart: every bootstrap draw differs, but three against three is no evidence.
    comparison = compare_variants(runs("spark", [1.0, 2.0, 3.0]) + runs("bolt", [11.0, 12.0, 13.0]), ["spark", "bolt"])
    assert comparison is not None
    found = comparison.measures["queue_to_completion"].differences["bolt"]["p50"]
    assert found.low is not None and found.low > 0 and found.p_value is not None and found.p_value > 0.05
    assert not found.significant
    (line,) = sentences(comparison)
    assert line.endswith(": not significant (the rank test does not confirm it; Mann-Whitney p = 0.081)")


def test_too_few_completed_runs_are_said_and_not_compared() -> None:
    records = (
        runs("spark", BASE)
        + runs("bolt", [0.1, 0.2])
        + runs("bolt", [0.01] * 30, outcome="failed")  # failed calls are not the tier's latency
        + runs("storm-base", [], seq=2)
    )
    comparison = compare_variants(records, ["spark", "bolt"])
    assert comparison is not None
    measure = comparison.measures["queue_to_completion"]
    assert measure.variants["bolt"].count == 2 and "bolt" not in measure.differences
    assert sentences(comparison) == [
        "queue-to-completion: bolt has too few completed runs with a value (2) to compare",
    ]
    reference_short = compare_variants(runs("spark", [1.0]) + runs("bolt", BASE), ["spark", "bolt"])
    assert reference_short is not None
    assert sentences(reference_short) == [
        "queue-to-completion: spark, the reference, has too few completed runs with a value (1)"
    ]


def test_the_reference_is_the_first_variant_declared_else_the_one_dealt_the_first_batch() -> None:
    records = runs("storm-base", [1.0], seq=2) + runs("spark", [1.0], seq=0) + runs("bolt", [1.0], seq=1)
    assert variant_order(records, ["bolt", "spark", "storm-base"]) == ["bolt", "spark", "storm-base"]
    assert variant_order(records) == ["spark", "bolt", "storm-base"]
    assert compare_variants(runs("spark", BASE)) is None  # one variant: nothing to compare


def test_the_comparison_is_the_same_every_time_and_states_a_large_samples_estimate_from_every_value() -> None:
    big = [1.0 + (i * 7919 % 6001) / 6000 for i in range(6001)]
    records = runs("spark", big) + runs("bolt", [v + 0.01 for v in big], seq=1)
    first, again = compare_variants(records), compare_variants(records)
    assert first == again  # seeded
    assert first is not None
    found = first.measures["queue_to_completion"].differences["bolt"]["p50"]
    assert found.estimate == pytest.approx(0.01)  # from every value, not the sample the interval is drawn from


# --------------------------------------------------------------------------------------------- end to end

TIERS = """
name = "tiers"
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
stagger = "5ms"
[[variants]]
name = "spark"
target_id = 201
[[variants]]
name = "bolt"
target_id = 202
[[stages]]
duration = "3s"
rate = "4/s"
"""


def test_a_run_with_variants_compares_them_in_its_results_summary_and_html(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TIERS)
    out = tmp_path / "r.json"
    done = stressor("run", str(tmp_path / "p.toml"), "--out", str(out), "--html", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    document = orjson.loads(out.read_bytes())
    comparison = document["variant_comparison"]
    assert comparison["reference"] == "spark" and comparison["runs"] == "completed"
    assert set(comparison["measures"]) == {"queue_to_completion", "time_in_progress"}
    q2c = comparison["measures"]["queue_to_completion"]
    assert {name: v["count"] for name, v in q2c["variants"].items()} == {"spark": 12, "bolt": 12}
    assert set(q2c["differences"]["bolt"]) == {"p50", "p90"}
    assert load_results(document).to_json() == document  # typed, and written back as it was
    assert "variants compared with spark, the first (completed runs, exact percentiles):" in done.stdout
    said = sentences(load_results(document).variant_comparison)  # type: ignore[arg-type]
    flowing = " ".join(done.stdout.split())  # the summary wraps its sentences at 80 columns
    assert len(said) == 2 and all(" ".join(line.split()) in flowing for line in said)
    page = (tmp_path / "r.html").read_text()
    section = page[page.index('<section id="variant-comparison">') :]
    section = section[: section.index("</section>")]
    assert 'data-measure="queue_to_completion"' in section and 'data-measure="time_in_progress"' in section
    assert all(line.replace("'", "&#x27;") in section for line in said)
    # rebuilt from the runs log alone (no profile): the first batch's variant is the reference
    again = stressor("report", str(tmp_path / "r.runs.jsonl"))
    assert "variants compared with spark, the first" in again.stdout


def test_call_durations_in_whole_seconds_are_compared_and_a_run_without_one_is_left_out() -> None:
    # The call log's duration_seconds, as run records will carry it (call_duration_s, null until fetched):
    # read here through a measure of the test's own, so the comparison is ready for it.
    durations = {f"s{i}": 50 + i % 5 for i in range(30)} | {f"b{i}": 52 + i % 5 for i in range(30)}
    durations |= {"s0": None, "b1": None}  # type: ignore[dict-item]
    records = [RunEntry(run_id=f"s{i}", variant="spark", outcome="completed") for i in range(30)]
    records += [RunEntry(run_id=f"b{i}", variant="storm-base", outcome="completed") for i in range(30)]
    call = Compared("call_duration", "call duration", "s", "call log", lambda r: durations[str(r.run_id)])
    comparison = compare_variants(records, ["spark", "storm-base"], measures=(call,))
    assert comparison is not None
    measure = comparison.measures["call_duration"]
    assert {name: v.count for name, v in measure.variants.items()} == {"spark": 29, "storm-base": 29}
    found = measure.differences["storm-base"]["p50"]
    (line,) = sentences(comparison)
    assert line == (
        f"call duration: storm-base is 2.0 s slower at p50 than spark, 95 % CI [{found.low:.1f}, {found.high:.1f}] "
        "(Mann-Whitney p < 0.001)"
    )
