"""Metrics: HDR recorders that never drop a value silently, and run records turned into measures."""

from __future__ import annotations

import random

import pytest

from stressor.metrics import HIGHEST_US, LatencyRecorder, Measure, Metrics, Outcome, RunRecord
from stressor.timestamps import ClockAnchor

NS = 1_000_000_000


def exact_percentile(values: list[int], p: float) -> int:
    """The value at percentile p the way HdrHistogram defines it (smallest value with >= p % at or below)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def test_percentiles_agree_with_exact_values_to_three_digits() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(11, 1.2)) for _ in range(20_000)]  # µs, ~60 ms median, long tail
    recorder = LatencyRecorder()
    for value in values:
        recorder.record_us(value)
    summary = recorder.summary()
    assert summary.count == len(values)
    assert summary.min_s == min(values) / 1e6
    assert summary.max_s == max(values) / 1e6
    assert summary.mean_s == pytest.approx(sum(values) / len(values) / 1e6)
    for p, reported in summary.percentiles_s.items():
        truth = exact_percentile(values, p) / 1e6
        assert reported == pytest.approx(truth, rel=1e-3), p


def test_out_of_range_values_are_clamped_and_counted_not_dropped() -> None:
    recorder = LatencyRecorder()
    recorder.record_ns(-5_000)
    recorder.record_us(HIGHEST_US * 2)
    recorder.record_us(1_000)
    summary = recorder.summary()
    assert summary.count == 3
    assert summary.clamped == 2
    assert summary.min_s == 0
    assert summary.max_s == HIGHEST_US / 1e6


def test_merge_is_lossless_and_encoding_round_trips() -> None:
    a, b, both = LatencyRecorder(), LatencyRecorder(), LatencyRecorder()
    for i in range(1, 1000):
        (a if i % 2 else b).record_us(i * 37)
        both.record_us(i * 37)
    a.merge(b)
    assert a.summary() == both.summary()
    decoded = LatencyRecorder.decode(a.encode())
    assert decoded.get_total_count() == 999
    assert decoded.get_value_at_percentile(99) == both.histogram.get_value_at_percentile(99)


def test_empty_recorder_summary() -> None:
    summary = LatencyRecorder().summary()
    assert (summary.count, summary.min_s, summary.percentiles_s) == (0, None, {})


def record(**changes: object) -> RunRecord:
    base = dict(batch_seq=0, index=0, stage=0, variant="v", scenario="s", outcome=Outcome.COMPLETED, due_ns=0)
    return RunRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_run_record_becomes_the_breakdown_of_queue_to_completion() -> None:
    anchor = ClockAnchor(wall_ns=1_000 * NS, mono_ns=0)  # monotonic 0 == epoch 1000 s
    metrics = Metrics(anchor)
    # Run 2 of a batch staggered 0.5 s: due 1.0 s after the batch, launched at created + 1.0 s.
    metrics.record_run(
        record(
            index=2,
            stagger_s=0.5,
            due_ns=1 * NS,
            detected_ns=9 * NS,
            created_at=1000.2,
            started_at=1001.7,
            completed_at=1008.7,
        )
    )
    figures = {m: metrics.recorders[m].summary() for m in Measure}
    assert figures[Measure.QUEUE_TO_COMPLETION].max_s == pytest.approx(8.0)
    assert figures[Measure.TIME_QUEUED].max_s == pytest.approx(0.5)  # 1001.7 - (1000.2 + 2 x 0.5)
    assert figures[Measure.TIME_IN_PROGRESS].max_s == pytest.approx(7.0)
    assert figures[Measure.DETECTION_DELAY].max_s == pytest.approx(0.3)  # seen at epoch 1009.0
    assert metrics.by_variant["v"].queue_to_completion.count == 1


def test_outcomes_and_failure_rate() -> None:
    metrics = Metrics(ClockAnchor(0, 0))
    for outcome, n in ((Outcome.COMPLETED, 6), (Outcome.FAILED, 2), (Outcome.ERRORED, 2), (Outcome.OPEN, 5)):
        for _ in range(n):
            metrics.record_run(record(outcome=outcome, error="http_500" if outcome is Outcome.ERRORED else None))
    assert metrics.failure_rate == pytest.approx(0.4)  # (2 + 2) / 10; open runs are not settled
    assert metrics.errors == {"http_500": 2}
    # An open or errored run has no end: it must not enter the latency histograms.
    assert metrics.recorders[Measure.QUEUE_TO_COMPLETION].count == 0
    assert Metrics(ClockAnchor(0, 0)).failure_rate is None
