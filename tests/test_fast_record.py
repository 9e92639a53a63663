"""LatencyRecorder's inline recording path: it must leave the HDR histogram exactly as hdrh's own
``record_value`` would (every count, total, min and max), so percentiles, encodings, merges and pickles agree."""

from __future__ import annotations

import pickle
import random

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from stressor import metrics
from stressor.metrics import HIGHEST_US, SIGNIFICANT_DIGITS, LatencyRecorder


class SlowRecorder(LatencyRecorder):
    """The recorder as it was before the inline path: every value through ``HdrHistogram.record_value``."""

    __slots__ = ()

    def record_us(self, value_us: int) -> None:
        """Record one value the reference way."""
        if value_us < 0 or value_us > metrics.HIGHEST_US:
            self.clamped += 1
            value_us = min(max(value_us, 0), metrics.HIGHEST_US)
        assert self.histogram.record_value(value_us)
        self.count += 1
        self.sum_us += value_us
        self.min_us = value_us if self.min_us is None else min(self.min_us, value_us)
        self.max_us = value_us if self.max_us is None else max(self.max_us, value_us)


def reference_histogram() -> HdrHistogram:
    return HdrHistogram(1, metrics.HIGHEST_US, metrics.SIGNIFICANT_DIGITS)


def state(recorder: LatencyRecorder) -> tuple[object, ...]:
    """Everything a recorder holds, the histogram's own fields included."""
    h = recorder.histogram
    exact = (recorder.count, recorder.sum_us, recorder.min_us, recorder.max_us, recorder.clamped)
    return (list(h.counts), h.total_count, h.min_value, h.max_value, *exact)


def edge_values(highest: int) -> list[int]:
    """0 .. 5000, every power of two and its neighbours up to ``highest``, ``highest`` itself."""
    values = list(range(5001))
    power = 1
    while power <= highest:
        values += [v for v in (power - 1, power, power + 1) if 0 <= v <= highest]
        power <<= 1
    return [*values, highest - 1, highest]


def random_values(rng: random.Random, n: int, highest: int) -> list[int]:
    """Uniform over each power-of-two range in turn, so every bucket of the histogram is reached."""
    top = highest.bit_length()
    return [min(rng.randrange(1 << rng.randrange(1, top + 1)), highest) for _ in range(n)]


def check_indexes(values: list[int]) -> None:
    """Each value lands in the counts slot hdrh's ``_counts_index_for`` names, and nowhere else."""
    reference = reference_histogram()
    recorder = LatencyRecorder()
    counts = recorder.histogram.counts
    for value in values:
        index = reference._counts_index_for(value)
        assert recorder._counts_index(value) == index, value
        before = counts[index]
        recorder.record_us(value)
        assert counts[index] == before + 1, value
        reference.record_value(value)
    # No stray writes: the whole arrays agree.
    assert list(counts) == list(reference.counts)
    assert recorder.histogram.total_count == reference.total_count == len(values)


def test_every_edge_value_lands_in_hdrhs_own_slot() -> None:
    check_indexes(edge_values(HIGHEST_US))


def test_random_values_across_the_whole_range_land_in_hdrhs_own_slot() -> None:
    check_indexes(random_values(random.Random(11), 50_000, HIGHEST_US))


@pytest.mark.parametrize(("highest", "digits"), [(60_000_000, 2), (2**40 + 12_345, 3), (HIGHEST_US, 4), (10**7, 5)])
def test_other_histogram_parameters_are_read_from_the_histogram(
    monkeypatch: pytest.MonkeyPatch, highest: int, digits: int
) -> None:
    monkeypatch.setattr(metrics, "HIGHEST_US", highest)
    monkeypatch.setattr(metrics, "SIGNIFICANT_DIGITS", digits)
    values = edge_values(highest) + random_values(random.Random(digits), 5_000, highest)
    check_indexes(values)
    fast, slow = LatencyRecorder(), SlowRecorder()
    for value in [*values, -1, highest + 1]:
        fast.record_us(value)
        slow.record_us(value)
    assert state(fast) == state(slow)


def feed(values: list[int], *recorders: LatencyRecorder) -> None:
    for recorder in recorders:
        for value in values:
            recorder.record_us(value)


def latencies(rng: random.Random, n: int) -> list[int]:
    """Lognormal latencies (~60 ms median) with a few out-of-range ones either side and the two ends."""
    values = [int(rng.lognormvariate(11, 1.5)) for _ in range(n)]
    values += [-1, -(10**9), 0, HIGHEST_US, HIGHEST_US + 1, 2**70]
    rng.shuffle(values)
    return values


