"""How long to wait before a retry (full-jitter exponential backoff) and whether a retry is allowed at all.

Jitter spreads the retries of many clients that failed together; the budget keeps retries a small fraction of
the traffic, so an outage cannot turn into a retry storm that keeps the server down.
"""

from __future__ import annotations

import math
import random

from stressor.limits.window import SlidingCounts

_REQUESTS = 0
_RETRIES = 1


class Backoff:
    """Full-jitter exponential backoff: retry `attempt` waits `uniform(0, min(cap, base * 2**attempt))` s.

    `attempt` counts retries already made for the request (0 before the first retry). Randomness comes only
    from the `rng` passed in, so a seeded run retries at the same moments every time.
    """

    def __init__(self, base: float = 0.1, cap: float = 30.0, *, rng: random.Random) -> None:
        if not base > 0:
            raise ValueError(f"base must be positive, got {base}")
        if not cap > 0:
            raise ValueError(f"cap must be positive, got {cap}")
        self._base = base
        self._cap = cap
        self._rng = rng
        # Past this attempt the exponential has reached the cap; checking it first avoids computing
        # 2**attempt, which overflows a float for attempts around 1024.
        self._saturated_at = math.log2(cap / base)

    @property
    def base(self) -> float:
        """The ceiling of the first retry's wait, in seconds."""
        return self._base

    @property
    def cap(self) -> float:
        """The largest wait any retry can get, in seconds."""
        return self._cap

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the wait for `attempt`: `min(cap, base * 2**attempt)`."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if attempt >= self._saturated_at:
            return self._cap
        return min(self._cap, self._base * 2.0**attempt)

    def delay(self, attempt: int) -> float:
        """A random wait in `[0, ceiling(attempt)]` seconds for the retry after `attempt` earlier retries."""
        return self._rng.uniform(0.0, self.ceiling(attempt))


class RetryBudget:
    """Allows retries while they stay within `ratio` of the requests made over a sliding window.

    Counting is over a sliding window of `window_s` seconds in one-second buckets (rather than a decaying
    average) so the rule reads exactly as a user would check it: "in the last 10 s there were at most 10 %
    as many retries as requests". A floor of `min_per_s * window_s` retries per window lets the first
    failures of a quiet run retry before enough requests have been counted.

    Call `record_request` for every first attempt only; a retry is counted with `record_retry`, not as a
    request.
    """

    def __init__(
        self,
        ratio: float = 0.1,
        min_per_s: float = 1.0,
        *,
        window_s: float = 10.0,
        bucket_s: float = 1.0,
    ) -> None:
        if not ratio >= 0:
            raise ValueError(f"ratio must be >= 0, got {ratio}")
        if not min_per_s >= 0:
            raise ValueError(f"min_per_s must be >= 0, got {min_per_s}")
        self._ratio = ratio
        self._counts = SlidingCounts(window_s, bucket_s, fields=2)
        self._floor = min_per_s * self._counts.window_s

    def record_request(self, now: float) -> None:
        """Count one first attempt of a request."""
        self._counts.add(now, _REQUESTS)

    def record_retry(self, now: float) -> None:
        """Count one retry (call it when the retry is actually made)."""
        self._counts.add(now, _RETRIES)

    def can_retry(self, now: float) -> bool:
        """True when one more retry would keep retries within `ratio * requests + floor` over the window."""
        requests, retries = self._counts.totals(now)
        # The epsilon absorbs float error: 0.29 * 100 == 28.999999999999996 would refuse the 29th retry.
        return retries + 1 <= self._ratio * requests + self._floor + 1e-9

    def try_retry(self, now: float) -> bool:
        """`can_retry` and, when it allows, `record_retry` in one step."""
        if not self.can_retry(now):
            return False
        self.record_retry(now)
        return True

    def counts(self, now: float) -> tuple[int, int]:
        """(requests, retries) counted over the window ending at `now`."""
        requests, retries = self._counts.totals(now)
        return requests, retries
