"""An adaptive concurrency limit: additive increase while it is used, multiplicative decrease on overload."""

from __future__ import annotations

import math


class AimdLimit:
    """How many requests may be in flight at once, found by probing like TCP congestion control.

    - `on_success` adds `increase` when the limit was actually in use (`in_flight >= limit`): an idle
      client learns nothing about the server's capacity, and growing then would leave a limit far above what
      was tested.
    - `on_overload` (a 429, a 503, a timeout) multiplies by `decrease_factor`, at most once per cooldown
      window of `max(cooldown_s, smoothed RTT)`: the requests already in flight were sent under the old
      limit, so the burst of overload answers they bring back is one congestion event, not many, and must not
      collapse the limit to `minimum`. For the same reason successes within that window do not grow the limit
      back (each would otherwise undo the cut by one, since in flight is still above the new limit).
    """

    def __init__(
        self,
        initial: int,
        *,
        minimum: int = 1,
        maximum: int,
        increase: int = 1,
        decrease_factor: float = 0.9,
        cooldown_s: float = 1.0,
        rtt_smoothing: float = 0.125,
    ) -> None:
        if minimum < 1:
            raise ValueError(f"minimum must be at least 1, got {minimum}")
        if maximum < minimum:
            raise ValueError(f"maximum ({maximum}) must be >= minimum ({minimum})")
        if not minimum <= initial <= maximum:
            raise ValueError(f"initial ({initial}) must be within [{minimum}, {maximum}]")
        if increase < 1:
            raise ValueError(f"increase must be at least 1, got {increase}")
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be in (0, 1), got {decrease_factor}")
        if not cooldown_s >= 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s}")
        if not 0 < rtt_smoothing <= 1:
            raise ValueError(f"rtt_smoothing must be in (0, 1], got {rtt_smoothing}")
        self._limit = initial
        self._minimum = minimum
        self._maximum = maximum
        self._increase = increase
        self._factor = decrease_factor
        self._cooldown_s = cooldown_s
        self._alpha = rtt_smoothing
        self._srtt: float | None = None
        self._last_decrease = -math.inf

    @property
    def limit(self) -> int:
        """The current concurrency limit."""
        return self._limit

    @property
    def smoothed_rtt(self) -> float | None:
        """The exponentially smoothed round-trip time fed through `on_success`, or None if none was given."""
        return self._srtt

    def on_success(self, now: float, in_flight: int, rtt: float | None = None) -> int:
        """Record a successful response and return the limit.

        `in_flight` is the number of requests outstanding when this response arrived, counting this one.
        `rtt`, when given, feeds the smoothed RTT that stretches the overload cooldown for slow servers.
        """
        if rtt is not None and rtt >= 0:
            self._srtt = rtt if self._srtt is None else self._srtt + self._alpha * (rtt - self._srtt)
        if in_flight >= self._limit and not self._cooling(now):
            self._limit = min(self._maximum, self._limit + self._increase)
        return self._limit

    def on_overload(self, now: float) -> int:
        """Record an overload answer (429, 503, timeout) and return the limit, cut at most once per window."""
        if self._cooling(now):
            return self._limit
        self._last_decrease = now
        # floor() of limit * factor is always below limit for factor < 1, so every cut lowers the limit by 1+.
        self._limit = max(self._minimum, math.floor(self._limit * self._factor))
        return self._limit

    def _cooling(self, now: float) -> bool:
        window = max(self._cooldown_s, self._srtt or 0.0)
        return now < self._last_decrease + window
