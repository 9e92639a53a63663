"""Capacity search: step the load up until a service level breaks, then narrow the knee. Pure.

Each step is a short run of its own at one load level: runs in flight (closed model, the default) or batch
arrivals per second (open model). A step *holds* when every SLO (a threshold such as
``queue_to_completion.p95 < 2s``) passes on its results. A level that breaks is measured once more: it is broken
only if that re-check breaks too. The search climbs the ladder of levels to the first broken one, then bisects
between the last level held and the first broken down to a resolution. The rules: docs/reports.md#capacity-search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from stressor.document import MeasureFigures, Results
from stressor.profile import ClosedLoad, OpenLoad, Profile, Ramp, Stage
from stressor.thresholds import Threshold, Verdict, evaluate

Model = Literal["closed", "open"]
Phase = Literal["climb", "narrow"]  # climbing the ladder of levels, or bisecting the knee


@dataclass(frozen=True, slots=True)
class Step:
    """One measurement of a load level and what it gave."""

    level: float
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    failure_rate: float | None
    completed_per_s: float
    verdicts: tuple[Verdict, ...]
    achieved_per_s: float | None = None  # runs the server created per second of the step
    phase: Phase = "climb"
    recheck: bool = False  # the second measurement of a level whose first broke
    results: Results | None = field(default=None, compare=False, repr=False)  # for thresholds on the sustained step

    @property
    def held(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def runs_per_s(self) -> float:
        """What the step sustained: runs created per second (completed per second when the results lack it)."""
        return self.achieved_per_s if self.achieved_per_s is not None else self.completed_per_s


@dataclass(frozen=True, slots=True)
class Knee:
    """Where the service level broke: the last level held and the first broken, each by the measurement that
    decided it (either may be None)."""

    last_held: Step | None
    first_broke: Step | None


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """The ladder of levels to climb and how finely to narrow the knee (closed levels are whole runs)."""

    model: Model
    ladder: tuple[float, ...]
    resolution: float


@dataclass(frozen=True, slots=True)
class Try:
    """The next measurement: a level, in which phase, and whether it re-checks a break."""

    level: float
    phase: Phase
    recheck: bool = False


def levels(start: float, step: float, maximum: float) -> list[float]:
    """start, start + step, ... up to maximum (inclusive)."""
    if start <= 0 or step <= 0 or maximum < start:
        raise ValueError("capacity levels need start > 0, step > 0 and max >= start")
    count = int((maximum - start) / step + 1e-9) + 1
    return [start + i * step for i in range(count)]


def search_plan(
    model: Model, start: float, step: float, maximum: float, resolution: float | None = None
) -> SearchPlan:
    """The plan of a search; the resolution defaults to one run in flight (closed) or a quarter of the step
    (open). Raises ValueError with what is wrong."""
    if model == "closed":
        named = {"--start": start, "--step": step, "--max": maximum}
        if resolution is not None:
            named["--resolution"] = resolution
        fractional = [f"{name} {value:g}" for name, value in named.items() if not float(value).is_integer()]
        if fractional:
            verb = "is" if len(fractional) == 1 else "are"
            raise ValueError(f"closed levels are whole runs in flight: {', '.join(fractional)} {verb} not")
    ladder = levels(start, step, maximum)
    chosen = resolution if resolution is not None else (1.0 if model == "closed" else step / 4)
    if not chosen > 0:
        raise ValueError(f"--resolution must be greater than 0, not {chosen:g}")
    return SearchPlan(model, tuple(ladder), chosen)


def step_profile(profile: Profile, level: float, model: Model, duration_s: float) -> Profile:
    """The profile reduced to one stage at ``level``: the profile's first stage's batch shape, its target,
    limits and everything else kept."""
    shape = profile.stages[0].batch
    load = ClosedLoad(Ramp(level, level)) if model == "closed" else OpenLoad(Ramp(level, level))
    stage = Stage(name=f"{model} {level:g}", duration_s=duration_s, load=load, batch=shape)
    return replace(profile, stages=(stage,), thresholds=())


def measure_step(level: float, results: Results, slos: Sequence[Threshold]) -> Step:
    """A step's figures and SLO verdicts from its results document."""
    q2c = results.measures.get("queue_to_completion", MeasureFigures())
    elapsed = results.elapsed_s or 1.0
    return Step(
        level=level,
        p50_s=q2c.p50,
        p95_s=q2c.p95,
        p99_s=q2c.p99,
        failure_rate=results.failure_rate,
        completed_per_s=(results.runs.completed or 0) / elapsed,
        verdicts=tuple(evaluate(slos, results)),
        achieved_per_s=results.load.achieved_runs_per_s,
        results=results,
    )


