"""Thresholds on the figures of a results document, like k6's: ``queue_to_completion.p95 < 90s``. Pure.

An expression is ``<measure> <op> <value> [abort]``; measure names map onto the results document, per variant
and scenario too. The grammar and the measures: docs/reports.md#thresholds; the finer points (slices, missing
values, ``abort``): docs/internals.md#thresholds.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from stressor.document import MEASURES, Figures, GradeFigures, Results, Slice
from stressor.units import format_duration, format_rate, parse_duration, parse_rate


class ThresholdError(ValueError):
    """A threshold expression that cannot be used; the message is one sentence naming it."""


class Kind(StrEnum):
    """What a measure counts, which decides the units its limit may carry and how it is printed."""

    DURATION = "duration"  # seconds
    SHARE = "share"  # a fraction of runs, 0..1
    COUNT = "count"
    SCORE = "score"  # a grade, 0..1
    RATE = "rate"  # per second
    NUMBER = "number"  # a plain number (requests per ended run, cents)


Scope = Literal["variant", "scenario"]


@dataclass(frozen=True, slots=True)
class Lookup:
    """A measure's value in one document, how many samples it stands on, and why it is missing if it is."""

    value: float | None
    samples: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class MeasurePath:
    """A resolved measure name, optionally scoped to one variant or scenario (``*``: every one)."""

    name: str  # within the scope: "queue_to_completion.p99", "failure_rate"
    kind: Kind
    scope: Scope | None = None
    scope_name: str | None = None

    @property
    def text(self) -> str:
        """The canonical spelling, e.g. ``variant[spark].queue_to_completion.p99``."""
        return self.name if self.scope is None else f"{self.scope}[{self.scope_name}].{self.name}"

    def with_scope_name(self, scope_name: str) -> MeasurePath:
        """The same measure for another variant or scenario (to expand ``*``)."""
        return MeasurePath(self.name, self.kind, self.scope, scope_name)


# ------------------------------------------------------------------------------------------- the vocabulary

SLICE_MEASURES = ("queue_to_completion", "time_in_progress")
DURATION_STATS = ("min", "mean", "max", "p50", "p90", "p95", "p99", "p99_9")
MEASURE_COUNT_STATS = ("count", "clamped")
GRADE_SCORE_STATS = ("mean", "min", "p10", "p50", "p90", "max")
GRADE_COUNT_STATS = ("count", "below_threshold", "ungraded")
OUTCOMES = ("completed", "failed", "open", "errored", "rejected", "unknown")
SCENARIO_VERDICTS = ("passed", "failed", "undecided")
RUN_COUNTS = ("planned", "submitted", *OUTCOMES)
WEBHOOK_COUNTS = (
    "received",
    "accepted",
    "duplicates",
    "rejected_other",
    "slow_body",
    "wrong_path",
    "unknown_type",
    "batches_polled_late",
)
LIMIT_WAITS = MappingProxyType(
    {
        "limits.throttle_wait": "throttle_wait_s",
        "limits.server_pause": "server_pause_s",
        "limits.capacity_wait": "capacity_wait_s",
    }
)
Getter = Callable[[Results], Lookup]
SliceGetter = Callable[[Slice, str], Lookup]  # a slice and where it is in the document ("variants.spark")
SETTLED_NOTE = "no run settled (completed, failed, errored or rejected)"


def _known_names(scope: Scope | None) -> str:
    """The measure names, compactly, for an error message."""
    if scope is not None:
        return f"failure_rate, {', '.join(OUTCOMES)}, <measure>.<stat> for {' and '.join(SLICE_MEASURES)}, grade.<stat>"
    return (
        f"failure_rate, {', '.join(RUN_COUNTS)}, not_started[.<cause>] (alias dropped[.<cause>]), "
        f"<measure>.<stat> (measures {', '.join(MEASURES)}; stats {', '.join(DURATION_STATS + MEASURE_COUNT_STATS)}), "
        f"grade.<stat> (stats {', '.join(GRADE_SCORE_STATS + GRADE_COUNT_STATS)}), "
        f"scenario_verdicts.<{'|'.join(SCENARIO_VERDICTS)}>, requests_per_ended_run, "
        "offered_runs_per_s, achieved_runs_per_s, dispatch_lag.p99, webhooks.bad_signature, "
        f"webhooks.<{'|'.join(WEBHOOK_COUNTS)}>, {', '.join(LIMIT_WAITS)}, limits.retries[.<cause>], "
        "errors[.<cause>], requests, estimated_cost_cents, elapsed, and per slice variant[<name>].<measure> or "
        "scenario[<name>].<measure>"
    )