def test_figures_match_a_histogram_fed_by_record_value() -> None:
    values = latencies(random.Random(3), 20_000)
    fast, slow = LatencyRecorder(), SlowRecorder()
    feed(values, fast, slow)
    assert state(fast) == state(slow)
    assert fast.clamped == 4
    assert fast.summary() == slow.summary()
    clamped = [min(max(v, 0), HIGHEST_US) for v in values]
    plain = reference_histogram()
    for value in clamped:
        assert plain.record_value(value)
    summary = fast.summary()
    assert (summary.count, summary.min_s, summary.max_s) == (len(values), 0, HIGHEST_US / 1e6)
    assert summary.mean_s == sum(clamped) / len(clamped) / 1e6
    expected = plain.get_percentile_to_value_dict(list(metrics.PERCENTILES))
    assert summary.percentiles_s == {p: min(v, HIGHEST_US) / 1e6 for p, v in expected.items()}
    for p in (0.0, 1.0, 50.0, 99.99, 100.0):
        assert fast.histogram.get_value_at_percentile(p) == plain.get_value_at_percentile(p)
    assert fast.histogram.get_min_value() == plain.get_min_value()
    assert fast.histogram.get_max_value() == plain.get_max_value()
    assert fast.histogram.get_mean_value() == plain.get_mean_value()


def test_encoding_matches_and_decodes_to_the_same_counts() -> None:
    values = latencies(random.Random(4), 5_000)
    fast, slow = LatencyRecorder(), SlowRecorder()
    feed(values, fast, slow)
    plain = reference_histogram()
    for value in values:
        plain.record_value(min(max(value, 0), HIGHEST_US))
    blob = fast.encode()
    assert blob == slow.encode() == plain.encode().decode("ascii")
    decoded = LatencyRecorder.decode(blob)
    assert decoded.total_count == len(values)
    assert list(decoded.counts) == list(plain.counts)


def test_merges_agree_with_the_reference_and_keep_recording_right() -> None:
    rng = random.Random(5)
    parts = [latencies(rng, 2_000) for _ in range(3)]
    fast = [LatencyRecorder() for _ in parts]
    slow = [SlowRecorder() for _ in parts]
    for values, f, s in zip(parts, fast, slow, strict=True):
        feed(values, f, s)
    fast_total, slow_total = LatencyRecorder(), SlowRecorder()
    # Into an empty recorder, an empty one in, then the others; each followed by more values, which must
    # go on agreeing with hdrh's own path after add() rounded the histogram's min / max to bucket edges.
    for f, s in [(fast[0], slow[0]), (LatencyRecorder(), SlowRecorder()), (fast[1], slow[1]), (fast[2], slow[2])]:
        fast_total.merge(f)
        slow_total.merge(s)
        assert state(fast_total) == state(slow_total)
        extra = [rng.randrange(0, 3_000_000) for _ in range(50)] + [1, 5_000_000]
        feed(extra, fast_total, slow_total)
        assert state(fast_total) == state(slow_total)
    assert fast_total.summary() == slow_total.summary()
    assert fast_total.encode() == slow_total.encode()
    assert fast_total.count == sum(map(len, parts)) + 4 * 52


def slow_restored(recorder: LatencyRecorder) -> SlowRecorder:
    """``recorder`` unpickled the way ``__reduce__`` says, into a recorder on hdrh's own path."""
    restore, (blob, count, sum_us, min_us, max_us, clamped) = recorder.__reduce__()
    assert restore is metrics._restore_recorder
    slow = SlowRecorder()
    if count:
        slow.histogram.add(LatencyRecorder.decode(blob))
    slow.count, slow.sum_us, slow.min_us, slow.max_us, slow.clamped = count, sum_us, min_us, max_us, clamped
    return slow


@pytest.mark.parametrize("n", [0, 1, 3_000])
def test_pickles_round_trip_and_keep_recording_right(n: int) -> None:
    values = latencies(random.Random(6), n)[:n]
    fast, slow = LatencyRecorder(), SlowRecorder()
    feed(values, fast, slow)
    fast_back = pickle.loads(pickle.dumps(fast))
    slow_back = slow_restored(slow)
    assert state(fast_back) == state(slow_back)
    assert (fast_back.count, fast_back.sum_us, fast_back.min_us, fast_back.max_us, fast_back.clamped) == (
        fast.count,
        fast.sum_us,
        fast.min_us,
        fast.max_us,
        fast.clamped,
    )
    assert list(fast_back.histogram.counts) == list(fast.histogram.counts)
    assert fast_back.summary() == fast.summary()
    # Below the old min and above the old max: decoding set the histogram's min / max to bucket edges, and
    # they must move from there as hdrh's would.
    more = [5, 0, 123_456, 90_000_000, HIGHEST_US - 1, 7]
    feed(more, fast_back, slow_back, fast)
    assert state(fast_back) == state(slow_back)
    assert list(fast_back.histogram.counts) == list(fast.histogram.counts)
    assert fast_back.encode() == slow_back.encode() == fast.encode()
    assert fast_back.summary() == slow_back.summary() == fast.summary()


