"""Reading a call's log (``GET /v1/calls/{id}``) and transcript (``GET /v1/calls/{id}/transcript``). Pure.

Read leniently: a documented field that is missing reads as null (``missing_field``), one of the wrong type too
(``bad_field``); the rest of the answer is used, and the request is counted under the first such class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from stressor.targets.testcalls.answers import Finding, Read, bad_shape, is_id
from stressor.timestamps import parse_iso_or_none

Json = dict[str, Any]
SHOWN_NAMES = 4  # field names quoted in a finding's detail
TRANSCRIPT_BODY_LIMIT = 4 * 1024 * 1024  # bytes of a transcript used: a call log's limit would cut a long call's


def _number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


def _text(value: object) -> bool:
    return isinstance(value, str)


def _stamp(value: object) -> bool:
    return isinstance(value, str) and parse_iso_or_none(value) is not None


# The call log's documented fields (testcalls-api.md), each with the test of a value of its type; null is a
# value of every type (a call not graded yet has no grade_score).
CALL_LOG_FIELDS: Mapping[str, Callable[[object], bool]] = {
    "call_id": is_id,
    "status": _text,
    "start_time": _stamp,
    "end_time": _stamp,
    "duration_seconds": _number,
    "end_reason": _text,
    "product": _text,
    "billable_minutes": _number,
    "billing_total_cents": _number,
    "grade_score": _number,
    "grade_status": _text,
}
# A transcript turn's fields: role and content are always there, the times may be left out.
TURN_FIELDS: Mapping[str, Callable[[object], bool]] = {
    "role": _text,
    "content": _text,
    "start_ms": _number,
    "end_ms": _number,
    "ttfa_ms": _number,
}
TURN_REQUIRED = ("role", "content")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _fields(
    item: Mapping[str, Any], tests: Mapping[str, Callable[[object], bool]], required: tuple[str, ...] | None = None
) -> tuple[Json, list[str], list[str]]:
    """The fields of ``item`` named in ``tests`` (each null unless present and of its type), and the names of
    those missing (of ``required``, all when None) and mistyped."""
    values: Json = {}
    missing: list[str] = []
    mistyped: list[str] = []
    for name, test in tests.items():
        value = item.get(name)
        if name not in item:
            if required is None or name in required:
                missing.append(name)
        elif value is not None and not test(value):
            mistyped.append(f"{name} ({_kind(value)})")
            value = None
        values[name] = value
    return values, missing, mistyped


def _findings(what: str, missing: list[str], mistyped: list[str]) -> list[Finding]:
    findings = []
    if missing:
        findings.append(Finding("missing_field", f"{what} without {_names(missing)}"))
    if mistyped:
        findings.append(Finding("bad_field", f"{what} with {_names(mistyped)} of the wrong type"))
    return findings


def read_call_log(body: Any, call_id: str) -> Read[Json]:
    """A call log: its documented fields, by name (``CALL_LOG_FIELDS``), ids as text. A ``call_id`` other
    than the one asked for is noted (``bad_field``) and the one asked for is kept."""
    if not isinstance(body, dict):
        return Read(None, bad_shape(f"expected a call log object, got {_kind(body)}"))
    values, missing, mistyped = _fields(body, CALL_LOG_FIELDS)
    answered = values["call_id"]
    if answered is not None and str(answered) != call_id:
        mistyped.append(f"call_id ({str(answered)[:40]!r} for {call_id[:40]!r})")
    values["call_id"] = call_id
    return Read(values, tuple(_findings("a call log", missing, mistyped)))


def read_transcript(body: Any) -> Read[list[Json]]:
    """A transcript's turns in order, each with its fields (``TURN_FIELDS``); items that are not turns are left
    out and noted (``bad_shape``)."""
    turns = body.get("transcripts") if isinstance(body, dict) else None
    if not isinstance(turns, list):
        shown = _kind(turns) if isinstance(body, dict) else _kind(body)
        return Read(None, bad_shape(f"expected {{call_id, transcripts: [...]}}, got {shown}"))
    kept: list[Json] = []
    missing: set[str] = set()
    mistyped: set[str] = set()
    junk = 0
    for turn in turns:
        if not isinstance(turn, dict):
            junk += 1
            continue
        values, lacking, wrong = _fields(turn, TURN_FIELDS, TURN_REQUIRED)
        missing.update(lacking)
        mistyped.update(wrong)
        kept.append(values)
    findings = [Finding("bad_shape", f"{junk} of {len(turns)} turns are not objects")] if junk else []
    findings += _findings("transcript turns", sorted(missing), sorted(mistyped))
    return Read(kept, tuple(findings))
