"""What a profile is expected to cost before anything is sent: batches, runs, peak runs in flight, HTTP requests
and money per stage and in all (``stressor plan``). Pure: estimates from the profile and the pacer alone.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from stressor.plan import OpenSpan, open_spans, stage_windows
from stressor.polling import SCAN_PAGE_SIZE, PollSchedule, even_scan_reads_all, fallback_seconds
from stressor.profile import BatchShape, ClosedLoad, OpenLoad, Profile
from stressor.units import format_duration


@dataclass(frozen=True, slots=True)
class StageEstimate:
    """What a stage (or the whole profile) is expected to cost, before anything is sent.

    ``peak_in_flight`` is the most runs in flight at any moment of the stage, runs that earlier stages started
    and that are still going included.
    """

    name: str
    model: str
    duration_s: float
    batches: int
    runs: int
    peak_in_flight: float
    requests: int
    cost_cents: float


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What the estimates rest on, stated with them: none of it is measured."""

    mean_call_duration_s: float
    poll_interval_s: float
    poll_interval_max_s: float | None  # None: polls at a fixed interval
    webhooks: bool  # runs end by webhook; polls only for runs whose event is late
    webhook_fallback_s: float | None  # with webhooks: when a late run is polled (None: never)
    cost_per_run_cents: float
    charge_multiplier: float
    run_cost_cents: float
    grace_s: float


def assumptions(profile: Profile) -> Assumptions:
    """The figures the plan takes from the profile rather than from the load shape."""
    webhooks = profile.webhooks.enabled
    return Assumptions(
        mean_call_duration_s=profile.mean_call_duration_s,
        poll_interval_s=profile.target.poll_interval_s,
        poll_interval_max_s=profile.target.poll_interval_max_s,
        webhooks=webhooks,
        webhook_fallback_s=fallback_seconds(profile) if webhooks else None,
        cost_per_run_cents=profile.cost.cost_per_run_cents,
        charge_multiplier=profile.cost.charge_multiplier,
        run_cost_cents=profile.cost.run_cost_cents,
        grace_s=profile.grace_s,
    )


def _schedule(profile: Profile) -> PollSchedule:
    target = profile.target
    return PollSchedule(target.poll_interval_s, max(target.poll_interval_max_s or 0.0, target.poll_interval_s))


def polls_within(schedule: PollSchedule, span_s: float) -> int:
    """Polls of one batch in its first ``span_s`` seconds of polling, at the schedule's growing intervals.

    The interval is ``interval`` until ``interval / growth`` seconds of age, then ``growth`` times the age,
    then ``max_interval`` from ``max_interval / growth`` on: the count is the integral of 1 / interval.
    """
    if span_s <= 0:
        return 0
    low, high, growth = schedule.interval_s, schedule.max_interval_s, schedule.growth
    grow_from, grow_to = low / growth, high / growth
    polls = min(span_s, grow_from) / low
    if span_s > grow_from and high > low:
        polls += math.log(min(span_s, grow_to) / grow_from) / growth
    if span_s > grow_to:
        polls += (span_s - grow_to) / high
    return math.ceil(polls - 1e-9)


def _detection_s(profile: Profile, age_s: float) -> float:
    """How long after a run ends the client sees it: the next webhook (at once) or the next poll."""
    if profile.webhooks.enabled:
        return 0.0
    return _schedule(profile).next_interval(age_s)


def _run_lifetime_s(profile: Profile, shape: BatchShape) -> float:
    """Mean time a run is in flight as seen by the client: its stagger offset, the call, one poll to see it."""
    age_at_end = (shape.runs - 1) * shape.stagger_s / 2 + profile.mean_call_duration_s
    return age_at_end + _detection_s(profile, age_at_end)


def _polls_per_batch(profile: Profile, shape: BatchShape) -> int:
    """Polls of one batch until its last run is seen to end (webhooks: only the late runs' fallback polls)."""
    schedule = _schedule(profile)
    age_at_end = (shape.runs - 1) * shape.stagger_s + profile.mean_call_duration_s
    if not profile.webhooks.enabled:
        return polls_within(schedule, age_at_end + schedule.next_interval(age_at_end))
    fallback = fallback_seconds(profile)
    if fallback is None or fallback >= age_at_end:
        return 0  # every event comes before its run is polled
    return polls_within(schedule, age_at_end - fallback + schedule.next_interval(age_at_end - fallback))


