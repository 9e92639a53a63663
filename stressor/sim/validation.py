"""Checking request bodies and query strings the way the API does: 400 with per-field messages.

JSON types are taken strictly (an id must be a JSON integer, not ``"42"``, ``42.0`` or ``true``), so a client
that sends the wrong type finds out here rather than against the real, billed API. Unknown fields are ignored.
Defaults follow the SDK where the docs and the SDK differ (``direction`` defaults to ``outbound``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from stressor.sim.records import (
    DIRECTIONS,
    MODES,
    RUN_STATUSES,
    TARGET_TYPES,
    BatchRequest,
    Direction,
    Mode,
    RunRequest,
    TargetType,
)

REQUIRED = "This field is required."
NOT_INTEGER = "A valid integer is required."
NOT_NUMBER = "A valid number is required."
NOT_STRING = "Not a valid string."
NOT_BOOLEAN = "Must be a valid boolean."
CONSENT = "Must be true: test calls are billed at 2x the normal rate."

MAX_RUN_COUNT = 20
MAX_STAGGER_SECONDS = 60
MAX_PAGE = 200
DEFAULT_PAGE = 50

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


class FieldErrors(Exception):
    """The request is invalid; ``errors`` maps each bad field to its messages (the 400 body)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class RunListQuery:
    """Validated query of ``GET /v1/test-calls``."""

    limit: int = DEFAULT_PAGE
    offset: int = 0
    target_type: str | None = None
    status: str | None = None
    agent_id: int | None = None


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Validated ``limit`` / ``offset`` of a plain list endpoint."""

    limit: int = DEFAULT_PAGE
    offset: int = 0


def _choice_message(value: object, choices: tuple[str, ...]) -> str:
    return f"{value!r} is not a valid choice; expected one of: {', '.join(choices)}."


class _Checker:
    """Collects messages per field while reading values out of one body."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.errors: dict[str, list[str]] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def integer(self, field: str, *, default: int | None, low: int, high: int | None = None) -> int | None:
        value = self.body.get(field)
        if value is None:
            if default is None:
                self.fail(field, REQUIRED)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, NOT_INTEGER)
            return default
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.fail(field, f"Ensure this value is {bound}.")
            return default
        return value

    def number(self, field: str, *, default: float, low: float, high: float) -> float:
        value = self.body.get(field)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(field, NOT_NUMBER)
            return default
        if not low <= value <= high:
            self.fail(field, f"Ensure this value is between {low:g} and {high:g}.")
            return default
        return float(value)

    def choice(self, field: str, choices: tuple[str, ...], *, default: str | None) -> str | None:
        value = self.body.get(field)
        if value is None:
            if default is None:
                self.fail(field, REQUIRED)
            return default
        if not isinstance(value, str) or value not in choices:
            self.fail(field, _choice_message(value, choices))
            return default
        return value

    def string(self, field: str, *, default: str) -> str:
        value = self.body.get(field)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(field, NOT_STRING)
            return default
        return value


def parse_run_fields(checker: _Checker) -> RunRequest | None:
    """Read the single-run fields (shared by single runs and batches); None when any is bad."""
    target_type = checker.choice("target_type", TARGET_TYPES, default=None)
    target_id = checker.integer("target_id", default=None, low=1)
    direction = checker.choice("direction", DIRECTIONS, default="outbound")
    mode = checker.choice("mode", MODES, default="bot")
    scenario_prompt = checker.string("scenario_prompt", default="")
    target_number = checker.body.get("target_number")
    if target_number is not None and (not isinstance(target_number, str) or not _E164.match(target_number)):
        checker.fail("target_number", "Enter a valid E.164 phone number, e.g. +14155550123.")
    consent = checker.body.get("consent_to_charge")
    if consent is None:
        checker.fail("consent_to_charge", REQUIRED)
    elif not isinstance(consent, bool):
        checker.fail("consent_to_charge", NOT_BOOLEAN)
    elif not consent:
        checker.fail("consent_to_charge", CONSENT)
    if checker.errors or target_type is None or target_id is None:
        return None
    return RunRequest(
        target_type=cast(TargetType, target_type),
        target_id=target_id,
        direction=cast(Direction, direction),
        scenario_prompt=scenario_prompt,
        mode=cast(Mode, mode),
        target_number=target_number,
    )


def parse_run_request(body: Mapping[str, Any]) -> RunRequest:
    """Validate the body of ``POST /v1/test-calls``; raises FieldErrors."""
    checker = _Checker(body)
    request = parse_run_fields(checker)
    if request is None:
        raise FieldErrors(checker.errors)
    return request


def parse_batch_request(body: Mapping[str, Any]) -> BatchRequest:
    """Validate the body of ``POST /v1/test-call-batches``; raises FieldErrors."""
    checker = _Checker(body)
    run = parse_run_fields(checker)
    run_count = checker.integer("run_count", default=3, low=1, high=MAX_RUN_COUNT)
    stagger = checker.number("stagger_seconds", default=5.0, low=0, high=MAX_STAGGER_SECONDS)
    name = checker.string("name", default="")
    prompts: tuple[str, ...] = ()
    raw_prompts = body.get("scenario_prompts")
    if raw_prompts is not None:
        if isinstance(raw_prompts, list) and all(isinstance(p, str) for p in raw_prompts):
            prompts = tuple(raw_prompts)
        else:
            checker.fail("scenario_prompts", "Expected a list of strings.")
    if checker.errors or run is None or run_count is None:
        raise FieldErrors(checker.errors)
    return BatchRequest(run=run, run_count=run_count, stagger_seconds=stagger, scenario_prompts=prompts, name=name)


def _query_int(query: Mapping[str, str], field: str, errors: dict[str, list[str]], *, low: int) -> int | None:
    raw = query.get(field)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        errors.setdefault(field, []).append(NOT_INTEGER)
        return None
    if value < low:
        errors.setdefault(field, []).append(f"Ensure this value is at least {low}.")
        return None
    return value


def parse_page_query(query: Mapping[str, str]) -> PageQuery:
    """Validate ``limit`` (default 50, above 200 is cut to 200) and ``offset``; raises FieldErrors."""
    errors: dict[str, list[str]] = {}
    limit = _query_int(query, "limit", errors, low=1)
    offset = _query_int(query, "offset", errors, low=0)
    if errors:
        raise FieldErrors(errors)
    return PageQuery(limit=min(limit or DEFAULT_PAGE, MAX_PAGE), offset=offset or 0)


def parse_run_list_query(query: Mapping[str, str]) -> RunListQuery:
    """Validate the query of ``GET /v1/test-calls`` (page plus filters); raises FieldErrors."""
    errors: dict[str, list[str]] = {}
    try:
        page = parse_page_query(query)
    except FieldErrors as bad:
        errors.update(bad.errors)
        page = PageQuery()
    target_type = query.get("target_type") or None
    if target_type is not None and target_type not in TARGET_TYPES:
        errors.setdefault("target_type", []).append(_choice_message(target_type, TARGET_TYPES))
    status = query.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        errors.setdefault("status", []).append(_choice_message(status, RUN_STATUSES))
    agent_id = _query_int(query, "agent_id", errors, low=1)
    if errors:
        raise FieldErrors(errors)
    return RunListQuery(limit=page.limit, offset=page.offset, target_type=target_type, status=status, agent_id=agent_id)
