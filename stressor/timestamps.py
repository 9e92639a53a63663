"""ISO 8601 timestamps as the test-calls API writes them, and the bridge between clocks.

The API stamps runs in UTC with milliseconds and a ``Z`` (``2026-11-29T18:24:09.011Z``). stressor measures on
the monotonic clock (``time.perf_counter_ns``) and needs wall time only to compare with server stamps; a
``ClockAnchor`` taken once per run maps one onto the other, so no hot path calls ``time.time()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

NS_PER_S = 1_000_000_000


def format_iso(epoch_s: float) -> str:
    """Format epoch seconds as the API does: UTC, millisecond precision, trailing ``Z``. The instant is taken
    to the microsecond, then truncated: an epoch float near 2026 resolves ~0.24 µs, so a stamp meant at .300
    (1800000000.3 is stored as ...0.2999999523) still reads .300."""
    stamp = datetime.fromtimestamp(epoch_s, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 timestamp (any fraction, ``Z`` or offset; naive means UTC) into epoch seconds.

    Raises ValueError with the offending text when it is not a timestamp.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def parse_iso_or_none(value: object) -> float | None:
    """``parse_iso`` for fields of answers: None for anything that is not a timestamp (null, a number, junk)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """One simultaneous reading of the wall clock and the monotonic clock."""

    wall_ns: int
    mono_ns: int

    @classmethod
    def now(cls) -> ClockAnchor:
        """Read both clocks back to back (the pair is within a microsecond or so)."""
        return cls(wall_ns=time.time_ns(), mono_ns=time.perf_counter_ns())

    def to_wall_s(self, mono_ns: int) -> float:
        """Wall-clock epoch seconds of a monotonic reading."""
        return (self.wall_ns + (mono_ns - self.mono_ns)) / NS_PER_S

    def to_mono_ns(self, wall_s: float) -> int:
        """Monotonic reading of a wall-clock instant (epoch seconds)."""
        return self.mono_ns + round(wall_s * NS_PER_S) - self.wall_ns
