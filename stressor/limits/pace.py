"""The pace learned from a server that refuses without saying its limit, and the wall time a client was held.

A 429 says "slower" even when it does not say how much: `AimdRate` turns refusals into a request rate (the
governor keeps one per kind of request, and cuts it on 429s only), cut multiplicatively and raised again slowly
while answers come back, so requests are spaced at a rate the server has shown it accepts.
`HeldTime` measures throttling as wall time (the union of the waits), not as the sum over concurrent requests.
"""

from __future__ import annotations

import math

from stressor.limits.window import SlidingCounts

_ACCEPTED = 0


class AimdRate:
    """A request rate (per second) that falls on refusals and rises while the server accepts.

    - Until the first refusal the rate is `math.inf`: the client does not guess a limit it was never shown.
    - `on_refusal` cuts the rate to `decrease_factor` times the lower of the current rate and the rate the
      server *accepted* over the last `window_s` (which, once the server refuses, is what it lets through),
      at most once per `cooldown_s`: the refusals of requests already sent under the old rate are one event.
    - `on_accepted` raises the rate by `increase` (a fraction of the rate) per second, and only while the
      client is held by that rate (`bound`): an idle client learns nothing about the server's limit. The
      increase is slow on purpose: a server's burst allowance hides an excess for a while, so a quick
      probe would overshoot by the time the first refusal tells.
    """

    def __init__(
        self,
        *,
        floor: float = 1.0,
        decrease_factor: float = 0.5,
        increase: float = 0.02,
        cooldown_s: float = 1.0,
        window_s: float = 1.0,
    ) -> None:
        if not floor > 0:
            raise ValueError(f"floor must be positive, got {floor}")
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be in (0, 1), got {decrease_factor}")
        if not increase >= 0:
            raise ValueError(f"increase must be >= 0, got {increase}")
        self._floor = floor
        self._factor = decrease_factor
        self._increase = increase
        self._cooldown_s = cooldown_s
        self._accepted = SlidingCounts(window_s, window_s / 10, fields=1)
        self._window_s = self._accepted.window_s
        self._rate = math.inf
        self._last_cut = -math.inf
        self._last_raise: float | None = None
        self.cuts = 0

    @property
    def rate(self) -> float:
        """The learned rate in requests per second (`math.inf` before any refusal)."""
        return self._rate

    def on_refusal(self, now: float) -> float:
        """A refusal (the governor's: a 429): cut the rate (once per cooldown) and return it."""
        if now < self._last_cut + self._cooldown_s:
            return self._rate
        (accepted,) = self._accepted.totals(now)
        # Over the whole window even when answers came for less of it (a refusal early in a run): the first
        # refusal often ends a burst the server allowed on top of its rate, so only a low estimate is safe.
        measured = accepted / self._window_s
        base = min(self._rate, measured) if measured > 0 else self._rate
        self._rate = max(self._floor, base * self._factor) if math.isfinite(base) else self._floor
        self._last_cut = now
        self._last_raise = None
        self.cuts += 1
        return self._rate

    def on_accepted(self, now: float, *, bound: bool) -> float:
        """An answer the server accepted: counted for the next cut, and raises the rate while it binds."""
        self._accepted.add(now, _ACCEPTED)
        if not math.isfinite(self._rate) or now < self._last_cut + self._cooldown_s:
            return self._rate
        if bound and self._last_raise is not None:
            elapsed = min(max(0.0, now - self._last_raise), 1.0)  # a quiet spell is no evidence of room
            self._rate += self._rate * self._increase * elapsed
        self._last_raise = now
        return self._rate


class HeldTime:
    """Wall time covered by hold intervals `[start, end)`: overlapping holds of concurrent requests count once."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._until = -math.inf

    def hold(self, start: float, end: float) -> float:
        """Add one hold; return the wall time it added (0 when it lies within earlier holds)."""
        if end <= start:
            return 0.0
        added = max(0.0, end - max(start, self._until))
        self._until = max(self._until, end)
        self.total_s += added
        return added