def _requests(profile: Profile, batches: int, runs: int, shape: BatchShape, duration_s: float) -> int:
    if runs == 0:
        return 0
    # GETs per call, after its run ended: its grade (webhooks bring grades), its log, its transcript
    per_call = int(profile.grades.fetch and not profile.webhooks.enabled)
    per_call += int(profile.calls.fetch) + int(profile.calls.transcripts)
    grades = runs * per_call  # every run that ends has a call, at most
    posts = runs if profile.target.submit == "single" else batches
    polls = _polls_per_batch(profile, shape)
    if not polls:
        return posts + grades  # webhooks end every run
    lifetime_s = _run_lifetime_s(profile, shape)
    # runs in flight, newest first in the list: never more than the stage starts (one batch in a short stage)
    depth = min(runs, runs / duration_s * lifetime_s) if duration_s > 0 else runs
    runs_per_batch = 1 if profile.target.submit == "single" else shape.runs
    if not profile.webhooks.enabled and even_scan_reads_all(runs_per_batch, SCAN_PAGE_SIZE):
        # The runs in flight are packed at the top of the list: the shared scan reaches all of them (the
        # target's rule, ``stressor.polling.scan_reach``), at most once per poll interval while runs are open
        # (young runs keep it at the shortest), down to the oldest of them.
        scans = math.ceil((duration_s + lifetime_s) / profile.target.poll_interval_s)
        return posts + scans * max(1, math.ceil(depth / SCAN_PAGE_SIZE)) + grades
    # Polled only after the webhook fallback (the late runs are few and far apart in the list): per batch, its
    # batch polls, and at most one list lookup per poll that saw runs end.
    return batches * (1 + polls + min(shape.runs, polls)) + grades


@dataclass(frozen=True, slots=True)
class _Curve:
    """Runs in flight over time, as a fluid: a sum of pieces that are quadratic between ``breaks``."""

    spans: tuple[OpenSpan, ...]  # in stage order, so their starts and ends are sorted
    lifetimes: Mapping[int, float]  # per stage index
    longest: float  # the longest of the lifetimes
    drains: tuple[tuple[float, float, float], ...] = ()  # closed stages: (end, own runs at the end, lifetime)

    def at(self, t: float) -> float:
        """Runs in flight at ``t``: open runs started within a lifetime before ``t``, closed runs draining."""
        # Only stages that ended less than a lifetime before t still hold runs: look at those alone, so a
        # profile of thousands of stages plans in a moment.
        since = t - self.longest
        in_flight = 0.0
        first = bisect.bisect_left(self.spans, since, key=lambda span: span.window.end_s)
        for span in self.spans[first:]:
            if span.window.start_s > t:
                break
            runs = span.window.stage.batch.runs
            in_flight += runs * (span.started_by(t) - span.started_by(t - self.lifetimes[span.window.index]))
        first = bisect.bisect_left(self.drains, since, key=lambda drain: drain[0])
        for end, runs_at_end, lifetime in self.drains[first:]:
            if end > t:
                break
            in_flight += runs_at_end * max(1.0 - (t - end) / lifetime, 0.0)
        return in_flight

    def breaks(self) -> list[float]:
        """Where a piece may change its formula, sorted."""
        points: set[float] = set()
        for span in self.spans:
            lifetime = self.lifetimes[span.window.index]
            for edge in (span.window.start_s, span.window.end_s):
                points.update((edge, edge + lifetime))
        for end, _, lifetime in self.drains:
            points.update((end, end + lifetime))
        return sorted(points)

    def peak(self, start: float, end: float, breaks: list[float]) -> float:
        """The exact maximum over [start, end], given the sorted ``breaks``: each piece between breaks is a
        quadratic, so its maximum is at an end or at its vertex, found from three points."""
        inside = breaks[bisect.bisect_right(breaks, start) : bisect.bisect_left(breaks, end)]
        points = [start, *inside, end] if end > start else [start]
        best = max(self.at(p) for p in points)
        for a, b in itertools.pairwise(points):
            fa, fm, fb = self.at(a), self.at((a + b) / 2), self.at(b)
            curvature = fa - 2 * fm + fb
            if curvature < 0 and abs(fa - fb) < -2 * curvature:  # a vertex inside (a, b)
                best = max(best, fm - (fb - fa) ** 2 / (8 * curvature))
        return best


