"""Two results documents side by side: what got better, what got worse, what is noise, and did it regress. Pure.

Figures are looked up with the threshold vocabulary (``stressor.thresholds``). The rules and the noise bands:
docs/reports.md#stressor-compare-base-new; how a change is judged: docs/internals.md#comparing-two-runs.
"""

from __future__ import annotations

import binascii
import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

from stressor.document import Figures, MeasureFigures, Results
from stressor.thresholds import MEASURES, SLICE_MEASURES, Kind, MeasurePath, format_value, lookup, parse_path
from stressor.units import parse_duration

DEFAULT_TOLERANCE = 0.05
MIN_SAMPLES = 30
CONFIDENCE_Z = 1.96  # the percentiles' confidence intervals are 95 % ones
DEFAULT_RULES = ("queue_to_completion.p99 +10%", "failure_rate +1pt", "grade.mean -0.05")
SCHEMA = "stressor.comparison/1"

_FLOORS = MappingProxyType({Kind.DURATION: 0.001, Kind.SCORE: 0.01})
_ORDER_STATS = frozenset({"min", "max", "p10", "p50", "p90", "p95", "p99", "p99_9"})


class RuleError(ValueError):
    """A regression rule that cannot be used; the message is one sentence naming it."""


class Judgement(StrEnum):
    """What a change amounts to."""

    BETTER = "better"
    WORSE = "worse"
    NOISE = "within noise"
    TOO_FEW = "too few samples"
    MISSING = "no data"
    INFO = "-"  # counts and the offered load: no better or worse


Direction = Literal["lower", "higher"]


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of both runs side by side."""

    section: str  # "overall", "variant spark", "scenario refund"
    path: MeasurePath
    base: float | None
    new: float | None
    base_samples: int | None
    new_samples: int | None
    judgement: Judgement
    band: float | None = None  # the noise band used, in the measure's units

    @property
    def delta(self) -> float | None:
        """new - base, in the measure's units."""
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def relative(self) -> float | None:
        """(new - base) / |base|; None when the base is zero or missing."""
        delta = self.delta
        return None if delta is None or not self.base else delta / abs(self.base)


