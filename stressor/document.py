"""The results document (``stressor.results/1``, docs/results.md) as frozen, typed values. Pure.

``load_results`` is the one place a document from outside is checked: a field of the wrong type is refused with
one sentence naming it; a field that is missing or null (a partial file, or one written before the field existed)
reads as not there: None, or an empty section. ``to_json`` gives the file's JSON back.
"""

from __future__ import annotations

import json
import math
import operator
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType, NoneType, UnionType
from typing import Any

SCHEMA = "stressor.results/1"
MEASURES = (
    "queue_to_completion",
    "start_lateness",
    "submit_rtt",
    "time_queued",
    "time_in_progress",
    "detection_delay",
)
PERCENTILES = ("p50", "p90", "p95", "p99", "p99_9")


class ResultsError(ValueError):
    """A results document that cannot be read: the message is one sentence naming the field and what is wrong."""


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


class _Part:
    """A part of the document: written back as the JSON object it was read from.

    ``None`` is written as null only for the fields in ``NULLABLE`` (those the format allows null in); elsewhere it
    means the field is not there (an older file), and the key is left out. ``ORDER`` overrides the fields' order.
    """

    __slots__ = ()
    NULLABLE: frozenset[str] = frozenset()
    ORDER: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The part as the results file holds it."""
        names, values, nested = _DUMPS[type(self)]
        nullable = self.NULLABLE
        return {
            name: _to_json(value) if name in nested else value
            for name, value in zip(names, values(self), strict=True)
            if value is not None or name in nullable
        }


def _to_json(value: object) -> object:
    if isinstance(value, _Part):
        return value.to_json()
    if isinstance(value, Mapping):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


# ------------------------------------------------------------------------------------------------------ parts


@dataclass(frozen=True, slots=True)
class Figures(_Part):
    """A measure's figures over some runs, in seconds (the statistics are None when there was no value)."""

    count: int | None = None
    min: float | None = None
    mean: float | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    clamped: int | None = None

    NULLABLE = frozenset({"min", "mean", "max"})  # the percentiles of an empty measure are left out

    def percentiles(self) -> list[tuple[float, float]]:
        """The percentiles the figures state, as (fraction 0..1, seconds), lowest first."""
        stated = ((float(key[1:].replace("_", ".")) / 100, getattr(self, key)) for key in PERCENTILES)
        return [(q, float(v)) for q, v in stated if v is not None]


@dataclass(frozen=True, slots=True)
class MeasureFigures(Figures):
    """One of the document's measures: its figures, where its two ends come from, and its HDR histogram."""

    source: str | None = None
    hdr: str | None = None  # compressed, base64, in microseconds; None when empty

    NULLABLE = frozenset({"min", "mean", "max", "hdr"})
    ORDER = ("source", "count", "min", "mean", "max", *PERCENTILES, "clamped", "hdr")


@dataclass(frozen=True, slots=True)
class GradeFigures(_Part):
    """Grades (0..1) of some runs."""

    count: int | None = None
    mean: float | None = None
    min: float | None = None
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None
    max: float | None = None
    below_threshold: int | None = None
    ungraded: int | None = None

    NULLABLE = frozenset({"mean", "min", "p10", "p50", "p90", "max"})


@dataclass(frozen=True, slots=True)
class Grades(GradeFigures):
    """The run's grades, with the threshold below which a grade is a quality failure."""

    threshold: float | None = None

    NULLABLE = frozenset({"threshold", "mean", "min", "p10", "p50", "p90", "max"})
    ORDER = ("threshold", "count", "mean", "min", "p10", "p50", "p90", "max", "below_threshold", "ungraded")


@dataclass(frozen=True, slots=True)
class Outcomes(_Part):
    """Runs by how they ended."""

    completed: int | None = None
    failed: int | None = None
    open: int | None = None
    errored: int | None = None
    rejected: int | None = None
    unknown: int | None = None  # results written before it have none

    @property
    def settled(self) -> int:
        """Runs that settled: completed, failed, errored or rejected (the failure rate's denominator)."""
        return sum(n or 0 for n in (self.completed, self.failed, self.errored, self.rejected))


@dataclass(frozen=True, slots=True)
class Runs(Outcomes):
    """The run counts: planned, submitted, by outcome, and not started by cause."""

    planned: int | None = None
    submitted: int | None = None
    not_started: Mapping[str, int] | None = None

    ORDER = ("planned", "submitted", "completed", "failed", "open", "errored", "rejected", "unknown", "not_started")


