"""Grades of the calls runs made: kept per call (the latest wins), then joined to runs. Pure.

A call may be graded twice (a fast grade, then a full one): the grade with the latest ``graded_at`` (or,
without stamps, the last to arrive) is the call's grade. Scores are on 0..1 (the SDK's 0..100 is normalised
when the grade is read). A run whose grade is below the profile's threshold is a *quality* failure, counted
apart from transport and call failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stressor.webhooks.events import CallGraded


class GradeBook:
    """The current grade of every call heard of."""

    def __init__(self) -> None:
        self._grades: dict[str, CallGraded] = {}

    def __len__(self) -> int:
        return len(self._grades)

    def record(self, grade: CallGraded) -> None:
        """Keep ``grade`` unless the call already has a later one."""
        current = self._grades.get(grade.call_id)
        if (
            current is None
            or current.graded_at is None
            or grade.graded_at is None
            or grade.graded_at >= current.graded_at
        ):
            self._grades[grade.call_id] = grade

    def get(self, call_id: str | None) -> CallGraded | None:
        return None if call_id is None else self._grades.get(call_id)


@dataclass
class ScoreStats:
    """Scores of a set of runs: count, mean, min, max, percentiles, and how many fell below the threshold."""

    scores: list[float] = field(default_factory=list)
    below_threshold: int = 0
    ungraded: int = 0  # completed runs whose grade never came

    def add(self, score: float | None, threshold: float | None) -> None:
        if score is None or not math.isfinite(score):
            self.ungraded += 1
            return
        self.scores.append(score)
        if threshold is not None and score < threshold:
            self.below_threshold += 1

    def to_json(self) -> dict[str, object]:
        ordered = sorted(self.scores)

        def at(p: float) -> float | None:
            return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)] if ordered else None

        return {
            "count": len(ordered),
            "mean": sum(ordered) / len(ordered) if ordered else None,
            "min": ordered[0] if ordered else None,
            "p10": at(10),
            "p50": at(50),
            "p90": at(90),
            "max": ordered[-1] if ordered else None,
            "below_threshold": self.below_threshold,
            "ungraded": self.ungraded,
        }