def _curve(profile: Profile, spans: list[OpenSpan]) -> _Curve:
    windows = stage_windows(profile)
    lifetimes = {w.index: _run_lifetime_s(profile, w.stage.batch) for w in windows}
    curve = _Curve(tuple(spans), lifetimes, max(lifetimes.values(), default=0.0))
    drains: list[tuple[float, float, float]] = []
    for window in windows:
        load = window.stage.load
        if isinstance(load, ClosedLoad):
            # The engine tops up against every run in flight, earlier stages' included: at its end a closed
            # stage owns only what its target holds beyond the runs still left from before.
            own = max(load.runs_in_flight.end - curve.at(window.end_s), 0.0)
            drains.append((window.end_s, own, lifetimes[window.index]))
            curve = replace(curve, drains=tuple(drains))
    return curve


def estimate(profile: Profile) -> tuple[list[StageEstimate], StageEstimate]:
    """Per-stage and total estimates: batches, runs, peak runs in flight, requests, cost.

    Open stages' batches come from the integral of the rate (``open_spans``), never from a walk over the
    batches, so the cost guard is as quick for a day-long soak as for a smoke test. Runs stay in flight for a
    lifetime (stagger offset, ``mean_call_duration``, the poll or webhook that reports the end): the runs in
    flight at t are those started in the lifetime before t, whatever stage started them (Little's law once a
    stage outlasts a lifetime), plus what a closed stage holds and then lets drain.
    """
    spans = open_spans(profile)
    batches_of = {span.window.index: span.batches for span in spans}
    curve = _curve(profile, spans)
    breaks = curve.breaks()
    stages = []
    for window in stage_windows(profile):
        stage, load = window.stage, window.stage.load
        shape, lifetime = stage.batch, _run_lifetime_s(profile, stage.batch)
        carried_peak = curve.peak(window.start_s, window.end_s, breaks)
        if isinstance(load, OpenLoad):
            batches = batches_of[window.index]
            runs = batches * shape.runs
            peak = carried_peak
            model = "open"
        elif isinstance(load, ClosedLoad):
            peak = max(load.runs_in_flight.peak, carried_peak)  # the engine counts earlier runs as in flight
            # Every run in flight at the peak is one run at least, however long the calls.
            target_peak = math.ceil(load.runs_in_flight.peak)
            runs = max(math.ceil(load.runs_in_flight.mean * stage.duration_s / lifetime), target_peak)
            batches = math.ceil(runs / shape.runs)
            model = "closed"
        else:
            batches = runs = 0
            peak = carried_peak
            model = "pause"
        stages.append(
            StageEstimate(
                name=stage.name,
                model=model,
                duration_s=stage.duration_s,
                batches=batches,
                runs=runs,
                peak_in_flight=peak,
                requests=_requests(profile, batches, runs, shape, stage.duration_s),
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


def plan_document(profile: Profile) -> dict[str, Any]:
    """The plan as ``stressor plan --json`` prints it: the assumptions, every stage, the total."""
    stages, total = estimate(profile)
    return {
        "profile": profile.name,
        "assumptions": asdict(assumptions(profile)),
        "stages": [asdict(s) for s in stages],
        "total": asdict(total),
    }


def assumptions_line(profile: Profile) -> str:
    """The assumptions in one line, for the head of ``stressor plan``."""
    stated = assumptions(profile)
    if stated.webhooks:
        fallback = stated.webhook_fallback_s
        ends = "runs end by webhook, " + (
            f"late ones polled after {format_duration(fallback)}" if fallback is not None else "never polled"
        )
    else:
        ends = f"poll interval {format_duration(stated.poll_interval_s)}"
        bound = stated.poll_interval_max_s
        if bound is not None and bound > stated.poll_interval_s:
            ends += f" growing to {format_duration(bound)}"
    return (
        f"mean call duration {format_duration(stated.mean_call_duration_s)} (profile: mean_call_duration), "
        f"{ends}, {stated.run_cost_cents:g} cents per run "
        f"({stated.cost_per_run_cents:g} x {stated.charge_multiplier:g})"
    )
