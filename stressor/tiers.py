"""Variants compared (product tiers, say): each measure of their completed runs side by side, and each variant's
difference from the reference (the first variant) at p50 and p90, with a bootstrap interval and a rank test.
Pure and seeded; docs/results.md (``variant_comparison``) says how."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from stressor.document import (
    ComparedMeasure,
    RunEntry,
    SampleFigures,
    VariantComparison,
    VariantDifference,
    readonly,
)
from stressor.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE, MIN_RANKED, difference, quantile, rank_test

PERCENTILES = (50.0, 90.0)
MIN_COMPARED = MIN_RANKED  # values a variant needs (and the reference) before a difference is stated
# Bounds on the work of one interval: at most MAX_SAMPLE values a side (a seeded sample of more), and fewer
# resamples as the samples grow (never under MIN_RESAMPLES).
MAX_SAMPLE = 5000
DRAW_BUDGET = 400_000
MIN_RESAMPLES = 200
SEED = 0
RUNS = "completed"


@dataclass(frozen=True, slots=True)
class Compared:
    """A measure compared across variants: its name in the document, how a sentence names it, its unit, where
    its two ends come from, and its value in a completed run's record (None: the run has none)."""

    name: str
    label: str
    unit: str  # "s" or "score"
    source: str
    value: Callable[[RunEntry], float | None]


def _queue_to_completion(record: RunEntry) -> float | None:
    if record.detected_s is None or record.due_s is None:
        return None
    return record.detected_s - record.due_s


def _in_progress(record: RunEntry) -> float | None:
    if record.completed_at is None or record.started_at is None:
        return None
    return record.completed_at - record.started_at


def _grade(record: RunEntry) -> float | None:
    return record.grade


def _call_duration(record: RunEntry) -> float | None:
    return record.call_duration_s


# The call's own length first: what a tier costs a caller, apart from queueing and detection.
COMPARED: tuple[Compared, ...] = (
    Compared("call_duration", "call duration", "s", "call log: duration_seconds", _call_duration),
    Compared(
        "queue_to_completion", "queue-to-completion", "s", "client: run due -> client saw it end", _queue_to_completion
    ),
    Compared("time_in_progress", "time in progress", "s", "server: started_at -> completed_at", _in_progress),
    Compared("grade", "grade", "score", "the call's grade (0..1)", _grade),
)
LABELS: Mapping[str, str] = readonly({c.name: c.label for c in COMPARED})


def variant_order(records: Iterable[RunEntry], declared: Sequence[str] = ()) -> list[str]:
    """The variants that have runs: those ``declared`` (the profile's order) first, then the others by their
    first batch (the plan deals batch 0 to the first variant)."""
    first: dict[str, int] = {}
    for record in records:
        name = record.variant
        if name is not None:
            seq = record.batch_seq if record.batch_seq is not None else 0
            first[name] = min(seq, first.get(name, seq))
    ordered = [name for name in declared if name in first]
    return ordered + sorted((n for n in first if n not in ordered), key=lambda n: (first[n], n))


def compare_variants(
    records: Sequence[RunEntry], declared: Sequence[str] = (), measures: Sequence[Compared] = COMPARED
) -> VariantComparison | None:
    """The variants' completed runs compared, measure by measure, with the first variant (None with fewer than
    two variants). A measure no variant has a value of is left out."""
    order = variant_order(records, declared)
    if len(order) < 2:
        return None
    reference = order[0]
    values: dict[str, dict[str, list[float]]] = {m.name: {name: [] for name in order} for m in measures}
    for record in records:
        if record.outcome != RUNS or record.variant is None:
            continue
        for measure in measures:
            value = measure.value(record)
            if value is not None:
                values[measure.name][record.variant].append(float(value))
    compared = {}
    for measure in measures:
        by_variant = values[measure.name]
        if not any(by_variant.values()):
            continue
        base = by_variant[reference]
        differences = {
            name: readonly({_key(p): _difference(base, by_variant[name], p) for p in PERCENTILES})
            for name in order[1:]
            if len(base) >= MIN_COMPARED and len(by_variant[name]) >= MIN_COMPARED
        }
        compared[measure.name] = ComparedMeasure(
            unit=measure.unit,
            source=measure.source,
            variants=readonly({name: _figures(by_variant[name]) for name in order}),
            differences=readonly(differences),
        )
    return VariantComparison(reference=reference, confidence=CONFIDENCE, runs=RUNS, measures=readonly(compared))


def _key(percentile: float) -> str:
    return f"p{percentile:g}".replace(".", "_")


def _figures(values: Sequence[float]) -> SampleFigures:
    if not values:
        return SampleFigures(count=0)
    ordered = sorted(values)
    return SampleFigures(
        count=len(ordered),
        min=ordered[0],
        mean=sum(ordered) / len(ordered),
        p50=quantile(ordered, 0.5),
        p90=quantile(ordered, 0.9),
        max=ordered[-1],
    )


