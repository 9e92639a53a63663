"""GCRA: a token bucket kept as one number (the theoretical arrival time), with no refill timer.

The limiter is shared by every task that sends to one target. A caller asks `reserve(now)` for the wait before
its request may go; the answer is booked at once, so callers that reserve at the same instant are spread out
one emission interval apart in the order they asked, instead of all waking together and racing.
"""

from __future__ import annotations

import math


class Gcra:
    """Generic cell rate algorithm limiting requests to `rate_per_s` with bursts of up to `burst` at once.

    `rate_per_s` may be `math.inf` (no limit: every reservation is free unless a pause is in force).
    Time is whatever monotonic seconds the caller passes as `now`; the limiter never reads a clock.
    """

    def __init__(self, rate_per_s: float, burst: int = 1) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._burst = burst
        # -inf means "nothing booked yet": max() with any real `now` picks `now`.
        self._tat = -math.inf
        self._paused_until = -math.inf
        self._rate = math.inf
        self._interval = 0.0
        self._tolerance = 0.0
        self.set_rate(rate_per_s)

    @property
    def rate_per_s(self) -> float:
        """The current rate limit in requests per second (`math.inf` when unlimited)."""
        return self._rate

    @property
    def burst(self) -> int:
        """How many requests may go back to back when the limiter has been idle."""
        return self._burst

    @property
    def paused_until(self) -> float | None:
        """The latest instant passed to `pause_until`, or None if the limiter was never paused."""
        return None if self._paused_until == -math.inf else self._paused_until

    def set_rate(self, rate_per_s: float) -> None:
        """Change the rate: reservations already made keep their times, later ones get the new spacing."""
        if not rate_per_s > 0:  # written this way so NaN is refused too
            raise ValueError(f"rate_per_s must be positive or math.inf, got {rate_per_s}")
        self._rate = rate_per_s
        self._interval = 0.0 if math.isinf(rate_per_s) else 1.0 / rate_per_s
        self._tolerance = self._interval * (self._burst - 1)

    def pause_until(self, t: float) -> None:
        """Hold every later reservation until at least `t` (a server's Retry-After holds the whole client).

        The bucket counts as empty at `t` and refills from there, so requests resume at the steady rate
        rather than in a burst: the server has just said we were over its limit, and spending the whole burst
        allowance the instant the pause ends would likely earn another 429. Pauses only ever extend; an
        earlier `t` than the current pause is ignored.
        """
        if not math.isfinite(t):
            raise ValueError(f"pause_until needs a finite time, got {t}")
        self._paused_until = max(self._paused_until, t)

    def reserve(self, now: float) -> float:
        """Book the next slot and return how many seconds the caller must wait before sending (0 = go now).

        Each call pushes the theoretical arrival time by one emission interval, so N callers that reserve at
        the same `now` get waits 0, T, 2T, ... (after the burst allowance). A caller that gives up after
        reserving leaves its slot unused; the rate is then briefly under the limit, never over it.
        """
        start = self._start(now)
        self._tat = start + self._interval
        return max(0.0, start - self._tolerance - now)

    def peek(self, now: float) -> float:
        """The wait a reservation made now would get, without booking it."""
        return max(0.0, self._start(now) - self._tolerance - now)

    def _start(self, now: float) -> float:
        # Folding the pause into the arrival time (rather than only clamping the wait) makes the requests
        # queued behind a pause come out spaced by the interval after it, as explained in pause_until.
        return max(self._tat, now, self._paused_until + self._tolerance)