@dataclass(frozen=True, slots=True)
class ProfileInfo(_Part):
    name: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class TargetInfo(_Part):
    kind: str | None = None
    embedded_simulator: bool | None = None
    base_url: str | None = None
    api_key: str | None = None  # masked; only against a real API


@dataclass(frozen=True, slots=True)
class Generator(_Part):
    """Did the client keep to its schedule?"""

    dispatch_lag_p99: float | None = None
    limit: float | None = None
    behind: bool | None = None

    NULLABLE = frozenset({"dispatch_lag_p99"})


@dataclass(frozen=True, slots=True)
class Load(_Part):
    offered_runs_per_s: float | None = None
    achieved_runs_per_s: float | None = None
    requests_per_ended_run: float | None = None

    NULLABLE = frozenset({"requests_per_ended_run"})


@dataclass(frozen=True, slots=True)
class LimitsReport(_Part):
    """What the governor did."""

    mode: str | None = None
    throttle_wait_s: float | None = None
    client_wait_s: float | None = None  # results written before the waits were split have only throttle_wait_s
    server_rate_wait_s: float | None = None
    server_pause_s: float | None = None
    capacity_wait_s: float | None = None
    responses: Mapping[str, int] | None = None
    learned_rates: Mapping[str, float | None] | None = None
    learned_rate: float | None = None  # results written before the rates were per kind of request
    retries: Mapping[str, int] | None = None
    retry_after: Figures | None = None
    unparseable_headers: Mapping[str, int] | None = None
    runs_in_flight_limit: int | None = None
    breaker: str | None = None

    NULLABLE = frozenset({"runs_in_flight_limit", "breaker"})


@dataclass(frozen=True, slots=True)
class ScenarioVerdict(_Part):
    """How a scenario's runs fared against its expected outcome (docs/profiles.md ``[scenarios]``)."""

    status: str | None = None  # passed, failed or undecided
    expected: str | None = None
    matched: int | None = None
    mismatched: int | None = None
    undecided: int | None = None
    observed: Mapping[str, int] | None = None  # runs by what they came to: "completed/success", "failed"...


@dataclass(frozen=True, slots=True)
class ScenarioVerdicts(_Part):
    """Scenarios with an expected outcome, by verdict."""

    passed: int | None = None
    failed: int | None = None
    undecided: int | None = None


@dataclass(frozen=True, slots=True)
class Slice(_Part):
    """The figures of one variant or one scenario."""

    outcomes: Outcomes = field(default_factory=Outcomes)
    queue_to_completion: Figures = field(default_factory=Figures)
    time_in_progress: Figures = field(default_factory=Figures)
    measures: Mapping[str, Figures] | None = None  # results written before it have the two above alone
    not_started: Mapping[str, int] | None = None
    submitted: int | None = None
    estimated_cost_cents: float | None = None
    grades: GradeFigures = field(default_factory=GradeFigures)
    expected_outcome: str | None = None  # a scenario's, when its corpus entry states one
    goal: str | None = None  # a scenario's, when its corpus entry states one (shown, never checked)
    verdict: ScenarioVerdict | None = None  # a scenario's, when it has an expected outcome


@dataclass(frozen=True, slots=True)
class SampleFigures(_Part):
    """A variant's values of a compared measure: exact, from its run records (seconds, or a 0..1 grade)."""

    count: int | None = None
    min: float | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    max: float | None = None

    NULLABLE = frozenset({"min", "mean", "p50", "p90", "max"})


@dataclass(frozen=True, slots=True)
class VariantDifference(_Part):
    """A variant's percentile minus the reference's (``estimate``), its bootstrap interval ``[low, high]`` and
    the Mann-Whitney test's two-sided ``p_value``; ``significant`` when both say there is a difference."""

    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    significant: bool | None = None

    NULLABLE = frozenset({"p_value"})


@dataclass(frozen=True, slots=True)
class ComparedMeasure(_Part):
    """One measure compared across the variants: each variant's figures, and each other variant's difference
    from the reference by percentile (``p50``, ``p90``); a variant with too few values has none."""

    unit: str | None = None  # "s" or "score"
    source: str | None = None
    variants: Mapping[str, SampleFigures] = field(default_factory=_empty)
    differences: Mapping[str, Mapping[str, VariantDifference]] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class VariantComparison(_Part):
    """The variants (product tiers, say) side by side, each compared with the ``reference`` variant."""

    reference: str | None = None
    confidence: float | None = None
    runs: str | None = None  # which runs the values come from
    measures: Mapping[str, ComparedMeasure] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Webhooks(_Part):
    url: str | None = None
    received: int | None = None
    accepted: int | None = None
    duplicates: int | None = None
    bad_signature: Mapping[str, int] | None = None
    rejected_other: int | None = None
    slow_body: int | None = None
    wrong_path: int | None = None
    unknown_type: int | None = None
    by_type: Mapping[str, int] | None = None
    batches_polled_late: int | None = None

    NULLABLE = frozenset({"url"})


