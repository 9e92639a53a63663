"""Grades of the calls runs made: kept per call (the latest wins), then joined to runs. Pure.

A call may be graded twice (fast, then full): the latest ``graded_at`` (without stamps, the last to arrive) wins,
and on a tie the grade already held stays. Scores are normalised to 0..1 on ``[grades] scale``; a run graded
below the threshold is a *quality* failure, counted apart from call failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from stressor.scores import CallGraded, GradeScale, normalise_score


class GradeBook:
    """The current grade of every call heard of, its score read on the profile's ``[grades] scale``."""

    def __init__(self, scale: GradeScale = "auto") -> None:
        self._grades: dict[str, CallGraded] = {}
        self._scale = scale

    def __len__(self) -> int:
        return len(self._grades)

    def record(self, grade: CallGraded) -> None:
        """Keep ``grade`` unless the call already has one at least as late.

        Deliveries come out of order, so on equal ``graded_at`` the grade held stays: a fast grade that arrives
        after the full one with the same stamp must not replace it. The one exception is a grade that is not
        ``completed`` yet (pending), which a completed one with the same stamp replaces. Without stamps on
        either side, the last to arrive wins (nothing else tells them apart).
        """
        if self._scale != "auto" and grade.raw_score is not None:
            grade = replace(grade, score=normalise_score(grade.raw_score, self._scale))
        current = self._grades.get(grade.call_id)
        if current is None or current.graded_at is None or grade.graded_at is None:
            newer = True
        elif grade.graded_at == current.graded_at:
            newer = current.status != "completed" and grade.status == "completed"
        else:
            newer = grade.graded_at > current.graded_at
        if newer:
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
