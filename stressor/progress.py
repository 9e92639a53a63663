"""Live progress while a run goes, as values: the ``Progress`` snapshot the engine takes. Pure.

A snapshot carries the run's running totals, where it is on the plan's timeline, and its *current* figures
(rates, percentiles, failures and throttling over a recent window). ``progress_of`` alone measures that window
from the start of the run; ``ProgressWindow`` keeps the last few snapshots and measures it over the last few
seconds instead (never reaching back past the start of the current stage). ``eta_of`` says when the run ends.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol

from stressor.governor import Governor
from stressor.metrics import LatencyRecorder, Measure, Metrics, Outcome
from stressor.plan import open_spans, stage_at, stage_windows
from stressor.profile import ClosedLoad, Profile

WINDOW_S = 5.0  # the span "current" figures cover
# The shortest span a rate is taken over: batches arrive one by one, and one batch in the first 100 ms of a
# stage is not a rate of 10 a second. A stage's first second is therefore measured with the end of the last.
MIN_WINDOW_S = 1.0
REFUSALS = ("http_429", "http_503")  # the answers that say "slow down"


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals at one moment: what two snapshots are subtracted by to get a window's figures."""

    t_s: float
    stage_start_s: float
    due: int  # runs the plan made due so far
    submitted: int
    settled: int  # completed + failed + errored + rejected
    failures: int  # failed + errored + rejected
    refused: int  # requests answered 429 or 503
    requests: int  # HTTP requests sent
    throttle_wait_s: float  # wall time requests were held by rate limits (and pauses, when server_pause_s is None)
    server_pause_s: float | None  # wall time a server pause (Retry-After...) held requests (None: unknown)
    q2c_first: int  # counts-array index of q2c_counts[0]
    q2c_counts: tuple[int, ...]  # the queue-to-completion histogram's counts over its occupied range


START = Totals(
    t_s=0.0,
    stage_start_s=0.0,
    due=0,
    submitted=0,
    settled=0,
    failures=0,
    refused=0,
    requests=0,
    throttle_wait_s=0.0,
    server_pause_s=0.0,
    q2c_first=0,
    q2c_counts=(),
)  # the run's totals before it began


@dataclass(frozen=True, slots=True)
class StageSpan:
    """Where a stage sits on the plan's timeline (seconds since the start)."""

    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Progress:
    """The state of a run at one moment, as the client knows it: totals, then figures over ``window_s``.

    Runs: ``planned`` by the whole plan (its open stages; ``planned_more``: closed stages start more as runs
    end), ``due`` so far, ``submitted`` (created by the server), ``ended`` (completed, failed, errored or
    rejected), ``in_flight`` (submitted or being submitted, not yet seen to end).
    """

    elapsed_s: float
    planned_s: float  # the plan's length, grace not included
    stage: str
    stage_left_s: float
    planned: int
    due: int
    submitted: int
    in_flight: int
    completed: int
    failed: int
    errored: int
    rejected: int
    not_started: int
    window_s: float  # the span of every figure below (the last few seconds, or the run so far)
    offered_per_s: float  # runs that became due; 0 in the grace period, where nothing is due
    achieved_per_s: float  # runs the server created
    failure_rate: float | None  # of the runs that settled in the window (None: none did)
    q2c_p50_s: float | None  # of the runs seen to end in the window
    q2c_p99_s: float | None
    paused_s: float | None  # wall time in the window a server pause held requests (None: unknown)
    held_s: float  # wall time in the window requests were held by rate limits (and pauses, when not told apart)
    refused: int  # 429 / 503 answers in the window
    throttled_s: float  # the whole run's throttling, as the engine gave it
    totals: Totals = field(repr=False, compare=False)
    planned_more: bool = False
    stages: tuple[StageSpan, ...] = ()
    grace_s: float = 0.0
    stopped_at_s: float | None = None  # where the plan stopped early (a breaker, a threshold), if it did
    ended_per_s: float = 0.0  # runs that ended in the window, per second

    @property
    def ended(self) -> int:
        return self.completed + self.failed + self.errored + self.rejected

    @property
    def plan_end_s(self) -> float:
        """Where the plan ends (or ended): its last stage's end, or the early stop."""
        return self.planned_s if self.stopped_at_s is None else min(self.stopped_at_s, self.planned_s)

    @property
    def in_grace(self) -> bool:
        """Past the last stage (or stopped early): runs in flight are followed, none is started."""
        return self.stopped_at_s is not None or self.stage_left_s <= 0

    @property
    def grace_left_s(self) -> float:
        """The longest the grace period may still last."""
        return min(max(self.plan_end_s + self.grace_s - self.elapsed_s, 0.0), self.grace_s)