@dataclass(frozen=True, slots=True)
class ListFacts(_Part):
    """What the run list was seen to do where the docs are silent."""

    order: str | None = None
    offset: str | None = None
    page_cap: int | None = None
    names: str | None = None
    name_length: int | None = None

    NULLABLE = frozenset({"page_cap", "name_length"})


@dataclass(frozen=True, slots=True)
class PreflightRunList(ListFacts):
    read: bool | None = None
    listed: int | None = None
    length: int | None = None

    NULLABLE = frozenset({"page_cap", "name_length", "length"})


@dataclass(frozen=True, slots=True)
class PreflightBatchList(_Part):
    order: str | None = None
    listed: int | None = None
    length: int | None = None
    longest_name: int | None = None
    unnamed: int | None = None

    NULLABLE = frozenset({"length"})


@dataclass(frozen=True, slots=True)
class Preflight(_Part):
    run_list: PreflightRunList = field(default_factory=PreflightRunList)
    batch_list: PreflightBatchList = field(default_factory=PreflightBatchList)


@dataclass(frozen=True, slots=True)
class ClockOffset(_Part):
    """The server's clock minus this machine's."""

    offset_s: float | None = None
    error_s: float | None = None
    samples: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Server(_Part):
    """What stressor learned of the server where the docs are silent."""

    preflight: Preflight | None = None
    run_list: ListFacts = field(default_factory=ListFacts)
    clock_offset: ClockOffset | None = None
    runs_not_found: int | None = None

    NULLABLE = frozenset({"preflight", "clock_offset"})


@dataclass(frozen=True, slots=True)
class StageTarget(_Part):
    start: float | None = None
    end: float | None = None
    unit: str | None = None  # "batches/s" or "runs in flight"


@dataclass(frozen=True, slots=True)
class Stage(_Part):
    """One of the plan's stages."""

    name: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    model: str | None = None  # "open", "closed" or "pause"
    target: StageTarget | None = None  # None for a pause
    runs_per_batch: int | None = None

    NULLABLE = frozenset({"target"})


@dataclass(frozen=True, slots=True)
class IntervalRuns(_Part):
    queued: int | None = None
    in_progress: int | None = None
    completed: int | None = None
    failed: int | None = None
    errored: int | None = None  # results written before these three have none
    rejected: int | None = None
    open: int | None = None
    in_flight: int | None = None


@dataclass(frozen=True, slots=True)
class IntervalLatency(_Part):
    count: int | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None

    NULLABLE = frozenset({"max"})


@dataclass(frozen=True, slots=True)
class IntervalFigures(_Part):
    """One interval of the series (seconds since the start)."""

    start: float | None = None
    end: float | None = None
    runs: IntervalRuns = field(default_factory=IntervalRuns)
    requests_per_s: float | None = None
    throttled_s: float | None = None
    queue_to_completion: IntervalLatency = field(default_factory=IntervalLatency)


@dataclass(frozen=True, slots=True)
class RunEntry(_Part):
    """One run's record (``run_records``)."""

    run_id: str | None = None
    batch_id: str | None = None
    batch_seq: int | None = None
    index: int | None = None
    stage: int | None = None
    variant: str | None = None
    scenario: str | None = None
    outcome: str | None = None
    error: str | None = None
    due_s: float | None = None
    detected_s: float | None = None
    due_at: float | None = None
    created_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    cost_cents: float | None = None
    stagger_s: float | None = None
    call_id: str | None = None
    grade: float | None = None
    call_outcome: str | None = None  # the grade's; left out when no grade said one (and in older results)
    clock_offset_s: float | None = None
    # from the call's log ([calls] fetch): left out of the file when not known (not fetched, or null in it)
    call_duration_s: float | None = None
    end_reason: str | None = None
    product: str | None = None
    billable_minutes: float | None = None
    billing_total_cents: float | None = None

    NULLABLE = frozenset(
        {
            "run_id",
            "batch_id",
            "error",
            "detected_s",
            "created_at",
            "started_at",
            "completed_at",
            "cost_cents",
            "call_id",
            "grade",
        }
    )


