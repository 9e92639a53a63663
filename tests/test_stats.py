"""Differences between samples with their confidence: checked against known answers (numpy's and scipy's)."""

from __future__ import annotations

import random

import pytest

from stressor.stats import difference, quantile, rank_test


def test_quantiles_interpolate_between_ranks_as_numpy_does() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.5) == 2.5  # numpy.percentile([1, 2, 3, 4], 50)
    assert quantile(values, 0.9) == pytest.approx(3.7)
    assert quantile([5.0], 0.99) == 5.0
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)


def test_the_rank_test_matches_scipy_on_a_textbook_sample() -> None:
    # scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True)
    a = [19, 22, 16, 29, 24]
    b = [20, 11, 17, 12]
    assert rank_test(a, b) == pytest.approx(0.111347, abs=1e-6)
    tied = [1, 2, 2, 3, 3, 3]
    assert rank_test(tied, [2, 3, 3, 4, 4, 5]) == pytest.approx(0.078403, abs=1e-6)
    assert rank_test([1, 2], [3, 4, 5]) is None  # too few to say
    assert rank_test([7, 7, 7], [7, 7, 7]) is None  # every value ties


def test_a_real_shift_is_found_and_the_interval_holds_it_about_as_often_as_it_says() -> None:
    rng = random.Random(3)
    spark = [rng.gauss(40.0, 4.0) for _ in range(400)]
    storm = [rng.gauss(41.8, 4.0) for _ in range(400)]  # 1.8 s slower at the median
    found = difference(spark, storm, seed=1)
    assert found is not None and found.significant and found.estimate > 0
    assert found.p_value is not None and found.p_value < 0.001
    # Calibration: over 40 samples, a 95 % interval holds the true shift about 38 times.
    held = 0
    for seed in range(40):
        draw = random.Random(100 + seed)
        a = [draw.gauss(10.0, 3.0) for _ in range(60)]
        b = [draw.gauss(12.0, 3.0) for _ in range(60)]
        interval = difference(a, b, resamples=500, seed=seed)
        assert interval is not None
        held += interval.low <= 2.0 <= interval.high
    assert 33 <= held <= 40


def test_no_shift_gives_an_interval_around_zero_and_the_same_answer_for_the_same_seed() -> None:
    rng = random.Random(4)
    a = [rng.gauss(10.0, 2.0) for _ in range(100)]
    b = [rng.gauss(10.0, 2.0) for _ in range(100)]
    found = difference(a, b, seed=7)
    assert found is not None and found.low < 0 < found.high and not found.significant
    assert found.p_value is not None and found.p_value > 0.05
    assert difference(a, b, seed=7) == found
    assert difference([], b) is None