class LiveRun(Protocol):
    """What a live display reads: an engine, or a coordinator of workers."""

    def progress(self) -> Progress: ...

    @property
    def governor(self) -> Governor: ...


def _q2c_range(recorder: LatencyRecorder) -> tuple[int, tuple[int, ...]]:
    if recorder.min_us is None or recorder.max_us is None:
        return 0, ()
    histogram = recorder.histogram
    first = histogram.get_counts_array_index(recorder.min_us)
    last = histogram.get_counts_array_index(recorder.max_us)
    return first, tuple(histogram.counts[first : last + 1])


def planned_runs(profile: Profile) -> tuple[int, bool]:
    """The runs of the whole plan: those of its open stages (known in advance), and whether closed stages start
    more (as many as their runs in flight allow: known only as runs end)."""
    runs = sum(span.batches * span.window.stage.batch.runs for span in open_spans(profile))
    return runs, any(isinstance(stage.load, ClosedLoad) for stage in profile.stages)


def progress_of(profile: Profile, metrics: Metrics, elapsed_s: float, in_flight: int, throttled_s: float) -> Progress:
    """The snapshot of a run ``elapsed_s`` into it, its current figures taken over the whole run so far (a
    ``ProgressWindow`` narrows them to the last few seconds). ``throttled_s``: rate-limit waits and server
    pauses, summed. Copies the histogram's occupied counts: about once a second, not more."""
    window = stage_at(profile, elapsed_s)
    outcomes = metrics.outcomes
    failures = outcomes[Outcome.FAILED] + outcomes[Outcome.ERRORED] + outcomes[Outcome.REJECTED]
    first, counts = _q2c_range(metrics.recorders[Measure.QUEUE_TO_COMPLETION])
    refused = requests = 0
    for key, n in metrics.requests.items():
        requests += n
        if key.rsplit(" ", 1)[-1] in REFUSALS:
            refused += n
    planned, more = planned_runs(profile)
    totals = Totals(
        t_s=elapsed_s,
        stage_start_s=window.start_s if window else profile.duration_s,
        due=metrics.planned_runs - metrics.never_due_runs,
        submitted=metrics.submitted_runs,
        settled=failures + outcomes[Outcome.COMPLETED],
        failures=failures,
        refused=refused,
        requests=requests,
        throttle_wait_s=throttled_s,
        server_pause_s=None,
        q2c_first=first,
        q2c_counts=counts,
    )
    snapshot = Progress(
        elapsed_s=elapsed_s,
        planned_s=profile.duration_s,
        stage=window.stage.name if window else "",
        stage_left_s=window.end_s - elapsed_s if window else 0.0,
        planned=max(planned, metrics.planned_runs),  # never below what was due (closed stages add to it)
        due=totals.due,
        submitted=metrics.submitted_runs,
        in_flight=in_flight,
        completed=outcomes[Outcome.COMPLETED],
        failed=outcomes[Outcome.FAILED],
        errored=outcomes[Outcome.ERRORED],
        rejected=outcomes[Outcome.REJECTED],
        not_started=sum(metrics.not_started.values()),
        window_s=0.0,
        offered_per_s=0.0,
        achieved_per_s=0.0,
        failure_rate=None,
        q2c_p50_s=None,
        q2c_p99_s=None,
        paused_s=None,
        held_s=0.0,
        refused=0,
        throttled_s=throttled_s,
        totals=totals,
        planned_more=more,
        stages=tuple(StageSpan(w.stage.name, w.start_s, w.end_s) for w in stage_windows(profile)),
        grace_s=profile.grace_s,
        stopped_at_s=metrics.plan_ran_s,
    )
    return current(snapshot, None)


