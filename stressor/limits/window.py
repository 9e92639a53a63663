"""Counters over a sliding time window in fixed-width buckets (memory grows with the window, not the load).

Used by the retry budget and the breaker. The window covers the current bucket and the `buckets - 1` before
it, so an event leaves the window between `window_s - bucket_s` and `window_s` after it happened.
"""

from __future__ import annotations

import math


class SlidingCounts:
    """`fields` integer counters summed over the last `window_s` seconds, to a resolution of `bucket_s`."""

    def __init__(self, window_s: float, bucket_s: float = 1.0, fields: int = 2) -> None:
        if not bucket_s > 0:
            raise ValueError(f"bucket_s must be positive, got {bucket_s}")
        if not window_s >= bucket_s:
            raise ValueError(f"window_s ({window_s}) must be at least bucket_s ({bucket_s})")
        if fields < 1:
            raise ValueError(f"fields must be at least 1, got {fields}")
        self._bucket_s = bucket_s
        self._n = max(1, math.ceil(window_s / bucket_s - 1e-9))
        self._buckets = [[0] * fields for _ in range(self._n)]
        self._totals = [0] * fields
        # Index (in bucket units since time 0) of the newest bucket; None until the first event.
        self._head: int | None = None

    @property
    def window_s(self) -> float:
        """The span the counts cover, rounded up to whole buckets."""
        return self._n * self._bucket_s

    def add(self, now: float, field: int, amount: int = 1) -> None:
        """Count `amount` events of counter `field` at time `now`.

        Callers running concurrently may pass a `now` slightly older than the newest one seen; such an event
        is counted in its own bucket while that bucket is still inside the window, and dropped once it is not.
        """
        index, head = self._advance(now)
        if index <= head - self._n:
            return
        self._buckets[index % self._n][field] += amount
        self._totals[field] += amount

    def totals(self, now: float) -> tuple[int, ...]:
        """The sum of each counter over the window ending at `now`."""
        self._advance(now)
        return tuple(self._totals)

    def _advance(self, now: float) -> tuple[int, int]:
        """Move the window forward to `now`; return the bucket index of `now` and of the newest bucket."""
        index = math.floor(now / self._bucket_s)
        if self._head is None:
            self._head = index
        elif index > self._head:
            # Clear the buckets that fell out of the window; at most one full turn of the ring.
            for step in range(1, min(index - self._head, self._n) + 1):
                bucket = self._buckets[(self._head + step) % self._n]
                for k, count in enumerate(bucket):
                    self._totals[k] -= count
                    bucket[k] = 0
            self._head = index
        return index, self._head