def _sample(values: Sequence[float]) -> Sequence[float]:
    return values if len(values) <= MAX_SAMPLE else random.Random(SEED).sample(list(values), MAX_SAMPLE)


def _difference(base: Sequence[float], other: Sequence[float], percentile: float) -> VariantDifference:
    """``other``'s percentile minus ``base``'s: the estimate and the rank test from every value, the interval
    from at most MAX_SAMPLE a side. Significant when the interval leaves out 0 and the rank test agrees."""
    a, b = _sample(base), _sample(other)
    resamples = max(MIN_RESAMPLES, min(BOOTSTRAP_RESAMPLES, DRAW_BUDGET // (len(a) + len(b))))
    found = difference(a, b, percentile=percentile, resamples=resamples, seed=SEED)
    assert found is not None  # both sides have MIN_COMPARED values
    q = percentile / 100
    estimate = quantile(sorted(other), q) - quantile(sorted(base), q)
    p_value = found.p_value if (a is base and b is other) else rank_test(base, other)
    agreed = p_value is not None and p_value < 1 - found.confidence
    return VariantDifference(
        estimate=estimate,
        low=found.low,
        high=found.high,
        p_value=p_value,
        significant=found.significant and agreed,
    )


# ------------------------------------------------------------------------------------------------ sentences


def _scaled(unit: str, *values: float) -> tuple[list[str], str]:
    """The values in one unit that reads well (s, ms, µs; a grade as it is), and that unit's suffix."""
    if unit != "s":
        return [f"{round(v, 2) + 0.0:.2f}" for v in values], ""
    largest = max(abs(v) for v in values)
    factor, suffix = (1.0, "s") if largest >= 1 or largest == 0 else (1e3, "ms") if largest >= 1e-3 else (1e6, "µs")
    decimals = 0 if largest * factor >= 100 else 1
    return [f"{round(v * factor, decimals) + 0.0:.{decimals}f}" for v in values], f" {suffix}"


def _p(p_value: float | None) -> str:
    if p_value is None:
        return "too few runs for the rank test"
    return "Mann-Whitney p < 0.001" if p_value < 0.001 else f"Mann-Whitney p = {p_value:.2g}"


def sentence(
    measure: str, unit: str, variant: str, reference: str, at: str, found: VariantDifference, confidence: float
) -> str:
    """``queue-to-completion: storm-base is 1.8 s slower at p50 than spark, 95 % CI [1.2, 2.4] (Mann-Whitney
    p < 0.001)``; a difference that is not significant says so."""
    estimate, low, high = found.estimate or 0.0, found.low or 0.0, found.high or 0.0
    more, less = ("higher", "lower") if unit == "score" else ("slower", "faster")
    verb = "scores" if unit == "score" else "is"
    if estimate < 0:  # said as an amount faster (lower), its interval turned the same way
        estimate, low, high, more = -estimate, -high, -low, less
    (amount, low_text, high_text), suffix = _scaled(unit, estimate, low, high)
    label = LABELS.get(measure, measure)
    interval = f"{confidence * 100:g} % CI [{low_text}, {high_text}]"
    if float(amount) == 0:  # equal, or nearer to equal than the digits shown: never "0 ms faster"
        said = f"{label}: {variant} and {reference} are equal at {at}, {interval}"
    else:
        said = f"{label}: {variant} {verb} {amount}{suffix} {more} at {at} than {reference}, {interval}"
    if found.significant:
        return f"{said} ({_p(found.p_value)})"
    if low <= 0 <= high:
        # the ranks may still differ: the samples differ somewhere, but not surely at this percentile
        ranks_differ = found.p_value is not None and found.p_value < 1 - confidence
        why = "the interval includes no difference" + (", though the ranks differ" if ranks_differ else "")
    else:
        why = "the rank test does not confirm it"
    return f"{said}: not significant at {at} ({why}; {_p(found.p_value)})"


def sentences(comparison: VariantComparison, at: str = "p50") -> list[str]:
    """A sentence per measure and variant at ``at``, or why there is none (too few values)."""
    reference, confidence = comparison.reference or "?", comparison.confidence or CONFIDENCE
    said = []
    for name, measure in comparison.measures.items():
        label = LABELS.get(name, name)
        base = (measure.variants.get(reference) or SampleFigures()).count or 0
        for variant, figures in measure.variants.items():
            if variant == reference:
                continue
            found = (measure.differences.get(variant) or {}).get(at)
            if found is not None:
                said.append(sentence(name, measure.unit or "s", variant, reference, at, found, confidence))
            elif base < MIN_COMPARED:
                said.append(f"{label}: {reference}, the reference, has too few {RUNS} runs with a value ({base})")
                break
            else:
                count = figures.count or 0
                said.append(f"{label}: {variant} has too few {RUNS} runs with a value ({count}) to compare")
    return said