@dataclass(frozen=True, slots=True)
class Rule:
    """A regression rule: the measure went ``up`` or ``down`` by more than ``amount``."""

    text: str
    path: MeasurePath  # its scope name may be "*"
    direction: Literal["up", "down"]
    amount: float  # a fraction when relative, else in the measure's units
    relative: bool


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule applied to one measure (a ``*`` rule gives one check per variant or scenario)."""

    rule: Rule
    path: MeasurePath
    base: float | None
    new: float | None
    change: float | None  # relative fraction or absolute, as the rule counts
    regressed: bool
    note: str | None = None

    @property
    def sentence(self) -> str:
        """``queue_to_completion.p99 +10%: 104ms → 130ms (+25.0%), REGRESSED``."""
        kind = self.path.kind
        values = f"{_show(kind, self.base)} → {_show(kind, self.new)}"
        change = f" ({_show_change(self.rule, kind, self.change)})" if self.change is not None else ""
        verdict = "REGRESSED" if self.regressed else "ok"
        note = f"; {self.note}" if self.note else ""
        where = f" on {self.path.text}" if self.path.text != self.rule.path.text else ""
        return f"{self.rule.text}{where}: {values}{change}, {verdict}{note}"


@dataclass(frozen=True, slots=True)
class GradeDiff:
    """One scenario's mean grade in both runs, and whether it dropped by more than the grade rule allows."""

    scenario: str
    base_mean: float | None
    new_mean: float | None
    base_count: int | None
    new_count: int | None
    dropped: bool

    @property
    def delta(self) -> float | None:
        """new - base mean grade."""
        return None if self.base_mean is None or self.new_mean is None else self.new_mean - self.base_mean


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What names a run in the comparison's header."""

    profile: str
    started_at: float | None
    elapsed_s: float | None
    planned: int | None
    interrupted: bool

    @property
    def label(self) -> str:
        """``'smoke' 2026-11-30 12:03 UTC, 200 runs in 10.0s``."""
        when = (
            datetime.fromtimestamp(self.started_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            if self.started_at is not None
            else "?"
        )
        runs = f", {self.planned} runs" if self.planned is not None else ""
        took = f" in {self.elapsed_s:.1f}s" if self.elapsed_s is not None else ""
        return f"{self.profile!r} {when}{runs}{took}" + (" (interrupted)" if self.interrupted else "")


@dataclass(frozen=True, slots=True)
class Comparison:
    """The whole comparison of a base run and a new run."""

    base: RunInfo
    new: RunInfo
    tolerance: float
    rows: tuple[Row, ...]
    checks: tuple[RuleCheck, ...]
    grades: tuple[GradeDiff, ...]
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[RuleCheck, ...]:
        """The rule checks that fired."""
        return tuple(check for check in self.checks if check.regressed)

    @property
    def regressed(self) -> bool:
        """The comparison's exit status: True when any regression rule fired."""
        return bool(self.regressions)


# ---------------------------------------------------------------------------------------------------- rules

_RULE = re.compile(r"^\s*(?P<path>\S+)\s+(?P<amount>.+?)\s*$")
_AMOUNT = re.compile(r"^(?P<sign>[-+])?\s*(?P<number>(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>[^\d\s.]\S*)?$")


def parse_rule(text: str) -> Rule:
    """Parse ``<measure> +<amount>`` or ``<measure> -<amount>``. Raises RuleError with one sentence."""

    def error(reason: str) -> RuleError:
        return RuleError(f"regression rule {text.strip()!r}: {reason}.")

    match = _RULE.match(text)
    if match is None:
        raise error("write it as a measure and a signed change, like 'queue_to_completion.p99 +10%'")
    try:
        path = parse_path(match["path"])
    except ValueError as exc:
        raise error(str(exc)) from None
    amount = _AMOUNT.match(match["amount"])
    if amount is None:
        raise error(f"{match['amount']!r} is not a signed change like +10%, +1pt, +50ms or -0.05")
    if amount["sign"] is None:
        raise error("give the change a direction: + for 'up by more than', - for 'down by more than'")
    number, unit, kind = float(amount["number"]), amount["unit"] or "", path.kind
    relative = unit == "%"
    if relative and kind is Kind.SHARE:
        raise error(f"a percent on {path.text} is ambiguous: write +{amount['number']}pt for percentage points")
    if unit in ("pt", "pts", "points"):
        if kind is not Kind.SHARE:
            raise error(f"points fit shares like failure_rate, not {path.text}, a {kind}; use % for a relative change")
        number /= 100
    elif unit and not relative:
        try:
            number = parse_duration(f"{amount['number']}{unit}")
        except ValueError:
            raise error(f"unknown unit {unit!r} (use %, pt, a duration like 50ms, or a plain number)") from None
        if kind is not Kind.DURATION:
            raise error(f"a duration does not fit {path.text}, a {kind}; use % for a relative change")
    elif not unit and kind is Kind.DURATION and number != 0:
        raise error(f"{path.text} is a duration: write {amount['sign']}{amount['number']}% or a duration like 50ms")
    return Rule(
        text=" ".join(text.split()),
        path=path,
        direction="up" if amount["sign"] == "+" else "down",
        amount=number / 100 if relative else number,
        relative=relative,
    )


def parse_rules(texts: Iterable[str]) -> list[Rule]:
    """Parse several rules; the first bad one raises RuleError."""
    return [parse_rule(text) for text in texts]


# --------------------------------------------------------------------------------------------------- judging


def samples_needed(path: MeasurePath) -> int:
    """How many samples an order statistic needs before it is judged: at least 30, and enough for one value
    to lie beyond the percentile (p99: 100, p99.9: 1,000), or the "p99" is merely the maximum. 0 for
    anything else (means, shares, counts)."""
    stat = path.name.rpartition(".")[2]
    if path.kind not in (Kind.DURATION, Kind.SCORE) or "." not in path.name or stat not in _ORDER_STATS:
        return 0
    match = re.fullmatch(r"p(\d+)(?:_(\d+))?", stat)
    if match is None:  # min, max
        return MIN_SAMPLES
    percentile = float(f"{match[1]}.{match[2] or 0}")
    return max(MIN_SAMPLES, math.ceil(round(1 / (1 - percentile / 100), 6)))


Interval = tuple[float, float]


def _order_fraction(path: MeasurePath, samples: int) -> float | None:
    """The fraction (0..1) an order statistic stands at: p99 -> 0.99, max -> the top value; None otherwise."""
    stat = path.name.rpartition(".")[2]
    if path.kind is not Kind.DURATION or stat not in _ORDER_STATS:
        return None
    if stat == "max":
        return 1 - 1 / (samples + 1)
    if stat == "min":
        return 1 / (samples + 1)
    match = re.fullmatch(r"p(\d+)(?:_(\d+))?", stat)
    assert match is not None
    return float(f"{match[1]}.{match[2] or 0}") / 100


def _decoded(blob: str | None) -> Any:
    """The HDR histogram of a ``measures.<m>.hdr`` string; None when there is none or it does not decode."""
    if not blob:
        return None
    try:
        return HdrHistogram.decode(blob)
    except (ValueError, TypeError, binascii.Error, zlib.error):
        return None


def confidence_interval(
    results: Results, path: MeasurePath, value: float | None, samples: int | None
) -> Interval | None:
    """A distribution-free 95 % confidence interval of an order statistic whose value is ``value``, in
    seconds (docs/internals.md#comparing-two-runs); None for anything else or when the document lacks what it
    takes.

    The interval's reach below and above the value is read from the distribution (the histogram, else the
    document's own percentiles) and laid around ``value`` itself.
    """
    if value is None or not samples or samples < 2:
        return None
    fraction = _order_fraction(path, samples)
    if fraction is None:
        return None
    measure = path.name.rpartition(".")[0]
    figures: Figures | None
    if path.scope is None:
        figures = results.measures.get(measure)
    else:
        piece = results.slices(path.scope).get(str(path.scope_name))
        figures = getattr(piece, measure, None) if piece is not None and measure in SLICE_MEASURES else None
    if figures is None:
        return None
    spread = CONFIDENCE_Z * math.sqrt(samples * fraction * (1 - fraction))
    low_q = max(1.0, math.floor(samples * fraction - spread)) / samples
    high_q = min(float(samples), math.ceil(samples * fraction + spread) + 1) / samples
    stated = [(0.0, figures.min), (1.0, figures.max), *figures.percentiles()]
    known = sorted((q, float(v)) for q, v in stated if v is not None)
    histogram = _decoded(figures.hdr) if isinstance(figures, MeasureFigures) else None
    if histogram is not None:
        at = histogram.get_value_at_percentile(fraction * 100) / 1e6
        low = histogram.get_value_at_percentile(low_q * 100) / 1e6
        high = histogram.get_value_at_percentile(high_q * 100) / 1e6
    elif known:
        # No histogram: the nearest stated percentile at or below the low rank, at or above the high one:
        # wider than the true interval, never narrower.
        at = value
        low = max((v for q, v in known if q <= low_q), default=known[0][1])
        high = min((v for q, v in known if q >= high_q), default=known[-1][1])
    else:
        return None
    return value - max(at - low, 0.0), value + max(high - at, 0.0)


def judge(
    path: MeasurePath,
    base: float | None,
    new: float | None,
    base_samples: int | None,
    new_samples: int | None,
    direction: Direction | None,
    tolerance: float = DEFAULT_TOLERANCE,
    intervals: tuple[Interval | None, Interval | None] = (None, None),
) -> tuple[Judgement, float | None]:
    """The judgement of one change and the noise band it used (docs/internals.md#comparing-two-runs).
    ``intervals``: the base's and the new run's confidence intervals of an order statistic
    (``confidence_interval``)."""
    if base is None or new is None:
        return Judgement.MISSING, None
    if direction is None:
        return Judgement.INFO, None
    counts = [n for n in (base_samples, new_samples) if n is not None]
    n = min(counts) if len(counts) == 2 else None  # both runs' counts
    if path.kind is Kind.SHARE:
        if not base_samples or not new_samples:
            return Judgement.MISSING, None
        pooled = (base * base_samples + new * new_samples) / (base_samples + new_samples)
        band = 2 * math.sqrt(pooled * (1 - pooled) * (1 / base_samples + 1 / new_samples))
    else:
        if n is not None and n < samples_needed(path):
            return Judgement.TOO_FEW, None
        spread = max(tolerance, 1 / math.sqrt(n)) if n else tolerance
        band = max(spread * abs(base), _FLOORS.get(path.kind, 0.0))
    change = new - base
    if abs(change) <= band:
        return Judgement.NOISE, band
    base_ci, new_ci = intervals
    if base_ci is not None and new_ci is not None and new_ci[0] <= base_ci[1] and base_ci[0] <= new_ci[1]:
        # Overlapping confidence intervals: as far as these sample sizes can tell, the same value.
        return Judgement.NOISE, max(band, abs(change))
    lower_better = direction == "lower"
    return (Judgement.BETTER if (change < 0) == lower_better else Judgement.WORSE), band


# ----------------------------------------------------------------------------------------------------- rows

_OVERALL: tuple[tuple[str, Direction | None], ...] = (
    *((f"{m}.{s}", "lower") for m in MEASURES for s in ("p50", "p90", "p99", "max")),
    ("failure_rate", "lower"),
    *((name, None) for name in ("completed", "failed", "errored", "rejected", "open", "not_started")),
    ("offered_runs_per_s", None),
    ("achieved_runs_per_s", "higher"),
    ("requests_per_ended_run", "lower"),
    ("grade.mean", "higher"),
    ("grade.p10", "higher"),
    ("grade.p50", "higher"),
    ("grade.below_threshold", None),
)
_PER_SLICE: tuple[tuple[str, Direction | None], ...] = (
    ("queue_to_completion.p50", "lower"),
    ("queue_to_completion.p99", "lower"),
    *((name, None) for name in ("completed", "failed", "errored", "rejected", "open")),
    ("failure_rate", "lower"),
    ("grade.mean", "higher"),
)


def _names(results: Results, scope: str) -> list[str]:
    return list(results.slices(scope))


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(first) + [name for name in second if name not in first]


def _row(
    section: str,
    path: MeasurePath,
    direction: Direction | None,
    base_doc: Results,
    new_doc: Results,
    tolerance: float,
) -> Row | None:
    base, new = lookup(base_doc, path), lookup(new_doc, path)
    if base.value is None and new.value is None:
        return None  # nothing to say (no grades in either run, a measure neither recorded)
    intervals = _intervals(path, base_doc, new_doc, base.samples, new.samples)
    judgement, band = judge(path, base.value, new.value, base.samples, new.samples, direction, tolerance, intervals)
    return Row(section, path, base.value, new.value, base.samples, new.samples, judgement, band)


def _rows(base_doc: Results, new_doc: Results, tolerance: float) -> list[Row]:
    rows = [_row("overall", parse_path(name), direction, base_doc, new_doc, tolerance) for name, direction in _OVERALL]
    for scope in ("variant", "scenario"):
        names = _union(_names(base_doc, scope), _names(new_doc, scope))
        if len(names) < 2:  # one slice would repeat the overall figures
            continue
        for name in names:
            for measure, direction in _PER_SLICE:
                path = parse_path(f"{scope}[{name}].{measure}")
                rows.append(_row(f"{scope} {name}", path, direction, base_doc, new_doc, tolerance))
    return [row for row in rows if row is not None]


# --------------------------------------------------------------------------------------------------- checks


def _expand(rule: Rule, base_doc: Results, new_doc: Results) -> list[MeasurePath]:
    """The concrete measures a rule applies to: ``*`` means every variant or scenario in both runs."""
    path = rule.path
    if path.scope is None or path.scope_name != "*":
        return [path]
    new_names = _names(new_doc, path.scope)
    return [path.with_scope_name(name) for name in _names(base_doc, path.scope) if name in new_names]


def _intervals(
    path: MeasurePath,
    base_doc: Results,
    new_doc: Results,
    base_samples: int | None,
    new_samples: int | None,
) -> tuple[Interval | None, Interval | None]:
    base, new = lookup(base_doc, path).value, lookup(new_doc, path).value
    return confidence_interval(base_doc, path, base, base_samples), confidence_interval(new_doc, path, new, new_samples)


def _check(
    rule: Rule,
    path: MeasurePath,
    base_doc: Results,
    new_doc: Results,
    tolerance: float = DEFAULT_TOLERANCE,
    significant_only: bool = True,
) -> RuleCheck:
    base, new = lookup(base_doc, path), lookup(new_doc, path)
    if base.value is None:
        note = "no data in the base run" + (f" ({base.note})" if base.note else "")
        return RuleCheck(rule, path, None, new.value, None, False, note + ": not judged")
    if new.value is None:
        note = "no data in the new run" + (f" ({new.note})" if new.note else "")
        return RuleCheck(rule, path, base.value, None, None, True, note + "; a gate never passes on no data")
    samples = [n for n in (base.samples, new.samples) if n is not None]
    needed = samples_needed(path)
    if samples and min(samples) < needed:
        note = f"not judged: too few samples ({min(samples)} < {needed})"
        return RuleCheck(rule, path, base.value, new.value, None, False, note)
    delta = new.value - base.value
    change = _relative_change(base.value, delta) if rule.relative else delta
    regressed = change > rule.amount if rule.direction == "up" else change < -rule.amount
    note = "from a base of 0, any change is infinitely large in relative terms" if math.isinf(change) else None
    if regressed:
        direction: Direction = "lower" if rule.direction == "up" else "higher"
        intervals = _intervals(path, base_doc, new_doc, base.samples, new.samples)
        judgement, _ = judge(path, base.value, new.value, base.samples, new.samples, direction, tolerance, intervals)
        if judgement is Judgement.NOISE and note is None:
            if significant_only:
                regressed = False
                note = "past the rule's amount but within the noise of these sample sizes: not a regression"
            else:
                note = "the change is within the noise of these sample sizes: a longer run would tell"
    return RuleCheck(rule, path, base.value, new.value, change, regressed, note)


def _relative_change(base: float, delta: float) -> float:
    """delta / |base|; from a base of zero any rise is infinitely large (so a "+10%" rule fires on it)."""
    if base == 0:
        return 0.0 if delta == 0 else math.copysign(math.inf, delta)
    return delta / abs(base)


def _scenario_grade_rules(rules: Sequence[Rule], scenarios: Sequence[str]) -> dict[str, Rule]:
    """Which rule judges each scenario's mean grade: its own, a ``scenario[*]`` one, else ``grade.mean``."""
    chosen: dict[str, Rule] = {}
    overall = [r for r in rules if r.path.scope is None and r.path.name == "grade.mean" and r.direction == "down"]
    scoped = [r for r in rules if r.path.scope == "scenario" and r.path.name == "grade.mean"]
    for name in scenarios:
        own = [r for r in scoped if r.path.scope_name == name] or [r for r in scoped if r.path.scope_name == "*"]
        if own:
            chosen[name] = own[0]
        elif overall:
            chosen[name] = overall[0]
    return chosen


def compare(
    base_doc: Results,
    new_doc: Results,
    rules: Sequence[Rule] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    significant_only: bool = True,
) -> Comparison:
    """Compare a new run against a base run. ``rules`` default to ``DEFAULT_RULES``; with ``significant_only``
    a rule fires only on a change beyond the noise (see ``judge``)."""
    rules = parse_rules(DEFAULT_RULES) if rules is None else list(rules)
    checks = [
        _check(rule, path, base_doc, new_doc, tolerance, significant_only)
        for rule in rules
        for path in _expand(rule, base_doc, new_doc)
    ]
    base_scenarios, new_scenarios = _names(base_doc, "scenario"), _names(new_doc, "scenario")
    scenarios = _union(base_scenarios, new_scenarios)
    by_scenario = _scenario_grade_rules(rules, scenarios)
    grades = []
    for name in scenarios:
        path = parse_path(f"scenario[{name}].grade.mean")
        base, new = lookup(base_doc, path), lookup(new_doc, path)
        if base.value is None and new.value is None:
            continue
        rule = by_scenario.get(name)
        dropped = False
        # A scenario only one run has is listed in the notes, not judged.
        if rule is not None and name in base_scenarios and name in new_scenarios:
            check = next((c for c in checks if c.rule is rule and c.path == path), None)
            if check is None:  # the overall grade.mean rule, applied to this scenario
                check = _check(rule, path, base_doc, new_doc, tolerance, significant_only)
                checks.append(check)
            dropped = check.regressed
        grades.append(GradeDiff(name, base.value, new.value, base.samples, new.samples, dropped))
    return Comparison(
        base=run_info(base_doc),
        new=run_info(new_doc),
        tolerance=tolerance,
        rows=tuple(_rows(base_doc, new_doc, tolerance)),
        checks=tuple(checks),
        grades=tuple(grades),
        notes=tuple(_notes(base_doc, new_doc)),
    )


def run_info(results: Results) -> RunInfo:
    """What names a results file's run in a comparison's header."""
    started, elapsed = results.started_at, results.elapsed_s
    return RunInfo(
        profile=results.profile.name if results.profile.name is not None else "?",
        started_at=float(started) if started is not None else None,
        elapsed_s=float(elapsed) if elapsed is not None else None,
        planned=results.runs.planned,
        interrupted=results.interrupted,
    )


def _notes(base_doc: Results, new_doc: Results) -> list[str]:
    """What makes the comparison less fair than it looks."""
    notes = []
    base, new = run_info(base_doc), run_info(new_doc)
    if base.profile != new.profile:
        notes.append(f"the runs used different profiles ({base.profile!r} and {new.profile!r})")
    for which, doc in (("base", base_doc), ("new", new_doc)):
        if doc.interrupted:
            notes.append(f"the {which} run was interrupted: its figures cover part of the plan")
        elif doc.stop_reason:
            notes.append(f"the {which} run stopped early: {doc.stop_reason}")
        if doc.generator.behind:
            notes.append(f"the {which} run's generator fell behind its schedule: its latencies include client delay")
    for scope in ("variant", "scenario"):
        base_names, new_names = _names(base_doc, scope), _names(new_doc, scope)
        gone = [n for n in base_names if n not in new_names]
        added = [n for n in new_names if n not in base_names]
        if gone:
            notes.append(f"{scope}s only in the base run: {', '.join(gone)}")
        if added:
            notes.append(f"{scope}s only in the new run: {', '.join(added)}")
    return notes


# ------------------------------------------------------------------------------------------------ rendering


def _show(kind: Kind, value: float | None) -> str:
    return "-" if value is None else format_value(kind, value)


def _signed(kind: Kind, delta: float | None) -> str:
    if delta is None:
        return "-"
    if delta == 0:
        return "0"
    sign = "+" if delta > 0 else "-"
    if kind is Kind.SHARE:
        return f"{sign}{abs(delta) * 100:.3g}pt"
    return f"{sign}{format_value(kind, abs(delta))}"


def _percent(relative: float | None) -> str:
    if relative is None:
        return "-"
    return f"{relative * 100:+.1f}%" if math.isfinite(relative) else ("+inf" if relative > 0 else "-inf")


def format_change(row: Row) -> str:
    """``+24.8ms (+30.0%)``, ``+5pt (+25.0%)``, ``0``: the change of a row in its units, and relative."""
    relative = f" ({_percent(row.relative)})" if row.relative else ""
    return _signed(row.path.kind, row.delta) + relative


def _show_change(rule: Rule, kind: Kind, change: float | None) -> str:
    if change is None:
        return "-"
    return _percent(change) if rule.relative else _signed(kind, change)


def _label(row: Row) -> str:
    return row.path.name.replace(".", " ", 1) if row.path.name.count(".") else row.path.name


def _regressed_paths(comparison: Comparison) -> set[str]:
    return {check.path.text for check in comparison.regressions}


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as a JSON-ready dict (schema ``stressor.comparison/1``)."""

    def run(info: RunInfo) -> dict[str, Any]:
        return {
            "profile": info.profile,
            "started_at": info.started_at,
            "elapsed_s": info.elapsed_s,
            "planned": info.planned,
            "interrupted": info.interrupted,
        }

    def finite(value: float | None) -> float | str | None:
        # JSON has no infinity: a relative change from zero is written as a string.
        return value if value is None or math.isfinite(value) else ("+inf" if value > 0 else "-inf")

    regressed = _regressed_paths(comparison)
    return {
        "schema": SCHEMA,
        "regressed": comparison.regressed,
        "base": run(comparison.base),
        "new": run(comparison.new),
        "tolerance": comparison.tolerance,
        "notes": list(comparison.notes),
        "rows": [
            {
                "section": row.section,
                "measure": row.path.text,
                "kind": str(row.path.kind),
                "base": row.base,
                "new": row.new,
                "delta": row.delta,
                "relative": row.relative,
                "base_samples": row.base_samples,
                "new_samples": row.new_samples,
                "judgement": str(row.judgement),
                "noise_band": row.band,
                "regressed": row.path.text in regressed,
            }
            for row in comparison.rows
        ],
        "rules": [
            {
                "rule": check.rule.text,
                "measure": check.path.text,
                "base": check.base,
                "new": check.new,
                "change": finite(check.change),
                "change_is_relative": check.rule.relative,
                "regressed": check.regressed,
                "note": check.note,
            }
            for check in comparison.checks
        ],
        "grades_by_scenario": [
            {
                "scenario": diff.scenario,
                "base_mean": diff.base_mean,
                "new_mean": diff.new_mean,
                "delta": diff.delta,
                "base_count": diff.base_count,
                "new_count": diff.new_count,
                "dropped": diff.dropped,
            }
            for diff in comparison.grades
        ],
    }


def _verdict_line(comparison: Comparison) -> str:
    if comparison.regressed:
        fired = len(comparison.regressions)
        return f"REGRESSED: {fired} regression rule{'s' if fired > 1 else ''} fired"
    return "no regression"


def render_text(comparison: Comparison) -> str:
    """The comparison as a console table, rules and grade differences below it, the verdict last."""
    regressed = _regressed_paths(comparison)
    lines = [
        "stressor compare",
        f"  base: {comparison.base.label}",
        f"  new:  {comparison.new.label}",
    ]
    lines += [f"note: {note}" for note in comparison.notes]
    width = max([len(_label(row)) for row in comparison.rows] + [7])
    header = f"  {'measure':<{width}}  {'base':>9}  {'new':>9}  {'delta':>9}  {'change':>8}  judgement"
    section = None
    for row in comparison.rows:
        if row.section != section:
            section = row.section
            lines += ["", f"{section}:", header]
        kind = row.path.kind
        flag = "  REGRESSED" if row.path.text in regressed else ""
        lines.append(
            f"  {_label(row):<{width}}  {_show(kind, row.base):>9}  {_show(kind, row.new):>9}"
            f"  {_signed(kind, row.delta):>9}  {_percent(row.relative):>8}  {row.judgement}{flag}"
        )
    if comparison.grades:
        lines += ["", "grades by scenario (mean):"]
        name_width = max(len(diff.scenario) for diff in comparison.grades)
        for diff in comparison.grades:
            flag = "  DROPPED" if diff.dropped else ""
            lines.append(
                f"  {diff.scenario:<{name_width}}  {_show(Kind.SCORE, diff.base_mean):>6} → "
                f"{_show(Kind.SCORE, diff.new_mean):<6}  {_signed(Kind.SCORE, diff.delta):>7}{flag}"
            )
    if comparison.checks:
        lines += ["", "regression rules:"]
        lines += [f"  {check.sentence}" for check in comparison.checks]
    lines += ["", _verdict_line(comparison)]
    return "\n".join(lines)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|#])")
# The rows a pull-request reader looks at first; the others go in a folded section (a worse one is lifted).
_HEADLINE = frozenset(
    {
        "queue_to_completion.p50",
        "queue_to_completion.p90",
        "queue_to_completion.p99",
        "queue_to_completion.max",
        "time_queued.p99",
        "time_in_progress.p99",
        "failure_rate",
        "achieved_runs_per_s",
        "requests_per_ended_run",
        "grade.mean",
    }
)


def headline_rows(comparison: Comparison) -> list[Row]:
    """The overall rows a reader looks at first, plus any row that regressed or got worse beyond noise."""
    regressed = _regressed_paths(comparison)
    return [
        row
        for row in comparison.rows
        if (row.section == "overall" and row.path.name in _HEADLINE)
        or row.path.text in regressed
        or row.judgement is Judgement.WORSE
    ]


def md_escape(text: str) -> str:
    """A string from a document, safe inside Markdown (GitHub renders HTML, and pipes split table cells)."""
    # Entities, not backslashes, for HTML's characters: no "<tag" survives in the text at all.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


_md = md_escape


def _mark(row: Row, regressed: set[str]) -> str:
    if row.path.text in regressed:
        return "❌"
    return {Judgement.WORSE: "⚠️", Judgement.BETTER: "✅", Judgement.NOISE: "✅"}.get(row.judgement, "")


def _md_table(rows: Sequence[Row], regressed: set[str], with_section: bool) -> list[str]:
    head = "| | " + ("slice | " if with_section else "") + "measure | base | new | change | judgement |"
    rule = "|---|" + ("---|" if with_section else "") + "---|---:|---:|---:|---|"
    lines = [head, rule]
    for row in rows:
        kind = row.path.kind
        change = format_change(row)
        judgement = "" if row.judgement is Judgement.INFO else str(row.judgement)
        section = f"{_md(row.section)} | " if with_section else ""
        lines.append(
            f"| {_mark(row, regressed)} | {section}`{_label(row)}` | {_show(kind, row.base)} | "
            f"{_show(kind, row.new)} | {change} | {judgement} |"
        )
    return lines


def render_markdown(comparison: Comparison) -> str:
    """A compact Markdown report for a pull-request comment: ✅ fine, ⚠️ worse, ❌ regression."""
    regressed = _regressed_paths(comparison)
    status = "❌ regression" if comparison.regressed else "✅ no regression"
    lines = [
        f"### stressor compare: {status}",
        "",
        f"base {_md(comparison.base.label)} · new {_md(comparison.new.label)}",
    ]
    lines += [f"> {_md(note)}" for note in comparison.notes]
    overall = [row for row in comparison.rows if row.section == "overall"]
    headline = headline_rows(comparison)
    lines += ["", *_md_table(headline, regressed, with_section=True)]
    if comparison.checks:
        lines += ["", "**Regression rules**", ""]
        for check in comparison.checks:
            mark = "❌" if check.regressed else "✅"
            lines.append(f"- {mark} {_md(check.sentence)}")
    if comparison.grades:
        lines += [
            "",
            "**Grades by scenario** (mean)",
            "",
            "| | scenario | base | new | change |",
            "|---|---|---:|---:|---:|",
        ]
        for diff in comparison.grades:
            lines.append(
                f"| {'❌' if diff.dropped else ''} | {_md(diff.scenario)} | {_show(Kind.SCORE, diff.base_mean)} | "
                f"{_show(Kind.SCORE, diff.new_mean)} | {_signed(Kind.SCORE, diff.delta)} |"
            )
    rest = [row for row in overall if row not in headline]
    if rest:
        lines += ["", "<details><summary>All figures</summary>", ""]
        lines += [*_md_table(rest, regressed, with_section=False), "", "</details>"]
    sliced = [row for row in comparison.rows if row.section != "overall" and row not in headline]
    if sliced:
        lines += ["", "<details><summary>Per variant and scenario</summary>", ""]
        lines += [*_md_table(sliced, regressed, with_section=True), "", "</details>"]
    lines += [
        "",
        f"<sub>✅ better or within noise (tolerance {comparison.tolerance:.0%}, wider for small samples) · "
        "⚠️ worse beyond noise · ❌ a regression rule fired</sub>",
    ]
    return "\n".join(lines) + "\n"
