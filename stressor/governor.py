"""The governor: one place that decides how hard stressor may push a target right now. Pure, time passed in.

It ties ``stressor.limits`` together for one run: client-side rates, the server's push-back (per kind of
request refused), retries within a budget, an AIMD limit on runs in flight and the breaker; it owns the count
of runs in flight. How: docs/internals.md#governor.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from stressor.limits import (
    AimdLimit,
    AimdRate,
    Backoff,
    Breaker,
    BreakerTrip,
    Decision,
    Gcra,
    HeldTime,
    HttpOutcome,
    RetryBudget,
    TransportFailure,
    classify_attempt,
    plan_retry,
    read_signal,
)
from stressor.limits.signals import SOURCE_RETRY_AFTER
from stressor.metrics import LatencyRecorder
from stressor.profile import MAX_RUNS_PER_BATCH, Limits

RequestKind = Literal["create", "poll"]
KINDS: tuple[RequestKind, ...] = ("create", "poll")
# Causes that say the server is overloaded: they shrink the AIMD limit and count against the breaker.
OVERLOAD_CAUSES = frozenset({"http_429", "http_503", "http_5xx", "timeout", "connect", "reset", "protocol", "write"})
AIMD_CEILING = 100_000  # "no limit" for runs in flight, as an int the AIMD limit can shrink from
REFUSALS = (429, 503)
# The client counts as held by the learned rate (so the rate may grow) while a request waited on it this recently.
BOUND_RECENTLY_S = 1.0
# The longest shared pause a refusal that named no time earns: the learned rate does the lasting slowing.
BARE_PAUSE_CAP_S = 1.0


@dataclass(frozen=True, slots=True)
class GovernorReport:
    """What the governor did over a run, for the summary and the results."""

    mode: str
    throttle_wait_s: float
    server_pause_s: float
    capacity_wait_s: float
    client_wait_s: float
    server_rate_wait_s: float
    responses: dict[str, int]
    learned_rates: dict[str, float]  # per kind of request refused: "create", "poll"
    retries: dict[str, int]
    retry_after_s: LatencyRecorder
    unparseable_headers: dict[str, int]
    run_limit: int | None
    trip: BreakerTrip | None


class _Refusals:
    """What refusals of one kind of request taught: a rate (AIMD over that kind's accepted answers), the pause
    in force, and the bare refusals' backoff streak."""

    def __init__(self, floor: float) -> None:
        self.rate = AimdRate(floor=floor)
        self.bucket = Gcra(math.inf)  # paced to the learned rate (times the process's share)
        self.paused_until = -math.inf
        self.bound_at = -math.inf  # when a request of this kind last waited on the learned rate
        self.streak = 0  # pauses in a row without an accepted answer in between: the backoff attempt


class Governor:
    """Limits, backoff and breaker state shared by every task of one run."""

    def __init__(self, limits: Limits, rng: random.Random | None = None, *, share: float = 1.0) -> None:
        self.limits = limits
        self.share = share  # the part of the server's quota this process may use (one of several workers)
        self.obey = limits.mode == "obey"
        rng = rng if rng is not None else random.Random()
        self._buckets: dict[RequestKind, Gcra] = {
            "create": Gcra(limits.create_rate),
            "poll": Gcra(limits.poll_rate),
        }
        # The server's own quota, shared by every request, learned from RateLimit-Policy (q requests per w
        # seconds): obeying it up front avoids the 429s that only pausing after the fact would cost.
        self._server_bucket = Gcra(math.inf)
        self.server_rate: float | None = None  # the quota's pace the server stated (RateLimit-Policy's q per w)
        # What refusals taught, per kind of request: a limit on creates alone must not slow the polls.
        # The learned rates' floor keeps enough requests going for the breaker to judge within its window: a
        # client that slowed to a trickle must still find out, and say, that the target has stopped working.
        floor = max(1.0, limits.breaker_min_requests / limits.breaker_window_s)
        self._refused: dict[RequestKind, _Refusals] = {kind: _Refusals(floor) for kind in KINDS}
        self._rng = rng
        self._backoff = Backoff(limits.backoff_base_s, limits.backoff_cap_s, rng=rng)
        self._budget = RetryBudget(limits.retry_ratio)
        # Started at the first overload from the runs then in flight (or max_runs_in_flight, when lower): a
        # limit started from a made-up ceiling would take dozens of cuts to reach what was really in flight.
        self._aimd: AimdLimit | None = None
        self._adaptive = limits.adaptive and self.obey
        self._breaker = Breaker(limits.breaker_window_s, limits.breaker_failure_ratio, limits.breaker_min_requests)
        self._trip: BreakerTrip | None = None
        self._paused_until = -math.inf  # an exhausted stated quota's pause: it holds every request
        # Throttling as wall time the client was held (overlapping waits of concurrent requests count once).
        self._held = {name: HeldTime() for name in ("client", "server_rate", "paced", "pause")}
        self.client_wait_s = 0.0  # held by the client's own create/poll rates
        self.server_rate_wait_s = 0.0  # held by the server's rate: its stated quota or the one learned from refusals
        self.throttle_wait_s = 0.0  # held by either rate (the two above, overlaps counted once)
        self.server_pause_s = 0.0  # held by a server pause (Retry-After, an exhausted quota, a bare 429/503)
        self.capacity_wait_s = 0.0  # summed over batches: waits for room under the runs-in-flight limits
        self.responses: Counter[str] = Counter()  # 429 and 503 answers, by status (every attempt counted)
        self.retries: Counter[str] = Counter()
        self.retry_after = LatencyRecorder()
        self.unparseable: Counter[str] = Counter()
        self._runs_in_flight = 0  # the AIMD limit grows only while it is reached
        self._absorbed_run_limit: int | None = None  # the workers' run limits, summed (see ``absorb``)
        self._absorbed_learned_rates: dict[str, float] = {}  # the workers' learned rates, summed per kind

    # ------------------------------------------------------------------------------------------ requests

    def reserve(self, kind: RequestKind, now: float) -> float:
        """Seconds to wait before sending a request of this kind (booked: call once per attempt)."""
        refused = self._refused[kind]
        own = self._buckets[kind].reserve(now)
        learned = refused.bucket.reserve(now)
        server = max(self._server_bucket.reserve(now), learned)
        wait = max(own, server)
        # Each bucket's wait includes the pause: the part up to its end is the server's pause, the rest pacing.
        paused = min(wait, max(0.0, self._paused_until - now, refused.paused_until - now))
        held = self._held
        self.server_pause_s += held["pause"].hold(now, now + paused)
        self.client_wait_s += held["client"].hold(now + paused, now + own)
        self.server_rate_wait_s += held["server_rate"].hold(now + paused, now + server)
        self.throttle_wait_s += held["paced"].hold(now + paused, now + wait)
        if learned > paused:
            refused.bound_at = now
        return wait

    def after_attempt(
        self,
        kind: RequestKind,
        outcome: HttpOutcome | TransportFailure,
        *,
        attempt: int,
        now: float,
        now_wall: float,
        retry: bool = True,
    ) -> Decision:
        """Learn from one attempt and say what to do next (``done``, ``retry`` with a delay, ``reconcile``,
        ``fail``). ``attempt`` is the number of retries already made for this request. With ``retry=False``
        (polls, whose next poll is their retry) a ``retry`` decision comes back unplanned and uncounted."""
        if attempt == 0:
            self._budget.record_request(now)
        if isinstance(outcome, HttpOutcome):
            self._read_signals(kind, outcome, now, now_wall)
        decision = classify_attempt(kind, outcome, now_wall=now_wall, max_pause=self.limits.max_pause_s)
        overloaded = decision.cause in OVERLOAD_CAUSES
        trip = self._breaker.record(now, not overloaded)
        if self.obey:
            self._trip = self._trip or trip
            if self._adaptive:
                if overloaded:
                    self._cut_runs_in_flight(now)
                elif decision.action == "done" and self._aimd is not None:
                    self._aimd.on_success(now, self.runs_in_flight)
        elif kind == "create" and decision.cause in ("http_429", "http_503"):
            return Decision("fail", None, decision.cause)  # stress: the refusal is the measurement
        if not retry:
            return decision
        decision = plan_retry(
            decision,
            attempt=attempt,
            now=now,
            backoff=self._backoff,
            budget=self._budget,
            max_retries=self.limits.max_retries,
        )
        if decision.action == "retry":
            self._budget.record_retry(now)
            self.retries[decision.cause] += 1
        return decision

    def note_reconcile_retry(self, now: float) -> float | None:
        """A create that reconciliation proved absent may be sent again: the backoff delay, or None when the
        retry budget says no."""
        if not self._budget.can_retry(now):
            return None
        self._budget.record_retry(now)
        self.retries["reconciled_absent"] += 1
        return self._backoff.delay(0)

    def _cut_runs_in_flight(self, now: float) -> None:
        """An overload answer: cut the AIMD limit on runs in flight, starting it at the first overload."""
        if self._aimd is None:
            ceiling = self.limits.max_runs_in_flight or AIMD_CEILING
            # Never below the largest batch the API takes (unless the user's own limit is lower): a limit under
            # a batch's size would never let that batch start, and one batch in flight cannot overload much.
            floor = min(ceiling, MAX_RUNS_PER_BATCH)
            start = min(ceiling, max(floor, self.runs_in_flight))
            self._aimd = AimdLimit(start, minimum=floor, maximum=ceiling)
        self._aimd.on_overload(now)

    def _read_signals(self, kind: RequestKind, outcome: HttpOutcome, now: float, now_wall: float) -> None:
        signal = read_signal(outcome.status, outcome.headers, now, now_wall, self.limits.max_pause_s)
        refused = outcome.status in REFUSALS
        if refused:
            self.responses[str(outcome.status)] += 1
        if signal is not None:
            for header in signal.unparseable:
                self.unparseable[header] += 1
            if self.obey and signal.limit and signal.window_s:
                rate = signal.limit / signal.window_s * self.share
                if rate != self.server_rate:
                    self.server_rate = rate
                    self._server_bucket.set_rate(rate)
            if signal.retry_at is not None and refused:
                self.retry_after.record_s(signal.retry_at - now)
        if not self.obey:
            return
        learned = self._refused[kind]
        if outcome.status == 429:
            # Only a 429 says "too many requests": a 503 says "overloaded", which the pause below and the limit
            # on runs in flight answer. Cutting the rate on every 503 would drive it to its floor against a
            # server that fails a steady share of requests whatever the rate.
            learned.rate.on_refusal(now)
            self._set_learned_pace(kind)
        elif outcome.status < 500:
            learned.streak = 0
            before = learned.rate.rate
            if learned.rate.on_accepted(now, bound=now - learned.bound_at < BOUND_RECENTLY_S) != before:
                self._set_learned_pace(kind)
        retry_at = signal.retry_at if signal is not None else None
        if retry_at is not None and not (refused and signal is not None and signal.source == SOURCE_RETRY_AFTER):
            # The stated quota is exhausted until its reset: no request of any kind would be accepted.
            self._paused_until = max(self._paused_until, retry_at)
            for bucket in (*self._buckets.values(), self._server_bucket, *(r.bucket for r in self._refused.values())):
                bucket.pause_until(retry_at)
            return
        if retry_at is None and refused:
            # Refused with nothing said about when or how much: back off this kind of request, longer each time.
            # The streak counts pauses since the last accepted answer. A refusal during a pause came from a
            # request sent before it (same episode), unless an answer was accepted since the episode began or
            # the pause was one the server named: then the streak is 0 and this refusal opens a new episode.
            if now >= learned.paused_until or learned.streak == 0:
                learned.streak += 1
            ceiling = min(BARE_PAUSE_CAP_S, self._backoff.ceiling(learned.streak - 1))
            retry_at = now + ceiling * self._rng.uniform(0.5, 1.0)  # jittered, yet never next to nothing
        if retry_at is not None and retry_at > now:
            learned.paused_until = max(learned.paused_until, retry_at)
            self._buckets[kind].pause_until(retry_at)
            learned.bucket.pause_until(retry_at)

    def _set_learned_pace(self, kind: RequestKind) -> None:
        """Pace this kind of request to the rate learned from its refusals (its part of it, with workers)."""
        refused = self._refused[kind]
        rate = refused.rate.rate * self.share
        if rate != refused.bucket.rate_per_s:
            refused.bucket.set_rate(rate)

    @property
    def learned_rates(self) -> dict[str, float]:
        """The request rate learned from 429 answers, per kind of request refused (a kind absent: none came)."""
        if self._absorbed_learned_rates:
            return dict(self._absorbed_learned_rates)
        rates = {kind: refused.rate.rate * self.share for kind, refused in self._refused.items()}
        return {kind: rate for kind, rate in rates.items() if math.isfinite(rate)}

    # ------------------------------------------------------------------------------------------ engine

    @property
    def runs_in_flight(self) -> int:
        """Runs admitted and not yet released: submitted (or being submitted) and not seen to end."""
        return self._runs_in_flight

    def admit(self, runs: int) -> None:
        """``runs`` go in flight (a batch about to be submitted)."""
        self._runs_in_flight += runs

    def release(self, runs: int) -> None:
        """``runs`` are no longer in flight (seen to end, or given up on)."""
        self._runs_in_flight -= runs

    def run_capacity(self) -> int | None:
        """How many runs may be in flight now (None: no limit)."""
        limits = [limit for limit in (self.limits.max_runs_in_flight,) if limit is not None]
        if self._aimd is not None and self._aimd.limit < AIMD_CEILING:
            limits.append(self._aimd.limit)
        return min(limits) if limits else None

    def trip(self, now: float) -> BreakerTrip | None:
        """The breaker's verdict (obey mode only): once tripped, no more submitting for this run."""
        if self.obey and self._trip is None:
            self._trip = self._breaker.tripped(now)
        return self._trip

    def backoff_delay(self, failures: int) -> float:
        """Full-jitter backoff after ``failures`` consecutive failures (for polls, added to their interval)."""
        return self._backoff.delay(failures - 1) if failures > 0 else 0.0

    def absorb(self, report: GovernorReport, server_rate: float | None) -> None:
        """Add another governor's totals to this one's: how a coordinator sums its workers' governors (each
        ran with its share of the limits, so their run limits and learned server rates add up too)."""
        self.throttle_wait_s += report.throttle_wait_s
        self.client_wait_s += report.client_wait_s
        self.server_rate_wait_s += report.server_rate_wait_s
        self.server_pause_s = max(self.server_pause_s, report.server_pause_s)  # wall time, shared by all
        self.capacity_wait_s += report.capacity_wait_s
        self.responses.update(report.responses)
        self.retries.update(report.retries)
        self.retry_after.merge(report.retry_after_s)
        self.unparseable.update(report.unparseable_headers)
        self._trip = self._trip or report.trip
        if report.run_limit is not None:
            self._absorbed_run_limit = (self._absorbed_run_limit or 0) + report.run_limit
        for kind, rate in report.learned_rates.items():
            self._absorbed_learned_rates[kind] = self._absorbed_learned_rates.get(kind, 0.0) + rate
        if server_rate is not None:
            self.server_rate = (self.server_rate or 0.0) + server_rate

    def report(self) -> GovernorReport:
        return GovernorReport(
            mode=self.limits.mode,
            throttle_wait_s=self.throttle_wait_s,
            server_pause_s=self.server_pause_s,
            capacity_wait_s=self.capacity_wait_s,
            client_wait_s=self.client_wait_s,
            server_rate_wait_s=self.server_rate_wait_s,
            responses={status: self.responses[status] for status in ("429", "503")},
            learned_rates=self.learned_rates,
            retries=dict(self.retries),
            retry_after_s=self.retry_after,
            unparseable_headers=dict(self.unparseable),
            run_limit=self._absorbed_run_limit if self._absorbed_run_limit is not None else self.run_capacity(),
            trip=self._trip,
        )