def _all_simple_names(scope: Scope | None) -> list[str]:
    """Every fixed name, for 'did you mean' suggestions."""
    names = ["failure_rate", *(OUTCOMES if scope else RUN_COUNTS)]
    measures = SLICE_MEASURES if scope else MEASURES
    names += [f"{m}.{s}" for m in measures for s in DURATION_STATS + MEASURE_COUNT_STATS]
    names += [f"grade.{s}" for s in GRADE_SCORE_STATS + GRADE_COUNT_STATS]
    if scope is None:
        names += ["not_started", "dropped", "requests_per_ended_run", "offered_runs_per_s", "achieved_runs_per_s"]
        names += [f"scenario_verdicts.{n}" for n in SCENARIO_VERDICTS]
        names += ["dispatch_lag.p99", "webhooks.bad_signature", *(f"webhooks.{n}" for n in WEBHOOK_COUNTS)]
        names += [*LIMIT_WAITS, "limits.retries", "errors", "requests", "estimated_cost_cents", "elapsed"]
    return names


def _value(value: float | None, note: str, samples: int | None = None) -> Lookup:
    """A figure of the document; None (not there, or null) is "no data" and says why."""
    return Lookup(None, samples, note) if value is None else Lookup(float(value), samples)


def _field(
    read: Callable[[Results], float | None], note: str, samples: Callable[[Results], int | None] | None = None
) -> Getter:
    def get(results: Results) -> Lookup:
        return _value(read(results), note, samples(results) if samples is not None else None)

    return get


def _counter_sum(read: Callable[[Results], Mapping[str, int] | None], cause: str | None, what: str) -> Getter:
    """A counter section (``runs.not_started``, ``errors``...): its sum, or one cause (absent: 0)."""

    def get(results: Results) -> Lookup:
        counts = read(results)
        if counts is None:
            return Lookup(None, note=f"the results have no {what}")
        return Lookup(float(counts.get(cause, 0) if cause is not None else sum(counts.values())))

    return get


def _figures_stat(figures: Figures | None, measure: str, stat: str, where: str) -> Lookup:
    """A statistic of a measure's figures, with the samples it stands on."""
    if figures is None:
        return Lookup(None, note=f"the results have no {where}{measure}.{stat}")
    empty = "no run ended" if measure == "queue_to_completion" else f"{measure} has no samples"
    note = empty if stat in DURATION_STATS else f"the results have no {where}{measure}.{stat}"
    return _value(getattr(figures, stat), note, figures.count)


def _grades_stat(grades: GradeFigures, stat: str, where: str) -> Lookup:
    note = "no run was graded" if stat in GRADE_SCORE_STATS else f"the results have no {where}grades.{stat}"
    return _value(getattr(grades, stat), note, grades.count)


def _measure_getter(measure: str, stat: str) -> Getter:
    return lambda results: _figures_stat(results.measures.get(measure), measure, stat, "measures.")


def _grade_getter(stat: str) -> Getter:
    return lambda results: _grades_stat(results.grades, stat, "")


def _slice_failure_rate(piece: Slice, where: str) -> Lookup:
    settled = piece.outcomes.settled
    if settled == 0:
        return Lookup(None, 0, SETTLED_NOTE)
    failures = sum(n or 0 for n in (piece.outcomes.failed, piece.outcomes.errored, piece.outcomes.rejected))
    return Lookup(failures / settled, settled)


def _slice_outcome(name: str) -> SliceGetter:
    return lambda piece, where: _value(getattr(piece.outcomes, name), f"the results have no {where}.outcomes.{name}")