# ------------------------------------------------------------------------------------------------ the search


def deciding(steps: Sequence[Step]) -> dict[float, Step | None]:
    """Each level measured, by the measurement that decides it: the first when it held, the re-check when the
    first broke (None while that re-check is still to come)."""
    decided: dict[float, Step | None] = {}
    for step in steps:
        if step.recheck:
            decided[step.level] = step
        elif step.level not in decided:
            decided[step.level] = step if step.held else None
    return decided


def needs_recheck(steps: Sequence[Step]) -> Step | None:
    """A measurement that broke and was not yet measured again: one noisy step must not end the search."""
    rechecked = {s.level for s in steps if s.recheck}
    return next((s for s in steps if not s.recheck and not s.held and s.level not in rechecked), None)


def knee(steps: Sequence[Step]) -> Knee:
    """The highest level held below the lowest level broken (a break counts once its re-check broke too)."""
    decided = {level: step for level, step in deciding(steps).items() if step is not None}
    broken = [step for step in decided.values() if not step.held]
    first_broke = min(broken, key=lambda s: s.level, default=None)
    ceiling = first_broke.level if first_broke is not None else math.inf
    held = [step for step in decided.values() if step.held and step.level < ceiling]
    return Knee(max(held, key=lambda s: s.level, default=None), first_broke)


def _midpoint(plan: SearchPlan, low: float, high: float) -> float | None:
    """The level between ``low`` (held, or 0) and ``high`` (broken) to try next; None when they are close
    enough (within the resolution, or no whole run in flight between them)."""
    if high - low <= plan.resolution + 1e-9:
        return None
    middle = (low + high) / 2
    if plan.model == "closed":
        middle = float(math.floor(middle))
        if middle <= low or middle < 1:
            return None
    return middle


def next_try(plan: SearchPlan, steps: Sequence[Step]) -> Try | None:
    """What to measure next, given the measurements so far (in order); None when the search is over: it
    reached the top of the ladder with no break, or narrowed the knee to the resolution."""
    pending = needs_recheck(steps)
    if pending is not None:
        return Try(pending.level, pending.phase, recheck=True)
    found = knee(steps)
    if found.first_broke is None:
        tried = {s.level for s in steps}
        climb = next((level for level in plan.ladder if level not in tried), None)
        return Try(climb, "climb") if climb is not None else None
    low = found.last_held.level if found.last_held is not None else 0.0
    middle = _midpoint(plan, low, found.first_broke.level)
    return Try(middle, "narrow") if middle is not None else None


def narrowing_steps(plan: SearchPlan) -> int:
    """The most levels bisection can try after the climb: between two rungs of the ladder, or below its first."""
    rungs = plan.ladder
    gaps = [(0.0, rungs[0])] + [(rungs[i - 1], rungs[i]) for i in range(1, len(rungs))]
    def worst(low: float, high: float) -> int:
        middle = _midpoint(plan, low, high)
        return 0 if middle is None else 1 + max(worst(low, middle), worst(middle, high))

    widest = {round(high - low, 9): (low, high) for low, high in gaps}  # equal gaps bisect alike
    return max(worst(low, high) for low, high in widest.values())


@dataclass(frozen=True, slots=True)
class TimeEstimate:
    """How long a search may take, said before it starts."""

    climb_steps: int  # every level of the ladder measured once: the search when nothing breaks
    climb_s: float
    most_steps: int  # the ladder and the narrowing, every measurement breaking once and re-checked
    most_s: float  # each of them with its whole grace period too


def time_estimate(plan: SearchPlan, duration_s: float, grace_s: float) -> TimeEstimate:
    """The time to climb the whole ladder, and the most the search can take."""
    climb = len(plan.ladder)
    most = 2 * (climb + narrowing_steps(plan))
    return TimeEstimate(climb, climb * duration_s, most, most * (duration_s + grace_s))
