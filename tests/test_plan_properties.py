"""Properties of the pacer for any valid stage list: starts follow the plain integral of the rate, the
per-stage counts equal the batches the pacer starts, and the planned peak covers every window of starts."""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from stressor.estimate import estimate
from stressor.plan import open_spans, open_starts, stage_windows
from stressor.profile import OpenLoad, parse_profile


@dataclass(frozen=True)
class Stretch:
    """A generated stage: what the profile says, and the batch rate it means, worked out apart from the parser."""

    table: dict
    duration_s: float
    batches_from: float  # per second; 0 for pauses and closed stages
    batches_to: float
    runs: int  # runs per batch of this stage


def _per_s(text: str) -> float:
    number, unit = text.split("/")
    return float(number) / {"s": 1.0, "min": 60.0, "h": 3600.0}[unit]


# Rates as the profile writes them: per second, per minute or per hour, some zero.
SHORT_RATES = st.one_of(
    st.just("0/s"),
    st.builds(lambda x: f"{x:.3f}/s", st.floats(0.01, 50)),
    st.builds(lambda x: f"{x:.2f}/min", st.floats(0.5, 600)),
)
LONG_RATES = st.one_of(  # hours-long stages: at most a few thousand batches, so the test stays quick
    st.just("0/min"),
    st.builds(lambda x: f"{x:.2f}/min", st.floats(0.01, 10)),
    st.builds(lambda x: f"{x:.1f}/h", st.floats(0.5, 300)),
)
SHORT = st.floats(0.1, 20)
LONG = st.sampled_from(["1h", "1h30m", "2h", "3h"])
RUNS = st.integers(1, 20)


def _duration_s(value: float | str) -> float:
    return value if isinstance(value, float) else {"1h": 3600.0, "1h30m": 5400.0, "2h": 7200.0, "3h": 10800.0}[value]


@st.composite
def open_stretch(draw: st.DrawFn) -> Stretch:
    duration = draw(st.one_of(SHORT, LONG))
    rates = LONG_RATES if isinstance(duration, str) else SHORT_RATES
    start, end = draw(rates), draw(st.one_of(st.none(), rates))  # None: a constant rate
    key = draw(st.sampled_from(["rate", "runs_rate"]))
    table: dict = {"duration": duration, key: start if end is None else {"from": start, "to": end}}
    runs = draw(st.one_of(st.none(), RUNS))  # None: the profile-wide batch shape (1 run)
    if runs is not None:
        table["batch"] = {"runs": runs, "stagger": draw(st.sampled_from(["0s", "10ms", "1.5s"]))}
    per_batch = runs or 1
    divide = per_batch if key == "runs_rate" else 1
    r0 = _per_s(start) / divide
    r1 = r0 if end is None else _per_s(end) / divide
    return Stretch(table, _duration_s(duration), r0, r1, per_batch)


@st.composite
def quiet_stretch(draw: st.DrawFn) -> Stretch:
    duration = draw(st.one_of(st.floats(0.1, 5), LONG))
    if draw(st.booleans()):
        table: dict = {"duration": duration, "pause": True}
    else:
        table = {"duration": duration, "in_flight": draw(st.integers(0, 50))}
    return Stretch(table, _duration_s(duration), 0.0, 0.0, 1)


STAGE_LISTS = st.lists(st.one_of(open_stretch(), open_stretch(), quiet_stretch()), min_size=1, max_size=6)


def integral(stretches: list[Stretch], t: float) -> float:
    """The plain integral of the batch rate from 0 to t: pauses and closed stages add nothing, nothing resets."""
    total, offset = 0.0, 0.0
    for s in stretches:
        span = min(max(t - offset, 0.0), s.duration_s)
        total += s.batches_from * span + (s.batches_to - s.batches_from) * span * span / (2 * s.duration_s)
        offset += s.duration_s
    return total


@settings(max_examples=200, deadline=None)
@given(STAGE_LISTS, st.lists(st.floats(0, 1), min_size=1, max_size=10))
def test_cumulative_starts_follow_the_integral_within_one_batch(stretches: list[Stretch], points: list[float]) -> None:
    profile = parse_profile({"stages": [s.table for s in stretches]}, "p.toml", Path())
    starts = list(open_starts(profile))
    dues = [s.due_s for s in starts]
    assert dues == sorted(dues)
    assert [s.seq for s in starts] == list(range(len(starts)))
    windows = stage_windows(profile)
    for start in starts:  # every start lies inside an open stage of its own index, with that stage's shape
        window = windows[start.stage]
        assert isinstance(window.stage.load, OpenLoad)
        assert window.start_s - 1e-9 <= start.due_s <= window.end_s + 1e-9
        assert start.shape.runs == stretches[start.stage].runs
    # Checked at random instants, at every due time and just before it: a batch is never early (the integral
    # has reached its number when it starts) nor late (it had not just before).
    instants = [f * profile.duration_s for f in points]
    instants += [t for due in dues for t in (due, due - 1e-6) if t >= 0]
    for t in instants:
        started = bisect.bisect_right(dues, t)
        expected = integral(stretches, t)
        slack = 1e-6 * max(1.0, expected)
        assert expected - slack <= started <= expected + 1 + slack, (t, started, expected)


@settings(max_examples=100, deadline=None)
@given(STAGE_LISTS)
def test_per_stage_counts_from_the_integral_are_the_batches_started(stretches: list[Stretch]) -> None:
    profile = parse_profile({"stages": [s.table for s in stretches]}, "p.toml", Path())
    started = Counter(start.stage for start in open_starts(profile))
    stages, total = estimate(profile)
    for window, row in zip(stage_windows(profile), stages, strict=True):
        if isinstance(window.stage.load, OpenLoad):
            assert row.batches == started[window.index]
            assert row.runs == started[window.index] * window.stage.batch.runs
    assert sum(span.batches for span in open_spans(profile)) == sum(started.values())
    assert total.batches >= sum(started.values())


@settings(max_examples=100, deadline=None)
@given(STAGE_LISTS, st.sampled_from(["45ms", "3s", "55s", "10m"]))
def test_the_planned_peak_covers_every_window_of_starts(stretches: list[Stretch], call: str) -> None:
    profile = parse_profile({"stages": [s.table for s in stretches], "mean_call_duration": call}, "p.toml", Path())
    starts = list(open_starts(profile))
    _, total = estimate(profile)
    # Every run lives at least the call: runs started less than a call apart are in flight together. The plan
    # is a fluid: in a window, each stage may start one batch more than its share of the integral holds.
    call_s = profile.mean_call_duration_s
    dues = [s.due_s for s in starts]
    runs_by = list(itertools.accumulate((s.shape.runs for s in starts), initial=0))
    for k, due in enumerate(dues):
        first = bisect.bisect_right(dues, due - call_s)
        in_window = runs_by[k + 1] - runs_by[first]
        one_more_each = sum(stretches[stage].runs for stage in {s.stage for s in starts[first : k + 1]})
        assert in_window <= total.peak_in_flight + one_more_each + 1e-6 * max(1.0, in_window)