def test_new_extremes_inside_the_bucket_edges_a_merge_left_keep_those_edges() -> None:
    # add() and decoding leave the histogram's min / max at bucket edges, outside the exact min_us / max_us;
    # hdrh's record_value keeps them there for a new extreme that is still inside them.
    low, high = 1_000_001, 2_000_001
    for how in ("merge", "pickle"):
        fast, slow = LatencyRecorder(), SlowRecorder()
        feed([low, high], fast, slow)
        if how == "merge":
            fast_total, slow_total = LatencyRecorder(), SlowRecorder()
            fast_total.merge(fast)
            slow_total.merge(slow)
        else:
            fast_total, slow_total = pickle.loads(pickle.dumps(fast)), slow_restored(slow)
        histogram = fast_total.histogram
        assert histogram.min_value < low and histogram.max_value > high, how  # the premise: bucket edges
        for value in (high + 1, low - 1, 0, HIGHEST_US):
            feed([value], fast_total, slow_total)
            assert state(fast_total) == state(slow_total), (how, value)


def test_a_value_recorded_after_reading_is_counted_and_encoded() -> None:
    recorder = LatencyRecorder()
    feed([1_000, 2_000, 3_000], recorder)
    assert recorder.summary().count == 3
    first = LatencyRecorder.decode(recorder.encode())
    assert first.total_count == 3
    # A new maximum after an encode: hdrh encodes counts only up to its max_value's slot, so a stale one
    # would drop it from the encoding (and from every merged or pickled copy).
    recorder.record_us(40_000_000)
    recorder.record_us(10)
    summary = recorder.summary()
    assert (summary.count, summary.min_s, summary.max_s) == (5, 10 / 1e6, 40.0)
    again = LatencyRecorder.decode(recorder.encode())
    assert again.total_count == 5
    assert again.get_max_value() == recorder.histogram.get_highest_equivalent_value(40_000_000)
    assert list(again.counts) == list(recorder.histogram.counts)
    assert pickle.loads(pickle.dumps(recorder)).summary() == summary


def test_record_ns_and_record_s_convert_then_record_the_same() -> None:
    rng = random.Random(8)
    values_ns = [rng.randrange(-(10**12), 4 * 10**15) for _ in range(3_000)] + [-1, 0, 999, 1_000]
    values_s = [rng.uniform(-5.0, 4_000.0) for _ in range(3_000)] + [0.0, 0.4e-6, 0.5e-6, 3_600.0]
    fast, slow = LatencyRecorder(), SlowRecorder()
    for value in values_ns:
        fast.record_ns(value)
        slow.record_us(value // 1000)
    for value in values_s:
        fast.record_s(value)
        slow.record_us(round(value * 1_000_000))
    assert state(fast) == state(slow)
    assert fast.clamped > 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=60))
def test_any_values_leave_the_same_state_as_record_value(values: list[int]) -> None:
    fast, slow = LatencyRecorder(), SlowRecorder()
    feed(values, fast, slow)
    assert state(fast) == state(slow)
    assert fast.summary() == slow.summary()


def test_defaults_are_the_ones_checked() -> None:
    # The parametrised test above covers other settings; this pins the ones stressor ships with.
    histogram = LatencyRecorder().histogram
    assert (histogram.highest_trackable_value, histogram.significant_figures) == (HIGHEST_US, SIGNIFICANT_DIGITS)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.integers(min_value=-5, max_value=HIGHEST_US + 5), min_size=1, max_size=300),
    extra=st.lists(st.integers(min_value=0, max_value=10**8), max_size=50),
    asked=st.lists(st.floats(min_value=1e-6, max_value=100.0), max_size=6),
)
def test_percentiles_are_hdrhs_own_value_for_value(values: list[int], extra: list[int], asked: list[float]) -> None:
    recorder = LatencyRecorder()
    for value in values:
        recorder.record_us(value)
    if extra:  # a merged recorder too: counts added by hdrh, not by record_us
        other = LatencyRecorder()
        for value in extra:
            other.record_us(value)
        recorder.merge(other)
    percentiles = [*metrics.PERCENTILES, 100.0, *asked]
    assert recorder.percentiles_us(percentiles) == recorder.histogram.get_percentile_to_value_dict(percentiles)


def test_an_empty_recorder_has_no_percentiles() -> None:
    assert LatencyRecorder().percentiles_us(metrics.PERCENTILES) == {}