def _slice_measure(measure: str, stat: str) -> SliceGetter:
    return lambda piece, where: _figures_stat(getattr(piece, measure), measure, stat, f"{where}.")


def _slice_grade(stat: str) -> SliceGetter:
    return lambda piece, where: _grades_stat(piece.grades, stat, f"{where}.")


def _webhooks_getter(name: str) -> Getter:
    def get(results: Results) -> Lookup:
        hooks = results.webhooks
        if hooks is None:
            return Lookup(None, note="the run did not use webhooks")
        if name == "bad_signature":
            return _counter_sum(lambda _: hooks.bad_signature, None, "webhooks.bad_signature")(results)
        return _value(getattr(hooks, name), f"the results have no webhooks.{name}")

    return get


def _scenario_verdicts_getter(name: str) -> Getter:
    def get(results: Results) -> Lookup:
        verdicts = results.scenario_verdicts
        if verdicts is None:
            return Lookup(None, note="no scenario states an expected_outcome")
        return _value(getattr(verdicts, name), f"the results have no scenario_verdicts.{name}")

    return get


def _suggest(name: str, scope: Scope | None) -> str:
    close = difflib.get_close_matches(name, _all_simple_names(scope), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _resolve_slice(name: str, scope: Scope) -> tuple[Kind, SliceGetter] | str:
    """Kind and getter of a per-slice name, or why it is unknown."""
    if name == "failure_rate":
        return Kind.SHARE, _slice_failure_rate
    if name in OUTCOMES:
        return Kind.COUNT, _slice_outcome(name)
    head, _, stat = name.partition(".")
    if head in SLICE_MEASURES:
        if stat in DURATION_STATS or stat in MEASURE_COUNT_STATS:
            kind = Kind.DURATION if stat in DURATION_STATS else Kind.COUNT
            return kind, _slice_measure(head, stat)
        return f"unknown statistic {stat!r} of {head}; known: {', '.join(DURATION_STATS + MEASURE_COUNT_STATS)}"
    if head == "grade":
        if stat in GRADE_SCORE_STATS or stat in GRADE_COUNT_STATS:
            kind = Kind.SCORE if stat in GRADE_SCORE_STATS else Kind.COUNT
            return kind, _slice_grade(stat)
        return f"unknown statistic {stat!r} of grade; known: {', '.join(GRADE_SCORE_STATS + GRADE_COUNT_STATS)}"
    if head in MEASURES or _resolve_document(name) is not None:
        return f"{name} is not available per {scope}; per {scope}: {_known_names(scope)}"
    return f"unknown measure {name!r}{_suggest(name, scope)}; per {scope}: {_known_names(scope)}"


def _runs_settled(results: Results) -> int:
    return results.runs.settled


def _submitted(results: Results) -> int | None:
    return results.runs.submitted


def _resolve_document(name: str) -> tuple[Kind, Getter] | str | None:
    """Kind and getter of a document-level name; a reason when the name is close but wrong; None if unknown."""
    fixed: dict[str, tuple[Kind, Getter]] = {
        "failure_rate": (Kind.SHARE, _field(lambda r: r.failure_rate, SETTLED_NOTE, _runs_settled)),
        "not_started": (Kind.COUNT, _counter_sum(lambda r: r.runs.not_started, None, "runs.not_started")),
        "dropped": (Kind.COUNT, _counter_sum(lambda r: r.runs.not_started, None, "runs.not_started")),
        "requests_per_ended_run": (Kind.NUMBER, _field(lambda r: r.load.requests_per_ended_run, "no run ended")),
        "offered_runs_per_s": (
            Kind.RATE,
            _field(lambda r: r.load.offered_runs_per_s, "the results have no load.offered_runs_per_s"),
        ),
        "achieved_runs_per_s": (
            Kind.RATE,
            _field(lambda r: r.load.achieved_runs_per_s, "the results have no load.achieved_runs_per_s", _submitted),
        ),
        "dispatch_lag.p99": (Kind.DURATION, _field(lambda r: r.generator.dispatch_lag_p99, "no batch was dispatched")),
        "limits.retries": (Kind.COUNT, _counter_sum(lambda r: r.limits.retries, None, "limits.retries")),
        "errors": (Kind.COUNT, _counter_sum(lambda r: r.errors, None, "errors")),
        "requests": (Kind.COUNT, _counter_sum(lambda r: r.requests, None, "requests")),
        "estimated_cost_cents": (
            Kind.NUMBER,
            _field(lambda r: r.estimated_cost_cents, "the results have no estimated_cost_cents"),
        ),
        "elapsed": (Kind.DURATION, _field(lambda r: r.elapsed_s, "the results have no elapsed_s")),
    }
    if name in fixed:
        return fixed[name]
    if name in RUN_COUNTS:
        return Kind.COUNT, _field(lambda r: getattr(r.runs, name), f"the results have no runs.{name}")
    if name in LIMIT_WAITS:
        key = LIMIT_WAITS[name]
        return Kind.DURATION, _field(lambda r: getattr(r.limits, key), f"the results have no limits.{key}")
    head, _, rest = name.partition(".")
    if head in ("not_started", "dropped") and rest:
        return Kind.COUNT, _counter_sum(lambda r: r.runs.not_started, rest, "runs.not_started")
    if head == "errors" and rest:
        return Kind.COUNT, _counter_sum(lambda r: r.errors, rest, "errors")
    if name.startswith("limits.retries.") and name != "limits.retries.":
        cause = name.removeprefix("limits.retries.")
        return Kind.COUNT, _counter_sum(lambda r: r.limits.retries, cause, "limits.retries")
    if head == "webhooks":
        if rest == "bad_signature" or rest in WEBHOOK_COUNTS:
            return Kind.COUNT, _webhooks_getter(rest)
        return f"unknown webhooks figure {rest!r}; known: bad_signature, {', '.join(WEBHOOK_COUNTS)}"
    if head in MEASURES:
        if rest in DURATION_STATS:
            return Kind.DURATION, _measure_getter(head, rest)
        if rest in MEASURE_COUNT_STATS:
            return Kind.COUNT, _measure_getter(head, rest)
        return f"unknown statistic {rest!r} of {head}; known: {', '.join(DURATION_STATS + MEASURE_COUNT_STATS)}"
    if head == "scenario_verdicts":
        if rest in SCENARIO_VERDICTS:
            return Kind.COUNT, _scenario_verdicts_getter(rest)
        return f"unknown scenario_verdicts figure {rest!r}; known: {', '.join(SCENARIO_VERDICTS)}"
    if head in ("grade", "grades"):
        if rest in GRADE_SCORE_STATS:
            return Kind.SCORE, _grade_getter(rest)
        if rest in GRADE_COUNT_STATS:
            return Kind.COUNT, _grade_getter(rest)
        return f"unknown statistic {rest!r} of grade; known: {', '.join(GRADE_SCORE_STATS + GRADE_COUNT_STATS)}"
    return None


_PATH = re.compile(r"^(?:(?P<scope>variant|scenario)\[(?P<scope_name>[^\]]*)\]\.)?(?P<name>[A-Za-z_][\w.]*)$")


def _normalise(name: str) -> str:
    # "p99.9" reads naturally but the document's key is p99_9.
    return re.sub(r"\.p99\.9$", ".p99_9", name)


def parse_path(text: str) -> MeasurePath:
    """Resolve a measure name (docs/reports.md#thresholds). Raises ValueError with the reason, not a sentence."""
    match = _PATH.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a measure name (like queue_to_completion.p95 or variant[spark].failed)")
    name = _normalise(match["name"])
    scope: Scope | None = match["scope"]  # type: ignore[assignment]
    if scope is not None:
        if not match["scope_name"]:
            raise ValueError(f"{scope}[] names no {scope}")
        resolved = _resolve_slice(name, scope)
        if isinstance(resolved, str):
            raise ValueError(resolved)
        return MeasurePath(name, resolved[0], scope, match["scope_name"])
    found = _resolve_document(name)
    if found is None:
        raise ValueError(f"unknown measure {name!r}{_suggest(name, None)}; known: {_known_names(None)}")
    if isinstance(found, str):
        raise ValueError(found)
    return MeasurePath(name, found[0])


def lookup(results: Results, path: MeasurePath) -> Lookup:
    """The value of ``path`` in a results document (a partial one too): None with a note when it has none."""
    if path.scope is None:
        found = _resolve_document(path.name)
        assert isinstance(found, tuple), path  # parse_path accepted it
        return found[1](results)
    section = "variants" if path.scope == "variant" else "scenarios"
    pieces = results.slices(path.scope)
    if path.scope_name == "*" and path.scope_name not in pieces:
        return Lookup(None, note=f"the results have no {section}")
    piece = pieces.get(str(path.scope_name))
    if piece is None:
        known = ", ".join(sorted(pieces)) or "none"
        return Lookup(None, note=f"no {path.scope} {path.scope_name!r} in the results ({section}: {known})")
    resolved = _resolve_slice(path.name, path.scope)
    assert not isinstance(resolved, str), path
    return resolved[1](piece, f"{section}.{path.scope_name}")


# ---------------------------------------------------------------------------------------------- formatting


def format_value(kind: Kind, value: float) -> str:
    """A value in the units a user reads for its kind: ``95.2s``, ``1.5%``, ``3``, ``0.82``, ``20/s``."""
    if kind is Kind.DURATION:
        return format_duration(value)
    if kind is Kind.SHARE:
        return f"{value * 100:.3g}%"
    if kind is Kind.COUNT:
        return f"{value:.0f}" if value == int(value) else f"{value:g}"
    if kind is Kind.RATE:
        return format_rate(value)
    return f"{value:.3g}"


# ----------------------------------------------------------------------------------------------- thresholds

Operator = Literal["<", "<=", ">", ">=", "==", "!="]
OPERATORS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType(
    {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
)

_HEAD = re.compile(r"^\s*(?P<path>(?:variant|scenario)\[[^\]]*\]\.[\w.]*|[^\s<>=!~]+)\s*(?P<rest>.*)$")
_OPERATOR = re.compile(r"^(?P<op>[<>=!~^]+)\s*(?P<rest>.*)$")
_VALUE = re.compile(r"^(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?P<unit>[^\d\s.].*)?$")


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold: ``path op limit``; ``abort`` asks for it to be checked during the run."""

    text: str  # as the user wrote it, trimmed
    path: MeasurePath
    op: Operator
    limit: float  # in the document's units: seconds, a 0..1 fraction, a count
    limit_text: str  # the limit as written ("90s", "1%")
    abort: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the threshold."""
        return OPERATORS[self.op](value, self.limit)


def _limit(text: str, kind: Kind, measure: str) -> float:
    """The limit in document units; raises ValueError with what is wrong (a fragment, not a sentence)."""
    compact = text.replace(" ", "")
    match = _VALUE.match(compact)
    if match is None:
        raise ValueError(f"{text!r} is not a number with an optional unit")
    number, unit = float(match["number"]), match["unit"] or ""
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    if unit.startswith("/"):
        if kind is not Kind.RATE:
            raise ValueError(f"a rate ({compact}) does not fit {measure}, a {kind}")
        try:
            return parse_rate(compact)
        except ValueError:
            raise ValueError(f"{compact!r} is not a rate like 20/s or 300/min") from None
    if unit == "%":
        if kind in (Kind.SHARE, Kind.SCORE):
            return number / 100
        advice = "; use failure_rate for a share of runs" if kind is Kind.COUNT else ""
        raise ValueError(f"a percent ({compact}) does not fit {measure}, a {kind}{advice}")
    if unit and unit[0] in "uµmsh":
        try:
            seconds = parse_duration(compact)
        except ValueError:
            raise ValueError(f"{compact!r} is not a duration like 250ms, 90s or 1m30s") from None
        if kind is not Kind.DURATION:
            raise ValueError(f"a duration ({compact}) does not fit {measure}, a {kind}")
        return seconds
    if unit:
        raise ValueError(f"unknown unit {unit!r} in {compact!r} (units: ms, s, m, h, %, /s, /min)")
    if kind is Kind.DURATION and number != 0:
        raise ValueError(f"{measure} is a duration: give the limit a unit, like {compact}s or {compact}ms")
    if kind in (Kind.SHARE, Kind.SCORE) and not 0 <= number < 1:
        # 'failure_rate < 1' once read as below 100 % and passed a run with 14.5 % failures: refuse, never guess
        raise ValueError(_bare_share(compact, number, kind, measure))
    return number


def _bare_share(compact: str, number: float, kind: Kind, measure: str) -> str:
    """Why a share or score written without ``%`` is refused, and what to write instead."""
    rule = f"{measure} is a {kind}, so a value without % must be a fraction below 1 (0.05 means 5%)"
    if number < 0:
        return f"{rule}, not {compact}"
    whole = "all runs" if kind is Kind.SHARE else "a perfect score"
    also = f", or 100% for {whole}" if number == 1 else ""
    return f"{rule}; write {compact}% or {number / 100:g}{also}"


def parse_threshold(text: str) -> Threshold:
    """Parse ``<measure> <op> <value> [abort]``. Raises ThresholdError with one sentence naming the expression."""

    def error(reason: str) -> ThresholdError:
        return ThresholdError(f"threshold {text.strip()!r}: {reason}.")

    head = _HEAD.match(text)
    if head is None or not head["path"]:
        raise error("it is empty; write it like 'queue_to_completion.p95 < 90s'")
    try:
        path = parse_path(head["path"])
    except ValueError as exc:
        raise error(str(exc)) from None
    rest = head["rest"].strip()
    operator = _OPERATOR.match(rest)
    if operator is None:
        found = f" before {rest.split()[0]!r}" if rest else ""
        raise error(f"no comparison{found}; use one of {', '.join(OPERATORS)}")
    op = operator["op"]
    if op not in OPERATORS:
        raise error(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    words = operator["rest"].split()
    abort = bool(words) and words[-1].lower() == "abort"
    if abort:
        words = words[:-1]
    if not words:
        raise error(f"no value after {op!r}")
    value_text = " ".join(words)
    try:
        limit = _limit(value_text, path.kind, path.text)
    except ValueError as exc:
        if len(words) > 1 and _VALUE.match(words[0]) is not None:
            try:
                _limit(words[0], path.kind, path.text)
            except ValueError:
                raise error(str(exc)) from None
            raise error(f"unexpected {' '.join(words[1:])!r} after the value (only 'abort' may follow it)") from None
        raise error(str(exc)) from None
    return Threshold(
        text=" ".join(text.split()),
        path=path,
        op=op,  # type: ignore[arg-type]
        limit=limit,
        limit_text=value_text.replace(" ", ""),
        abort=abort,
    )


def parse_thresholds(texts: Iterable[str]) -> list[Threshold]:
    """Parse several expressions; the first bad one raises ThresholdError."""
    return [parse_threshold(text) for text in texts]


# ----------------------------------------------------------------------------------------------- verdicts


class Status(StrEnum):
    """How a threshold fared."""

    PASSED = "passed"
    FAILED = "failed"
    MISSING = "missing"  # the measure had no value: counts as failed at the end of a run


@dataclass(frozen=True, slots=True)
class Verdict:
    """One threshold against one document: the status, the actual value and a sentence saying by how much."""

    threshold: Threshold
    status: Status
    actual: float | None
    detail: str  # "was 95.2s, 5.8% over 90s", "no data, no run ended; ..."
    note: str | None = None  # why the value is missing

    @property
    def passed(self) -> bool:
        """True only when the value was there and satisfied the threshold."""
        return self.status is Status.PASSED

    @property
    def sentence(self) -> str:
        """``queue_to_completion.p95 < 90s failed: was 95.2s, 5.8% over 90s``."""
        word = "passed" if self.passed else "failed"
        return f"{self.threshold.text} {word}: {self.detail}"


def _miss(threshold: Threshold, actual: float) -> str:
    """How far ``actual`` is from the limit: in points for shares, plainly for counts, as a factor of the limit
    when it is twice over or more, in percent of the limit otherwise."""
    kind, limit = threshold.path.kind, threshold.limit
    limit_text = threshold.limit_text  # as the user wrote it: "90s" reads better than "1m30.0s"
    gap = actual - limit
    if threshold.op == "==":
        return f"expected {limit_text}"
    if threshold.op == "!=":
        return "which it must not be"
    side = "over" if gap > 0 else "under"
    if gap == 0:
        return f"at the limit {limit_text}, which {threshold.op} excludes"
    if kind is Kind.SHARE:
        return f"{abs(gap) * 100:.3g} points {side} {limit_text}"
    if limit != 0 and kind is not Kind.COUNT:
        share = abs(gap) / abs(limit)
        if share >= 1 and actual / limit > 0:
            # "1.15e+03% over 10ms" reads badly; a factor does not.
            return f"{actual / limit:.3g}x the limit {limit_text}"
        return f"{share * 100:.3g}% {side} {limit_text}"
    return f"{format_value(kind, abs(gap))} {side} {limit_text}"


def verdict(threshold: Threshold, results: Results) -> Verdict:
    """Evaluate one threshold."""
    found = lookup(results, threshold.path)
    if found.value is None:
        note = found.note or "no value"
        return Verdict(threshold, Status.MISSING, None, f"no data, {note}; a gate never passes on no data", note)
    shown = format_value(threshold.path.kind, found.value)
    if threshold.holds(found.value):
        return Verdict(threshold, Status.PASSED, found.value, f"was {shown}")
    return Verdict(threshold, Status.FAILED, found.value, f"was {shown}, {_miss(threshold, found.value)}")


def expand(threshold: Threshold, results: Results) -> list[Threshold]:
    """``variant[*]`` / ``scenario[*]``: one threshold per variant or scenario of the document (the threshold
    itself, unexpanded, when the document has none: its verdict then says so)."""
    path = threshold.path
    if path.scope is None or path.scope_name != "*":
        return [threshold]
    expanded = []
    for name in results.slices(path.scope):
        concrete = path.with_scope_name(str(name))
        text = f"{concrete.text} {threshold.op} {threshold.limit_text}" + (" abort" if threshold.abort else "")
        expanded.append(replace(threshold, path=concrete, text=text))
    return expanded or [threshold]


def evaluate(thresholds: Iterable[Threshold], results: Results) -> list[Verdict]:
    """Evaluate every threshold against a finished run's document, in order (a ``*`` threshold gives one
    verdict per variant or scenario). Missing values fail."""
    return [verdict(one, results) for threshold in thresholds for one in expand(threshold, results)]


def breached(verdicts: Iterable[Verdict]) -> bool:
    """Whether the gate fails: any threshold failed or had no data."""
    return any(not v.passed for v in verdicts)


def abort_breaches(thresholds: Iterable[Threshold], results: Results) -> list[Verdict]:
    """The ``abort`` thresholds a run in progress already breaks, given a partial document of it so far.

    Only thresholds marked ``abort`` are checked, and only a value that is there and fails counts: a measure
    with no data yet (no run ended so far) never stops a run. Thresholds that can only get worse as the run
    goes (``failed == 0``, ``errored < 10``, ``failure_rate < 5%``) make sense here; ``completed >= 100`` would
    stop every run at its start.
    """
    verdicts = (verdict(one, results) for t in thresholds if t.abort for one in expand(t, results))
    return [v for v in verdicts if v.status is Status.FAILED]


_MARKS = MappingProxyType({Status.PASSED: "pass", Status.FAILED: "FAIL", Status.MISSING: "NO DATA"})


def render_verdicts(verdicts: Sequence[Verdict]) -> str:
    """One line per threshold for the console summary, under a count of those that passed."""
    if not verdicts:
        return ""
    passed = sum(v.passed for v in verdicts)
    width = max(len(v.threshold.text) for v in verdicts)
    lines = [f"thresholds: {passed} of {len(verdicts)} passed"]
    for v in verdicts:
        lines.append(f"  {_MARKS[v.status]:<7}  {v.threshold.text:<{width}}  {v.detail}")
    return "\n".join(lines)