@dataclass(frozen=True, slots=True)
class Calls(_Part):
    """What came of fetching the runs' call logs: the calls log's path, call logs fetched, calls whose log
    could not be had (by class), transcripts fetched and those that could not be had (by class)."""

    log: str | None = None
    fetched: int | None = None
    failed: Mapping[str, int] | None = None
    transcripts: int | None = None
    transcripts_failed: Mapping[str, int] | None = None

    NULLABLE = frozenset({"log"})


@dataclass(frozen=True, slots=True)
class Results(_Part):
    """A run's results document. A live one (the figures so far, for ``abort`` thresholds) has no header."""

    schema: str | None = None
    profile: ProfileInfo = field(default_factory=ProfileInfo)
    target: TargetInfo = field(default_factory=TargetInfo)
    started_at: float | None = None  # epoch seconds
    ended_at: float | None = None
    elapsed_s: float | None = None
    interrupted: bool = False
    stop_reason: str | None = None
    runs: Runs = field(default_factory=Runs)
    failure_rate: float | None = None
    generator: Generator = field(default_factory=Generator)
    load: Load = field(default_factory=Load)
    limits: LimitsReport = field(default_factory=LimitsReport)
    errors: Mapping[str, int] | None = None
    requests: Mapping[str, int] | None = None
    estimated_cost_cents: float | None = None
    measures: Mapping[str, MeasureFigures] = field(default_factory=_empty)
    grades: Grades = field(default_factory=Grades)
    variants: Mapping[str, Slice] = field(default_factory=_empty)
    variant_comparison: VariantComparison | None = None  # None: fewer than two variants ran
    scenarios: Mapping[str, Slice] = field(default_factory=_empty)
    scenario_verdicts: ScenarioVerdicts | None = None  # None: no scenario states an expected outcome
    webhooks: Webhooks | None = None  # None: the run did not use webhooks
    server: Server | None = None
    calls: Calls | None = None  # None: call logs were not fetched
    stages: tuple[Stage, ...] | None = None  # None: written before the stages were
    interval_s: float | None = None
    intervals: tuple[IntervalFigures, ...] = ()
    run_records: tuple[RunEntry, ...] = ()
    thresholds: tuple[str, ...] | None = None  # the run's gates, as written

    NULLABLE = frozenset({"stop_reason", "failure_rate", "webhooks", "server"})

    def slices(self, scope: str) -> Mapping[str, Slice]:
        """``variants`` or ``scenarios``, by the scope's name (``variant``, ``scenario``)."""
        return self.variants if scope == "variant" else self.scenarios


# ----------------------------------------------------------------------------------------------- the loader

# A check takes a JSON value, where its container is and its key there (formatted only for an error), and gives
# the typed value or raises ResultsError.
_Check = Callable[[Any, str, "str | int"], Any]
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def _at(where: str, key: str | int) -> str:
    """``runs`` + ``completed`` -> ``runs.completed``; an index or a key that is not a plain word is bracketed."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{where}.{key}" if where else key
    return f"{where}[{json.dumps(key, ensure_ascii=False)}]"


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong(value: object, expected: str, where: str, key: str | int | None = None) -> ResultsError:
    place = _at(where, key) if key not in (None, "") else where or "the document"
    return ResultsError(f"{place} is {_shown(value)}, not {expected}.")


def _finite(value: Any) -> bool:
    """A JSON number a float can hold (not a boolean, NaN, an infinity or an integer of 400 digits)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _count(value: Any, where: str, key: str | int) -> int:
    if type(value) is int and value >= 0:  # the common case, first
        return value
    if _finite(value) and value >= 0 and float(value).is_integer():
        return int(value)
    raise _wrong(value, "a count (a whole number, 0 or more)", where, key)


def _number(value: Any, where: str, key: str | int) -> float:
    if (type(value) is float and math.isfinite(value)) or _finite(value):
        return value
    raise _wrong(value, "a number", where, key)


def _text(value: Any, where: str, key: str | int) -> str:
    if isinstance(value, str):
        return value
    raise _wrong(value, "a string", where, key)


def _flag(value: Any, where: str, key: str | int) -> bool:
    if isinstance(value, bool):
        return value
    raise _wrong(value, "true or false", where, key)


def _nullable(check: _Check) -> _Check:
    def nullable(value: Any, where: str, key: str | int) -> Any:
        return None if value is None else check(value, where, key)

    return nullable


def _mapping(check: _Check) -> _Check:
    def mapping(value: Any, where: str, key: str | int) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _wrong(value, "an object", where, key)
        here = _at(where, key)
        return MappingProxyType({name: check(item, here, str(name)) for name, item in value.items()})

    return mapping


