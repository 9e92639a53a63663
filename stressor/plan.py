"""The pacer: which batches start when. A pure function of the profile and elapsed time.

Open stages define an arrival rate r(t) (piecewise linear over the whole run, zero outside open stages).
Batch k is due at the instant the integral of r reaches k, so the number of starts by time t never differs
from the integral by more than one batch, whatever the responses do: due times never slip (this is how
wrk2 avoids coordinated omission). When an open stage follows a pause or a closed stage (or opens the run),
its first batch is due at the stage's start.

Closed stages define a target of runs in flight; the engine tops up against ``target_in_flight``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from stressor.profile import BatchShape, ClosedLoad, OpenLoad, Profile, Stage


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


def _time_of_arrival(rate_start: float, rate_end: float, duration: float, count: float) -> float | None:
    """Smallest t in [0, duration] where the integral reaches ``count``; None when it never does."""
    if count <= 0:
        return 0.0 if rate_start > 0 or rate_end > 0 else None  # a stage at rate zero starts nothing
    if count > _arrivals(rate_start, rate_end, duration, duration) * (1 + 1e-12):
        return None
    a = (rate_end - rate_start) / (2 * duration)
    b = rate_start
    if a == 0:
        return count / b
    # Stable root of a t^2 + b t - count = 0: no cancellation when b dominates.
    discriminant = max(b * b + 4 * a * count, 0.0)
    return min(2 * count / (b + math.sqrt(discriminant)), duration)


def open_starts(profile: Profile) -> Iterator[BatchStart]:
    """Every batch start of the open stages, in due order. Lazy: a long soak costs nothing up front."""
    variants = len(profile.variants)
    seq = 0
    carried = 0.0  # integral of the rate up to the current stage's start
    previous_open = False
    for window in stage_windows(profile):
        load = window.stage.load
        if not isinstance(load, OpenLoad):
            previous_open = False
            continue
        if not previous_open:
            carried = float(seq)  # first batch of an open spell is due at its stage's start
        previous_open = True
        rate, duration = load.batches_per_s, window.stage.duration_s
        while True:
            offset = _time_of_arrival(rate.start, rate.end, duration, seq - carried)
            if offset is None or offset >= duration:
                break
            yield BatchStart(seq, window.start_s + offset, window.index, seq % variants, window.stage.batch)
            seq += 1
        carried += _arrivals(rate.start, rate.end, duration, duration)


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


@dataclass(frozen=True, slots=True)
class StageEstimate:
    """What a stage (or the whole profile) is expected to cost, before anything is sent."""

    name: str
    model: str
    duration_s: float
    batches: int
    runs: int
    peak_in_flight: float
    requests: int
    cost_cents: float


def _run_lifetime_s(profile: Profile, shape: BatchShape) -> float:
    """Mean time a run is in flight as seen by the client: its stagger offset, the call, one poll to see it."""
    return (shape.runs - 1) * shape.stagger_s / 2 + profile.mean_call_duration_s + profile.target.poll_interval_s


def _requests(profile: Profile, batches: int, runs: int, shape: BatchShape, duration_s: float) -> int:
    poll = profile.target.poll_interval_s
    if profile.target.submit == "single":
        # One POST per run; the shared lister reads the list endpoint about once per poll interval.
        return runs + math.ceil((duration_s + _run_lifetime_s(profile, shape)) / poll)
    batch_life = (shape.runs - 1) * shape.stagger_s + profile.mean_call_duration_s + poll
    polls = math.ceil(batch_life / poll)
    # Per batch: the POST, its batch polls, and at most one list lookup per poll that saw runs end.
    return batches * (1 + polls + min(shape.runs, polls))


def estimate(profile: Profile) -> tuple[list[StageEstimate], StageEstimate]:
    """Per-stage and total estimates: batches, runs, peak runs in flight (Little's law), requests, cost."""
    per_stage_batches = Counter(start.stage for start in open_starts(profile))
    stages = []
    for window in stage_windows(profile):
        stage, load = window.stage, window.stage.load
        shape, lifetime = stage.batch, _run_lifetime_s(profile, stage.batch)
        if isinstance(load, OpenLoad):
            batches = per_stage_batches[window.index]
            runs = batches * shape.runs
            # Little's law holds once the stage outlasts a run's lifetime; a short stage peaks at what it starts.
            peak = load.batches_per_s.peak * shape.runs * min(lifetime, stage.duration_s)
            model = "open"
        elif isinstance(load, ClosedLoad):
            peak = load.runs_in_flight.peak
            # Every run in flight at the peak is one run at least, however long the calls.
            runs = max(math.ceil(load.runs_in_flight.mean * stage.duration_s / lifetime), math.ceil(peak))
            batches = math.ceil(runs / shape.runs)
            model = "closed"
        else:
            batches = runs = 0
            peak = 0.0
            model = "pause"
        stages.append(
            StageEstimate(
                name=stage.name,
                model=model,
                duration_s=stage.duration_s,
                batches=batches,
                runs=runs,
                peak_in_flight=peak,
                requests=_requests(profile, batches, runs, shape, stage.duration_s) if runs else 0,
                cost_cents=runs * profile.cost.run_cost_cents,
            )
        )
    total = StageEstimate(
        name="total",
        model="",
        duration_s=profile.duration_s,
        batches=sum(s.batches for s in stages),
        runs=sum(s.runs for s in stages),
        peak_in_flight=max((s.peak_in_flight for s in stages), default=0.0),
        requests=sum(s.requests for s in stages),
        cost_cents=sum(s.cost_cents for s in stages),
    )
    return stages, total
