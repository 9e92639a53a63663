"""A circuit breaker that stops a run from submitting once most recent requests fail.

Every submission to the test-calls API is a billed call, so when the target is plainly broken the right move
is to stop spending and say why, not to keep hammering it. There is no half-open state: once tripped, the
breaker stays tripped for the rest of the run and the summary reports the reason.
"""

from __future__ import annotations

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
    """Trips when more than `failure_ratio` of the requests in the last `window_s` seconds failed.

    It needs at least `min_requests` outcomes in the window before it judges, so a handful of early errors
    cannot stop a run. Counts live in `bucket_s` buckets, so memory is fixed by the window length.
    """

    def __init__(
        self,
        window_s: float = 30.0,
        failure_ratio: float = 0.5,
        min_requests: int = 20,
        *,
        bucket_s: float = 1.0,
    ) -> None:
        if not 0 <= failure_ratio < 1:
            raise ValueError(f"failure_ratio must be in [0, 1), got {failure_ratio}")
        if min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, got {min_requests}")
        self._counts = SlidingCounts(window_s, bucket_s, fields=2)
        self._window_s = window_s
        self._failure_ratio = failure_ratio
        self._min_requests = min_requests
        self._trip: BreakerTrip | None = None

    def record(self, now: float, ok: bool) -> BreakerTrip | None:
        """Count one request outcome and return the trip if the breaker is (now) tripped."""
        if self._trip is None:
            self._counts.add(now, _TOTAL)
            if not ok:
                self._counts.add(now, _FAILURES)
        return self.tripped(now)

    def tripped(self, now: float) -> BreakerTrip | None:
        """The trip, if the breaker has tripped at or before `now`; None while submitting may go on.

        Checked here as well as in `record`, because old successes leaving the window can raise the failure
        ratio with no new outcome recorded.
        """
        if self._trip is not None:
            return self._trip
        total, failures = self._counts.totals(now)
        # The epsilon keeps float error (0.29 * 100 == 28.999999999999996) from tripping at exactly the ratio.
        if total >= self._min_requests and failures > self._failure_ratio * total + 1e-9:
            self._trip = BreakerTrip(
                failures=failures, total=total, window_s=self._window_s, ratio=failures / total, at=now
            )
        return self._trip
