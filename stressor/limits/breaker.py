"""A circuit breaker that stops a run from submitting once most recent requests fail.

Every submission to the test-calls API is a billed call, so when the target is plainly broken the right move
is to stop spending and say why, not to keep hammering it. There is no half-open state: once tripped, the
breaker stays tripped for the rest of the run and the summary reports the reason.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from stressor.limits.window import SlidingCounts

_TOTAL = 0
_FAILURES = 1


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    """Why the breaker tripped: the counts over the window at the moment it did."""

    failures: int
    total: int
    window_s: float
    ratio: float
    at: float

    def describe(self) -> str:
        """One sentence for the run summary."""
        return (
            f"stopped submitting: {self.failures} of {self.total} requests failed "
            f"({round(self.ratio * 100)} %) over the last {self.window_s:g} s"
        )


class Breaker:
    """Trips when more than `failure_ratio` of the requests in the last `window_s` seconds failed, and that
    has been so for at least `sustain_s` (half the window unless given).

    - Evidence: it judges only on at least `min_requests` outcomes, so a handful of early errors cannot stop a
      run. When the window holds fewer (the client slowed down, as a server's refusals ask), it judges the
      last `min_requests` outcomes instead, however long they took: a client that backs off to a trickle
      must still stop when every request of the trickle fails.
    - Sustained: a burst of failures, however dense, trips nothing until the failing has lasted `sustain_s`.

    Counts live in `bucket_s` buckets, so memory is fixed by the window length (plus `min_requests` outcomes).
    """

    def __init__(
        self,
        window_s: float = 30.0,
        failure_ratio: float = 0.5,
        min_requests: int = 20,
        *,
        bucket_s: float = 1.0,
        sustain_s: float | None = None,
    ) -> None:
        if not 0 <= failure_ratio < 1:
            raise ValueError(f"failure_ratio must be in [0, 1), got {failure_ratio}")
        if min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, got {min_requests}")
        sustain_s = window_s / 2 if sustain_s is None else sustain_s
        if not 0 <= sustain_s <= window_s:
            raise ValueError(f"sustain_s must be in [0, window_s], got {sustain_s}")
        self._counts = SlidingCounts(window_s, bucket_s, fields=2)
        self._latest: deque[tuple[float, bool]] = deque(maxlen=min_requests)
        self._window_s = window_s
        self._failure_ratio = failure_ratio
        self._min_requests = min_requests
        self._sustain_s = sustain_s
        self._failing_since = math.inf
        self._trip: BreakerTrip | None = None

    @property
    def sustain_s(self) -> float:
        """How long the failure ratio must hold before the breaker trips."""
        return self._sustain_s

    def record(self, now: float, ok: bool) -> BreakerTrip | None:
        """Count one request outcome and return the trip if the breaker is (now) tripped."""
        if self._trip is None:
            self._counts.add(now, _TOTAL)
            if not ok:
                self._counts.add(now, _FAILURES)
            self._latest.append((now, ok))
        return self.tripped(now)

    def _evidence(self, now: float) -> tuple[int, int, float] | None:
        """(failures, total, span in seconds) to judge on, or None when there is not enough evidence."""
        total, failures = self._counts.totals(now)
        if total >= self._min_requests:
            return failures, total, self._window_s
        if len(self._latest) < self._min_requests:
            return None
        failures = sum(1 for _, ok in self._latest if not ok)
        return failures, len(self._latest), max(self._window_s, now - self._latest[0][0])

    def tripped(self, now: float) -> BreakerTrip | None:
        """The trip, if the breaker has tripped at or before `now`; None while submitting may go on.

        Checked here as well as in `record`, because old successes leaving the window can raise the failure
        ratio with no new outcome recorded.
        """
        if self._trip is not None:
            return self._trip
        evidence = self._evidence(now)
        # The epsilon keeps float error (0.29 * 100 == 28.999999999999996) from tripping at exactly the ratio.
        if evidence is None or not evidence[0] > self._failure_ratio * evidence[1] + 1e-9:
            self._failing_since = math.inf
            return None
        failures, total, span = evidence
        self._failing_since = min(self._failing_since, now)
        if now - self._failing_since >= self._sustain_s:
            self._trip = BreakerTrip(
                failures=failures, total=total, window_s=round(span, 1), ratio=failures / total, at=now
            )
        return self._trip