def _sequence(check: _Check) -> _Check:
    def sequence(value: Any, where: str, key: str | int) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise _wrong(value, "a list", where, key)
        here = _at(where, key)
        return tuple(check(item, here, index) for index, item in enumerate(value))

    return sequence


def _part(cls: type[_Part]) -> _Check:
    def part(value: Any, where: str, key: str | int) -> _Part:
        if not isinstance(value, Mapping):
            raise _wrong(value, "an object", where, key)
        here = _at(where, key) if key != "" else ""
        given = {}
        for name, check in _CHECKS[cls]:
            item = value.get(name)
            if item is not None:  # missing or null: the field's default
                given[name] = check(item, here, name)
        return cls(**given)

    return part


_SCALARS: Mapping[object, _Check] = MappingProxyType({int: _count, float: _number, str: _text, bool: _flag})
_SCALARS_OR_NONE = frozenset({int, float, str, bool, int | None, float | None, str | None, bool | None})


def _check_of(hint: Any) -> _Check:
    """The check of a field from its type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (UnionType, typing.Union):
        (inner,) = (arg for arg in args if arg is not NoneType)
        return _nullable(_check_of(inner))
    if hint in _SCALARS:
        return _SCALARS[hint]
    if origin is Mapping:
        return _mapping(_check_of(args[1]))
    if origin is tuple:
        return _sequence(_check_of(args[0]))
    if isinstance(hint, type) and is_dataclass(hint):
        return _part(hint)
    raise TypeError(f"no check for {hint!r}")


_PARTS = (
    Figures,
    MeasureFigures,
    GradeFigures,
    Grades,
    Outcomes,
    Runs,
    ProfileInfo,
    TargetInfo,
    Generator,
    Load,
    LimitsReport,
    ScenarioVerdict,
    ScenarioVerdicts,
    Slice,
    SampleFigures,
    VariantDifference,
    ComparedMeasure,
    VariantComparison,
    Webhooks,
    ListFacts,
    PreflightRunList,
    PreflightBatchList,
    Preflight,
    ClockOffset,
    Server,
    StageTarget,
    Stage,
    IntervalRuns,
    IntervalLatency,
    IntervalFigures,
    RunEntry,
    Calls,
    Results,
)
_FIELD_NAMES: Mapping[type, tuple[str, ...]] = MappingProxyType(
    {cls: tuple(f.name for f in fields(cls)) for cls in _PARTS}
)
_CHECKS: Mapping[type, tuple[tuple[str, _Check], ...]] = MappingProxyType(
    {
        cls: tuple((name, _check_of(hint)) for name, hint in typing.get_type_hints(cls).items() if name in names)
        for cls, names in _FIELD_NAMES.items()
    }
)


def _dump_spec(cls: type[_Part]) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]], frozenset[str]]:
    """What to_json needs of a part: its keys in order, a getter of their values, and those that are not scalars."""
    order = cls.ORDER or _FIELD_NAMES[cls]
    hints = typing.get_type_hints(cls)
    getter = operator.attrgetter(*order)  # a tuple of values: every part has two fields or more
    return order, getter, frozenset(name for name in order if hints[name] not in _SCALARS_OR_NONE)


_DUMPS = MappingProxyType({cls: _dump_spec(cls) for cls in _PARTS})
_LOAD_RESULTS = _part(Results)


def load_results(document: Mapping[str, Any]) -> Results:
    """The typed document of a JSON results document; raises ResultsError naming the first field of the wrong
    type. Fields it lacks (or holds null) read as not there, so older and partial files load."""
    schema = document.get("schema") if isinstance(document, Mapping) else None
    if schema is not None and schema != SCHEMA:
        raise ResultsError(f"schema is {_shown(schema)}, not {json.dumps(SCHEMA)}.")
    return _LOAD_RESULTS(document, "", "")


def load_part(cls: type[_Part], value: Mapping[str, Any], where: str) -> Any:
    """One part of the document from its JSON (``where`` names it in errors): for parts that lower layers hand
    over as JSON (what the target learned of the server)."""
    return _part(cls)(value, "", where)


def run_entry(record: Mapping[str, Any]) -> RunEntry:
    """A run record as this version writes it (``RunRecord.to_json``), taken as it is: no check."""
    return RunEntry(*map(record.get, _FIELD_NAMES[RunEntry]))


def readonly(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy, for the document's sections."""
    return MappingProxyType(dict(mapping))

