"""Measurement: HDR recorders per measure, outcome counters, and the run records they are fed from.

All latencies are recorded in whole microseconds in HDR histograms (1 µs .. 1 h, 3 significant digits),
which merge losslessly. Exact count, sum, min and max are kept beside each histogram, because the
histogram's own mean walks every bucket and its min / max are rounded to bucket edges.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from hdrh.histogram import HdrHistogram

from stressor.grades import ScoreStats
from stressor.timestamps import NS_PER_S, ClockAnchor

HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


class Outcome(StrEnum):
    """How a run ended, as far as stressor knows."""

    COMPLETED = "completed"  # the server says completed
    FAILED = "failed"  # the server says failed (the call failed)
    OPEN = "open"  # still queued or in progress when stressor stopped following it
    ERRORED = "errored"  # the request that should have created it failed; it may not exist
    REJECTED = "rejected"  # the server refused to create it (429/503): it does not exist
    # stressor cannot tell: its create's answer was lost and no listing settled whether the runs exist (they may,
    # and be billed), or the run list stopped showing a run this client created
    UNKNOWN = "unknown"


class Measure(StrEnum):
    """The measures stressor records, each in its own histogram."""

    QUEUE_TO_COMPLETION = "queue_to_completion"
    START_LATENESS = "start_lateness"
    SUBMIT_RTT = "submit_rtt"
    TIME_QUEUED = "time_queued"
    TIME_IN_PROGRESS = "time_in_progress"
    DETECTION_DELAY = "detection_delay"


# Where each measure's two ends come from: stated in every result, as DESIGN.md asks.
MEASURE_SOURCES: dict[Measure, str] = {
    Measure.QUEUE_TO_COMPLETION: "client: run due (plan) -> client saw it end",
    Measure.START_LATENESS: "client: batch due (plan) -> request sent",
    Measure.SUBMIT_RTT: "client: request sent -> response read",
    Measure.TIME_QUEUED: "server: launched (created_at + index x stagger) -> started_at",
    Measure.TIME_IN_PROGRESS: "server: started_at -> completed_at",
    Measure.DETECTION_DELAY: "server completed_at -> client saw it end (client clock, moved by the server's offset)",
}


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of one recorder, in seconds."""

    count: int
    min_s: float | None
    mean_s: float | None
    max_s: float | None
    percentiles_s: dict[float, float]
    clamped: int


def _acyclic(histogram: HdrHistogram) -> HdrHistogram:
    """The histogram, freed by reference counting alone once unreferenced.

    hdrh makes every histogram a reference cycle (``histogram.encoder.histogram``), which only the cycle
    collector frees; a run tunes it to seldom run (``runtime.tuned_gc``), so a histogram dropped during a run
    (a large array of counts, one every progress window) would stay for minutes. The encoder's link back becomes
    a weak one."""
    histogram.encoder.histogram = weakref.proxy(histogram)
    return histogram


