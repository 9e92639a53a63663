"""Memory stays flat while live progress is on: what each progress window builds is freed when it is done with.

A run tunes the collector (``runtime.tuned_gc``: gen-0 threshold 50,000, everything older frozen), so garbage
that only the cycle collector can free lives for minutes; an HDR histogram is 184 KiB. These tests run many
windows under that tuning and count the histograms still alive, never forcing a collection.
"""

from __future__ import annotations

import gc
from pathlib import Path

from hdrh.histogram import HdrHistogram

from stressor.governor import Governor
from stressor.intervals import Sample, interval_series
from stressor.metrics import LatencyRecorder, Measure, Metrics, Outcome
from stressor.profile import Limits, parse_profile
from stressor.progress import ProgressWindow, progress_of
from stressor.runtime import tuned_gc
from stressor.timestamps import ClockAnchor

WINDOWS = 200  # 200 x 184 KiB = ~37 MB if each window's histogram outlived it


def live_histograms() -> int:
    """HDR histograms the collector tracks and has not freed (frozen ones are not in ``gc.get_objects``)."""
    return sum(isinstance(o, HdrHistogram) for o in gc.get_objects())


def test_progress_windows_free_their_histograms_under_the_tuned_collector() -> None:
    profile = parse_profile({"stages": [{"name": "s", "duration": "1h", "rate": "2/s"}]}, "p.toml", Path())
    metrics = Metrics(ClockAnchor.now())
    window = ProgressWindow(window_s=5.0)
    governor = Governor(Limits())
    with tuned_gc():
        before = live_histograms()
        for second in range(1, WINDOWS + 1):
            # A run seen to end every second: each window has a queue-to-completion to take percentiles of.
            metrics.planned_runs += 2
            metrics.submitted_runs += 2
            metrics.outcomes[Outcome.COMPLETED] += 1
            metrics.recorders[Measure.QUEUE_TO_COMPLETION].record_s(1.0 + second / 1000)
            shown = window.update(progress_of(profile, metrics, float(second), 1, 0.0), governor)
            assert shown.q2c_p50_s is not None  # the window really took percentiles
        after = live_histograms()
    assert after - before <= 2, f"{after - before} HDR histograms outlived their progress windows"


def test_recorders_made_and_dropped_are_freed_at_once() -> None:
    # Every per-window / per-interval figure is a LatencyRecorder (progress, interval series, the merge of
    # workers' snapshots, a recorder unpickled from a worker): none may need the cycle collector to go.
    with tuned_gc():
        before = live_histograms()
        for _ in range(WINDOWS):
            recorder = LatencyRecorder()
            recorder.record_us(1500)
            copy = LatencyRecorder()
            copy.merge(recorder)
            copy.histogram.add(LatencyRecorder.decode(recorder.encode()))
            restored = recorder.__reduce__()
            restored[0](*restored[1])  # type: ignore[operator]
            assert copy.summary().count == 1
            del recorder, copy, restored
        after = live_histograms()
    assert after - before <= 2, f"{after - before} HDR histograms outlived the recorders that made them"


def test_interval_series_frees_each_intervals_histogram() -> None:
    anchor = ClockAnchor.now()
    t0_ns = 10**12
    records = []
    samples = []
    from stressor.intervals import RunStamps

    for second in range(WINDOWS):
        due = t0_ns + second * 10**9
        records.append(RunStamps(Outcome.COMPLETED, due, due + 5 * 10**8, None, None, None))
        samples.append(Sample(float(second + 1), second + 1, 0, 0.0))
    with tuned_gc():
        before = live_histograms()
        peak = before
        for interval in interval_series(records, samples, anchor, t0_ns, 1.0):
            assert interval.queue_to_completion.count == 1
            peak = max(peak, live_histograms())
    assert peak - before <= 3, f"{peak - before} interval histograms alive at once"
