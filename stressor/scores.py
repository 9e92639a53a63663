"""A call's grade as the API writes it (``call.graded`` webhooks, ``GET /v1/calls/{id}/grade``): its score
read on 0..1 whatever scale the server uses. Pure values, read leniently: a missing or mistyped field is None."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from stressor.timestamps import parse_iso_or_none

CALL_GRADED = "call.graded"


@dataclass(frozen=True, slots=True)
class CallGraded:
    """A call's grade. ``score`` is on 0..1 (see ``normalise_score``); ``raw_score`` is the number as sent.

    The contract gives no field telling the fast grade from the full one: keep the latest per call (by
    ``graded_at`` when present, else by arrival).
    """

    type: ClassVar[str] = CALL_GRADED

    call_id: str
    score: float | None
    raw_score: float | None
    status: str | None
    call_outcome: str | None
    grader_model: str | None
    graded_at: float | None


@dataclass(frozen=True, slots=True)
class BadEvent:
    """A body that is not an event: ``reason`` is ``bad_json`` or ``bad_shape``; ``message`` says what."""

    reason: str
    message: str


GradeScale = Literal["auto", "1", "100"]
GRADE_SCALES: tuple[str, ...] = ("auto", "1", "100")


def normalise_score(value: float, scale: GradeScale = "auto") -> float | None:
    """A grade score on 0..1, read on ``scale``: ``"1"`` (the docs' 0..1, e.g. 0.8), ``"100"`` (the SDK's
    integers 0..100, e.g. 80), or ``"auto"``, a guess per value: above 1 is read as a percentage, and 1 or
    less as 0..1, so exactly 1 is a perfect score, never 1 % (a 0..100 server's scores of 0 and 1 are
    therefore misread: set the scale when the server's is known). Outside the scale's range (or not
    finite): None."""
    top = 1 if scale == "1" else 100
    if not math.isfinite(value) or value < 0 or value > top:
        return None
    if scale == "100" or (scale == "auto" and value > 1):
        return value / 100
    return float(value)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def ident(value: object) -> str | None:
    """An id as text: the API uses strings, but an integer id is taken as its decimal form."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def call_graded(data: Mapping[str, Any]) -> CallGraded | BadEvent:
    call_id = ident(data.get("call_id"))
    grade = data.get("grade")
    if call_id is None or not isinstance(grade, dict):
        return BadEvent("bad_shape", f"{CALL_GRADED}: data needs a 'call_id' and a 'grade' object")
    raw = grade.get("score")
    raw_score = float(raw) if is_number(raw) else None
    return CallGraded(
        call_id=call_id,
        score=normalise_score(raw_score) if raw_score is not None else None,
        raw_score=raw_score,
        status=text(grade.get("status")),
        call_outcome=text(grade.get("call_outcome")),
        grader_model=text(grade.get("grader_model")),
        graded_at=parse_iso_or_none(grade.get("graded_at")),
    )


def parse_grade(call_id: str, grade: object) -> CallGraded | BadEvent:
    """A grade object as ``GET /v1/calls/{id}/grade`` answers it (the same shape as ``data.grade``)."""
    return call_graded({"call_id": call_id, "grade": grade})


