"""The pacer: which batches start when. A pure function of the profile and elapsed time.

Open stages define an arrival rate r(t); batch k is due at the instant the integral of r reaches k, so due
times never slip whatever the responses do (wrk2's answer to coordinated omission): docs/profiles.md#stages.
Closed stages define a target of runs in flight; the engine tops up against ``target_in_flight``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from stressor.profile import BatchShape, ClosedLoad, OpenLoad, Profile, Ramp, Stage


@dataclass(frozen=True, slots=True)
class BatchStart:
    """One batch of the plan: when it is due (seconds after the run began) and what it holds."""

    seq: int
    due_s: float
    stage: int
    variant: int
    shape: BatchShape


@dataclass(frozen=True, slots=True)
class StageWindow:
    """Where a stage sits on the run's timeline."""

    index: int
    stage: Stage
    start_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.stage.duration_s


def stage_windows(profile: Profile) -> list[StageWindow]:
    """The stages with their start offsets."""
    windows, offset = [], 0.0
    for index, stage in enumerate(profile.stages):
        windows.append(StageWindow(index, stage, offset))
        offset += stage.duration_s
    return windows


def stage_at(profile: Profile, elapsed_s: float) -> StageWindow | None:
    """The stage running at ``elapsed_s``, or None once every stage has ended."""
    for window in stage_windows(profile):
        if elapsed_s < window.end_s:
            return window
    return None


def _arrivals(rate_start: float, rate_end: float, duration: float, t: float) -> float:
    """Integral of a linear rate over [0, t] of a stage."""
    return rate_start * t + (rate_end - rate_start) * t * t / (2 * duration)


def _time_of_arrival(rate_start: float, rate_end: float, duration: float, count: float) -> float:
    """Smallest t in [0, duration] where the stage's integral reaches ``count`` (``duration`` when it does not)."""
    if count <= 0:
        return 0.0
    a = (rate_end - rate_start) / (2 * duration)
    b = rate_start
    if a == 0:
        return min(count / b, duration) if b > 0 else duration
    # Stable root of a t^2 + b t - count = 0: no cancellation when b dominates.
    discriminant = max(b * b + 4 * a * count, 0.0)
    return min(2 * count / (b + math.sqrt(discriminant)), duration)


@dataclass(frozen=True, slots=True)
class OpenSpan:
    """An open stage's share of the plan: its batches are ``first_seq .. first_seq + batches - 1``.

    ``carried`` is the integral of the rate (in batches) over every stage before this one.
    """

    window: StageWindow
    rate: Ramp
    carried: float
    first_seq: int
    batches: int

    def started_by(self, t: float) -> float:
        """The integral of this stage's rate up to ``t`` (seconds into the run), in batches: 0 before it."""
        duration = self.window.stage.duration_s
        span = min(max(t - self.window.start_s, 0.0), duration)
        return _arrivals(self.rate.start, self.rate.end, duration, span)


def open_spans(profile: Profile) -> list[OpenSpan]:
    """How many batches each open stage starts, counted from the integral of the rate, not batch by batch.

    Batch k is due when the integral of the rate over the whole run reaches k, so an open stage holds the
    integers k in [carried, carried + integral): pauses and closed stages add nothing to the integral, and a
    fraction of a batch left at the end of an open stage is carried into the next one. A 24 h stage at
    1000/s costs the same as a 1 s one.
    """
    spans: list[OpenSpan] = []
    carried, seq = 0.0, 0
    for window in stage_windows(profile):
        load = window.stage.load
        if not isinstance(load, OpenLoad):
            continue
        rate = load.batches_per_s
        duration = window.stage.duration_s
        integral = _arrivals(rate.start, rate.end, duration, duration)
        reached = carried + integral
        # A batch the integral reaches only at the stage's last instant (to rounding) is due at the next open
        # stage's first one: sums of rates like 2/min x 20 s must not start a batch at a pause's edge by chance.
        batches = max(math.ceil(reached - 1e-9 * max(reached, 1.0)) - seq, 0) if integral > 0 else 0
        spans.append(OpenSpan(window, rate, carried, seq, batches))
        carried += integral
        seq += batches
    return spans


def open_starts(profile: Profile) -> Iterator[BatchStart]:
    """Every batch start of the open stages, in due order. Lazy: a long soak costs nothing up front."""
    variants = len(profile.variants)
    for span in open_spans(profile):
        window, rate, duration = span.window, span.rate, span.window.stage.duration_s
        for seq in range(span.first_seq, span.first_seq + span.batches):
            offset = _time_of_arrival(rate.start, rate.end, duration, seq - span.carried)
            yield BatchStart(seq, window.start_s + offset, window.index, seq % variants, window.stage.batch)


def peak_batch_rate(profile: Profile) -> float:
    """The highest batch arrival rate of any open stage (0 when there is none)."""
    return max(
        (s.load.batches_per_s.peak for s in profile.stages if isinstance(s.load, OpenLoad)),
        default=0.0,
    )


def target_in_flight(window: StageWindow, elapsed_s: float) -> int:
    """Runs a closed stage wants in flight at ``elapsed_s`` (0 for other stages)."""
    load = window.stage.load
    if not isinstance(load, ClosedLoad):
        return 0
    fraction = min(max((elapsed_s - window.start_s) / window.stage.duration_s, 0.0), 1.0)
    return math.floor(load.runs_in_flight.at(fraction) + 1e-9)
