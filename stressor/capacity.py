"""Capacity search: step the load up until a service level breaks, and find the knee. Pure.

Each step is a short run of its own at one load level: runs in flight (closed model, the default) or batch
arrivals per second (open model). A step *holds* when every SLO (a threshold such as
``queue_to_completion.p95 < 2s`` or ``failure_rate < 5%``) passes on its results; the search stops at the first
step that breaks. The knee lies between the last step that held and the first that broke.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from stressor.document import MeasureFigures, Results
from stressor.profile import ClosedLoad, OpenLoad, Profile, Ramp, Stage
from stressor.thresholds import Threshold, Verdict, evaluate

Model = Literal["closed", "open"]


@dataclass(frozen=True, slots=True)
class Step:
    """One load level and what it gave."""

    level: float
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    failure_rate: float | None
    completed_per_s: float
    verdicts: tuple[Verdict, ...]

    @property
    def held(self) -> bool:
        return all(v.passed for v in self.verdicts)


@dataclass(frozen=True, slots=True)
class Knee:
    """Where the service level broke: the last level that held and the first that broke (either may be None)."""

    last_held: Step | None
    first_broke: Step | None


def levels(start: float, step: float, maximum: float) -> list[float]:
    """start, start + step, ... up to maximum (inclusive)."""
    if start <= 0 or step <= 0 or maximum < start:
        raise ValueError("capacity levels need start > 0, step > 0 and max >= start")
    count = int((maximum - start) / step + 1e-9) + 1
    return [start + i * step for i in range(count)]


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
    )


def knee(steps: Sequence[Step]) -> Knee:
    """The last step that held before the first that broke."""
    last_held = None
    for step in steps:
        if not step.held:
            return Knee(last_held, step)
        last_held = step
    return Knee(last_held, None)