class LatencyRecorder:
    """One HDR histogram in microseconds with exact count, sum, min and max beside it.

    Values outside 0 .. 1 h are clamped to the nearest end and counted in ``clamped``, never dropped
    silently (``HdrHistogram.record_value`` returns False and drops them otherwise).

    ``record_us`` bypasses ``HdrHistogram.record_value`` (pure Python, and called for every value of every run):
    it computes the counts index inline from the histogram's own parameters, read once here, and leaves the
    histogram exactly as ``record_value`` would: same counts, ``total_count``, ``min_value`` and
    ``max_value``, at every moment (so ``histogram`` may be read, encoded or added to any time). Its
    ``min_value`` / ``max_value`` are only touched when a value passes the exact ``min_us`` / ``max_us``:
    whenever ``count`` > 0 they lie at or outside those (``HdrHistogram.add`` and decoding only widen them,
    to bucket edges), so a value that moves neither would not have moved them in ``record_value`` either.
    """

    __slots__ = (
        "_base",
        "_counts",
        "_magnitude",
        "_mask",
        "_shift",
        "clamped",
        "count",
        "histogram",
        "max_us",
        "min_us",
        "sum_us",
    )

    def __init__(self) -> None:
        histogram = _acyclic(HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS))
        self.histogram = histogram
        # hdrh's _counts_index_for(v), with its bin()-based _clz(x) == 64 - x.bit_length() and its three steps
        # folded together:  L = (v | sub_bucket_mask).bit_length()
        #   index = ((L - unit_magnitude - m) << m) + (v >> (L - m - 1)) - sub_bucket_half_count,  m = half-count
        # magnitude; hence index = (L << m) + (v >> (L - _shift)) - _base.
        magnitude = histogram.sub_bucket_half_count_magnitude
        # The live ctypes array, kept: hdrh adds, resets and encodes it in place (so ``histogram`` is never
        # to be replaced by another).
        self._counts = histogram.counts
        self._mask = histogram.sub_bucket_mask
        self._magnitude = magnitude
        self._shift = magnitude + 1
        self._base = ((histogram.unit_magnitude + magnitude) << magnitude) + histogram.sub_bucket_half_count
        # Indexes grow with the value, so HIGHEST_US fitting means every clamped value does (and a ctypes
        # array would wrap a negative index silently, so it must never be computed wrong).
        top = self._counts_index(HIGHEST_US)
        if not 0 <= top < histogram.counts_len or top != histogram._counts_index_for(HIGHEST_US):
            raise AssertionError(f"HDR counts index {top} of {HIGHEST_US} µs is wrong or outside the histogram")
        self.count = 0
        self.sum_us = 0
        self.min_us: int | None = None
        self.max_us: int | None = None
        self.clamped = 0

    def _counts_index(self, value_us: int) -> int:
        """The index of ``value_us`` (0 .. HIGHEST_US) in the histogram's counts: the inline formula of the
        ``record_*`` methods, for checking them."""
        length = (value_us | self._mask).bit_length()
        return (length << self._magnitude) + (value_us >> (length - self._shift)) - self._base

    # record_ns and record_s call record_us rather than repeat its body: inlined they were only a little
    # faster, not worth three copies of the code every percentile rests on.

    def record_ns(self, value_ns: int) -> None:
        """Record one duration given in nanoseconds (truncated to whole microseconds)."""
        self.record_us(value_ns // 1000)

    def record_s(self, value_s: float) -> None:
        """Record one duration given in seconds (rounded to whole microseconds)."""
        self.record_us(round(value_s * 1_000_000))

    def record_us(self, value_us: int) -> None:
        """Record one duration given in whole microseconds."""
        if value_us < 0 or value_us > HIGHEST_US:
            self.clamped += 1
            value_us = 0 if value_us < 0 else HIGHEST_US
        length = (value_us | self._mask).bit_length()
        self._counts[(length << self._magnitude) + (value_us >> (length - self._shift)) - self._base] += 1
        histogram = self.histogram
        histogram.total_count += 1
        self.count += 1
        self.sum_us += value_us
        # Plain comparisons, no min() / max() but on a new extreme (rare): and only then may the histogram's
        # own min / max need to move (see the class docstring).
        min_us = self.min_us
        if min_us is None:
            self.min_us = self.max_us = value_us
            histogram.min_value = min(histogram.min_value, value_us)
            histogram.max_value = max(histogram.max_value, value_us)
        elif value_us < min_us:
            self.min_us = value_us
            histogram.min_value = min(histogram.min_value, value_us)
        elif value_us > self.max_us:  # type: ignore[operator]  # set together with min_us
            self.max_us = value_us
            histogram.max_value = max(histogram.max_value, value_us)

    def merge(self, other: LatencyRecorder) -> None:
        """Add another recorder's values (lossless)."""
        self.histogram.add(other.histogram)
        self.count += other.count
        self.sum_us += other.sum_us
        self.clamped += other.clamped
        for name, pick in (("min_us", min), ("max_us", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if mine is None else mine if theirs is None else pick(mine, theirs))

    def summary(self) -> Summary:
        """Count, min, mean, max and the standard percentiles, in seconds (one pass over the histogram)."""
        if self.count == 0:
            return Summary(0, None, None, None, {}, self.clamped)
        assert self.max_us is not None and self.min_us is not None
        values = self.percentiles_us(PERCENTILES)
        # A percentile never exceeds the exact max (HDR reports the bucket's upper edge).
        percentiles = {p: min(max(v, self.min_us), self.max_us) / 1e6 for p, v in values.items()}
        return Summary(
            count=self.count,
            min_s=self.min_us / 1e6,
            mean_s=self.sum_us / self.count / 1e6,
            max_s=self.max_us / 1e6,
            percentiles_s=percentiles,
            clamped=self.clamped,
        )

    def percentiles_us(self, percentiles: Iterable[float]) -> dict[float, int]:
        """hdrh's ``get_percentile_to_value_dict`` (0 < p <= 100), value for value, from one cumulative sum
        of the counts taken in C: hdrh walks them in Python, slowly, and a run's results read dozens of
        histograms (its live progress, a few every second)."""
        histogram = self.histogram
        if self.max_us is None:
            return {}
        cumulative = list(itertools.accumulate(self._counts[: self._counts_index(self.max_us) + 1]))
        values = {}
        for percentile in percentiles:
            index = bisect.bisect_left(cumulative, histogram.get_target_count_at_percentile(percentile))
            values[percentile] = histogram.get_highest_equivalent_value(histogram.get_value_from_index(index))
        return values

    def encode(self) -> str:
        """The histogram in HdrHistogram's compressed, base64 form (readable by the Java / C / Go ports)."""
        encoded = self.histogram.encode()
        return encoded.decode("ascii") if isinstance(encoded, bytes) else encoded

    @classmethod
    def decode(cls, blob: str) -> HdrHistogram:
        """A histogram back from ``encode``'s text."""
        base64.b64decode(blob, validate=True)  # a clear error on garbage before hdrh's own
        return _acyclic(HdrHistogram.decode(blob))

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Pickled (to a worker's coordinator) as HDR's compressed encoding: every count kept, in far fewer bytes.
        return _restore_recorder, (self.encode(), self.count, self.sum_us, self.min_us, self.max_us, self.clamped)


def _restore_recorder(
    blob: str, count: int, sum_us: int, min_us: int | None, max_us: int | None, clamped: int
) -> LatencyRecorder:
    recorder = LatencyRecorder()
    if count:
        recorder.histogram.add(LatencyRecorder.decode(blob))
    recorder.count, recorder.sum_us, recorder.min_us, recorder.max_us = count, sum_us, min_us, max_us
    recorder.clamped = clamped
    return recorder


# A run record's fields that come from its call's log ([calls] fetch).
CALL_LOG_RECORD_FIELDS = ("call_duration_s", "end_reason", "product", "billable_minutes", "billing_total_cents")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Everything stressor learned of one run. Client times are monotonic ns, server times epoch seconds."""

    batch_seq: int
    index: int
    stage: int
    variant: str
    scenario: str
    outcome: Outcome
    due_ns: int
    run_id: str | None = None
    batch_id: str | None = None
    error: str | None = None
    detected_ns: int | None = None
    created_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    stagger_s: float = 0.0
    cost_cents: float | None = None
    call_id: str | None = None
    grade: float | None = None  # 0..1, once the call's grade is known
    call_outcome: str | None = None  # the grade's: success, failure, no_conversation or unknown
    clock_offset_s: float = 0.0  # the server's clock minus this client's when the end was seen
    # From the call's log, once fetched ([calls] fetch; None until then): its duration_seconds, and the rest as named
    call_duration_s: float | None = None
    end_reason: str | None = None
    product: str | None = None
    billable_minutes: float | None = None
    billing_total_cents: float | None = None

    def to_json(self, anchor: ClockAnchor, t0_ns: int) -> dict[str, object]:
        """The record for files: client times as seconds since the start of the run; the call log's fields only
        when known."""
        shown = {name: value for name in CALL_LOG_RECORD_FIELDS if (value := getattr(self, name)) is not None}
        return {
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "batch_seq": self.batch_seq,
            "index": self.index,
            "stage": self.stage,
            "variant": self.variant,
            "scenario": self.scenario,
            "outcome": str(self.outcome),
            "error": self.error,
            "due_s": (self.due_ns - t0_ns) / NS_PER_S,
            "detected_s": None if self.detected_ns is None else (self.detected_ns - t0_ns) / NS_PER_S,
            "due_at": anchor.to_wall_s(self.due_ns),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "cost_cents": self.cost_cents,
            "stagger_s": self.stagger_s,
            "call_id": self.call_id,
            "grade": self.grade,
            "call_outcome": self.call_outcome,
            "clock_offset_s": self.clock_offset_s,
            **shown,
        }


@dataclass
class Breakdown:
    """Every figure of one slice of the runs (a variant, a scenario): outcomes, each measure, grades, runs not
    started by cause, runs submitted and their estimated cost.

    A measure's histogram is made on its first value (each holds a large array of counts, and a corpus may
    have hundreds of scenarios); ``measures`` holds only those that have one.
    """

    outcomes: Counter[str] = field(default_factory=Counter)
    measures: dict[Measure, LatencyRecorder] = field(default_factory=dict)
    grades: ScoreStats = field(default_factory=ScoreStats)
    not_started: Counter[str] = field(default_factory=Counter)
    submitted_runs: int = 0
    cost_cents: float = 0.0

    def recorder(self, measure: Measure) -> LatencyRecorder:
        """The slice's recorder of ``measure``, made when first needed."""
        recorder = self.measures.get(measure)
        if recorder is None:
            recorder = self.measures[measure] = LatencyRecorder()
        return recorder

    @property
    def queue_to_completion(self) -> LatencyRecorder:
        """The slice's queue-to-completion recorder."""
        return self.recorder(Measure.QUEUE_TO_COMPLETION)

    @property
    def time_in_progress(self) -> LatencyRecorder:
        """The slice's time-in-progress recorder."""
        return self.recorder(Measure.TIME_IN_PROGRESS)

    def merge(self, other: Breakdown) -> None:
        """Add another slice's figures (lossless: counts add, histograms merge)."""
        self.outcomes.update(other.outcomes)
        for measure, recorder in other.measures.items():
            self.recorder(measure).merge(recorder)
        self.grades.scores.extend(other.grades.scores)
        self.grades.below_threshold += other.grades.below_threshold
        self.grades.ungraded += other.grades.ungraded
        self.not_started.update(other.not_started)
        self.submitted_runs += other.submitted_runs
        self.cost_cents += other.cost_cents


def _slice(pieces: dict[str, Breakdown], name: str) -> Breakdown:
    # Not setdefault: that would build a Breakdown to drop it on every call.
    piece = pieces.get(name)
    if piece is None:
        piece = pieces[name] = Breakdown()
    return piece


class Metrics:
    """All figures of one run of stressor. Fed by the engine and the targets; knows no I/O."""

    def __init__(self, anchor: ClockAnchor) -> None:
        self.anchor = anchor
        self.recorders: dict[Measure, LatencyRecorder] = {m: LatencyRecorder() for m in Measure}
        # Due time -> the batch task ran: the generator's own lag, apart from limits and throttling.
        self.dispatch_lag = LatencyRecorder()
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.not_started: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.planned_runs = 0
        self.submitted_runs = 0
        # After an early stop: the runs of the rest of the plan, counted in planned_runs (and not started) though
        # never due, and the seconds of the plan that ran (the offered load is the other runs over that time).
        self.never_due_runs = 0
        self.plan_ran_s: float | None = None
        # When submitting went on (monotonic ns): the first started batch's due time, the last create's answer.
        # Achieved load is runs submitted per second of that span, not of the plan's.
        self.first_due_ns: int | None = None
        self.last_due_ns: int | None = None
        self.last_submit_ns: int | None = None
        self.cost_cents = 0.0
        self.by_variant: dict[str, Breakdown] = {}
        self.by_scenario: dict[str, Breakdown] = {}
        self.grades = ScoreStats()

    def _slices(self, variant: str | None, scenarios: Iterable[str]) -> list[Breakdown]:
        """The variant's slice and each distinct scenario's (a batch may carry one scenario several times)."""
        pieces = [_slice(self.by_variant, variant)] if variant is not None else []
        pieces += [_slice(self.by_scenario, name) for name in dict.fromkeys(scenarios)]
        return pieces

    def record_batch_start(
        self, due_ns: int, sent_ns: int, *, variant: str | None = None, scenarios: Iterable[str] = ()
    ) -> None:
        """A batch's create is about to be sent: how late after its due time (also in its variant's slice and
        in the slice of each scenario it carries)."""
        self.recorders[Measure.START_LATENESS].record_ns(sent_ns - due_ns)
        for piece in self._slices(variant, scenarios):
            piece.recorder(Measure.START_LATENESS).record_ns(sent_ns - due_ns)
        self.first_due_ns = due_ns if self.first_due_ns is None else min(self.first_due_ns, due_ns)
        self.last_due_ns = due_ns if self.last_due_ns is None else max(self.last_due_ns, due_ns)

    def record_submit(
        self, sent_ns: int, acked_ns: int, *, variant: str | None = None, scenarios: Iterable[str] = ()
    ) -> None:
        """A batch's create was answered with its runs: the round trip, governor waits and retries included."""
        self.recorders[Measure.SUBMIT_RTT].record_ns(acked_ns - sent_ns)
        for piece in self._slices(variant, scenarios):
            piece.recorder(Measure.SUBMIT_RTT).record_ns(acked_ns - sent_ns)
        self.last_submit_ns = acked_ns if self.last_submit_ns is None else max(self.last_submit_ns, acked_ns)

    def record_request(self, kind: str, outcome: str) -> None:
        """Count one HTTP request by what it was for and how it ended (``2xx``, ``http_503``, ``timeout``...)."""
        self.requests[f"{kind} {outcome}"] += 1

    def record_not_started(
        self, cause: str, runs: int, *, variant: str | None = None, scenarios: Sequence[str] = ()
    ) -> None:
        """Runs that were due but not started (budget, limits...), like k6's dropped iterations. ``scenarios``,
        when given, names each run's scenario (one per run)."""
        self.not_started[cause] += runs
        if variant is not None:
            _slice(self.by_variant, variant).not_started[cause] += runs
        for name in scenarios:
            _slice(self.by_scenario, name).not_started[cause] += 1

    def record_run(self, record: RunRecord) -> None:
        """Count a run that has reached its end (or was given up as open) and record its durations."""
        outcome = record.outcome
        self.outcomes[outcome] += 1
        if record.error and outcome in (Outcome.ERRORED, Outcome.REJECTED, Outcome.UNKNOWN):
            self.errors[record.error] += 1
        slices = (
            _slice(self.by_variant, record.variant),
            _slice(self.by_scenario, record.scenario),
        )
        submitted = record.run_id is not None
        cost = record.cost_cents or 0.0
        for piece in slices:
            piece.outcomes[outcome] += 1
            piece.submitted_runs += submitted
            piece.cost_cents += cost
        detected_ns = record.detected_ns
        if outcome not in (Outcome.COMPLETED, Outcome.FAILED) or detected_ns is None:
            return
        # Every value in whole microseconds, each recorded in the totals and in the run's slices (the calls are
        # few and direct: this runs for every run).
        values = [(Measure.QUEUE_TO_COMPLETION, (detected_ns - record.due_ns) // 1000)]
        completed_at, started_at = record.completed_at, record.started_at
        if completed_at is not None:
            # on the server's clock, as its stamp is: a server a few seconds behind would otherwise add them
            detected_at = self.anchor.to_wall_s(detected_ns) + record.clock_offset_s
            values.append((Measure.DETECTION_DELAY, round((detected_at - completed_at) * 1_000_000)))
        if started_at is not None:
            if record.created_at is not None:
                launched = record.created_at + record.index * record.stagger_s
                values.append((Measure.TIME_QUEUED, round((started_at - launched) * 1_000_000)))
            if completed_at is not None:
                values.append((Measure.TIME_IN_PROGRESS, round((completed_at - started_at) * 1_000_000)))
        recorders = self.recorders
        for measure, value_us in values:
            recorders[measure].record_us(value_us)
            for piece in slices:
                piece.recorder(measure).record_us(value_us)

    def record_grade(self, record: RunRecord, threshold: float | None) -> None:
        """Count the grade of a run that completed (an ungraded one too: grades may never come)."""
        for stats in (
            self.grades,
            _slice(self.by_variant, record.variant).grades,
            _slice(self.by_scenario, record.scenario).grades,
        ):
            stats.add(record.grade, threshold)

    @property
    def failure_rate(self) -> float | None:
        """Runs that did not complete, of those that settled: (failed + errored + rejected) / (those +
        completed). Open runs are reported apart, not counted."""
        failures = sum(self.outcomes[o] for o in (Outcome.FAILED, Outcome.ERRORED, Outcome.REJECTED))
        settled = failures + self.outcomes[Outcome.COMPLETED]
        return failures / settled if settled else None
