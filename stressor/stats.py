"""How two samples differ, and how sure that is: the difference of a percentile with a bootstrap confidence
interval, and the Mann-Whitney rank test. Pure; randomness only from the seed passed in."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
MIN_RANKED = 3  # values a sample needs before the rank test says anything


@dataclass(frozen=True, slots=True)
class Difference:
    """``percentile`` of ``b`` minus that of ``a`` (``estimate``), within ``[low, high]`` at ``confidence``,
    and the rank test's two-sided ``p_value`` (None when a sample is too small to say anything)."""

    percentile: float
    estimate: float
    low: float
    high: float
    confidence: float
    p_value: float | None
    a_count: int
    b_count: int

    @property
    def significant(self) -> bool:
        """Whether the interval leaves out "no difference"."""
        return self.low > 0 or self.high < 0


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, linear between the closest ranks (numpy's default)."""
    if not sorted_values:
        raise ValueError("a quantile of no values")
    position = q * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    percentile: float = 50.0,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Difference | None:
    """``b``'s percentile minus ``a``'s, with a percentile-bootstrap interval; None when either is empty."""
    if not a or not b:
        return None
    q = percentile / 100
    rng = random.Random(seed)
    estimate = quantile(sorted(b), q) - quantile(sorted(a), q)
    draws = sorted(
        quantile(sorted(rng.choices(b, k=len(b))), q) - quantile(sorted(rng.choices(a, k=len(a))), q)
        for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    return Difference(
        percentile=percentile,
        estimate=estimate,
        low=quantile(draws, tail),
        high=quantile(draws, 1 - tail),
        confidence=confidence,
        p_value=rank_test(a, b),
        a_count=len(a),
        b_count=len(b),
    )


def rank_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, corrected for ties and continuity);
    None when a sample has fewer than ``MIN_RANKED`` values or every value ties."""
    n, m = len(a), len(b)
    if n < MIN_RANKED or m < MIN_RANKED:
        return None
    pooled = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    rank_sum_a = 0.0
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1  # tied values share the mean of their ranks
        rank_sum_a += rank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    u = rank_sum_a - n * (n + 1) / 2
    total = n + m
    variance = n * m / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return None
    z = max(0.0, abs(u - n * m / 2) - 0.5) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))