def window_percentiles(now: Totals, base: Totals | None, percentiles: tuple[float, ...]) -> list[float | None]:
    """Percentiles (seconds) of the values recorded between two snapshots of one cumulative histogram."""
    old = {} if base is None else {base.q2c_first + i: n for i, n in enumerate(base.q2c_counts) if n}
    window = [(now.q2c_first + i, n - old.get(now.q2c_first + i, 0)) for i, n in enumerate(now.q2c_counts)]
    window = [(index, n) for index, n in window if n > 0]
    total = sum(n for _, n in window)
    if not total:
        return [None] * len(percentiles)
    histogram = LatencyRecorder().histogram  # for its index <-> value arithmetic only
    found: list[float | None] = []
    for p in percentiles:
        rank = max(1, math.floor(p / 100 * total + 0.5))  # HdrHistogram's own rule, so figures agree
        seen = 0
        for index, n in window:
            seen += n
            if seen >= rank:
                found.append(histogram.get_highest_equivalent_value(histogram.get_value_from_index(index)) / 1e6)
                break
    return found


def current(snapshot: Progress, base: Totals | None) -> Progress:
    """The snapshot with its current figures taken over (base, snapshot]; from the start when ``base`` is None."""
    now = snapshot.totals
    then = base if base is not None else START
    span = now.t_s - then.t_s
    rate = 1 / max(span, MIN_WINDOW_S) if span > 0 else 0.0  # the run's first second: runs so far, per second
    settled = now.settled - then.settled
    paused = (
        None
        if now.server_pause_s is None or then.server_pause_s is None
        else min(max(now.server_pause_s - then.server_pause_s, 0.0), span)
    )
    p50, p99 = window_percentiles(now, base, (50.0, 99.0))
    return replace(
        snapshot,
        window_s=span,
        offered_per_s=0.0 if snapshot.in_grace else (now.due - then.due) * rate,
        achieved_per_s=(now.submitted - then.submitted) * rate,
        failure_rate=(now.failures - then.failures) / settled if settled else None,
        q2c_p50_s=p50,
        q2c_p99_s=p99,
        paused_s=paused,
        held_s=min(max(now.throttle_wait_s - then.throttle_wait_s, 0.0), span),
        refused=now.refused - then.refused,
        ended_per_s=settled * rate,
    )


class ProgressWindow:
    """Turns successive snapshots of one run into snapshots of its last ``window_s`` seconds."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._kept: deque[Totals] = deque()

    def update(self, snapshot: Progress, governor: Governor | None = None) -> Progress:
        """The snapshot, its figures over the last ``window_s`` seconds of the current stage (at least the last
        ``MIN_WINDOW_S``; when snapshots are further apart, since the previous one). The governor, when given,
        tells the server's pauses apart from the time requests were held by rate limits."""
        totals = snapshot.totals
        if governor is not None:
            totals = replace(totals, throttle_wait_s=governor.throttle_wait_s, server_pause_s=governor.server_pause_s)
            snapshot = replace(snapshot, totals=totals)
        kept = self._kept
        while kept and kept[-1].t_s >= totals.t_s:
            kept.pop()  # a clock that stood still or went back (a new run): its snapshots measure nothing
        since = min(max(totals.t_s - self.window_s, totals.stage_start_s), totals.t_s - MIN_WINDOW_S)
        while len(kept) > 1 and kept[1].t_s <= since:
            kept.popleft()
        # The base: the last snapshot at or before ``since`` (or, when none is kept, the oldest one). The start
        # of the run is a snapshot of zeros: a window that reaches it needs no earlier snapshot.
        base = None if since <= 0 or not kept else kept[0]
        kept.append(totals)
        return current(snapshot, base)

    def read(self, run: LiveRun) -> Progress:
        """The current snapshot of a live run."""
        return self.update(run.progress(), run.governor)


@dataclass(frozen=True, slots=True)
class Eta:
    """When the run ends, as far as a snapshot tells: the rest of the plan, then at most the grace period (the
    run ends sooner when its last runs end)."""

    plan_left_s: float  # until the plan ends (0 once it has)
    grace_left_s: float  # the longest the grace period may last after that
    drain_s: float | None  # in the grace period: the runs in flight at the rate runs end now (None: none end)

    @property
    def at_most_s(self) -> float:
        return self.plan_left_s + self.grace_left_s


def eta_of(p: Progress) -> Eta:
    """When the run of snapshot ``p`` ends."""
    if not p.in_grace:
        return Eta(max(p.plan_end_s - p.elapsed_s, 0.0), p.grace_s, None)
    if p.in_flight == 0:
        drain: float | None = 0.0
    elif p.ended_per_s > 0:
        drain = min(p.in_flight / p.ended_per_s, p.grace_left_s)
    else:
        drain = None
    return Eta(0.0, p.grace_left_s, drain)
